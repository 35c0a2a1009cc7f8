/**
 * Charts of the bench report as SVG markup strings (no DOM): line charts with
 * event markers, point charts for independent measurements (iterations),
 * step charts for rates over time buckets, grouped bar charts,
 * HdrHistogram-style percentile charts and histograms. Every chart may carry
 * a caption under it saying what it measures. `d3-scale` picks domains and
 * ticks, `d3-shape` draws lines. The same input always gives the same bytes,
 * so reports can be diffed.
 *
 * @module
 */

// @ts-types="npm:@types/d3-scale@^4"
import { scaleBand, type ScaleContinuousNumeric, scaleLinear, scaleLog } from "d3-scale";
// @ts-types="npm:@types/d3-shape@^3"
import { line } from "d3-shape";
import type { PercentilePoint } from "./histogram.ts";
import { formatNumber } from "./statistics.ts";
import { type FrameSpec, noData, type PixelTick, plotArea, renderFrame } from "./_svg_frame.ts";
import { coordinate, element, seriesColor, text, textWidth } from "./_svg_markup.ts";

export { formatNumber };

/** Default picture size in pixels. */
const widthDefault = 800;
const heightDefault = 420;
/** Series with at most this many points also get a dot per point. */
const dottedPointsMax = 60;
/** Default number of histogram bins (d3 may choose a nearby count). */
const binCountDefault = 20;
/** Colour of event markers such as leader kills. */
const markerColor = "#c0392b";

/** A named series of `[x, y]` points. */
export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
}

/** A vertical line at `x` with a label, e.g. the instant a leader was killed. */
export interface Marker {
  x: number;
  label: string;
}

/** Size and caption shared by every chart. */
export interface ChartOptions {
  /** Pixels. Default 800. */
  width?: number;
  /** Pixels. Default 420. */
  height?: number;
  /**
   * Sentences printed under the chart: what it measures and from how many
   * samples. Default none.
   */
  caption?: string;
}

/** Options of {@linkcode lineChart}. */
export interface LineChartOptions extends ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  markers?: readonly Marker[];
  /** Logarithmic y axis; points with y <= 0 are left out. Default false. */
  yLog?: boolean;
}

/**
 * A line chart, one line per series, with optional vertical markers. Lines
 * say that neighbouring points belong together, as the levels of one
 * distribution do; independent measurements belong in a
 * {@linkcode pointChart}, rates over time buckets in a {@linkcode stepChart}.
 *
 * @example A cumulative count over time
 * ```ts
 * import { lineChart } from "./svg.ts";
 *
 * const svg = lineChart({
 *   title: "Messages stored",
 *   xLabel: "Time (s)",
 *   yLabel: "Messages",
 *   series: [{ name: "stored", points: [[0, 0], [1, 950], [2, 1020], [3, 1960]] }],
 *   markers: [{ x: 1.5, label: "leader killed" }],
 *   caption: "Messages stored on the leader, read once a second.",
 * });
 * ```
 */
export function lineChart(options: LineChartOptions): string {
  return drawLines(options, (xValues) => linearXAxis(xValues, false));
}

function drawLines(options: LineChartOptions, chooseXAxis: XAxisChooser): string {
  const yLog = options.yLog ?? false;
  return drawXYChart(options, {
    xValues: options.series.flatMap((series) => series.points.map(([px]) => px)),
    yValues: options.series.flatMap((series) => series.points.map(([, py]) => py)),
    chooseXAxis,
    swatch: "line",
    drawSeries: (x, y, index) => {
      const series = options.series[index];
      const color = seriesColor(index);
      const path = line<readonly [number, number]>()
        .defined(([, py]) => plottable(py, yLog))
        .x(([px]) => x(px))
        .y(([, py]) => y(py))
        .digits(2);
      const drawn = element("path", {
        d: path(series.points) ?? "",
        fill: "none",
        stroke: color,
        "stroke-width": 2,
        "stroke-linejoin": "round",
      });
      if (series.points.length > dottedPointsMax) return drawn;
      const dots = series.points.filter(([, py]) => plottable(py, yLog))
        .map(([px, py]) => element("circle", { cx: x(px), cy: y(py), r: 2.5, fill: color }));
      return drawn + dots.join("");
    },
  });
}

/** Options of {@linkcode pointChart}. */
export interface PointChartOptions extends ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  /** Logarithmic y axis; points with y <= 0 are left out. Default false. */
  yLog?: boolean;
}

/**
 * Independent measurements as unconnected points, e.g. one per iteration: a
 * line through them would suggest a trend where there is only noise. A
 * whole-number x axis (iterations) gets whole-number ticks and half a step
 * of room on each side, so that no point sits on the frame.
 *
 * @example One point per iteration
 * ```ts
 * import { pointChart } from "./svg.ts";
 *
 * const svg = pointChart({
 *   title: "Fetch latency",
 *   xLabel: "Iteration",
 *   yLabel: "Latency (ms)",
 *   series: [{ name: "fetch", points: [[1, 25.6], [2, 3.1], [3, 2.6]] }],
 *   caption: "One point per iteration (3 iterations): fetch of 200 messages.",
 * });
 * ```
 */
export function pointChart(options: PointChartOptions): string {
  const yLog = options.yLog ?? false;
  return drawXYChart(options, {
    xValues: options.series.flatMap((series) => series.points.map(([px]) => px)),
    yValues: options.series.flatMap((series) => series.points.map(([, py]) => py)),
    chooseXAxis: (xValues) => linearXAxis(xValues, true),
    swatch: "dot",
    drawSeries: (x, y, index) =>
      options.series[index].points.filter(([, py]) => plottable(py, yLog))
        .map(([px, py]) =>
          element("circle", {
            cx: x(px),
            cy: y(py),
            r: 4,
            fill: seriesColor(index),
            stroke: "#ffffff",
            "stroke-width": 1,
          })
        ).join(""),
  });
}

/** One bucket of a step series: `value` holds from `from` to `to` (exclusive). */
export interface Step {
  from: number;
  to: number;
  value: number;
}

/** Options of {@linkcode stepChart}. */
export interface StepChartOptions extends ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Steps in increasing `from`; a step not starting where the previous ended leaves a gap. */
  series: readonly { name: string; steps: readonly Step[] }[];
  markers?: readonly Marker[];
}

/**
 * Rates over time buckets as steps, each bucket flat over its own width
 * (buckets may differ in width), with the area under them lightly filled
 * and optional vertical markers: a rate is a count over an interval, not a
 * value at an instant that a line could interpolate.
 *
 * @example Throughput with a leader kill marked
 * ```ts
 * import { stepChart } from "./svg.ts";
 *
 * const svg = stepChart({
 *   title: "Publish throughput",
 *   xLabel: "Time (s)",
 *   yLabel: "Messages/s",
 *   series: [{
 *     name: "publish",
 *     steps: [{ from: 0, to: 1, value: 900 }, { from: 1, to: 1.1, value: 0 }, {
 *       from: 1.1,
 *       to: 2,
 *       value: 950,
 *     }],
 *   }],
 *   markers: [{ x: 1, label: "leader killed" }],
 * });
 * ```
 */
export function stepChart(options: StepChartOptions): string {
  return drawXYChart(options, {
    xValues: options.series.flatMap((series) =>
      series.steps.flatMap((step) => [step.from, step.to])
    ),
    yValues: options.series.flatMap((series) => series.steps.map((step) => step.value)),
    chooseXAxis: (xValues) => linearXAxis(xValues, false),
    swatch: "line",
    drawSeries: (x, y, index) => {
      const steps = options.series[index].steps.filter((step) => Number.isFinite(step.value));
      const color = seriesColor(index);
      const { outline, area } = stepPaths(steps, x, y);
      return element("path", { d: area, fill: color, "fill-opacity": 0.15, stroke: "none" }) +
        element("path", {
          d: outline,
          fill: "none",
          stroke: color,
          "stroke-width": 1.5,
          "stroke-linejoin": "miter",
        });
    },
  });
}

/**
 * Path data of steps: the outline uses only horizontal and vertical moves
 * (H and V) after each M; the area closes each run of adjoining steps down
 * to zero.
 */
function stepPaths(
  steps: readonly Step[],
  x: (value: number) => number,
  y: (value: number) => number,
): { outline: string; area: string } {
  const zero = coordinate(y(0));
  let outline = "";
  let area = "";
  steps.forEach((step, index) => {
    const top = coordinate(y(step.value));
    if (index > 0 && step.from === steps[index - 1].to) {
      outline += `V${top}`;
    } else {
      if (index > 0) area += `V${zero}Z`;
      outline += `M${coordinate(x(step.from))},${top}`;
      area += `M${coordinate(x(step.from))},${zero}`;
    }
    area += `V${top}H${coordinate(x(step.to))}`;
    outline += `H${coordinate(x(step.to))}`;
  });
  if (steps.length > 0) area += `V${zero}Z`;
  return { outline, area };
}

/** The x scale and its ticks, chosen from every x value to show. */
type XAxisChooser = (xValues: number[]) => {
  x: ScaleContinuousNumeric<number, number>;
  xTicks: ValueTick[];
};

/** Common options of the charts with two continuous axes. */
interface XYChartOptions extends ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly { name: string }[];
  markers?: readonly Marker[];
  yLog?: boolean;
}

/** What differs between the charts with two continuous axes. */
interface XYChartPlan {
  xValues: readonly number[];
  yValues: readonly number[];
  chooseXAxis: XAxisChooser;
  swatch: FrameSpec["swatch"];
  /** The marks of series `index`, once the scales span the plot area. */
  drawSeries: (
    x: ScaleContinuousNumeric<number, number>,
    y: ScaleContinuousNumeric<number, number>,
    index: number,
  ) => string;
}

function drawXYChart(options: XYChartOptions, plan: XYChartPlan): string {
  const markers = options.markers ?? [];
  const yLog = options.yLog ?? false;
  const yValues = plan.yValues.filter((value) => plottable(value, yLog));
  const { x, xTicks } = plan.chooseXAxis([
    ...plan.xValues.filter((value) => Number.isFinite(value)),
    ...markers.map((marker) => marker.x),
  ]);
  const y = valueScale(yValues, yLog);
  const yTicks = ticksOf(y, 6, !yLog && yValues.every(Number.isInteger));
  const legend = options.series.map((series, index) => ({
    name: series.name,
    color: seriesColor(index),
  }));
  const spec = { ...frameSpec(options, xTicks, yTicks, legend), swatch: plan.swatch };
  const area = plotArea(spec);
  x.range([area.left, area.right]);
  y.range([area.bottom, area.top]);
  const body = yValues.length === 0 ? noData(area) : [
    ...options.series.map((_, index) => plan.drawSeries(x, y, index)),
    ...markers.map((marker) => markerLine(x(marker.x), marker.label, area)),
  ].join("");
  return renderFrame(spec, area, pixelTicks(x, y, xTicks, yTicks), body);
}

/**
 * A linear x axis over `xValues`. Whole-number data (iterations) gets
 * whole-number ticks only; with `padWhole` also half a step of room on each
 * side, so that points at the ends stay clear of the frame.
 */
function linearXAxis(
  xValues: readonly number[],
  padWhole: boolean,
): ReturnType<XAxisChooser> {
  const whole = xValues.length > 0 && xValues.every(Number.isInteger);
  const [low, high] = extent(xValues);
  const x = whole && padWhole
    ? scaleLinear().domain([low - 0.5, high + 0.5])
    : scaleLinear().domain(spread([low, high])).nice();
  return { x, xTicks: ticksOf(x, 8, whole) };
}

function plottable(value: number, log: boolean): boolean {
  return Number.isFinite(value) && (!log || value > 0);
}

/** Options of {@linkcode barChart}. */
export interface BarChartOptions extends ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** One group of bars per category, labelled on the x axis. */
  categories: readonly string[];
  /** One bar per category in each series; `values[i]` belongs to `categories[i]`. */
  series: readonly { name: string; values: readonly number[] }[];
  /**
   * A logarithmic value axis (ratios that span 0.3x to 70x): bars rise from
   * the axis's bottom, and a value of 0 or less is drawn as no bar.
   */
  logY?: boolean;
}

/**
 * A grouped bar chart, e.g. pubsub against NATS per metric.
 *
 * @example
 * ```ts
 * import { barChart } from "./svg.ts";
 *
 * const svg = barChart({
 *   title: "p99 latency",
 *   xLabel: "Operation",
 *   yLabel: "Latency (ms)",
 *   categories: ["publish", "fetch"],
 *   series: [{ name: "pubsub", values: [2.1, 1.4] }, { name: "NATS", values: [0.9, 0.7] }],
 * });
 * ```
 */
export function barChart(options: BarChartOptions): string {
  for (const series of options.series) {
    if (series.values.length !== options.categories.length) {
      throw new RangeError(
        `Cannot draw bar chart as series '${series.name}' must have one value per category: ${series.values.length} values for ${options.categories.length} categories`,
      );
    }
  }
  const log = options.logY === true;
  const values = options.series.flatMap((series) => series.values)
    .filter((value) => Number.isFinite(value) && (!log || value > 0));
  const y = valueScale(withHeadroom(values), log);
  const yTicks = ticksOf(y, 6);
  const band = scaleBand<string>().domain(options.categories).paddingInner(0.25).paddingOuter(0.15);
  const legend = options.series.map((series, index) => ({
    name: series.name,
    color: seriesColor(index),
  }));
  const draft = frameSpec(options, [], yTicks, legend);
  const draftArea = plotArea({ ...draft, xTickLabels: options.categories });
  const bandWidthPx = (draftArea.right - draftArea.left) / Math.max(1, options.categories.length);
  const slant = options.categories.some((label) => textWidth(label, 11) > bandWidthPx * 0.9);
  const spec = {
    ...draft,
    xTickLabels: options.categories,
    slantXTicks: slant,
    swatch: "box" as const,
  };
  const area = plotArea(spec);
  band.range([area.left, area.right]);
  y.range([area.bottom, area.top]);
  const inner = scaleBand<number>().domain(options.series.map((_, index) => index))
    .range([0, band.bandwidth()]).paddingInner(0.08);
  const bars = options.series.flatMap((series, index) =>
    series.values.map((value, category) => {
      if (!Number.isFinite(value) || (log && value <= 0)) return "";
      const left = band(options.categories[category])! + inner(index)!;
      const top = y(Math.max(0, value));
      const bar = element("rect", {
        x: left,
        y: top,
        width: inner.bandwidth(),
        height: Math.max(0, (log ? area.bottom : y(0)) - top),
        fill: seriesColor(index),
      });
      // A value under 1000 that does not fit its bar gets one digit less
      // ("0.893" -> "0.89") before the label is given up.
      const full = formatNumber(value);
      const room = inner.bandwidth() + 8;
      const label = textWidth(full, 10) <= room || Math.abs(value) >= 1000
        ? full
        : String(Number(value.toPrecision(2)));
      const fits = textWidth(label, 10) <= room;
      return fits
        ? bar +
          text(label, { x: left + inner.bandwidth() / 2, y: top - 4, "text-anchor": "middle" })
        : bar;
    })
  );
  const ticks = {
    x: options.categories.map((label) => ({ at: band(label)! + band.bandwidth() / 2, label })),
    y: yTicks.map((tick) => ({ at: y(tick.value), label: tick.label })),
  };
  const body = values.length === 0
    ? noData(area)
    : element("g", { "font-size": 10, fill: "#333333" }, bars.join(""));
  return renderFrame(spec, area, ticks, body);
}

/** Options of {@linkcode percentileChart}. */
export interface PercentileChartOptions extends ChartOptions {
  title: string;
  /** Default "Latency (ms)". */
  yLabel?: string;
  /** One distribution per series, e.g. from `LatencyHistogram.percentileSeries()`. */
  series: readonly { name: string; points: readonly PercentilePoint[] }[];
  /** Logarithmic y axis. Default false. */
  yLog?: boolean;
}

/**
 * Latency by percentile on a "nines" x axis (0%, 90%, 99%, 99.9%, ...), the
 * way HdrHistogram plots distributions: each decade of tail gets equal room.
 *
 * @example
 * ```ts
 * import { LatencyHistogram } from "./histogram.ts";
 * import { percentileChart } from "./svg.ts";
 *
 * const histogram = new LatencyHistogram();
 * for (let ms = 1; ms <= 1000; ms++) histogram.recordMilliseconds(ms);
 * const svg = percentileChart({
 *   title: "Publish latency",
 *   series: [{ name: "sequential", points: histogram.percentileSeries() }],
 * });
 * ```
 */
export function percentileChart(options: PercentileChartOptions): string {
  const series = options.series.map((entry) => ({
    name: entry.name,
    points: entry.points.map((point) =>
      [nines(point.percentile), point.latencyMs] as [number, number]
    ),
  }));
  const chartOptions = {
    ...options,
    xLabel: "Percentile",
    yLabel: options.yLabel ?? "Latency (ms)",
    series,
  };
  return drawLines(chartOptions, (xValues) => {
    // Whole nines only, and at least up to 99% so that short runs still read as a tail plot.
    const ninesMax = Math.ceil(Math.max(2, ...xValues) - 1e-9);
    const xTicks = Array.from({ length: ninesMax + 1 }, (_, index) => ({
      value: index,
      label: ninesLabel(index),
    }));
    return { x: scaleLinear().domain([0, ninesMax]), xTicks };
  });
}

/** Options of {@linkcode histogramChart}. */
export interface HistogramChartOptions extends ChartOptions {
  title: string;
  xLabel: string;
  /** Default "Count". */
  yLabel?: string;
  values: readonly number[];
  /** Approximate number of bins. Default 20. */
  binCount?: number;
}

/**
 * The distribution of `values` as bars over equal-width bins with round edges.
 *
 * @example Failover windows
 * ```ts
 * import { histogramChart } from "./svg.ts";
 *
 * const svg = histogramChart({
 *   title: "Failover window",
 *   xLabel: "Unavailability (ms)",
 *   values: [812, 930, 1004, 1120, 870],
 * });
 * ```
 */
export function histogramChart(options: HistogramChartOptions): string {
  const values = options.values.filter((value) => Number.isFinite(value));
  const binCount = options.binCount ?? binCountDefault;
  if (!(Number.isInteger(binCount) && binCount >= 1)) {
    throw new RangeError(
      `Cannot draw histogram as 'binCount' must be an integer >= 1: current value is ${binCount}`,
    );
  }
  const x = scaleLinear().domain(spread(extent(values))).nice(binCount);
  const edges = x.ticks(binCount);
  const counts = binValues(values, edges);
  const y = valueScale(withHeadroom(counts), false);
  const xTicks = ticksOf(x, 8);
  // Counts: whole-number ticks labelled without decimals, never "0.0" and "1.0".
  const yTicks = ticksOf(y, 6, true);
  const spec = frameSpec(
    { ...options, yLabel: options.yLabel ?? "Count" },
    xTicks,
    yTicks,
    [],
  );
  const area = plotArea(spec);
  x.range([area.left, area.right]);
  y.range([area.bottom, area.top]);
  const bars = counts.map((count, index) =>
    element("rect", {
      x: x(edges[index]) + 0.5,
      y: y(count),
      width: Math.max(0, x(edges[index + 1]) - x(edges[index]) - 1),
      height: y(0) - y(count),
      fill: seriesColor(0),
    })
  );
  const body = values.length === 0 ? noData(area) : bars.join("");
  return renderFrame(spec, area, pixelTicks(x, y, xTicks, yTicks), body);
}

/** Counts of `values` per bin `[edges[i], edges[i + 1])`; the last bin includes its top edge. */
export function binValues(values: readonly number[], edges: readonly number[]): number[] {
  const counts = new Array(Math.max(0, edges.length - 1)).fill(0);
  for (const value of values) {
    for (let index = 0; index < counts.length; index++) {
      const last = index === counts.length - 1;
      if (
        value >= edges[index] && (value < edges[index + 1] || (last && value <= edges[index + 1]))
      ) {
        counts[index]++;
        break;
      }
    }
  }
  return counts;
}

/** Percentile (0..100) to "nines": 90% is 1, 99% is 2, 99.9% is 3. */
export function nines(percentile: number): number {
  // 0 - x rather than -x: -0 for the 0th percentile would print as a different number.
  return 0 - Math.log10(1 - Math.min(percentile, 99.9999999) / 100);
}

function ninesLabel(count: number): string {
  if (count === 0) return "0%";
  return `${(100 - 100 / 10 ** count).toFixed(Math.max(0, count - 2))}%`;
}

interface ValueTick {
  value: number;
  label: string;
}

function frameSpec(
  options: ChartOptions & { title: string; xLabel: string; yLabel: string },
  xTicks: readonly ValueTick[],
  yTicks: readonly ValueTick[],
  legend: FrameSpec["legend"],
): FrameSpec {
  return {
    width: options.width ?? widthDefault,
    height: options.height ?? heightDefault,
    title: options.title,
    xLabel: options.xLabel,
    yLabel: options.yLabel,
    xTickLabels: xTicks.map((tick) => tick.label),
    yTickLabels: yTicks.map((tick) => tick.label),
    legend,
    caption: options.caption,
  };
}

/** Values plus 8% above the highest, so that the top bar and its label clear the frame. */
function withHeadroom(values: readonly number[]): number[] {
  if (values.length === 0) return [];
  return [...values, Math.max(...values) * 1.08];
}

function extent(values: readonly number[]): [number, number] {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return [0, 1];
  return [Math.min(...finite), Math.max(...finite)];
}

/** Widens an empty domain so that scales and ticks stay defined. */
function spread([low, high]: [number, number]): [number, number] {
  if (low < high) return [low, high];
  return low === 0 ? [0, 1] : [low - Math.abs(low) / 2, high + Math.abs(high) / 2];
}

function valueScale(
  values: readonly number[],
  log: boolean,
): ScaleContinuousNumeric<number, number> {
  if (log) {
    const positive = values.filter((value) => value > 0);
    const [low, high] = positive.length === 0 ? [1, 10] : extent(positive);
    return scaleLog().domain(low === high ? [low / 10, high * 10] : [low, high]).nice();
  }
  const [low, high] = extent(values);
  const top = Math.max(high, 0);
  return scaleLinear().domain([Math.min(low, 0), top === Math.min(low, 0) ? 1 : top]).nice(6);
}

/**
 * About `count` ticks of `scale` with their labels. With `wholeNumbers`
 * (iterations, counts) only whole-number ticks are kept and labelled
 * without decimals, as d3 would label 1 as "1.0" next to 0.5.
 */
function ticksOf(
  scale: ScaleContinuousNumeric<number, number>,
  count: number,
  wholeNumbers = false,
): ValueTick[] {
  if (wholeNumbers) {
    return scale.ticks(count).filter((value) => Number.isInteger(value))
      .map((value) => ({ value, label: value.toLocaleString("en-US") }));
  }
  // Log scales default to SI prefixes ("100m" for 0.1), which misread next to a unit such as ms.
  const format = isLogScale(scale) ? scale.tickFormat(count, ",~g") : scale.tickFormat(count);
  // Log scales label only some ticks (1, 2, 5, 10, ...); unlabelled ones are dropped.
  return scale.ticks(count)
    .map((value) => ({ value, label: format(value) }))
    .filter((tick) => tick.label !== "");
}

function isLogScale(scale: ScaleContinuousNumeric<number, number>): boolean {
  return "base" in scale;
}

function pixelTicks(
  x: ScaleContinuousNumeric<number, number>,
  y: ScaleContinuousNumeric<number, number>,
  xTicks: readonly ValueTick[],
  yTicks: readonly ValueTick[],
): { x: PixelTick[]; y: PixelTick[] } {
  return {
    x: xTicks.map((tick) => ({ at: x(tick.value), label: tick.label })),
    y: yTicks.map((tick) => ({ at: y(tick.value), label: tick.label })),
  };
}

function markerLine(at: number, label: string, area: { top: number; bottom: number }): string {
  const labelY = area.top + 4;
  return element("line", {
    x1: at,
    x2: at,
    y1: area.top,
    y2: area.bottom,
    stroke: markerColor,
    "stroke-width": 1.5,
    "stroke-dasharray": "5 4",
  }) + text(label, {
    x: at - 4,
    y: labelY,
    "text-anchor": "end",
    "font-size": 10,
    fill: markerColor,
    // A white halo keeps the label readable where it crosses a data line.
    stroke: "#ffffff",
    "stroke-width": 3,
    "paint-order": "stroke",
    transform: `rotate(-90 ${at - 4} ${labelY})`,
  });
}
