/**
 * The threads of a process and their scheduling policies, read from
 * `/proc` (Linux): for the tests of `helper_threads.ts` and `idle_spin.ts`.
 *
 * @module
 */

/** `SCHED_OTHER` and `SCHED_IDLE` of `<sched.h>` (sched(7) numbering). */
export const schedOther = 0;
export const schedIdle = 5;

/** The threads of process `pid`, with their names (`comm`, at most 15 bytes). */
export function threadsOf(pid: number): { tid: number; name: string }[] {
  const threads: { tid: number; name: string }[] = [];
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    const tid = Number(task.name);
    try {
      threads.push({ tid, name: Deno.readTextFileSync(`/proc/${pid}/task/${tid}/comm`).trim() });
    } catch {
      // The thread ended since the listing.
    }
  }
  return threads;
}

/** The scheduling policy of thread `tid` of process `pid`; undefined once it is gone. */
export function schedulingPolicy(pid: number, tid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/task/${tid}/stat`);
    // Field 41 (policy); the fields after the command name start at field 3.
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[41 - 3]);
  } catch {
    return undefined;
  }
}
