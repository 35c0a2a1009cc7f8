/**
 * A wake-up signal for waiters on cluster state: instead of polling (a
 * leader elected, a link reconnected, a replica opened), a waiter sleeps
 * until the next `notify()` or its own deadline (`waitUntil`), then looks
 * again.
 *
 * @module
 */

import type { Scheduler } from "./runtime.ts";

/**
 * Notifies everyone waiting that something they may be waiting for changed.
 * Waiters are bounded by the requests in flight, each of which waits once.
 *
 * @example
 * ```ts
 * const changes = new Changes();
 * const withdraw = changes.once(() => console.log("look again"));
 * changes.notify(); // "look again"; `withdraw()` would have cancelled it
 * ```
 */
export class Changes {
  #waiters = new Set<() => void>();

  /** Waiters now. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** Wakes every waiter. */
  notify(): void {
    if (this.#waiters.size === 0) return;
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const wake of waiters) wake();
  }

  /**
   * Calls `wake` once at the next `notify()`, with no timer of its own;
   * the returned function withdraws it.
   */
  once(wake: () => void): () => void {
    this.#waiters.add(wake);
    return () => this.#waiters.delete(wake);
  }
}

/** Settings of {@linkcode waitUntil}. */
export interface WaitUntilOptions {
  scheduler: Scheduler;
  changes: Changes;
  /** Give up this long after the start. */
  timeoutMs: number;
  /** Give up early once `quorumLost()` holds this long after the start (default: never). */
  graceMs?: number;
  /** True when nobody can answer now (checked once `graceMs` passed). */
  quorumLost?: () => boolean;
  /** True once the waiter's owner closed: give up. */
  closed?: () => boolean;
}

/**
 * Calls `check` now and after every change until it returns a value (which
 * it resolves with), the timeout passes, the quorum is found lost after the
 * grace period, or the owner closes (undefined for those). `check` may
 * throw to end the wait with an error. No polling: between checks it sleeps
 * until `changes` notifies, the grace period ends or the timeout.
 *
 * @example
 * ```ts
 * const leader = await waitUntil(() => group.leader || undefined, { scheduler, changes, timeoutMs: 5000 });
 * ```
 */
export async function waitUntil<T>(
  check: () => T | undefined,
  options: WaitUntilOptions,
): Promise<T | undefined> {
  const { scheduler, changes } = options;
  const started = scheduler.now();
  const deadline = started + options.timeoutMs;
  const graceEnd = started + (options.graceMs ?? Infinity);
  // One timer for the whole wait (re-armed once, when the grace period
  // ends), not one per change: a burst of changes wakes many waiters.
  let wake: (() => void) | undefined;
  let timerAt = Infinity;
  let cancelTimer: () => void = () => {};
  const arm = (at: number) => {
    if (at === timerAt) return;
    cancelTimer();
    timerAt = at;
    cancelTimer = scheduler.schedule(Math.max(0, at - scheduler.now()), () => {
      timerAt = Infinity;
      wake?.();
    });
  };
  try {
    while (true) {
      const value = check();
      if (value !== undefined) return value;
      if (options.closed?.()) return undefined;
      const now = scheduler.now();
      const lost = now >= graceEnd && (options.quorumLost?.() ?? false);
      if (lost || now >= deadline) return undefined;
      arm(now < graceEnd ? Math.min(graceEnd, deadline) : deadline);
      await new Promise<void>((resolve) => {
        const withdraw = changes.once(() => {
          wake = undefined;
          resolve();
        });
        wake = () => {
          wake = undefined;
          withdraw();
          resolve();
        };
      });
    }
  } finally {
    cancelTimer();
  }
}
