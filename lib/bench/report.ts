/**
 * The report of one `pubsub bench` run: every chart as SVG, an `index.html`
 * embedding them with the configuration, the machine and tables of the
 * numbers, and a `report.md` with the same content.
 *
 * @module
 */

import type { LatencyHistogram, LatencySummary, PercentilePoint } from "./histogram.ts";
import { type Block, renderHtml, renderMarkdown, type ReportDocument } from "./_report_document.ts";
import { barChart, formatNumber, histogramChart, lineChart, percentileChart } from "./svg.ts";

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
  /** Acknowledged publishes per second over the run, with the kill instants. */
  throughputOverTime: {
    points: readonly (readonly [seconds: number, messagesPerSecond: number])[];
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
  svg: string;
}

function iterationPoints(values: readonly number[]): [number, number][] {
  return values.map((value, index) => [index + 1, value]);
}

function drawCharts(run: BenchRun): Chart[] {
  const iterationChart = (
    file: string,
    title: string,
    yLabel: string,
    name: string,
    values: readonly number[],
  ): Chart => ({
    file,
    title,
    section: "iterations",
    svg: lineChart({
      title,
      xLabel: "Iteration",
      yLabel,
      series: [{ name, points: iterationPoints(values) }],
    }),
  });
  const charts: Chart[] = [
    iterationChart(
      "topic_creation_latency.svg",
      "Topic creation latency",
      "Latency (ms)",
      "create topic",
      run.iterations.topicCreationLatencyMs,
    ),
    iterationChart(
      "publish_throughput.svg",
      "Publish throughput",
      "Messages per second",
      "publish",
      run.iterations.publishThroughputPerSecond,
    ),
    iterationChart(
      "fetch_latency.svg",
      "Fetch latency",
      "Latency (ms)",
      "fetch",
      run.iterations.fetchLatencyMs,
    ),
    {
      file: "latency_percentiles.svg",
      title: "Latency by percentile",
      section: "latency",
      svg: percentileChart({
        title: "Latency by percentile",
        series: latencyRows(run).map(([name, distribution]) => ({
          name,
          points: distribution.percentiles,
        })),
      }),
    },
    ...failoverCharts(run),
  ];
  const comparison = comparisonChart(run);
  return comparison === undefined ? charts : [...charts, comparison];
}

function failoverCharts(run: BenchRun): Chart[] {
  return [
    {
      file: "throughput_over_time.svg",
      title: "Publish throughput over time",
      section: "failover",
      svg: lineChart({
        title: "Publish throughput over time",
        xLabel: "Time since start (s)",
        yLabel: "Acknowledged messages per second",
        series: [{ name: "publish", points: run.throughputOverTime.points }],
        markers: run.throughputOverTime.kills.map((kill) => ({
          x: kill.atSeconds,
          label: kill.label,
        })),
      }),
    },
    {
      file: "failover_windows.svg",
      title: "Failover windows",
      section: "failover",
      svg: histogramChart({
        title: "Failover windows",
        xLabel: "Unavailability after a leader kill (ms)",
        yLabel: "Kills",
        values: run.failoverWindowsMs,
      }),
    },
  ];
}

function comparisonChart(run: BenchRun): Chart | undefined {
  if (run.comparison === undefined || run.comparison.rows.length === 0) return undefined;
  const otherName = run.comparison.otherName ?? "NATS";
  // Rows mix units (ms, msgs/s), so the chart shows the ratio, which shares one axis.
  const title = `pubsub relative to ${otherName}`;
  return {
    file: "comparison.svg",
    title,
    section: "comparison",
    svg: barChart({
      title,
      xLabel: "Workload and metric",
      yLabel: `pubsub ÷ ${otherName} (1 = equal)`,
      categories: run.comparison.rows.map((row) => `${row.name}: ${row.metric}`),
      series: [{ name: "ratio", values: run.comparison.rows.map(ratioOf) }],
    }),
  };
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
      .map((chart) => ({ kind: "image", file: chart.file, alt: chart.title }));
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
    latencyTable(run),
    ...images("latency"),
    { kind: "heading", text: "Per-iteration results" },
    iterationTable(run),
    ...images("iterations"),
    { kind: "heading", text: "Failover" },
    failoverTable(run),
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

function latencyTable(run: BenchRun): Block {
  const columns: (keyof LatencySummary)[] = ["min", "mean", "p50", "p90", "p99", "p999", "max"];
  return {
    kind: "table",
    headers: ["Operation", "Count", ...columns.map((column) => `${column} (ms)`)],
    rows: latencyRows(run).map(([name, { summary }]) => [
      name,
      formatNumber(summary.count),
      ...columns.map((column) => formatNumber(summary[column])),
    ]),
  };
}

function iterationTable(run: BenchRun): Block {
  const row = (name: string, unit: string, values: readonly number[]): string[] => {
    if (values.length === 0) return [name, unit, "0", "", "", ""];
    const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
    return [
      name,
      unit,
      String(values.length),
      formatNumber(Math.min(...values)),
      formatNumber(mean),
      formatNumber(Math.max(...values)),
    ];
  };
  return {
    kind: "table",
    headers: ["Measure", "Unit", "Iterations", "Min", "Mean", "Max"],
    rows: [
      row("Topic creation latency", "ms", run.iterations.topicCreationLatencyMs),
      row("Publish throughput", "msgs/s", run.iterations.publishThroughputPerSecond),
      row("Fetch latency", "ms", run.iterations.fetchLatencyMs),
    ],
  };
}

function failoverTable(run: BenchRun): Block {
  const windows = [...run.failoverWindowsMs].sort((left, right) => left - right);
  const median = windows.length === 0 ? Number.NaN : windows[Math.floor((windows.length - 1) / 2)];
  const cell = (value: number | undefined) =>
    value === undefined || Number.isNaN(value) ? "" : formatNumber(value);
  return {
    kind: "table",
    headers: ["Leader kills", "Min window (ms)", "Median window (ms)", "Max window (ms)"],
    rows: [[String(windows.length), cell(windows[0]), cell(median), cell(windows.at(-1))]],
  };
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
