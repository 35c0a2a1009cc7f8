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
