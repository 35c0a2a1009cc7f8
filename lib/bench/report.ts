/**
 * The report of one `pubsub bench` run: every chart as SVG, an `index.html`
 * embedding them with the configuration, the machine and tables of the
 * numbers, and a `report.md` with the same content.
 *
 * @module
 */

import type { LatencyHistogram, LatencySummary, PercentilePoint } from "./histogram.ts";
import { type Block, renderHtml, renderMarkdown, type ReportDocument } from "./_report_document.ts";
import {
  formatNumber,
  samplesNeeded,
  type SampleSummary,
  type StatisticKey,
  statisticLabels,
  summarize,
  summaryPercentiles,
} from "./statistics.ts";
import { barChart, histogramChart, percentileChart, pointChart, stepChart } from "./svg.ts";
import {
  fineAfterKillMsDefault,
  fineBeforeKillMsDefault,
  fineBucketMsDefault,
  type ThroughputStep,
} from "./timeline.ts";

/** A latency distribution: its summary and its percentile series for charts. */
export interface LatencyDistribution {
  summary: LatencySummary;
  percentiles: readonly PercentilePoint[];
}

/** Result of one fault-tolerance check, as the prototype printed them. */
export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

/** One row comparing pubsub with another system on the same workload. */
export interface ComparisonRow {
  /** Workload, e.g. "sequential publish 1 KiB". */
  name: string;
  /** Metric with its unit, e.g. "p99 latency (ms)". */
  metric: string;
  pubsub: number;
  other: number;
}

/** Everything `pubsub bench` measured in one run. */
export interface BenchRun {
  title: string;
  /** ISO 8601 start time. */
  startedAt: string;
  durationSeconds: number;
  /** Flags and derived settings of the run (peers, replication factor, message size...). */
  configuration: Readonly<Record<string, string | number | boolean>>;
  checks: readonly CheckResult[];
  /** Per-iteration series of the prototype's three graphs; index i is iteration i + 1. */
  iterations: {
    topicCreationLatencyMs: readonly number[];
    publishThroughputPerSecond: readonly number[];
    fetchLatencyMs: readonly number[];
  };
  latencies: {
    sequentialPublish: LatencyDistribution;
    pipelinedPublish: LatencyDistribution;
    publishToDelivery: LatencyDistribution;
  };
  /**
   * Acknowledged publishes per time bucket of the kill workload (finer
   * around kills, see `throughputSteps`), with the kill instants.
   */
  throughputOverTime: {
    steps: readonly ThroughputStep[];
    kills: readonly { atSeconds: number; label: string }[];
  };
  /** Unavailability after each leader kill, in milliseconds. */
  failoverWindowsMs: readonly number[];
  /** Optional comparison with another broker. */
  comparison?: {
    /** Name of the other system. Default "NATS". */
    otherName?: string;
    rows: readonly ComparisonRow[];
  };
}

/** The machine a run happened on. */
export interface MachineInfo {
  os: string;
  osRelease: string;
  cpus: number;
  memoryTotalBytes: number | undefined;
  deno: string;
  v8: string;
  typescript: string;
}

/** Options of {@linkcode writeReport}. */
export interface WriteReportOptions {
  /** Machine description. Default: {@linkcode describeMachine} of this process. */
  machine?: MachineInfo;
}

/** Files written by {@linkcode writeReport}, relative to its directory. */
export interface WrittenReport {
  html: string;
  markdown: string;
  charts: string[];
}

/**
 * The distribution of a histogram, ready for a {@linkcode BenchRun}.
 *
 * @example
 * ```ts
 * import { LatencyHistogram } from "./histogram.ts";
 * import { latencyDistribution } from "./report.ts";
 *
 * const histogram = new LatencyHistogram();
 * histogram.recordMilliseconds(1.5);
 * const distribution = latencyDistribution(histogram);
 * ```
 */
export function latencyDistribution(histogram: LatencyHistogram): LatencyDistribution {
  return { summary: histogram.summary(), percentiles: histogram.percentileSeries() };
}

/**
 * Describes this machine; fields needing `--allow-sys` read "unknown" without it.
 *
 * @example
 * ```ts
 * import { describeMachine } from "./report.ts";
 *
 * console.log(describeMachine().cpus);
 * ```
 */
export function describeMachine(): MachineInfo {
  const attempt = <T>(read: () => T): T | undefined => {
    try {
      return read();
    } catch {
      return undefined;
    }
  };
  return {
    os: `${Deno.build.os} ${Deno.build.arch}`,
    osRelease: attempt(() => Deno.osRelease()) ?? "unknown",
    cpus: navigator.hardwareConcurrency,
    memoryTotalBytes: attempt(() => Deno.systemMemoryInfo().total),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
  };
}

/**
 * Writes the report of `run` into `directory` (created if missing): one SVG
 * per chart, `index.html` and `report.md`.
 *
 * @example
 * ```ts
 * import { type BenchRun, writeReport } from "./report.ts";
 *
 * declare const run: BenchRun;
 * const written = await writeReport("bench/out/2025-01-01", run);
 * console.log(`open bench/out/2025-01-01/${written.html}`);
 * ```
 */
export async function writeReport(
  directory: string,
  run: BenchRun,
  options: WriteReportOptions = {},
): Promise<WrittenReport> {
  const machine = options.machine ?? describeMachine();
  const charts = drawCharts(run);
  const document = reportDocument(run, machine, charts);
  await Deno.mkdir(directory, { recursive: true });
  for (const chart of charts) await Deno.writeTextFile(`${directory}/${chart.file}`, chart.svg);
  await Deno.writeTextFile(`${directory}/index.html`, renderHtml(document));
  await Deno.writeTextFile(`${directory}/report.md`, renderMarkdown(document));
  return { html: "index.html", markdown: "report.md", charts: charts.map((chart) => chart.file) };
}

interface Chart {
  file: string;
  title: string;
  /** Report section the chart belongs to. */
  section: "iterations" | "latency" | "failover" | "comparison";
  /** The sentence under the chart: what it measures and from how many samples. */
  caption: string;
  svg: string;
}

/** A chart's identity and caption; `draw` adds the SVG with the same caption under it. */
function chart(
  file: string,
  title: string,
  section: Chart["section"],
  caption: string,
  draw: (caption: string) => string,
): Chart {
  return { file, title, section, caption, svg: draw(caption) };
}

function iterationPoints(values: readonly number[]): [number, number][] {
  return values.map((value, index) => [index + 1, value]);
}

/** Why the per-iteration charts are points: said under each of them. */
const iterationNote = "Points are not joined: iterations are independent, and the first ones " +
  "include warm-up.";

function drawCharts(run: BenchRun): Chart[] {
  const iterationChart = (
    file: string,
    title: string,
    yLabel: string,
    measures: string,
    values: readonly number[],
  ): Chart =>
    chart(
      file,
      title,
      "iterations",
      `One point per iteration, n=${values.length}: ${measures}. ${iterationNote}`,
      (caption) =>
        pointChart({
          title,
          xLabel: "Iteration",
          yLabel,
          series: [{ name: title, points: iterationPoints(values) }],
          caption,
        }),
    );
  const charts: Chart[] = [
    iterationChart(
      "topic_creation_latency.svg",
      "Topic creation latency",
      "Latency (ms)",
      "the time to create the iteration's fresh topic, request to answer",
      run.iterations.topicCreationLatencyMs,
    ),
    iterationChart(
      "publish_throughput.svg",
      "Publish throughput",
      "Messages per second",
      "acknowledged publishes per second while publishing the iteration's messages",
      run.iterations.publishThroughputPerSecond,
    ),
    iterationChart(
      "fetch_latency.svg",
      "Fetch latency",
      "Latency (ms)",
      "the time to fetch every message of the iteration's topic",
      run.iterations.fetchLatencyMs,
    ),
    percentileChartOf(run),
    ...failoverCharts(run),
  ];
  const comparison = comparisonChart(run);
  return comparison === undefined ? charts : [...charts, comparison];
}

function percentileChartOf(run: BenchRun): Chart {
  const rows = latencyRows(run);
  const counts = rows.map(([name, { summary }]) => `${name} n=${formatCount(summary.count)}`);
  const caption = "The latency below which each share of requests completed, per workload " +
    `(${counts.join(", ")}); each step right on the x axis is ten times rarer, and the y axis ` +
    "is logarithmic. A line ends at the highest percentile its count supports.";
  return chart(
    "latency_percentiles.svg",
    "Latency by percentile",
    "latency",
    caption,
    (caption) =>
      percentileChart({
        title: "Latency by percentile",
        series: rows.map(([name, distribution]) => ({ name, points: distribution.percentiles })),
        yLog: true,
        caption,
      }),
  );
}

function failoverCharts(run: BenchRun): Chart[] {
  const { steps, kills } = run.throughputOverTime;
  const acknowledged = steps.reduce((sum, step) => sum + step.acknowledged, 0);
  const notRun = "The leader-kill workload did not run (n=0 kills: --kills 0, or the bench " +
    "cannot fail nodes of this cluster).";
  const throughputCaption = steps.length === 0 ? notRun : "Acknowledged publishes per second " +
    "of a steady load while the topic's leader was killed and restarted (dashed lines, " +
    `n=${kills.length} kills): ${formatCount(acknowledged)} acknowledged publishes in 1 s ` +
    `buckets, ${fineBucketMsDefault} ms buckets from ${fineBeforeKillMsDefault / 1000} s ` +
    `before to ${fineAfterKillMsDefault / 1000} s after each kill.`;
  const windows = run.failoverWindowsMs;
  const windowsCaption = kills.length === 0 ? notRun : `How many of the n=${windows.length} ` +
    "leader kills with an acknowledged publish afterwards left the topic unavailable for how " +
    "long: from the kill to the first acknowledged publish sent after it (a probe publishes " +
    "every 5 ms).";
  return [
    chart(
      "throughput_over_time.svg",
      "Publish throughput over time",
      "failover",
      throughputCaption,
      (caption) =>
        stepChart({
          title: "Publish throughput over time",
          xLabel: "Time since start (s)",
          yLabel: "Acknowledged messages per second",
          series: [{
            name: "publish",
            steps: steps.map((step) => ({
              from: step.fromSeconds,
              to: step.toSeconds,
              value: step.messagesPerSecond,
            })),
          }],
          markers: kills.map((kill) => ({ x: kill.atSeconds, label: kill.label })),
          caption,
        }),
    ),
    chart(
      "failover_windows.svg",
      "Failover windows",
      "failover",
      windowsCaption,
      (caption) =>
        histogramChart({
          title: "Failover windows",
          xLabel: "Unavailability after a leader kill (ms)",
          yLabel: "Kills",
          values: windows,
          caption,
        }),
    ),
  ];
}

function comparisonChart(run: BenchRun): Chart | undefined {
  if (run.comparison === undefined || run.comparison.rows.length === 0) return undefined;
  const otherName = run.comparison.otherName ?? "NATS";
  // Rows mix units (ms, msgs/s), so the chart shows the ratio, which shares one axis.
  const title = `pubsub relative to ${otherName}`;
  const caption = `pubsub's value divided by ${otherName}'s for each of the ` +
    `${run.comparison.rows.length} workload metrics (1 = equal): above 1 is better for ` +
    "throughput and worse for latency.";
  return chart("comparison.svg", title, "comparison", caption, (caption) =>
    barChart({
      title,
      xLabel: "Workload and metric",
      yLabel: `pubsub ÷ ${otherName} (1 = equal)`,
      categories: run.comparison!.rows.map((row) => `${row.name}: ${row.metric}`),
      series: [{ name: "ratio", values: run.comparison!.rows.map(ratioOf) }],
      caption,
    }));
}

function ratioOf(row: ComparisonRow): number {
  return row.other === 0 ? Number.NaN : row.pubsub / row.other;
}

function latencyRows(run: BenchRun): [string, LatencyDistribution][] {
  return [
    ["sequential publish", run.latencies.sequentialPublish],
    ["pipelined publish", run.latencies.pipelinedPublish],
    ["publish to delivery", run.latencies.publishToDelivery],
  ];
}

function reportDocument(run: BenchRun, machine: MachineInfo, charts: Chart[]): ReportDocument {
  const images = (section: Chart["section"]): Block[] =>
    charts.filter((chart) => chart.section === section)
      .map((chart) => ({
        kind: "image",
        file: chart.file,
        alt: `${chart.title}. ${chart.caption}`,
      }));
  const passed = run.checks.filter((check) => check.ok).length;
  const blocks: Block[] = [
    {
      kind: "paragraph",
      text: `Started ${run.startedAt}, ran ${formatNumber(run.durationSeconds)} s. ` +
        `Fault-tolerance checks: ${passed} of ${run.checks.length} passed.`,
    },
    { kind: "heading", text: "Configuration" },
    keyValueTable(Object.entries(run.configuration).map(([key, value]) => [key, String(value)])),
    { kind: "heading", text: "Machine" },
    keyValueTable(machineRows(machine)),
    { kind: "heading", text: "Fault-tolerance checks" },
    {
      kind: "table",
      headers: ["Check", "Result", "Detail"],
      rows: run.checks.map((check) => [check.name, check.ok ? "✓ pass" : "✗ FAIL", check.detail]),
    },
    { kind: "heading", text: "Latency" },
    ...withSamplesNote(latencyTable(run)),
    ...images("latency"),
    { kind: "heading", text: "Per-iteration results" },
    ...withSamplesNote(iterationTable(run)),
    ...images("iterations"),
    { kind: "heading", text: "Failover" },
    ...withSamplesNote(failoverTable(run)),
    ...images("failover"),
    ...comparisonBlocks(run),
    ...images("comparison"),
  ];
  return { title: run.title, blocks };
}

function keyValueTable(rows: [string, string][]): Block {
  return { kind: "table", headers: ["Setting", "Value"], rows };
}

function machineRows(machine: MachineInfo): [string, string][] {
  const memory = machine.memoryTotalBytes === undefined
    ? "unknown"
    : `${formatNumber(machine.memoryTotalBytes / 2 ** 30)} GiB`;
  return [
    ["OS", machine.os],
    ["OS release", machine.osRelease],
    ["Logical CPUs", String(machine.cpus)],
    ["Memory", memory],
    ["Deno", machine.deno],
    ["V8", machine.v8],
    ["TypeScript", machine.typescript],
  ];
}

/** What a statistic the sample count does not support shows in a table. */
export const tooFewSamplesCell = "–";

/** One summary per row; columns named as the text output names them. */
function summaryTable(
  firstHeader: string,
  rows: readonly { name: string; unit: string; summary: SampleSummary }[],
  keys: readonly StatisticKey[],
): Block & { kind: "table" } {
  return {
    kind: "table",
    headers: [firstHeader, "Unit", "n", ...keys.map((key) => statisticLabels[key])],
    rows: rows.map(({ name, unit, summary }) => [
      name,
      unit,
      formatCount(summary.count),
      ...keys.map((key) => {
        const value = summary[key];
        return value === undefined ? tooFewSamplesCell : formatNumber(value);
      }),
    ]),
  };
}

function latencyTable(run: BenchRun): Block & { kind: "table" } {
  return summaryTable(
    "Operation",
    latencyRows(run).map(([name, { summary }]) => ({ name, unit: "ms", summary })),
    ["min", "mean", "p50", "p90", "p99", "p999", "max"],
  );
}

function iterationTable(run: BenchRun): Block & { kind: "table" } {
  return summaryTable("Measure", [
    {
      name: "Topic creation latency",
      unit: "ms",
      summary: summarize(run.iterations.topicCreationLatencyMs),
    },
    {
      name: "Publish throughput",
      unit: "msgs/s",
      summary: summarize(run.iterations.publishThroughputPerSecond),
    },
    { name: "Fetch latency", unit: "ms", summary: summarize(run.iterations.fetchLatencyMs) },
  ], ["min", "mean", "p50", "max"]);
}

function failoverTable(run: BenchRun): Block & { kind: "table" } {
  return summaryTable("Measure", [{
    name: "Unavailability after a leader kill",
    unit: "ms",
    summary: summarize(run.failoverWindowsMs),
  }], ["min", "mean", "p50", "p90", "p99", "max"]);
}

/** The table, and under it what its "–" cells mean when it has any. */
function withSamplesNote(table: Block & { kind: "table" }): Block[] {
  if (!table.rows.some((row) => row.includes(tooFewSamplesCell))) return [table];
  const needs = (Object.keys(summaryPercentiles) as (keyof typeof summaryPercentiles)[])
    .map((key) => `${statisticLabels[key]} ${formatCount(samplesNeeded(summaryPercentiles[key]))}`);
  return [table, {
    kind: "paragraph",
    text: `${tooFewSamplesCell}: too few samples (n) for this statistic. A percentile needs one ` +
      `sample above it and one below (${needs.join(", ")}); with fewer it would only be the ` +
      "min or max under another name.",
  }];
}

function formatCount(count: number): string {
  return count.toLocaleString("en-US");
}

function comparisonBlocks(run: BenchRun): Block[] {
  if (run.comparison === undefined || run.comparison.rows.length === 0) return [];
  const otherName = run.comparison.otherName ?? "NATS";
  return [
    { kind: "heading", text: `Comparison with ${otherName}` },
    {
      kind: "table",
      headers: ["Workload", "Metric", "pubsub", otherName, `pubsub ÷ ${otherName}`],
      rows: run.comparison.rows.map((row) => {
        const ratio = ratioOf(row);
        return [
          row.name,
          row.metric,
          formatNumber(row.pubsub),
          formatNumber(row.other),
          Number.isNaN(ratio) ? "n/a" : `${formatNumber(ratio)}×`,
        ];
      }),
    },
  ];
}
