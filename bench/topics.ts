/**
 * What many topics cost a cluster (issue 11, item 6): a local 3-peer cluster
 * (cluster secret, replication factor 3, the peers' default failure
 * detector: heartbeats every 3 s) creates N topics with requests
 * pipelined on one connection, publishes one message to each, stays quiet for
 * 10 s, and then each peer's resident memory (`VmRSS`), open file
 * descriptors and CPU use over the next 10 s are read from `/proc`.
 *
 * ```sh
 * deno task bench:topics --topics 1000,5000,10000
 * deno run -A bench/topics.ts --topics 1000 --json
 * ```
 *
 * Targets at 10,000 topics: creation under 60 s; per peer under 300 MiB RSS,
 * under 1,000 open fds and under 2% of one core while idle.
 *
 * @module
 */

import { type BenchCluster, startLocalCluster } from "../lib/bench/local_cluster.ts";
import type { PubSubClient } from "../lib/client/client.ts";
import { PubSubError } from "../lib/client/errors.ts";

/** Requests in flight on the one client connection while creating and publishing. */
export const requestsInFlightDefault = 512;
/** Seconds the cluster stays quiet before its idle cost is measured. */
export const quietSecondsDefault = 10;
/** Seconds over which idle CPU is measured. */
export const cpuSecondsDefault = 10;
/**
 * Attempts per request: a request that waits too long for a new topic's
 * group to open answers `unavailable` and is sent again.
 */
export const attemptsMax = 10;
/** Most topics one run creates (the peers' default `--max-topics`). */
export const topicsMax = 10_000;

/** Settings of one benchmark invocation. */
export interface TopicsBenchSettings {
  /** Topic counts, one fresh cluster each. */
  topics: number[];
  requestsInFlight: number;
  quietSeconds: number;
  cpuSeconds: number;
  json: boolean;
}

/** What one peer costs once idle. */
export interface PeerCost {
  node: number;
  rssMiB: number;
  fds: number;
  /** CPU time over the measured window, in % of one core. */
  cpuPercent: number;
}

/** The figures of one run. */
export interface TopicsBenchResult {
  topics: number;
  createSeconds: number;
  publishSeconds: number;
  peers: PeerCost[];
  /** The 1-minute load average of the machine when the idle measurement ended. */
  loadAverage: number;
}

/**
 * Parses the bench's arguments; throws a RangeError naming the wrong one.
 *
 * @example
 * ```ts
 * import { parseTopicsBenchArgs } from "./topics.ts";
 *
 * const settings = parseTopicsBenchArgs(["--topics", "1000,5000"]);
 * console.log(settings.topics); // [1000, 5000]
 * ```
 */
export function parseTopicsBenchArgs(args: readonly string[]): TopicsBenchSettings {
  const settings: TopicsBenchSettings = {
    topics: [1000],
    requestsInFlight: requestsInFlightDefault,
    quietSeconds: quietSecondsDefault,
    cpuSeconds: cpuSecondsDefault,
    json: false,
  };
  for (let index = 0; index < args.length; index++) {
    const flag = args[index];
    if (flag === "--json") {
      settings.json = true;
      continue;
    }
    const value = args[++index];
    if (value === undefined) throw new RangeError(`Cannot run as '${flag}' needs a value`);
    if (flag === "--topics") settings.topics = value.split(",").map((part) => count(flag, part));
    else if (flag === "--in-flight") settings.requestsInFlight = count(flag, value);
    else if (flag === "--quiet") settings.quietSeconds = count(flag, value);
    else if (flag === "--cpu-window") settings.cpuSeconds = count(flag, value);
    else throw new RangeError(`Cannot run as '${flag}' is not a flag of bench/topics.ts`);
  }
  const tooMany = settings.topics.find((topics) => topics > topicsMax);
  if (tooMany !== undefined) {
    throw new RangeError(
      `Cannot run as '--topics' must be at most ${topicsMax}: current value is ${tooMany}`,
    );
  }
  return settings;
}

function count(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot run as '${flag}' must be a positive integer: current value is '${text}'`,
    );
  }
  return value;
}

/**
 * Runs `task(index)` for every index below `total`, at most `inFlight` at a time.
 *
 * @example
 * ```ts
 * import { pipelined } from "./topics.ts";
 *
 * await pipelined(100, 10, async (index) => console.log(index));
 * ```
 */
export async function pipelined(
  total: number,
  inFlight: number,
  task: (index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < total) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, worker));
}

/**
 * Resident memory, open fds and cumulative CPU time of a process, from `/proc`.
 *
 * @example
 * ```ts
 * import { processSample } from "./topics.ts";
 *
 * const sample = await processSample(Deno.pid);
 * console.log(sample.rssKiB, sample.fds, sample.cpuTicks);
 * ```
 */
export async function processSample(
  pid: number,
): Promise<{ rssKiB: number; fds: number; cpuTicks: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  let fds = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) fds++;
  return { rssKiB: rss === null ? 0 : Number(rss[1]), fds, cpuTicks: processCpuTicks(pid) };
}

/**
 * CPU time (user + system) of a process so far, in clock ticks of
 * `/proc/<pid>/stat` ({@linkcode ticksPerSecond} per second).
 *
 * @example
 * ```ts
 * import { processCpuTicks } from "./topics.ts";
 *
 * console.log(processCpuTicks(Deno.pid));
 * ```
 */
export function processCpuTicks(pid: number): number {
  // Fields after the command name (which may hold spaces) start at field 3;
  // utime and stime are fields 14 and 15.
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux). */
export const ticksPerSecond = 100;

/**
 * Measures each peer's idle cost: RSS and fds at the end of a window of
 * `cpuSeconds`, CPU over it.
 */
async function measureIdle(cluster: BenchCluster, cpuSeconds: number): Promise<PeerCost[]> {
  const pids = cluster.nodes.map((node) => {
    if (node.pid === undefined) throw new Error(`Node ${node.id} has no process id`);
    return node.pid;
  });
  const before = await Promise.all(pids.map(processSample));
  const startMs = performance.now();
  await new Promise((resolve) => setTimeout(resolve, cpuSeconds * 1000));
  const after = await Promise.all(pids.map(processSample));
  const seconds = (performance.now() - startMs) / 1000;
  return cluster.nodes.map((node, index) => ({
    node: node.id,
    rssMiB: after[index].rssKiB / 1024,
    fds: after[index].fds,
    cpuPercent: (after[index].cpuTicks - before[index].cpuTicks) / ticksPerSecond / seconds * 100,
  }));
}

async function timed(task: () => Promise<void>): Promise<number> {
  const startMs = performance.now();
  await task();
  return (performance.now() - startMs) / 1000;
}

/** Runs `request` again while it answers `unavailable` (at most `attemptsMax` times). */
async function retried(request: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      await request();
      return;
    } catch (error) {
      const again = error instanceof PubSubError && error.code === "unavailable";
      if (!again || attempt >= attemptsMax) throw error;
    }
  }
}

/** Seconds between two progress lines on stderr while a phase runs. */
export const progressSecondsDefault = 10;

/**
 * Runs `task` for every topic index, pipelined, printing how many are done
 * every `progressSecondsDefault` seconds (a long phase shows where it stands).
 */
async function phase(
  label: string,
  topics: number,
  inFlight: number,
  task: (index: number) => Promise<void>,
): Promise<number> {
  let done = 0;
  const startMs = performance.now();
  const progress = setInterval(() => {
    const seconds = ((performance.now() - startMs) / 1000).toFixed(0);
    console.error(`bench/topics.ts: ${label} ${done}/${topics} after ${seconds} s`);
  }, progressSecondsDefault * 1000);
  try {
    return await timed(() =>
      pipelined(topics, inFlight, (index) => task(index).then(() => done++))
    );
  } finally {
    clearInterval(progress);
  }
}

async function createAndPublish(
  client: PubSubClient,
  topics: number,
  inFlight: number,
): Promise<{ createSeconds: number; publishSeconds: number }> {
  const name = (index: number) => `bench-topic-${index}`;
  const createSeconds = await phase(
    "create",
    topics,
    inFlight,
    (index) => retried(() => client.createTopic(name(index), { ifNotExists: true })),
  );
  const publishSeconds = await phase(
    "publish",
    topics,
    inFlight,
    (index) => retried(() => client.publish(name(index), `message ${index}`)),
  );
  return { createSeconds, publishSeconds };
}

/**
 * One run: a fresh local 3-peer cluster, `topics` topics created and
 * published to, then its idle cost; the cluster is stopped afterwards.
 *
 * @example
 * ```ts
 * import { parseTopicsBenchArgs, runTopicsBench } from "./topics.ts";
 *
 * const result = await runTopicsBench(1000, parseTopicsBenchArgs([]));
 * console.log(result.createSeconds, result.peers);
 * ```
 */
export async function runTopicsBench(
  topics: number,
  settings: TopicsBenchSettings,
): Promise<TopicsBenchResult> {
  const cluster = await startLocalCluster(3, { peerArgs: ["--log-level", "warning"] });
  // Ctrl-C or a kill stops the peers too, instead of leaving them running.
  const stop = () => cluster.stop().finally(() => Deno.exit(130));
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, stop);
  try {
    const client = await cluster.client(undefined, { requestTimeoutMs: 60_000 });
    let timings: { createSeconds: number; publishSeconds: number };
    try {
      timings = await createAndPublish(client, topics, settings.requestsInFlight);
    } finally {
      await client.close();
    }
    await new Promise((resolve) => setTimeout(resolve, settings.quietSeconds * 1000));
    const peers = await measureIdle(cluster, settings.cpuSeconds);
    const result = { topics, ...timings, peers, loadAverage: Deno.loadavg()[0] };
    // Printed before the cluster stops: deleting 30,000 replica directories takes a while.
    if (!settings.json) console.error(formatTopicsBench([result]).split("\n").slice(2).join("\n"));
    return result;
  } finally {
    for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(signal, stop);
    await cluster.stop();
  }
}

/**
 * The results as a Markdown table, one row per peer and run.
 *
 * @example
 * ```ts
 * import { formatTopicsBench } from "./topics.ts";
 *
 * console.log(formatTopicsBench([]));
 * ```
 */
export function formatTopicsBench(results: readonly TopicsBenchResult[]): string {
  const lines = [
    "| topics | create (s) | publish (s) | peer | RSS (MiB) | open fds | idle CPU (% of a core) | load avg |",
    "| ------ | ---------- | ----------- | ---- | --------- | -------- | ---------------------- | -------- |",
  ];
  for (const result of results) {
    for (const peer of result.peers) {
      lines.push(
        `| ${result.topics} | ${result.createSeconds.toFixed(1)} | ${
          result.publishSeconds.toFixed(1)
        } | ${peer.node} | ${peer.rssMiB.toFixed(0)} | ${peer.fds} | ${
          peer.cpuPercent.toFixed(1)
        } | ${result.loadAverage.toFixed(1)} |`,
      );
    }
  }
  return lines.join("\n");
}

const usage = `Usage: deno task bench:topics [options]

Creates N topics (3 replicas each) on a local 3-peer cluster, publishes one
message to each, then reports each peer's RSS, open fds and idle CPU.

Options:
  --topics N[,N...]   topic counts, one run each (default 1000, at most ${topicsMax})
  --in-flight N       create requests in flight (default ${requestsInFlightDefault})
  --quiet N           seconds of quiet before the idle measurement (default ${quietSecondsDefault})
  --cpu-window N      seconds the idle CPU is measured over (default ${cpuSecondsDefault})
  --json              print the results as JSON
  --help              show this text`;

async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage);
    return 0;
  }
  let settings: TopicsBenchSettings;
  try {
    settings = parseTopicsBenchArgs(args);
  } catch (error) {
    console.error(`bench/topics.ts: ${(error as Error).message}`);
    return 2;
  }
  const results: TopicsBenchResult[] = [];
  for (const topics of settings.topics) {
    results.push(await runTopicsBench(topics, settings));
  }
  console.log(settings.json ? JSON.stringify(results, null, 2) : formatTopicsBench(results));
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
