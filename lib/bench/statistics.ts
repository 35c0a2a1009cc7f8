/**
 * Summary statistics that never claim more than their samples support: a
 * percentile is reported only when there is at least one sample on each side
 * of it (a p99 from 2 samples is just the maximum under another name), and
 * every summary carries its sample count. The text output, the JSON summary
 * and the report's tables all name the statistics with {@linkcode statisticLabels}.
 *
 * @module
 */

/** Percentiles a summary may report, by key. */
export const summaryPercentiles = { p50: 50, p90: 90, p99: 99, p999: 99.9 } as const;

/** Key of a percentile in a {@linkcode SampleSummary}. */
export type PercentileKey = keyof typeof summaryPercentiles;

/** Key of any statistic in a {@linkcode SampleSummary}, in the order tables show them. */
export type StatisticKey = "min" | "mean" | PercentileKey | "max";

/** The name of each statistic wherever it is printed: text, tables and chart captions. */
export const statisticLabels: Readonly<Record<StatisticKey, string>> = {
  min: "min",
  mean: "mean",
  p50: "median",
  p90: "p90",
  p99: "p99",
  p999: "p99.9",
  max: "max",
};

/** Every statistic in the order tables show them. */
export const statisticKeys: readonly StatisticKey[] = [
  "min",
  "mean",
  "p50",
  "p90",
  "p99",
  "p999",
  "max",
];

/**
 * Summary of a sample. `min`, `mean` and `max` are undefined without
 * samples; a percentile is undefined when `count` is below
 * {@linkcode samplesNeeded} for it.
 */
export interface SampleSummary {
  count: number;
  min: number | undefined;
  mean: number | undefined;
  p50: number | undefined;
  p90: number | undefined;
  p99: number | undefined;
  p999: number | undefined;
  max: number | undefined;
}

/** Most samples {@linkcode samplesNeeded} considers; beyond it a percentile is too close to 100. */
const samplesNeededMax = 1_000_000_000;

/**
 * The fewest samples from which the nearest-rank `percentile` (0 < p < 100)
 * is more than the minimum or maximum renamed: at least one sample lies
 * below its rank and at least one above. The median needs 3, p90 10, p99
 * 100 and p99.9 1,000.
 *
 * @example
 * ```ts
 * import { samplesNeeded } from "./statistics.ts";
 *
 * samplesNeeded(99); // 100
 * ```
 */
export function samplesNeeded(percentile: number): number {
  if (!(percentile > 0 && percentile < 100)) {
    throw new RangeError(
      `Cannot count samples as 'percentile' must be between 0 and 100 exclusive: current value is ${percentile}`,
    );
  }
  // Above the rank: n - rank >= 1 needs n >= 100 / (100 - p); below it: rank >= 2.
  const above = Math.ceil(100 / (100 - percentile) - 1e-9);
  for (let count = Math.max(2, above); count <= samplesNeededMax; count++) {
    const rank = nearestRankOf(percentile, count);
    if (rank >= 2 && count - rank >= 1) return count;
  }
  throw new RangeError(`Cannot count samples for percentile ${percentile}: too close to 100`);
}

/** The 1-based nearest rank of `percentile` among `count` sorted samples. */
function nearestRankOf(percentile: number, count: number): number {
  // The epsilon keeps 99.9% of 1000 at rank 999 despite floating-point error.
  return Math.max(1, Math.ceil(percentile / 100 * count - 1e-9));
}

/**
 * Whether a sample of `count` values supports `percentile`.
 *
 * @example
 * ```ts
 * import { supports } from "./statistics.ts";
 *
 * supports(2, 50); // false: with two samples the "median" is the minimum
 * ```
 */
export function supports(count: number, percentile: number): boolean {
  return count >= samplesNeeded(percentile);
}

/**
 * Summarises `values` exactly (nearest-rank percentiles), for the short
 * series of a run such as failover windows or iterations.
 *
 * @example
 * ```ts
 * import { summarize } from "./statistics.ts";
 *
 * const summary = summarize([1333, 4360]);
 * summary.max; // 4360
 * summary.p99; // undefined: p99 needs 100 samples
 * ```
 */
export function summarize(values: readonly number[]): SampleSummary {
  const sorted = values.filter((value) => Number.isFinite(value))
    .sort((left, right) => left - right);
  const count = sorted.length;
  const at = (percentile: number) =>
    supports(count, percentile) ? sorted[nearestRankOf(percentile, count) - 1] : undefined;
  return {
    count,
    min: sorted[0],
    mean: count === 0 ? undefined : sorted.reduce((sum, value) => sum + value, 0) / count,
    p50: at(summaryPercentiles.p50),
    p90: at(summaryPercentiles.p90),
    p99: at(summaryPercentiles.p99),
    p999: at(summaryPercentiles.p999),
    max: sorted.at(-1),
  };
}

/** Options of {@linkcode formatSummary}. */
export interface FormatSummaryOptions {
  /** Unit after each value, e.g. "ms". Default "". */
  unit?: string;
  /** Statistics to print; `max` is always printed. Default median and p99. */
  statistics?: readonly StatisticKey[];
  /** What one sample is, e.g. "leader kills". Default "samples". */
  noun?: string;
  /** Number format. Default {@linkcode formatNumber}. */
  format?: (value: number) => string;
}

/**
 * One line of text for a summary: the count first, then each requested
 * statistic the count supports, then the maximum, then which requested
 * percentiles were left out and what they need.
 *
 * @example
 * ```ts
 * import { formatSummary, summarize } from "./statistics.ts";
 *
 * formatSummary(summarize([1333, 4360]), { unit: "ms", noun: "leader kills" });
 * // "n=2 leader kills, max 4,360 ms (too few for median, needs 3; p99, needs 100)"
 * ```
 */
export function formatSummary(summary: SampleSummary, options: FormatSummaryOptions = {}): string {
  const noun = options.noun ?? "samples";
  const unit = options.unit === undefined || options.unit === "" ? "" : ` ${options.unit}`;
  const format = options.format ?? formatNumber;
  if (summary.count === 0) return `n=0 ${noun}, nothing to summarise`;
  const requested = [
    ...(options.statistics ?? ["p50", "p99"]).filter((key) => key !== "max"),
    "max" as const,
  ];
  const shown: string[] = [];
  const missing: string[] = [];
  for (const key of requested) {
    const value = summary[key];
    if (value !== undefined) {
      shown.push(`${statisticLabels[key]} ${format(value)}${unit}`);
    } else if (isPercentileKey(key)) {
      const needed = samplesNeeded(summaryPercentiles[key]).toLocaleString("en-US");
      missing.push(`${statisticLabels[key]}, needs ${needed}`);
    }
  }
  const note = missing.length === 0 ? "" : ` (too few for ${missing.join("; ")})`;
  return `n=${summary.count.toLocaleString("en-US")} ${noun}, ${shown.join(", ")}${note}`;
}

function isPercentileKey(key: StatisticKey): key is PercentileKey {
  return key in summaryPercentiles;
}

/**
 * Numbers as people read them in a report: grouped thousands, at most 3
 * significant digits below 1000.
 *
 * @example
 * ```ts
 * import { formatNumber } from "./statistics.ts";
 *
 * formatNumber(12_345.6); // "12,346"
 * formatNumber(3.14159); // "3.14"
 * ```
 */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en-US");
  if (value === 0) return "0";
  return String(Number(value.toPrecision(3)));
}
