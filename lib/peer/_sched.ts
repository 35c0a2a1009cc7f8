/**
 * `sched_setscheduler(2)` through FFI, shared by `helper_threads.ts` (V8's
 * helper threads) and `_idle_spin_worker.ts` (the idle spinner), which move
 * threads to `SCHED_IDLE`. No library covers it; a child process per thread
 * (`chrt`) would be slower and need another program.
 *
 * @module
 */

/** `SCHED_IDLE` of `<sched.h>` on Linux. */
export const schedIdle = 5;

/** The libc symbols both need (`Deno.dlopen("libc.so.6", schedSymbols)`). */
export const schedSymbols = {
  gettid: { parameters: [], result: "i32" },
  sched_setscheduler: { parameters: ["i32", "i32", "buffer"], result: "i32" },
} as const;

/** libc opened with `schedSymbols`. */
export type SchedLibrary = Deno.DynamicLibrary<typeof schedSymbols>;

/**
 * Moves thread `tid` to `SCHED_IDLE`; true when the kernel agreed.
 *
 * @example
 * ```ts
 * import { moveToSchedIdle, schedSymbols } from "./_sched.ts";
 * const libc = Deno.dlopen("libc.so.6", schedSymbols);
 * moveToSchedIdle(libc, libc.symbols.gettid());
 * ```
 */
export function moveToSchedIdle(library: SchedLibrary, tid: number): boolean {
  // struct sched_param { int sched_priority; }: 0, as SCHED_IDLE requires.
  return library.symbols.sched_setscheduler(tid, schedIdle, new Uint8Array(4)) === 0;
}
