/**
 * Latency histograms for `pubsub bench`, backed by HdrHistogram.
 *
 * Values are recorded as whole microseconds with 3 significant digits, so a
 * percentile is exact to 0.1% of its value whatever the range; every value the
 * histogram returns is in milliseconds because that is the unit the reports
 * print.
 *
 * @module
 */

import * as hdr from "hdr-histogram-js";
import { type SampleSummary, summaryPercentiles, supports } from "./statistics.ts";

/** Significant decimal digits kept for every recorded value. */
const significantDigits = 3;
/**
 * Initial highest trackable value: one minute. The histogram resizes above
 * it, this only sizes the first allocation.
 */
const initialTrackableMicroseconds = 60_000_000;
/** Percentile levels between 0 and 100 in each halving of the distance to 100. */
const ticksPerHalfDistanceDefault = 5;
/** Highest percentile a series reaches; 99.999 is where the nines chart ends. */
const percentileMaxDefault = 99.999;

/**
 * Summary of a latency distribution; every latency is in milliseconds. A
 * percentile is undefined when the count is too small to support it (see
 * `samplesNeeded` in statistics.ts), and min, mean and max without values.
 */
export type LatencySummary = SampleSummary;

/** One point of a percentile distribution: `latencyMs` at `percentile` (0..100). */
export interface PercentilePoint {
  percentile: number;
  latencyMs: number;
}

/** Options of {@linkcode LatencyHistogram.percentileSeries}. */
export interface PercentileSeriesOptions {
  /** Levels per halving of the distance to 100%. Default 5. */
  ticksPerHalfDistance?: number;
  /** Last percentile of the series. Default 99.999. */
  percentileMax?: number;
}

/**
 * A latency histogram with microsecond resolution and 3 significant digits.
 *
 * @example Summarise request latencies
 * ```ts
 * import { LatencyHistogram } from "./histogram.ts";
 *
 * const histogram = new LatencyHistogram();
 * const started = performance.now();
 * // ... one request ...
 * histogram.recordMilliseconds(performance.now() - started);
 * console.log(histogram.summary().p99);
 * ```
 */
export class LatencyHistogram {
  #histogram: hdr.Histogram;
  #sumMicroseconds = 0;

  constructor() {
    // The pure JS implementation: WASM would need an async init for no gain
    // at the rates a benchmark client records.
    this.#histogram = hdr.build({
      bitBucketSize: 32,
      autoResize: true,
      lowestDiscernibleValue: 1,
      highestTrackableValue: initialTrackableMicroseconds,
      numberOfSignificantValueDigits: significantDigits,
      useWebAssembly: false,
    });
  }

  /** Number of values recorded. */
  get count(): number {
    return this.#histogram.totalCount;
  }

  /** Records one latency given in milliseconds (e.g. a `performance.now()` delta). */
  recordMilliseconds(latencyMs: number): void {
    this.recordMicroseconds(latencyMs * 1000);
  }

  /** Records one latency given in microseconds; it is rounded to a whole microsecond. */
  recordMicroseconds(latencyUs: number): void {
    if (!Number.isFinite(latencyUs) || latencyUs < 0) {
      throw new RangeError(
        `Cannot record latency as it must be a finite number >= 0: current value is ${latencyUs}`,
      );
    }
    const rounded = Math.round(latencyUs);
    this.#histogram.recordValue(rounded);
    this.#sumMicroseconds += rounded;
  }

  /** Latency in milliseconds at `percentile` (0..100); 0 when empty. */
  percentile(percentile: number): number {
    if (!(percentile >= 0 && percentile <= 100)) {
      throw new RangeError(
        `Cannot read percentile as it must be between 0 and 100: current value is ${percentile}`,
      );
    }
    if (this.count === 0) return 0;
    // HdrHistogram answers with the top of the value's bucket, which can
    // exceed the largest value recorded; no percentile should.
    const value = Math.min(
      this.#histogram.getValueAtPercentile(percentile),
      this.#histogram.maxValue,
    );
    return value / 1000;
  }

  /**
   * Count, min, mean, median, p90, p99, p99.9 and max; latencies in
   * milliseconds. A percentile the count cannot support is undefined rather
   * than the maximum under another name.
   */
  summary(): LatencySummary {
    const count = this.count;
    if (count === 0) {
      return {
        count: 0,
        min: undefined,
        mean: undefined,
        p50: undefined,
        p90: undefined,
        p99: undefined,
        p999: undefined,
        max: undefined,
      };
    }
    const at = (percentile: number) =>
      supports(count, percentile) ? this.percentile(percentile) : undefined;
    return {
      count,
      min: this.percentile(0),
      // The exact mean of the rounded values, not HdrHistogram's bucketed one.
      mean: this.#sumMicroseconds / count / 1000,
      p50: at(summaryPercentiles.p50),
      p90: at(summaryPercentiles.p90),
      p99: at(summaryPercentiles.p99),
      p999: at(summaryPercentiles.p999),
      max: this.#histogram.maxValue / 1000,
    };
  }

  /** Adds every value recorded in `other` to this histogram. */
  merge(other: LatencyHistogram): void {
    this.#histogram.add(other.#histogram);
    this.#sumMicroseconds += other.#sumMicroseconds;
  }

  /** Forgets every recorded value. */
  reset(): void {
    this.#histogram.reset();
    this.#sumMicroseconds = 0;
  }

  /**
   * The percentile distribution as HdrHistogram plots it: levels 0, 50, 75,
   * 87.5, ... getting closer to 100 with `ticksPerHalfDistance` levels per
   * halving, up to `percentileMax` or the highest level the count can
   * resolve, whichever is lower; the last point carries the maximum.
   */
  percentileSeries(options: PercentileSeriesOptions = {}): PercentilePoint[] {
    const ticksPerHalfDistance = options.ticksPerHalfDistance ?? ticksPerHalfDistanceDefault;
    const percentileMax = options.percentileMax ?? percentileMaxDefault;
    if (!(Number.isInteger(ticksPerHalfDistance) && ticksPerHalfDistance >= 1)) {
      throw new RangeError(
        `Cannot build percentile series as 'ticksPerHalfDistance' must be an integer >= 1: current value is ${ticksPerHalfDistance}`,
      );
    }
    if (!(percentileMax > 0 && percentileMax < 100)) {
      throw new RangeError(
        `Cannot build percentile series as 'percentileMax' must be between 0 and 100 exclusive: current value is ${percentileMax}`,
      );
    }
    const count = this.count;
    if (count === 0) return [];
    // With n values, levels above 100 * (1 - 1/n) all read the maximum.
    const last = count === 1 ? percentileMax : Math.min(percentileMax, 100 * (1 - 1 / count));
    const points: PercentilePoint[] = [];
    for (let step = 0;; step++) {
      const level = 100 * (1 - Math.pow(2, -step / ticksPerHalfDistance));
      if (level >= last) break;
      points.push({ percentile: level, latencyMs: this.percentile(level) });
    }
    points.push({ percentile: last, latencyMs: this.#histogram.maxValue / 1000 });
    return points;
  }
}
