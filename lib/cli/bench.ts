/**
 * `pubsub bench`: the prototype's fault-tolerance blocks, run for real
 * (SIGKILL of the leader's process, recovery until it is in sync again),
 * then the performance workloads, then a report (SVG charts, index.html,
 * report.md). By default it starts its own local 3-peer cluster; with
 * `--peers` it benchmarks an existing one.
 *
 * @module
 */

import { LatencyHistogram } from "../bench/histogram.ts";
import { runFaultBlock } from "../bench/fault_suite.ts";
import { failoverTimeoutMs, resyncTimeoutMs, runLeaderKills } from "../bench/leader_kills.ts";
import { type BenchCluster, externalCluster, startLocalCluster } from "../bench/local_cluster.ts";
import { Progress } from "../bench/progress.ts";
import {
  type BenchRun,
  type CheckResult,
  latencyDistribution,
  writeReport,
  type WrittenReport,
} from "../bench/report.ts";
import {
  formatNumber,
  formatSummary,
  type SampleSummary,
  type StatisticKey,
  summarize,
} from "../bench/statistics.ts";
import { rawPublishLoad } from "../bench/raw_load.ts";
import type { ThroughputStep } from "../bench/timeline.ts";
import {
  type IterationResult,
  payloadOf,
  publishLoad,
  publishToDelivery,
  runIteration,
} from "../bench/workloads.ts";
import type { PubSubClient } from "../client/client.ts";
import {
  addressList,
  ExitCode,
  integerOption,
  newProgram,
  pidList,
  runProgram,
  UsageError,
} from "./_command.ts";

interface BenchFlags {
  peers?: string[];
  pids?: number[];
  out?: string;
  json: boolean;
  quick: boolean;
  duration?: number;
  messageSize?: number;
  producers?: number;
  topics?: number;
  iterations?: number;
  kills?: number;
  pipeline?: number;
  faultBlocks?: number;
}

/** Every setting of a run, after `--quick` and the defaults were applied. */
export interface BenchSettings {
  peers: string[] | undefined;
  pids: number[] | undefined;
  outDir: string;
  json: boolean;
  quick: boolean;
  durationSeconds: number;
  messageBytes: number;
  producers: number;
  topics: number;
  iterations: number;
  iterationMessages: number;
  kills: number;
  pipelineInFlight: number;
  faultBlocks: number | undefined;
}

/** Nodes of the cluster the bench starts by default. */
export const localNodes = 3;
/** Largest message the bench sends: well under the peers' default 1 MiB frame limit. */
export const messageBytesMax = 512 * 1024;

/** Failover and resync waits of `--quick`, so that a broken failover cannot stretch the run. */
const quickKillTimeoutMs = 5_000;
const fullDefaults = { duration: 10, iterations: 10, kills: 10, iterationMessages: 500 };
const messageBytesDefault = 100;
const producersDefault = 4;
const topicsDefault = 1;
const pipelineDefault = 256;
const quickDefaults = { duration: 3, iterations: 3, kills: 2, iterationMessages: 200 };

/**
 * Runs `pubsub bench` with `args`; resolves to the exit code (1 when a
 * fault-tolerance check failed, 2 on a usage error, 130 when interrupted).
 *
 * @example
 * ```ts
 * import { benchCommand } from "./bench.ts";
 *
 * const code = await benchCommand(["--quick", "--out", "bench/out/quick"]);
 * ```
 */
export function benchCommand(args: string[]): Promise<number> {
  const program = newProgram("pubsub bench", "Fault-tolerance checks and performance report")
    .option("--peers <list>", "bench an existing cluster at host:port,...", addressList)
    .option("--pids <list>", "pids of the --peers processes, same order", pidList)
    .option("--out <dir>", "report directory (default bench/out/<timestamp>)")
    .option("--json", "print one JSON summary object on stdout", false)
    .option("--quick", "short run (under a minute)", false)
    .option(
      "--duration <s>",
      `seconds of each timed workload (default ${fullDefaults.duration}, ${quickDefaults.duration} with --quick)`,
      integerOption(1, 3600),
    )
    .option(
      "--message-size <bytes>",
      `message size (default ${messageBytesDefault})`,
      integerOption(16, messageBytesMax),
    )
    .option(
      "--producers <n>",
      `concurrent producer connections (default ${producersDefault})`,
      integerOption(1, 64),
    )
    .option(
      "--topics <n>",
      `topics of the pipelined workload (default ${topicsDefault})`,
      integerOption(1, 100),
    )
    .option(
      "--iterations <n>",
      `iterations of the prototype's series (default ${fullDefaults.iterations}, ${quickDefaults.iterations} with --quick)`,
      integerOption(1, 1000),
    )
    .option(
      "--kills <n>",
      `leader kills of the failover workload (default ${fullDefaults.kills}, ${quickDefaults.kills} with --quick)`,
      integerOption(0, 1000),
    )
    .option(
      "--pipeline <n>",
      `publishes in flight, all producers (default ${pipelineDefault})`,
      integerOption(1, 4096),
    )
    .option(
      "--fault-blocks <n>",
      "fault-tolerance blocks (default: one per node, 1 with --quick)",
      integerOption(0, 100),
    )
    .action(async (flags: BenchFlags) => {
      throw new ExitCode(await runBench(resolveSettings(flags, new Date())));
    });
  return runProgram(program, args);
}

/**
 * Applies `--quick` and the defaults to parsed flags.
 *
 * @example
 * ```ts
 * import { resolveSettings } from "./bench.ts";
 *
 * resolveSettings({ json: false, quick: true }, new Date()).durationSeconds; // 3
 * ```
 */
export function resolveSettings(flags: BenchFlags, now: Date): BenchSettings {
  if (flags.pids !== undefined && flags.peers === undefined) {
    throw new UsageError("Option --pids needs --peers");
  }
  if (flags.pids !== undefined && flags.pids.length !== flags.peers!.length) {
    throw new UsageError(
      `Option --pids lists ${flags.pids.length} pids for ${flags.peers!.length} --peers`,
    );
  }
  const defaults = flags.quick ? quickDefaults : fullDefaults;
  const stamp = now.toISOString().replace(/[:.]/g, "-");
  return {
    peers: flags.peers,
    pids: flags.pids,
    outDir: flags.out ?? `bench/out/${stamp}`,
    json: flags.json,
    quick: flags.quick,
    durationSeconds: flags.duration ?? defaults.duration,
    messageBytes: flags.messageSize ?? messageBytesDefault,
    producers: flags.producers ?? producersDefault,
    topics: flags.topics ?? topicsDefault,
    iterations: flags.iterations ?? defaults.iterations,
    iterationMessages: defaults.iterationMessages,
    kills: flags.kills ?? defaults.kills,
    pipelineInFlight: flags.pipeline ?? pipelineDefault,
    faultBlocks: flags.faultBlocks ?? (flags.quick ? 1 : undefined),
  };
}

/** Where human-readable output and progress go: stderr when stdout carries JSON. */
interface Output {
  line(text: string): void;
  progress(phase: string, unit: string): Progress;
}

function outputFor(settings: BenchSettings): Output {
  const stream = settings.json ? Deno.stderr : Deno.stdout;
  const encoder = new TextEncoder();
  const write = (text: string) => {
    const bytes = encoder.encode(text);
    let written = 0;
    while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
  };
  return {
    line: (text) => write(`${text}\n`),
    progress: (phase, unit) =>
      new Progress(phase, { unit, write, isTerminal: stream.isTerminal() }),
  };
}

async function runBench(settings: BenchSettings): Promise<number> {
  const output = outputFor(settings);
  const stop = new AbortController();
  const onSignal = () => {
    output.line("Interrupted: stopping the workload and the peers...");
    stop.abort();
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const name of signals) Deno.addSignalListener(name, onSignal);
  let cluster: BenchCluster | undefined;
  try {
    output.line(
      settings.peers === undefined
        ? `Starting a local ${localNodes}-peer cluster...`
        : `Benchmarking the cluster at ${settings.peers.join(",")}`,
    );
    cluster = settings.peers === undefined
      ? await startLocalCluster(localNodes)
      : await externalCluster(settings.peers, settings.pids);
    const { run, extras } = await measure(cluster, settings, output, stop.signal);
    if (stop.signal.aborted) return 130;
    const written = await writeReport(settings.outDir, run);
    printSummary(run, extras, settings, written, output);
    return run.checks.every((check) => check.ok) ? 0 : 1;
  } finally {
    for (const name of signals) Deno.removeSignalListener(name, onSignal);
    await cluster?.stop();
  }
}

async function measure(
  cluster: BenchCluster,
  settings: BenchSettings,
  output: Output,
  signal: AbortSignal,
): Promise<{ run: BenchRun; extras: SummaryExtras }> {
  const startedAt = new Date();
  const startedMs = performance.now();
  const runId = `bench-${Date.now().toString(36)}`;
  const checks = await faultSuite(cluster, settings, output, runId, signal);
  const producers = await Promise.all(
    Array.from({ length: settings.producers }, () => cluster.client()),
  );
  try {
    const iterations = await iterationSeries(producers, settings, output, runId, signal);
    const latencies = await latencyWorkloads(cluster, producers, settings, output, runId, signal);
    const kills = await killWorkload(cluster, settings, output, runId, signal);
    const run: BenchRun = {
      title: "pubsub bench",
      startedAt: startedAt.toISOString(),
      durationSeconds: (performance.now() - startedMs) / 1000,
      configuration: configurationOf(cluster, settings),
      checks,
      iterations,
      latencies: latencies.distributions,
      throughputOverTime: { steps: kills.steps, kills: kills.kills },
      failoverWindowsMs: kills.windowsMs,
      comparison: {
        otherName: "raw protocol",
        rows: [{
          name: `pipelined publish (${settings.pipelineInFlight} in flight)`,
          metric: "throughput (msgs/s)",
          pubsub: latencies.pipelinedThroughputPerSecond,
          other: latencies.rawThroughputPerSecond,
        }],
      },
    };
    const extras = {
      pipelinedThroughputPerSecond: latencies.pipelinedThroughputPerSecond,
      rawThroughputPerSecond: latencies.rawThroughputPerSecond,
      failedFailovers: kills.failed,
      resyncMs: kills.resyncMs,
    };
    return { run, extras };
  } finally {
    await Promise.all(producers.map((client) => client.close()));
  }
}

/** Numbers the summary prints that the report type does not carry. */
interface SummaryExtras {
  pipelinedThroughputPerSecond: number;
  /** The same load sent by a raw-protocol client straight to the leaders. */
  rawThroughputPerSecond: number;
  failedFailovers: number;
  /** Per kill, restart to in sync under load; null when it did not happen in time. */
  resyncMs: (number | undefined)[];
}

function configurationOf(
  cluster: BenchCluster,
  settings: BenchSettings,
): Record<string, string | number | boolean> {
  return {
    cluster: settings.peers === undefined
      ? `local, ${localNodes} peers started by the bench (--heartbeat-ms 500 --dead-after 5000)`
      : `existing: ${settings.peers.join(",")}`,
    "peers": cluster.nodes.map((node) => `${node.id}@${node.address}`).join(","),
    "failure injection": cluster.killUnsupportedReason ?? cluster.failureMode,
    "quick": settings.quick,
    "duration per timed workload (s)": settings.durationSeconds,
    "message size (bytes)": settings.messageBytes,
    "producers": settings.producers,
    "topics (pipelined workload)": settings.topics,
    "publishes in flight (pipelined)": settings.pipelineInFlight,
    "iterations": settings.iterations,
    "messages per iteration": settings.iterationMessages,
    "leader kills": settings.kills,
  };
}

async function faultSuite(
  cluster: BenchCluster,
  settings: BenchSettings,
  output: Output,
  runId: string,
  signal: AbortSignal,
): Promise<CheckResult[]> {
  const blocks = Math.min(settings.faultBlocks ?? cluster.nodes.length, cluster.nodes.length);
  const checks: CheckResult[] = [];
  // Blocks count from 1 and block k fails the k-th node, so with node ids 1..N they match.
  for (let block = 1; block <= blocks && !signal.aborted; block++) {
    output.line("");
    checks.push(
      ...await runFaultBlock(cluster, {
        block,
        target: cluster.nodes[block - 1],
        topicPrefix: `${runId}-ft`,
        messageBytes: settings.messageBytes,
        print: output.line,
      }),
    );
  }
  output.line("");
  return checks;
}

async function iterationSeries(
  producers: PubSubClient[],
  settings: BenchSettings,
  output: Output,
  runId: string,
  signal: AbortSignal,
): Promise<BenchRun["iterations"]> {
  const results: IterationResult[] = [];
  const progress = output.progress("iterations", "iterations");
  for (let iteration = 1; iteration <= settings.iterations && !signal.aborted; iteration++) {
    results.push(
      await runIteration(producers, `${runId}-iter-${iteration}`, {
        messages: settings.iterationMessages,
        inFlight: Math.max(1, Math.ceil(settings.pipelineInFlight / producers.length)),
        messageBytes: settings.messageBytes,
        signal,
      }),
    );
    progress.update(iteration);
  }
  progress.done();
  return {
    topicCreationLatencyMs: results.map((result) => result.topicCreationLatencyMs),
    publishThroughputPerSecond: results.map((result) => result.publishThroughputPerSecond),
    fetchLatencyMs: results.map((result) => result.fetchLatencyMs),
  };
}

async function latencyWorkloads(
  cluster: BenchCluster,
  producers: PubSubClient[],
  settings: BenchSettings,
  output: Output,
  runId: string,
  signal: AbortSignal,
): Promise<{
  distributions: BenchRun["latencies"];
  pipelinedThroughputPerSecond: number;
  rawThroughputPerSecond: number;
}> {
  const durationMs = settings.durationSeconds * 1000;
  const payload = payloadOf(settings.messageBytes);
  const sequential = new LatencyHistogram();
  const sequentialTopic = `${runId}-sequential`;
  await producers[0].createTopic(sequentialTopic);
  let progress = output.progress("sequential publish", "msgs");
  await publishLoad({
    clients: [producers[0]],
    topics: [sequentialTopic],
    inFlight: 1,
    payload,
    durationMs,
    signal,
    histogram: sequential,
    onAck: (acked) => progress.update(acked),
  });
  progress.done();
  const pipelined = new LatencyHistogram();
  const topics = Array.from(
    { length: settings.topics },
    (_, index) => `${runId}-pipelined-${index}`,
  );
  for (const topic of topics) await producers[0].createTopic(topic);
  progress = output.progress(`pipelined publish (${settings.pipelineInFlight} in flight)`, "msgs");
  const load = await publishLoad({
    clients: producers,
    topics,
    inFlight: Math.max(1, Math.ceil(settings.pipelineInFlight / producers.length)),
    payload,
    durationMs,
    signal,
    histogram: pipelined,
    onAck: (acked) => progress.update(acked),
  });
  progress.done();
  if (load.failed > 0) output.line(`  ${load.failed} publishes failed: ${load.firstError}`);
  const raw = await rawWorkload(cluster, producers[0], topics, settings, output);
  const delivery = await deliveryWorkload(cluster, settings, output, `${runId}-delivery`, signal);
  return {
    distributions: {
      sequentialPublish: latencyDistribution(sequential),
      pipelinedPublish: latencyDistribution(pipelined),
      publishToDelivery: latencyDistribution(delivery),
    },
    pipelinedThroughputPerSecond: load.throughputPerSecond,
    rawThroughputPerSecond: raw,
  };
}

/**
 * The yardstick of the pipelined row: the same load (one connection per
 * producer, the same publishes in flight, the same topics) with frames built
 * by hand and sent straight to each topic's leader, without PubSubClient.
 */
async function rawWorkload(
  cluster: BenchCluster,
  client: PubSubClient,
  topics: readonly string[],
  settings: BenchSettings,
  output: Output,
): Promise<number> {
  const leaders = await Promise.all(topics.map(async (topic) => {
    const { leader } = await client.describeTopic(topic);
    return cluster.nodes.find((node) => node.id === leader)?.address ?? cluster.nodes[0].address;
  }));
  const progress = output.progress(
    `raw protocol, same load (${settings.pipelineInFlight} in flight)`,
    "msgs",
  );
  const loads = await Promise.all(
    Array.from({ length: settings.producers }, (_, index) =>
      rawPublishLoad({
        address: leaders[index % topics.length],
        topic: topics[index % topics.length],
        inFlight: Math.max(1, Math.ceil(settings.pipelineInFlight / settings.producers)),
        durationMs: settings.durationSeconds * 1000,
        message: payloadOf(settings.messageBytes),
      })),
  );
  const acked = loads.reduce((sum, load) => sum + load.acked, 0);
  progress.update(acked);
  progress.done();
  const failed = loads.find((load) => load.failed > 0);
  if (failed !== undefined) output.line(`  raw publishes failed: ${failed.firstError}`);
  const elapsedMs = Math.max(...loads.map((load) => load.elapsedMs));
  return acked / (elapsedMs / 1000);
}

async function deliveryWorkload(
  cluster: BenchCluster,
  settings: BenchSettings,
  output: Output,
  topic: string,
  signal: AbortSignal,
): Promise<LatencyHistogram> {
  const histogram = new LatencyHistogram();
  // Publisher and subscriber on different peers: delivery crosses the cluster as it would in use.
  const addresses = cluster.nodes.map((node) => node.address);
  const publisher = await cluster.client(addresses);
  const subscriber = await cluster.client([...addresses.slice(1), addresses[0]]);
  try {
    await publisher.createTopic(topic);
    const progress = output.progress("publish to delivery", "msgs");
    await publishToDelivery(publisher, subscriber, topic, {
      durationMs: settings.durationSeconds * 1000,
      messageBytes: settings.messageBytes,
      inFlight: 1,
      histogram,
      signal,
      onDelivered: (delivered) => progress.update(delivered),
    });
    progress.done();
  } finally {
    await Promise.all([publisher.close(), subscriber.close()]);
  }
  return histogram;
}

async function killWorkload(
  cluster: BenchCluster,
  settings: BenchSettings,
  output: Output,
  runId: string,
  signal: AbortSignal,
): Promise<{
  steps: ThroughputStep[];
  kills: { atSeconds: number; label: string }[];
  windowsMs: number[];
  failed: number;
  resyncMs: (number | undefined)[];
}> {
  if (settings.kills === 0 || cluster.killUnsupportedReason !== undefined || signal.aborted) {
    const reason = cluster.killUnsupportedReason ?? "--kills 0";
    output.line(`Leader kills skipped: ${reason}`);
    return { steps: [], kills: [], windowsMs: [], failed: 0, resyncMs: [] };
  }
  const progress = output.progress("leader kills", "kills");
  const killFailoverTimeoutMs = settings.quick ? quickKillTimeoutMs : failoverTimeoutMs;
  const result = await runLeaderKills(cluster, {
    topic: `${runId}-kills`,
    kills: settings.kills,
    producers: settings.producers,
    inFlight: Math.max(1, Math.ceil(settings.pipelineInFlight / settings.producers)),
    messageBytes: settings.messageBytes,
    signal,
    failoverTimeoutMs: killFailoverTimeoutMs,
    resyncTimeoutMs: settings.quick ? quickKillTimeoutMs : resyncTimeoutMs,
    onKill: (index, windowMs) => {
      progress.update(index + 1);
      if (windowMs === undefined) {
        output.line(
          `  ✗ kill ${index + 1}: no publish acknowledged within ${killFailoverTimeoutMs} ms`,
        );
      }
    },
  });
  progress.done();
  const windowsMs = result.windowsMs.filter((window): window is number => window !== undefined);
  return { ...result, windowsMs, failed: result.windowsMs.length - windowsMs.length };
}

/** Statistics each summary line prints (the maximum is always printed). */
const summaryStatistics: readonly StatisticKey[] = ["p50", "p99"];

function printSummary(
  run: BenchRun,
  extras: SummaryExtras,
  settings: BenchSettings,
  written: WrittenReport,
  output: Output,
): void {
  const summary = benchSummary(run, extras, settings.outDir, written);
  const describe = (sample: SampleSummary, noun: string, statistics = summaryStatistics) =>
    formatSummary(sample, { unit: "ms", noun, statistics });
  const { sequentialPublish, pipelinedPublish, publishToDelivery } = run.latencies;
  output.line(`Fault-tolerance checks: ${summary.checks_passed} of ${summary.checks_total} passed`);
  output.line(`Sequential publish: ${describe(sequentialPublish.summary, "publishes")}`);
  output.line(
    `Pipelined publish: ${formatNumber(extras.pipelinedThroughputPerSecond)} msgs/s, ` +
      describe(pipelinedPublish.summary, "publishes"),
  );
  output.line(
    `Raw protocol, same load: ${formatNumber(extras.rawThroughputPerSecond)} msgs/s ` +
      `(PubSubClient ÷ raw = ${
        formatNumber(extras.pipelinedThroughputPerSecond / extras.rawThroughputPerSecond)
      })`,
  );
  output.line(`Publish to delivery: ${describe(publishToDelivery.summary, "deliveries")}`);
  // Few kills: the min tells as much as the max.
  const failover = describe(summarize(run.failoverWindowsMs), "leader kills", [
    "min",
    ...summaryStatistics,
  ]);
  output.line(`Failover windows: ${failover}`);
  output.line(
    `Report: ${settings.outDir}/${written.html} and ${settings.outDir}/${written.markdown}`,
  );
  if (settings.json) console.log(JSON.stringify(summary));
}

/**
 * A summary for JSON: a statistic the sample count does not support is
 * null, never a number that is really the maximum.
 */
function jsonSummary(summary: SampleSummary): Record<keyof SampleSummary, number | null> {
  return {
    count: summary.count,
    min: summary.min ?? null,
    mean: summary.mean ?? null,
    p50: summary.p50 ?? null,
    p90: summary.p90 ?? null,
    p99: summary.p99 ?? null,
    p999: summary.p999 ?? null,
    max: summary.max ?? null,
  };
}

function benchSummary(
  run: BenchRun,
  extras: SummaryExtras,
  outDir: string,
  written: WrittenReport,
) {
  const mean = (values: readonly number[]) =>
    values.length === 0 ? 0 : values.reduce((sum, value) => sum + value, 0) / values.length;
  const failover = summarize(run.failoverWindowsMs);
  return {
    ok: run.checks.every((check) => check.ok),
    out: outDir,
    report: { html: `${outDir}/${written.html}`, markdown: `${outDir}/${written.markdown}` },
    charts: written.charts.map((chart) => `${outDir}/${chart}`),
    checks_passed: run.checks.filter((check) => check.ok).length,
    checks_total: run.checks.length,
    failed_checks: run.checks.filter((check) => !check.ok).map((check) => check.name),
    iterations: run.iterations.fetchLatencyMs.length,
    topic_creation_latency_ms_mean: mean(run.iterations.topicCreationLatencyMs),
    iteration_publish_throughput_per_second_mean: mean(run.iterations.publishThroughputPerSecond),
    fetch_latency_ms_mean: mean(run.iterations.fetchLatencyMs),
    sequential_publish_ms: jsonSummary(run.latencies.sequentialPublish.summary),
    pipelined_publish_ms: jsonSummary(run.latencies.pipelinedPublish.summary),
    pipelined_throughput_per_second: extras.pipelinedThroughputPerSecond,
    raw_pipelined_throughput_per_second: extras.rawThroughputPerSecond,
    publish_to_delivery_ms: jsonSummary(run.latencies.publishToDelivery.summary),
    failover_windows_ms: run.failoverWindowsMs,
    failover_window_ms: jsonSummary(failover),
    failover_window_p50_ms: failover.p50 ?? null,
    failover_window_p99_ms: failover.p99 ?? null,
    failovers_without_ack: extras.failedFailovers,
    resync_under_load_ms: extras.resyncMs.map((value) => value ?? null),
    duration_seconds: run.durationSeconds,
  };
}
