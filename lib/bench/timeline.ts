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

/** Width of a throughput bucket away from kills: one second. */
export const bucketMsDefault = 1000;
/** Width of a throughput bucket around a kill, where one second would hide the outage. */
export const fineBucketMsDefault = 100;
/** Fine buckets start this long before a kill... */
export const fineBeforeKillMsDefault = 1000;
/** ...and end this long after it: longer than a failover takes (about 1 to 2 s). */
export const fineAfterKillMsDefault = 5000;

/** Acknowledgements in one time bucket of a run. */
export interface ThroughputStep {
  /** Bucket start, in seconds since the start of the run. */
  fromSeconds: number;
  /** Bucket end (exclusive), in seconds since the start of the run. */
  toSeconds: number;
  /** Acknowledgements in the bucket. */
  acknowledged: number;
  /** Acknowledgements per second over the bucket's actual width. */
  messagesPerSecond: number;
}

/** Options of {@linkcode throughputSteps}. */
export interface ThroughputStepOptions {
  /** Instants (same clock as the acks) around which buckets are finer. Default none. */
  killsMs?: readonly number[];
  /** Bucket width away from kills. Default 1000; a multiple of `fineBucketMs`. */
  bucketMs?: number;
  /** Bucket width around kills. Default 100. */
  fineBucketMs?: number;
  /** Fine buckets from this long before each kill. Default 1000. */
  fineBeforeKillMs?: number;
  /** Fine buckets until this long after each kill. Default 5000. */
  fineAfterKillMs?: number;
}

/**
 * Acknowledgements per second in consecutive buckets from `startMs` to
 * `endMs`: `bucketMs` wide in general, `fineBucketMs` wide from
 * `fineBeforeKillMs` before to `fineAfterKillMs` after each kill. Every edge
 * lies on the fine grid from `startMs`, so no bucket is narrower than a fine
 * one except a last partial bucket, which is merged into its predecessor when
 * shorter than half a fine bucket. Rates are over each bucket's actual width.
 *
 * @example
 * ```ts
 * import { throughputSteps } from "./timeline.ts";
 *
 * const steps = throughputSteps([100, 200, 1500], { startMs: 0, endMs: 2000 });
 * steps.map((step) => step.messagesPerSecond); // [2, 1]
 * ```
 */
export function throughputSteps(
  ackedMs: readonly number[],
  interval: { startMs: number; endMs: number },
  options: ThroughputStepOptions = {},
): ThroughputStep[] {
  const { startMs, endMs } = interval;
  const settings = stepSettings(options);
  if (!(endMs >= startMs)) {
    throw new RangeError(`Cannot bucket as 'endMs' ${endMs} is before 'startMs' ${startMs}`);
  }
  const edgesMs = bucketEdges(startMs, endMs, options.killsMs ?? [], settings);
  const sorted = ackedMs.filter((at) => at >= startMs && at < endMs)
    .sort((left, right) => left - right);
  const steps: ThroughputStep[] = [];
  let next = 0;
  for (let index = 0; index + 1 < edgesMs.length; index++) {
    const fromMs = edgesMs[index];
    const toMs = edgesMs[index + 1];
    let acknowledged = 0;
    while (next < sorted.length && sorted[next] < toMs) {
      acknowledged++;
      next++;
    }
    steps.push({
      fromSeconds: (fromMs - startMs) / 1000,
      toSeconds: (toMs - startMs) / 1000,
      acknowledged,
      messagesPerSecond: acknowledged * 1000 / (toMs - fromMs),
    });
  }
  return steps;
}

function stepSettings(options: ThroughputStepOptions) {
  const settings = {
    bucketMs: options.bucketMs ?? bucketMsDefault,
    fineBucketMs: options.fineBucketMs ?? fineBucketMsDefault,
    fineBeforeKillMs: options.fineBeforeKillMs ?? fineBeforeKillMsDefault,
    fineAfterKillMs: options.fineAfterKillMs ?? fineAfterKillMsDefault,
  };
  if (!(settings.fineBucketMs > 0)) {
    throw new RangeError(
      `Cannot bucket as 'fineBucketMs' must be > 0: current value is ${settings.fineBucketMs}`,
    );
  }
  const ratio = settings.bucketMs / settings.fineBucketMs;
  if (!(Number.isInteger(ratio) && ratio >= 1)) {
    throw new RangeError(
      `Cannot bucket as 'bucketMs' must be a multiple of 'fineBucketMs' ${settings.fineBucketMs}: current value is ${settings.bucketMs}`,
    );
  }
  if (!(settings.fineBeforeKillMs >= 0 && settings.fineAfterKillMs >= 0)) {
    throw new RangeError("Cannot bucket as 'fineBeforeKillMs' and 'fineAfterKillMs' must be >= 0");
  }
  return { ...settings, ratio };
}

/** Bucket edges in ms: every coarse edge, and every fine edge inside a kill's window. */
function bucketEdges(
  startMs: number,
  endMs: number,
  killsMs: readonly number[],
  settings: ReturnType<typeof stepSettings>,
): number[] {
  const { fineBucketMs, ratio } = settings;
  const cells = Math.ceil((endMs - startMs) / fineBucketMs - 1e-9);
  if (cells <= 0) return [];
  // fine[i]: fine edge i (at startMs + i * fineBucketMs) lies in some kill's window.
  const fine = new Uint8Array(cells + 1);
  for (const killMs of killsMs) {
    const from = Math.floor((killMs - settings.fineBeforeKillMs - startMs) / fineBucketMs);
    const to = Math.ceil((killMs + settings.fineAfterKillMs - startMs) / fineBucketMs);
    for (let edge = Math.max(0, from); edge <= Math.min(cells, to); edge++) fine[edge] = 1;
  }
  const edges: number[] = [];
  for (let edge = 0; edge < cells; edge++) {
    if (edge % ratio === 0 || fine[edge] === 1) edges.push(startMs + edge * fineBucketMs);
  }
  const last = edges.at(-1)!;
  if (edges.length >= 2 && endMs - last < fineBucketMs / 2) edges.pop();
  edges.push(endMs);
  return edges;
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
