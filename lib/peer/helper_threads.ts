/**
 * Keeps V8's helper threads from delaying a peer's event loop.
 *
 * V8 runs its optimizing compiler and the helpers of its garbage collector
 * (parallel scavenging, concurrent marking and sweeping) on worker threads
 * of its own, named "V8 DefaultWorker". A compile job holds a core for
 * 0.5-14 ms (`--trace-opt` of a leader: 10-30 such jobs a second for many
 * seconds after a load starts), and a scavenge's helpers for 0.3-2 ms. On a
 * machine with few cores, one publish at a time is a chain of short steps
 * across the peers' event loop threads, and such a job can hold the core an
 * event loop thread was woken on: `perf sched` on 2 cores showed a leader
 * runnable for 1.9 ms behind its own compile job while the other core sat
 * idle, and V8 helper runs were the longest foreign run in 33 of the 42
 * publishes over 2 ms.
 *
 * So on Linux a peer moves those threads to `SCHED_IDLE` (`sched(7)`): they
 * get a core that nothing else wants at once, and give way at once to an
 * event loop thread that wakes up. It is a weight, not a ban: under full
 * load they still get a small share, and V8 does a late helper's share of a
 * collection on the main thread. Measured, one publish at a time on 3 local
 * peers (2 cores, 8 s runs, two each): p99 1.96 and 1.97 ms without, 1.24
 * and 1.22 ms with; p50 unchanged (0.63-0.65 ms). Nice 10 instead of
 * `SCHED_IDLE` was not enough (p99 2.03 and 1.69 ms).
 *
 * Written against libc through FFI (`_sched.ts`, like `malloc_trim` in
 * `memory_trim.ts`).
 *
 * @module
 */

import { getLogger } from "../logging.ts";
import { moveToSchedIdle, type SchedLibrary, schedSymbols } from "./_sched.ts";

/** How a peer runs V8's helper threads (`pubsub peer --helper-threads`). */
export type HelperThreadPolicy = "idle" | "normal";

/** The policies `--helper-threads` accepts. */
export const helperThreadPolicies: readonly HelperThreadPolicy[] = ["idle", "normal"];

/** The name V8 gives its worker threads, as `/proc/<pid>/task/<tid>/comm` shows it (15 bytes). */
const helperThreadName = "V8 DefaultWorke";

/**
 * Applies `policy` to this process's V8 helper threads and returns how many
 * it moved; 0 where it cannot (not Linux, no `--allow-ffi`, no `/proc`),
 * which is logged at debug level: an optimization, never a failure.
 *
 * @example
 * ```ts
 * import { applyHelperThreadPolicy } from "./helper_threads.ts";
 *
 * console.log(`${applyHelperThreadPolicy("idle")} helper threads at SCHED_IDLE`);
 * ```
 */
export function applyHelperThreadPolicy(policy: HelperThreadPolicy): number {
  if (policy === "normal" || Deno.build.os !== "linux") return 0;
  const logger = getLogger("peer");
  let library: SchedLibrary | undefined;
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
      logger.debug("V8 helper threads left as they are: no --allow-ffi");
      return 0;
    }
    library = Deno.dlopen("libc.so.6", schedSymbols);
    let moved = 0;
    for (const tid of helperThreadIds()) {
      if (moveToSchedIdle(library, tid)) moved++;
    }
    logger.debug("{moved} V8 helper threads run at SCHED_IDLE", { moved });
    return moved;
  } catch (error) {
    logger.debug("V8 helper threads left as they are: {error}", {
      error: (error as Error).message,
    });
    return 0;
  } finally {
    library?.close();
  }
}

/** The thread ids of this process's V8 helper threads (read from `/proc/self/task`). */
export function helperThreadIds(): number[] {
  const ids: number[] = [];
  for (const task of Deno.readDirSync("/proc/self/task")) {
    let name: string;
    try {
      name = Deno.readTextFileSync(`/proc/self/task/${task.name}/comm`).trim();
    } catch {
      continue; // The thread ended since the listing.
    }
    if (name === helperThreadName) ids.push(Number(task.name));
  }
  return ids;
}
