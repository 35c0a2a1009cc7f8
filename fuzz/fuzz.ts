/**
 * `deno task fuzz`: generated inputs thrown at every decoder at the edge of
 * a peer, in-process, and at a live 3-peer cluster with a cluster secret,
 * over real TCP on 127.0.0.1, while a well-behaved client publishes and
 * checks its acknowledged messages, and every peer is pinged and watched.
 *
 * Everything is derived from one seed (`--seed`); the live part also
 * depends on timing, its inputs do not. Exit code 0 when no case crashed,
 * hung or got an unexpected answer or exception; 1 otherwise; 2 for a usage
 * error. Every process started is stopped by its PID.
 *
 * Usage: deno run -A fuzz/fuzz.ts [--cases N] [--seed S] [--live-share F] [--json]
 *
 * @module
 */

import { Progress } from "../lib/bench/progress.ts";
import { type FuzzCluster, startFuzzCluster, stopAllClusters } from "./_cluster.ts";
import { runDecoders } from "./_decoders.ts";
import { runLive } from "./_live.ts";
import { Tally } from "./_tally.ts";
import { startWatch, type WatchReport } from "./_watch.ts";

/** Cases of a run without `--cases`. */
export const casesDefault = 1_000_000;
/** Share of the cases sent to the live cluster without `--live-share`. */
export const liveShareDefault = 0.3;
/** Peers of the live cluster. */
export const clusterPeers = 3;

const usage = `Usage: deno task fuzz [options]

Throws generated inputs at every decoder in-process and at a live 3-peer
cluster (with a cluster secret, on 127.0.0.1) and checks that nothing
crashes, hangs, answers unexpectedly or loses an acknowledged message.

Options:
  --cases N        cases to run in all (default ${casesDefault.toLocaleString("en-US")})
  --seed S         seed of every generated input (default: random, printed)
  --live-share F   share of the cases sent to the live cluster, 0-1 (default ${liveShareDefault})
  --json           print the report as JSON
  --help           show this help`;

/** Parsed options. */
export interface FuzzOptions {
  cases: number;
  seed: number;
  liveShare: number;
  json: boolean;
  help: boolean;
}

/** A bad command line (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

function integerFlag(flag: string, text: string | undefined, min: number, max: number): number {
  const value = Number(text);
  if (text === undefined || !/^-?\d+$/.test(text) || value < min || value > max) {
    throw new UsageError(`Option ${flag} must be an integer between ${min} and ${max}`);
  }
  return value;
}

/**
 * Parses the command line.
 *
 * @example
 * ```ts
 * const options = parseFuzzArgs(["--cases", "20000", "--seed", "7"]);
 * ```
 */
export function parseFuzzArgs(args: string[]): FuzzOptions {
  const options: FuzzOptions = {
    cases: casesDefault,
    seed: Math.floor(Math.random() * 2 ** 31),
    liveShare: liveShareDefault,
    json: false,
    help: false,
  };
  for (let index = 0; index < args.length; index++) {
    const flag = args[index];
    if (flag === "--cases") options.cases = integerFlag(flag, args[++index], 1, 1e9);
    else if (flag === "--seed") options.seed = integerFlag(flag, args[++index], 0, 2 ** 31 - 1);
    else if (flag === "--live-share") {
      const text = args[++index];
      const share = Number(text);
      if (text === undefined || !(share >= 0 && share <= 1)) {
        throw new UsageError("Option --live-share must be a number between 0 and 1");
      }
      options.liveShare = share;
    } else if (flag === "--json") options.json = true;
    else if (flag === "--help" || flag === "-h") options.help = true;
    else throw new UsageError(`Unknown option '${flag}' (see --help)`);
  }
  return options;
}

/** The outcome of a run. */
export interface FuzzReport {
  ok: boolean;
  seed: number;
  cases: number;
  durationMs: number;
  command: string;
  targets: Record<string, { cases: number; crashes: number; hangs: number; unexpected: number }>;
  totals: { cases: number; crashes: number; hangs: number; unexpected: number };
  cluster: { peers: number; pids: number[] } | undefined;
  watch: WatchReport | undefined;
  failures: { target: string; kind: string; detail: string; input: string }[];
  failuresTotal: number;
}

async function livePhase(
  options: FuzzOptions,
  cases: number,
  tally: Tally,
  progress: (cases: number) => void,
): Promise<{ cluster: FuzzCluster; watch: WatchReport }> {
  const cluster = await startFuzzCluster(clusterPeers);
  try {
    const watch = await startWatch(cluster, tally);
    const ports = cluster.peers.map((peer) => peer.port);
    await runLive({ ports, cases, seed: options.seed, tally, progress });
    return { cluster, watch: await watch.finish() };
  } finally {
    await cluster.stop();
  }
}

/**
 * Runs the fuzzer and returns its report.
 *
 * @example
 * ```ts
 * const report = await runFuzz(parseFuzzArgs(["--cases", "20000"]));
 * console.log(report.ok);
 * ```
 */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const liveCases = Math.round(options.cases * options.liveShare);
  const tally = new Tally();
  const started = performance.now();
  const progress = Deno.stderr.isTerminal() && !options.json
    ? new Progress("fuzz", { unit: "cases", write: writeStderr, isTerminal: true })
    : undefined;
  const counts = { decoders: 0, live: 0 };
  const show = (part: "decoders" | "live", cases: number) => {
    counts[part] = cases;
    progress?.update(counts.decoders + counts.live);
  };
  const decoders = runDecoders({
    seed: options.seed,
    cases: options.cases - liveCases,
    tally,
    progress: (cases) => show("decoders", cases),
  });
  let live: { cluster: FuzzCluster; watch: WatchReport } | undefined;
  try {
    if (liveCases > 0) {
      live = await livePhase(options, liveCases, tally, (cases) => show("live", cases));
    }
  } finally {
    await decoders;
    progress?.done();
  }
  return buildReport(options, tally, performance.now() - started, live);
}

function buildReport(
  options: FuzzOptions,
  tally: Tally,
  durationMs: number,
  live: { cluster: FuzzCluster; watch: WatchReport } | undefined,
): FuzzReport {
  const totals = tally.totals();
  const ok = tally.failures === 0 && (live === undefined || live.watch.verified);
  return {
    ok,
    seed: options.seed,
    cases: totals.cases,
    durationMs: Math.round(durationMs),
    command:
      `deno task fuzz --cases ${options.cases} --seed ${options.seed} --live-share ${options.liveShare}`,
    targets: Object.fromEntries([...tally.targets].sort(([a], [b]) => a.localeCompare(b))),
    totals,
    cluster: live === undefined
      ? undefined
      : { peers: live.cluster.peers.length, pids: live.cluster.peers.map((peer) => peer.pid) },
    watch: live?.watch,
    failures: tally.kept,
    failuresTotal: tally.failures,
  };
}

/** The report as text: a table of targets, the watch, failures, and how to reproduce. */
export function formatReport(report: FuzzReport): string {
  const grouped = (value: number) => value.toLocaleString("en-US");
  const width = Math.max(...Object.keys(report.targets).map((name) => name.length), 5);
  const row = (name: string, counts: FuzzReport["totals"]) =>
    `${name.padEnd(width)}  ${grouped(counts.cases).padStart(11)}  ${
      String(counts.crashes).padStart(7)
    }  ${String(counts.hangs).padStart(5)}  ${String(counts.unexpected).padStart(10)}`;
  const lines = [
    `fuzz: ${grouped(report.cases)} cases in ${
      (report.durationMs / 1000).toFixed(1)
    } s, seed ${report.seed}`,
    `${"target".padEnd(width)}  ${"cases".padStart(11)}  crashes  hangs  unexpected`,
    ...Object.entries(report.targets).map(([name, counts]) => row(name, counts)),
    row("total", report.totals),
  ];
  if (report.cluster !== undefined && report.watch !== undefined) {
    const watch = report.watch;
    lines.push(
      `live cluster: ${report.cluster.peers} peers (pids ${report.cluster.pids.join(", ")}); ` +
        `${grouped(watch.acknowledged)} acknowledged publishes ${
          watch.verified ? "all stored" : "NOT all stored"
        }, ${watch.publishErrors} publish errors; ${grouped(watch.pings)} pings, slowest ${
          Math.round(watch.pingMaxMs)
        } ms`,
    );
  }
  for (const failure of report.failures) {
    lines.push(
      `${failure.kind} in ${failure.target}: ${failure.detail}\n  input: ${failure.input}`,
    );
  }
  if (report.failuresTotal > report.failures.length) {
    lines.push(`... and ${report.failuresTotal - report.failures.length} more failures`);
  }
  lines.push(report.ok ? "result: ok" : `result: FAILED\nreproduce with: ${report.command}`);
  return lines.join("\n");
}

const encoder = new TextEncoder();

function writeStderr(text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
}

/**
 * The command: parses `args`, runs, prints, and returns the exit code.
 *
 * @example
 * ```ts
 * const code = await fuzzCommand(["--cases", "20000", "--json"]);
 * ```
 */
export async function fuzzCommand(args: string[]): Promise<number> {
  let options: FuzzOptions;
  try {
    options = parseFuzzArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`fuzz: ${error.message}`);
    return 2;
  }
  if (options.help) {
    console.log(usage);
    return 0;
  }
  // Interrupted: the peers are stopped by PID before the fuzzer exits, never left behind.
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  const interrupted = () => stopAllClusters().finally(() => Deno.exit(130));
  for (const name of signals) Deno.addSignalListener(name, interrupted);
  let report: FuzzReport;
  try {
    report = await runFuzz(options);
  } finally {
    for (const name of signals) Deno.removeSignalListener(name, interrupted);
  }
  console.log(options.json ? JSON.stringify(report, null, 2) : formatReport(report));
  return report.ok ? 0 : 1;
}

if (import.meta.main) Deno.exit(await fuzzCommand(Deno.args));
