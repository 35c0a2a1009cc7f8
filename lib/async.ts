/**
 * Small async helpers shared by the layers that wait in real time (the
 * peer's reconciliation, the client's backoff, the CLI's refresh loops).
 * The Raft core and the simulator never use them: their time is ticks.
 *
 * @module
 */

/**
 * Resolves after `ms`, or at once when `signal` aborts (never rejects, so a
 * loop can check its own stop condition after waking).
 *
 * @example
 * ```ts
 * await sleep(100);
 * await sleep(5000, AbortSignal.timeout(10)); // returns after 10 ms
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/**
 * `promise`, or a rejection with `timeoutError()` when it has not settled
 * within `ms`; the timer is cleared either way.
 *
 * @example
 * ```ts
 * await withTimeout(fetchSomething(), 5000, () => new Error("Timed out"));
 * ```
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  timeoutError: () => Error,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError()), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
