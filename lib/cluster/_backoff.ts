/**
 * Reconnect delays: capped exponential backoff with "equal jitter" (half the
 * delay fixed, half random), so a restarted peer is not hit by every other
 * peer's reconnect at the same instant, yet a retry never comes sooner than
 * half the nominal delay.
 *
 * @module
 */

/** Bounds of the backoff. */
export interface BackoffBounds {
  /** Nominal delay of the first retry. */
  backoffMinMs: number;
  /** Largest nominal delay. */
  backoffMaxMs: number;
}

/** Doublings after which the nominal delay certainly hit the cap (2^40 ms is 35 years). */
const doublingsMax = 40;

/**
 * The delay before retry number `attempt` (0-based), in milliseconds.
 * `random` returns a float in [0, 1).
 *
 * @example
 * ```ts
 * const delayMs = backoffDelayMs(3, { backoffMinMs: 50, backoffMaxMs: 2000 }, Math.random);
 * ```
 */
export function backoffDelayMs(
  attempt: number,
  bounds: BackoffBounds,
  random: () => number,
): number {
  const nominal = Math.min(
    bounds.backoffMaxMs,
    bounds.backoffMinMs * 2 ** Math.min(attempt, doublingsMax),
  );
  return Math.round(nominal / 2 + (nominal / 2) * random());
}
