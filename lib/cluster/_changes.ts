/**
 * A wake-up signal for waiters on cluster state: instead of polling (a
 * leader elected, a link reconnected, a replica opened), a waiter sleeps
 * until the next `notify()` or its own deadline, then looks again.
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
 * const changes = new Changes(scheduler);
 * while (!ready()) await changes.next(deadline - scheduler.now());
 * ```
 */
export class Changes {
  readonly #scheduler: Scheduler;
  #waiters = new Set<() => void>();

  constructor(scheduler: Scheduler) {
    this.#scheduler = scheduler;
  }

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

  /** Resolves at the next `notify()` or after `timeoutMs`, whichever comes first. */
  next(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        cancel();
        this.#waiters.delete(wake);
        resolve();
      };
      const cancel = this.#scheduler.schedule(Math.max(0, timeoutMs), wake);
      this.#waiters.add(wake);
    });
  }
}
