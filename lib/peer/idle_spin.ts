/**
 * Keeps a core busy for a short while after a peer's network activity, so
 * that the next wakeup of an event loop finds a running core instead of a
 * halted one: an "idle strategy" as Aeron's or Seastar's idle polling
 * (Redpanda's `--idle-poll-time-us`), and what Go's scheduler does when it
 * spins before parking a thread.
 *
 * Why: on a virtual machine an idle vCPU halts, and waking it again goes
 * through the host (an interrupt to a halted vCPU, whose thread the host
 * must schedule). One publish at a time crosses processes four times
 * (client, leader, follower, leader, client) and waits for two fsyncs
 * whose completions wake a halted vCPU too. Measured on this project's
 * 2-vCPU machine with the kernel's guest halt polling off
 * (`/sys/module/haltpoll/parameters/guest_halt_poll_ns` = 0), per publish
 * in the middle half: client to leader 60 µs, leader to follower 98 µs,
 * follower back 75 µs, leader to client 65 µs, where a plain Deno echo
 * crosses in 20-35 µs. With the kernel's halt polling turned on for one
 * run, the same hops took 40, 55, 60 and 50 µs and p50 fell from 597 to
 * 451 µs. This module gets that effect from inside the program.
 *
 * How: one worker thread per peer, at `SCHED_IDLE` (sched(7)): it runs only
 * on a core nothing else wants, and any task that wakes there takes the
 * core at once (the scheduler counts a core that runs only idle-class work
 * as idle when it places a wakeup). The peer's event loop calls `kick()` on
 * every frame it reads and every Raft frame it sends; the worker spins
 * until `spinUs` passed since the last kick, then parks on a futex until
 * the next one. An idle cluster (no frames) parks it; quiet Raft groups
 * send nothing.
 *
 * Measured with `bench:ab` (one publish at a time, 60-90 s, 2 vCPUs): in
 * turns of 100 ms, p50 -20% and p99 -11%; in turns of 1 s and 3 s, closer
 * to a steady load, p50 -7% and -13% with p99 +4% and +2% (within the
 * spread of runs): it shortens the common path, not the slowest 1%. The
 * same tree with `--spin-us 0` against 250 (turns of 1 s, 180 s): p50 -9%,
 * p99 +1%, p99.9 -19%. The peers' CPU time rises from about 550 to 850 µs
 * per publish, all of it idle-class time a halted vCPU would not have used. The spinning window
 * is a tradeoff (turns of 100 ms): 100 µs gave p50 -10% and p99 -4%, 250
 * µs p50 -20% and p99 -8%, 500 µs p50 -21% and p99 -3%, and 1 ms p50 -20%
 * but p99 +25% (a vCPU that never rests is preempted by the host more
 * often). On a later kernel it hurt instead (see `spinUsDefault`), so it
 * is off unless `--spin-us` asks for it.
 *
 * Written against libc through FFI (`gettid`, `sched_setscheduler`:
 * `_sched.ts`, shared with `helper_threads.ts`). Without FFI permission, off
 * Linux, or where `SCHED_IDLE` is refused, no worker spins: a spinner at
 * normal priority would take turns with the event loops it is meant to
 * help.
 *
 * @module
 */

import { getLogger } from "../logging.ts";
import { SpinSlot, spinSlots, type SpinStart } from "./_idle_spin_slots.ts";

export type { SpinStart } from "./_idle_spin_slots.ts";

/**
 * Default spinning time after the last activity (`pubsub peer --spin-us`):
 * off. On the kernel this project's machine runs now (6.18.44,
 * `PREEMPT_DYNAMIC`, no `haltpoll` cpuidle driver), spinning made one
 * publish at a time much slower (`bench:ab`, spin 0 against 250, turns of
 * 1 s, 60 s: p99 2.36 against 6.53 ms, p50 0.85 against 0.93), and
 * calling `sched_yield()` in the spin loop did not help (p99 2.77 against
 * 5.10). A thread woken on a core that runs only idle-class work seems to
 * wait there for the next tick (a lazy reschedule sends no interrupt).
 */
export const spinUsDefault = 0;
/** Longest spinning time `--spin-us` accepts. */
export const spinUsMax = 100_000;

/** A running spinner (see the module documentation). */
export interface IdleSpin {
  /** Resolves once the worker runs at `SCHED_IDLE`, or could not. */
  readonly started: Promise<SpinStart>;
  /** Times the worker has parked so far (it spun its time out without a kick). */
  readonly parks: number;
  /** Ends the worker; kicks do nothing afterwards. */
  stop(): void;
}

let activeState: Int32Array | undefined;

/**
 * Marks network activity: the spinner (if one runs) keeps spinning for its
 * `spinUs` from now, and wakes up if it was parked. Cheap when none runs.
 *
 * @example
 * ```ts
 * import { kickIdleSpin } from "./idle_spin.ts";
 * kickIdleSpin();
 * ```
 */
export function kickIdleSpin(): void {
  const state = activeState;
  if (state === undefined) return;
  Atomics.add(state, SpinSlot.Activity, 1);
  if (Atomics.load(state, SpinSlot.Parked) === 1) Atomics.notify(state, SpinSlot.Activity, 1);
}

/**
 * Starts the spinner for this process, spinning `spinUs` after each kick;
 * undefined (nothing started) for 0, off Linux or without FFI permission.
 * One per process: starting another stops none, but kicks reach the last.
 *
 * @example
 * ```ts
 * import { startIdleSpin } from "./idle_spin.ts";
 * const spin = startIdleSpin(250);
 * console.log((await spin?.started)?.outcome);
 * spin?.stop();
 * ```
 */
export function startIdleSpin(spinUs: number): IdleSpin | undefined {
  const logger = getLogger("peer");
  if (spinUs <= 0 || Deno.build.os !== "linux") return undefined;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    logger.debug("No idle spinning: no --allow-ffi to run it at SCHED_IDLE");
    return undefined;
  }
  const shared = new SharedArrayBuffer(spinSlots * Int32Array.BYTES_PER_ELEMENT);
  const state = new Int32Array(shared);
  const worker = new Worker(new URL("./_idle_spin_worker.ts", import.meta.url), {
    type: "module",
  });
  const started = new Promise<SpinStart>((resolve) => {
    worker.onmessage = (event: MessageEvent<SpinStart>) => resolve(event.data);
    worker.onerror = (event) => {
      event.preventDefault();
      resolve({ outcome: "refused", reason: event.message });
    };
  });
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    if (activeState === state) activeState = undefined;
    Atomics.store(state, SpinSlot.Stop, 1);
    Atomics.add(state, SpinSlot.Activity, 1);
    Atomics.notify(state, SpinSlot.Activity);
    worker.terminate();
  };
  started.then((start) => {
    if (start.outcome === "spinning") {
      if (!stopped) activeState = state;
      logger.debug("Idle spinning for {spinUs} µs after activity (thread {tid})", {
        spinUs,
        tid: start.tid,
      });
    } else {
      logger.debug("No idle spinning: {reason}", { reason: start.reason });
      stop();
    }
  });
  worker.postMessage({ shared, spinUs });
  return {
    started,
    get parks() {
      return Atomics.load(state, SpinSlot.Parks);
    },
    stop,
  };
}
