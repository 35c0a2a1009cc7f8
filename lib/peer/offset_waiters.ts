/**
 * Parked readers waiting for a topic's committed end to pass an offset
 * (subscriptions at the tail). One wake-up per commit batch, not per message.
 *
 * @module
 */

/**
 * A set of waiters woken when the committed end advances.
 *
 * @example
 * ```ts
 * const waiters = new OffsetWaiters();
 * const ready = waiters.wait(5, 4, signal); // resolves once notify(6+) runs
 * waiters.notify(6);
 * ```
 */
export class OffsetWaiters {
  #waiters = new Set<{ offset: number; resolve: () => void }>();

  /** Resolves when `committedEnd > offset`, or right away when it already is or `signal` aborted. */
  wait(offset: number, committedEnd: number, signal: AbortSignal): Promise<void> {
    if (committedEnd > offset || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        offset,
        resolve: () => {
          this.#waiters.delete(waiter);
          signal.removeEventListener("abort", waiter.resolve);
          resolve();
        },
      };
      this.#waiters.add(waiter);
      signal.addEventListener("abort", waiter.resolve, { once: true });
    });
  }

  /** Readers waiting now. */
  get size(): number {
    return this.#waiters.size;
  }

  /** Wakes every waiter whose offset is now below `committedEnd`. */
  notify(committedEnd: number): void {
    for (const waiter of [...this.#waiters]) {
      if (committedEnd > waiter.offset) waiter.resolve();
    }
  }

  /** Wakes everyone (the topic is closing). */
  wakeAll(): void {
    for (const waiter of [...this.#waiters]) waiter.resolve();
  }
}
