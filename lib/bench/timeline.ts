/**
 * Pure helpers that turn what a load generator observed (when each publish
 * was sent and acknowledged, when leaders were killed) into the numbers the
 * report shows: throughput per time bucket and the unavailability window
 * after each kill.
 *
 * @module
 */

/** One publish as the load generator saw it; times in ms on one clock. */
export interface PublishRecord {
  sentMs: number;
  /** Undefined when it was never acknowledged. */
  ackedMs: number | undefined;
}

/** Width of a throughput bucket: one second. */
export const bucketMsDefault = 1000;

/**
 * Acknowledgements per second in consecutive buckets of `bucketMs` from
 * `startMs` to `endMs`; each point is (bucket start in seconds since
 * `startMs`, acks per second in that bucket). A partial last bucket is
 * scaled to a rate over its actual width.
 *
 * @example
 * ```ts
 * import { throughputBuckets } from "./timeline.ts";
 *
 * throughputBuckets([100, 200, 1500], 0, 2000); // [[0, 2], [1, 1]]
 * ```
 */
export function throughputBuckets(
  ackedMs: readonly number[],
  startMs: number,
  endMs: number,
  bucketMs: number = bucketMsDefault,
): [number, number][] {
  if (!(bucketMs > 0)) {
    throw new RangeError(`Cannot bucket as 'bucketMs' must be > 0: current value is ${bucketMs}`);
  }
  if (!(endMs >= startMs)) {
    throw new RangeError(`Cannot bucket as 'endMs' ${endMs} is before 'startMs' ${startMs}`);
  }
  const bucketCount = Math.ceil((endMs - startMs) / bucketMs);
  const counts = new Array<number>(bucketCount).fill(0);
  for (const at of ackedMs) {
    if (at < startMs || at >= endMs) continue;
    counts[Math.floor((at - startMs) / bucketMs)]++;
  }
  return counts.map((count, index) => {
    const width = Math.min(bucketMs, endMs - startMs - index * bucketMs);
    return [index * bucketMs / 1000, count * 1000 / width];
  });
}

/**
 * The unavailability window after each kill: the time from the kill to the
 * first acknowledgement of a publish sent at or after the kill (and before
 * the next kill). A publish sent before the kill is not evidence: its ack
 * may have been on the wire already. Undefined when no such publish was
 * acknowledged.
 *
 * @example
 * ```ts
 * import { failoverWindows } from "./timeline.ts";
 *
 * const records = [{ sentMs: 90, ackedMs: 101 }, { sentMs: 105, ackedMs: 1300 }];
 * failoverWindows([100], records); // [1200]
 * ```
 */
export function failoverWindows(
  killsMs: readonly number[],
  records: readonly PublishRecord[],
): (number | undefined)[] {
  const kills = [...killsMs].sort((left, right) => left - right);
  return kills.map((killMs, index) => {
    const nextKillMs = kills[index + 1] ?? Number.POSITIVE_INFINITY;
    let firstAckMs = Number.POSITIVE_INFINITY;
    for (const record of records) {
      if (record.sentMs < killMs || record.sentMs >= nextKillMs) continue;
      if (record.ackedMs !== undefined && record.ackedMs < firstAckMs) firstAckMs = record.ackedMs;
    }
    return Number.isFinite(firstAckMs) ? firstAckMs - killMs : undefined;
  });
}

/**
 * The value at `percentile` (0..100) of `values` by the nearest-rank
 * method; NaN when empty. Exact, for the few values a kill series has.
 *
 * @example
 * ```ts
 * import { nearestRank } from "./timeline.ts";
 *
 * nearestRank([3, 1, 2], 50); // 2
 * ```
 */
export function nearestRank(values: readonly number[], percentile: number): number {
  if (!(percentile >= 0 && percentile <= 100)) {
    throw new RangeError(
      `Cannot rank as 'percentile' must be between 0 and 100: current value is ${percentile}`,
    );
  }
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((left, right) => left - right);
  const rank = Math.max(1, Math.ceil(percentile / 100 * sorted.length));
  return sorted[rank - 1];
}
