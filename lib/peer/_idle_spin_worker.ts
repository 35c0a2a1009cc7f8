/**
 * The worker of `idle_spin.ts`: moves its own thread to `SCHED_IDLE`, then
 * spins while kicks keep coming and parks on a futex once `spinUs` passed
 * without one (see that module's documentation).
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { SpinSlot, type SpinStart } from "./_idle_spin_slots.ts";
import { moveToSchedIdle, schedSymbols } from "./_sched.ts";

/** Loads of the activity slot between two looks at the clock. */
const loadsPerClockRead = 256;

self.onmessage = (event: MessageEvent<{ shared: SharedArrayBuffer; spinUs: number }>) => {
  const { shared, spinUs } = event.data;
  let tid: number;
  try {
    const library = Deno.dlopen("libc.so.6", schedSymbols);
    tid = library.symbols.gettid();
    if (!moveToSchedIdle(library, tid)) {
      report({ outcome: "refused", reason: "sched_setscheduler(SCHED_IDLE) failed" });
      return;
    }
  } catch (error) {
    report({ outcome: "refused", reason: (error as Error).message });
    return;
  }
  report({ outcome: "spinning", tid });
  spin(new Int32Array(shared), spinUs / 1000);
};

function report(start: SpinStart): void {
  self.postMessage(start);
}

/** Spins until `spinMs` passed since the activity slot last changed, parks, and so on. */
function spin(state: Int32Array, spinMs: number): void {
  let seen = Atomics.load(state, SpinSlot.Activity);
  let until = performance.now() + spinMs;
  while (Atomics.load(state, SpinSlot.Stop) === 0) {
    for (let load = 0; load < loadsPerClockRead; load++) {
      if (Atomics.load(state, SpinSlot.Activity) !== seen) break;
    }
    const now = performance.now();
    const activity = Atomics.load(state, SpinSlot.Activity);
    if (activity !== seen) {
      seen = activity;
      until = now + spinMs;
      continue;
    }
    if (now < until) continue;
    // Parked is set before the activity slot is read again, and a kick
    // bumps the slot before it reads Parked: a kick either changes the slot
    // (the wait returns at once) or sees Parked and notifies.
    Atomics.store(state, SpinSlot.Parked, 1);
    Atomics.add(state, SpinSlot.Parks, 1);
    Atomics.wait(state, SpinSlot.Activity, seen);
    Atomics.store(state, SpinSlot.Parked, 0);
    seen = Atomics.load(state, SpinSlot.Activity);
    until = performance.now() + spinMs;
  }
}
