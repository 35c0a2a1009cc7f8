/**
 * An interleaved A/B of one publish at a time: two local 3-peer clusters run
 * side by side, A from another checkout (`--old DIR`, default this one) and
 * B from this one, each with its own V8 flags, and one client process sends
 * one publish at a time to A for a slice (100 ms), then to B, and so on. Each
 * arm keeps its own latency histogram and the CPU time its peers and the
 * client spent in its slices.
 *
 * Why: on a shared 2-core virtual machine the same build gives p50 0.58-0.90
 * ms in runs taken minutes apart, more than the effects worth looking for.
 * Alternating slices puts both arms under the same moments of the machine; two
 * identical arms agree within a few µs at p50 (0.691 against 0.695 ms over 60
 * s). The idle cluster costs the other almost nothing (heartbeats).
 *
 * ```sh
 * git worktree add /tmp/old HEAD~1
 * deno task bench:ab --old /tmp/old --seconds 60
 * deno task bench:ab --v8-b --max-semi-space-size=32 --seconds 60
 * ```
 *
 * @module
 */

import { LatencyHistogram } from "../lib/bench/histogram.ts";
import { payloadOf } from "../lib/bench/workloads.ts";
import { Progress } from "../lib/bench/progress.ts";
import { processCpuTicks, ticksPerSecond } from "./topics.ts";

/** Longest run, in seconds. */
export const abSecondsMax = 3600;
/** Shortest and longest slice, in ms. */
export const abSliceMsMin = 10;
export const abSliceMsMax = 10_000;
/** Publishes sent to an arm before its slice is timed: its connection and caches warm up again. */
const settlePublishes = 5;
/** The pipelined warm-up of both clusters before the slices start (the JIT tiers up). */
const warmUpMs = 2000;
/** Publishes in flight per cluster during the warm-up. */
const warmUpInFlight = 32;

/** Settings of one A/B run. */
export interface AbSettings {
  /** The checkout A runs from (its `main.ts` and its client). */
  oldDir: string;
  seconds: number;
  sliceMs: number;
  /** Message size in bytes. */
  size: number;
  /** V8 flags of A's and B's peers (comma-separated, as `--v8-flags` takes them). */
  v8A: string;
  v8B: string;
  /** Publish without producer ids (no deduplication), as NATS's benchmark does. */
  plain: boolean;
  json: boolean;
}

/** What one arm measured. */
export interface ArmResult {
  name: "A" | "B";
  publishes: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  /** Share of publishes that took over 1, 1.5 and 2 ms, in %. */
  over1MsPercent: number;
  over1p5MsPercent: number;
  over2MsPercent: number;
  /** CPU time of the arm's three peers per publish, in µs, over its slices. */
  peersCpuUs: number;
  /** CPU time of this process per publish, in µs, over the arm's slices (its client's work). */
  clientCpuUs: number;
}

const usage = `Usage: deno task bench:ab [options]

One publish at a time against two local 3-peer clusters, alternating slices:
A runs from --old DIR (default: this checkout), B from this checkout.

Options:
  --old DIR          checkout A runs from (default: this one)
  --seconds N        length of the timed part (default 60, at most ${abSecondsMax})
  --slice-ms N       length of one slice (default 100, ${abSliceMsMin}-${abSliceMsMax})
  --size N           message size in bytes (default 100)
  --v8-a FLAGS       V8 flags of A's peers, comma-separated (e.g. --max-semi-space-size=32)
  --v8-b FLAGS       V8 flags of B's peers
  --plain            publish without producer ids (no deduplication)
  --json             print the result as JSON
  --help             show this text`;

/** The flags that take a value. */
const valueFlags = ["--old", "--seconds", "--slice-ms", "--size", "--v8-a", "--v8-b"];

/** Thrown for `--help`: the caller prints the usage and exits 0. */
export class AbHelpRequested extends Error {}

/**
 * Parses the tool's arguments; throws a RangeError naming the wrong one.
 *
 * @example
 * ```ts
 * import { parseAbArgs } from "./ab.ts";
 *
 * console.log(parseAbArgs(["--seconds", "30"]).seconds); // 30
 * ```
 */
export function parseAbArgs(args: readonly string[], here = defaultDir()): AbSettings {
  const settings: AbSettings = {
    oldDir: here,
    seconds: 60,
    sliceMs: 100,
    size: 100,
    v8A: "",
    v8B: "",
    plain: false,
    json: false,
  };
  for (let index = 0; index < args.length; index++) {
    const flag = args[index];
    if (flag === "--help" || flag === "-h") throw new AbHelpRequested(usage);
    if (flag === "--json" || flag === "--plain") {
      settings[flag === "--json" ? "json" : "plain"] = true;
      continue;
    }
    if (!valueFlags.includes(flag)) {
      throw new RangeError(`Cannot run as '${flag}' is not a flag of bench/ab.ts`);
    }
    const value = args[++index];
    if (value === undefined) throw new RangeError(`Cannot run as '${flag}' needs a value`);
    if (flag === "--old") settings.oldDir = value.replace(/\/+$/, "");
    else if (flag === "--seconds") settings.seconds = count(flag, value, 1, abSecondsMax);
    else if (flag === "--slice-ms") {
      settings.sliceMs = count(flag, value, abSliceMsMin, abSliceMsMax);
    } else if (flag === "--size") settings.size = count(flag, value, 16, 1024 * 1024);
    else if (flag === "--v8-a") settings.v8A = value;
    else settings.v8B = value;
  }
  return settings;
}

function count(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot run as '${flag}' must be an integer from ${min} to ${max}: current value is '${text}'`,
    );
  }
  return value;
}

function defaultDir(): string {
  return new URL("..", import.meta.url).pathname.replace(/\/+$/, "");
}

interface Client {
  createTopic(name: string): Promise<unknown>;
  publish(topic: string, message: string): Promise<unknown>;
  close(): Promise<void>;
}

interface Cluster {
  nodes: readonly { address: string; pid?: number }[];
  stop(): Promise<void>;
}

/** One side: a cluster and its client, both from the arm's checkout. */
interface Arm {
  cluster: Cluster;
  client: Client;
  pids: number[];
  histogram: LatencyHistogram;
  over: [number, number, number];
  peersCpu: number;
  clientCpu: number;
}

/** Loads `dir`'s cluster launcher and client: each arm runs its own build of both. */
async function armModules(dir: string) {
  const cluster = await import(`${dir}/lib/bench/local_cluster.ts`);
  const client = await import(`${dir}/lib/client/client.ts`);
  return {
    start: cluster.startLocalCluster as (count: number) => Promise<Cluster>,
    connect: client.PubSubClient.connect as (
      options: { peers: string[]; idempotent: boolean },
    ) => Promise<Client>,
  };
}

/** Starts one arm with its peers' V8 flags (read from the environment when they spawn). */
async function startArm(dir: string, v8Flags: string, plain: boolean): Promise<Arm> {
  const { start, connect } = await armModules(dir);
  const before = Deno.env.get("PUBSUB_BENCH_V8_FLAGS");
  Deno.env.set("PUBSUB_BENCH_V8_FLAGS", v8Flags);
  let cluster: Cluster;
  try {
    cluster = await start(3);
  } finally {
    if (before === undefined) Deno.env.delete("PUBSUB_BENCH_V8_FLAGS");
    else Deno.env.set("PUBSUB_BENCH_V8_FLAGS", before);
  }
  try {
    const client = await connect({
      peers: cluster.nodes.map((node) => node.address),
      idempotent: !plain,
    });
    const pids = cluster.nodes.map((node) => node.pid ?? 0);
    return {
      cluster,
      client,
      pids,
      histogram: new LatencyHistogram(),
      over: [0, 0, 0],
      peersCpu: 0,
      clientCpu: 0,
    };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

/** CPU time (user + system) of `pid`, in µs. */
function cpuUs(pid: number): number {
  return processCpuTicks(pid) * 1_000_000 / ticksPerSecond;
}

function armResult(name: "A" | "B", arm: Arm): ArmResult {
  const publishes = arm.histogram.count;
  const share = (over: number) => publishes === 0 ? 0 : over / publishes * 100;
  return {
    name,
    publishes,
    p50Ms: arm.histogram.percentile(50),
    p90Ms: arm.histogram.percentile(90),
    p99Ms: arm.histogram.percentile(99),
    p999Ms: arm.histogram.percentile(99.9),
    over1MsPercent: share(arm.over[0]),
    over1p5MsPercent: share(arm.over[1]),
    over2MsPercent: share(arm.over[2]),
    peersCpuUs: publishes === 0 ? 0 : arm.peersCpu / publishes,
    clientCpuUs: publishes === 0 ? 0 : arm.clientCpu / publishes,
  };
}

/**
 * Runs the A/B and returns both arms; stops every peer it started, also on
 * error or when `signal` aborts (the timed part then ends early).
 *
 * @example
 * ```ts
 * import { parseAbArgs, runAb } from "./ab.ts";
 *
 * const [a, b] = await runAb(parseAbArgs(["--seconds", "10"]));
 * console.log(b.p50Ms / a.p50Ms);
 * ```
 */
export async function runAb(
  settings: AbSettings,
  signal?: AbortSignal,
  progress?: Progress,
): Promise<[ArmResult, ArmResult]> {
  const arms: Arm[] = [];
  try {
    arms.push(await startArm(settings.oldDir, settings.v8A, settings.plain));
    arms.push(await startArm(defaultDir(), settings.v8B, settings.plain));
    const payload = payloadOf(settings.size);
    for (const arm of arms) await arm.client.createTopic("ab");
    const warmEnd = performance.now() + warmUpMs;
    await Promise.all(arms.flatMap((arm) =>
      Array.from({ length: warmUpInFlight }, async () => {
        while (performance.now() < warmEnd) await arm.client.publish("ab", payload);
      })
    ));
    const end = performance.now() + settings.seconds * 1000;
    let turn = 0;
    while (performance.now() < end && signal?.aborted !== true) {
      const arm = arms[turn++ % 2];
      for (let index = 0; index < settlePublishes; index++) await arm.client.publish("ab", payload);
      const peersBefore = arm.pids.reduce((sum, pid) => sum + cpuUs(pid), 0);
      const clientBefore = cpuUs(Deno.pid);
      const sliceEnd = Math.min(end, performance.now() + settings.sliceMs);
      while (performance.now() < sliceEnd) {
        const startedMs = performance.now();
        await arm.client.publish("ab", payload);
        const ms = performance.now() - startedMs;
        arm.histogram.recordMilliseconds(ms);
        if (ms > 1) arm.over[0]++;
        if (ms > 1.5) arm.over[1]++;
        if (ms > 2) arm.over[2]++;
      }
      arm.peersCpu += arm.pids.reduce((sum, pid) => sum + cpuUs(pid), 0) - peersBefore;
      arm.clientCpu += cpuUs(Deno.pid) - clientBefore;
      progress?.update(arms.reduce((sum, each) => sum + each.histogram.count, 0));
    }
    progress?.done();
    return [armResult("A", arms[0]), armResult("B", arms[1])];
  } finally {
    for (const arm of arms) await arm.client.close().catch(() => {});
    await Promise.all(arms.map((arm) => arm.cluster.stop()));
  }
}

/**
 * Both arms as a Markdown table, with B ÷ A.
 *
 * @example
 * ```ts
 * import { formatAb } from "./ab.ts";
 *
 * const arm = { publishes: 1, p50Ms: 1, p90Ms: 1, p99Ms: 1, p999Ms: 1, over1MsPercent: 0,
 *   over1p5MsPercent: 0, over2MsPercent: 0, peersCpuUs: 1, clientCpuUs: 1 };
 * console.log(formatAb([{ name: "A", ...arm }, { name: "B", ...arm }]));
 * ```
 */
export function formatAb(arms: readonly [ArmResult, ArmResult]): string {
  const rows: [string, (arm: ArmResult) => number, number][] = [
    ["publishes", (arm) => arm.publishes, 0],
    ["p50 (ms)", (arm) => arm.p50Ms, 3],
    ["p90 (ms)", (arm) => arm.p90Ms, 3],
    ["p99 (ms)", (arm) => arm.p99Ms, 3],
    ["p99.9 (ms)", (arm) => arm.p999Ms, 3],
    ["over 1 ms (%)", (arm) => arm.over1MsPercent, 2],
    ["over 1.5 ms (%)", (arm) => arm.over1p5MsPercent, 2],
    ["over 2 ms (%)", (arm) => arm.over2MsPercent, 2],
    ["peers' CPU per publish (µs)", (arm) => arm.peersCpuUs, 0],
    ["client's CPU per publish (µs)", (arm) => arm.clientCpuUs, 0],
  ];
  const lines = ["| measure | A | B | B ÷ A |", "| --- | --- | --- | --- |"];
  for (const [label, value, digits] of rows) {
    const [a, b] = [value(arms[0]), value(arms[1])];
    const ratio = a === 0 ? "–" : `${(b / a).toFixed(3)}×`;
    lines.push(`| ${label} | ${a.toFixed(digits)} | ${b.toFixed(digits)} | ${ratio} |`);
  }
  return lines.join("\n");
}

async function main(args: string[]): Promise<number> {
  let settings: AbSettings;
  try {
    settings = parseAbArgs(args);
  } catch (error) {
    if (error instanceof AbHelpRequested) {
      console.log(error.message);
      return 0;
    }
    console.error(`bench/ab.ts: ${(error as Error).message}`);
    return 2;
  }
  try {
    await Deno.stat(`${settings.oldDir}/lib/bench/local_cluster.ts`);
  } catch {
    console.error(`bench/ab.ts: '${settings.oldDir}' is not a pubsub checkout (--old)`);
    return 2;
  }
  const stopping = new AbortController();
  const stop = () => stopping.abort();
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, stop);
  try {
    const progress = settings.json
      ? undefined
      : new Progress("one publish at a time, A and B in turns", { unit: "publishes" });
    const arms = await runAb(settings, stopping.signal, progress);
    console.log(settings.json ? JSON.stringify(arms, null, 2) : formatAb(arms));
    return stopping.signal.aborted ? 130 : 0;
  } finally {
    for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(signal, stop);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
