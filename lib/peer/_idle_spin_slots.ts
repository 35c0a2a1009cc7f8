/**
 * What `idle_spin.ts` and its worker share: the slots of their shared
 * state and the worker's first message.
 *
 * @module
 */

/** Slots of the shared state (an `Int32Array` over a `SharedArrayBuffer`). */
export const SpinSlot = {
  /** Bumped by every kick. */
  Activity: 0,
  /** 1 while the worker waits on `Activity`. */
  Parked: 1,
  /** 1 once the spinner must end. */
  Stop: 2,
  /** Times the worker parked (it spun `spinUs` without a kick), for tests and curiosity. */
  Parks: 3,
} as const;

/** Slots in all. */
export const spinSlots = 4;

/** What the worker reports once, as it starts. */
export type SpinStart =
  | { outcome: "spinning"; tid: number }
  | { outcome: "refused"; reason: string };
