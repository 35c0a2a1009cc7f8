/**
 * `pubsub verify`: a Jepsen-style check of a live cluster. Idempotent
 * producers, durable subscribers and fetchers run while a seeded nemesis
 * kills, pauses, partitions (through a proxy between the peers), slows and
 * reshapes the cluster; then it heals, drains, reads every replica's own
 * copy and checks the history (`lib/verify/checker.ts`). Exit code 0 when
 * no anomaly was found, 1 otherwise, 130 when interrupted.
 *
 * @module
 */

import { InvalidArgumentError } from "commander";
import { Progress } from "../bench/progress.ts";
import { anomalyKinds } from "../verify/checker.ts";
import type { FaultRecord } from "../verify/history.ts";
import { faultDescriptions, type FaultKind, faultKinds } from "../verify/nemesis.ts";
import { drainTimeoutMsDefault, runVerify, type VerifyResult } from "../verify/run.ts";
import {
  addressList,
  ExitCode,
  integerOption,
  newProgram,
  pidList,
  runProgram,
  UsageError,
} from "./_command.ts";

/** Parsed flags of `pubsub verify`. */
export interface VerifyFlags {
  nodes: number;
  peers?: string[];
  pids?: number[];
  proxyPorts?: Map<number, number>;
  seed?: number;
  duration: number;
  faults?: FaultKind[];
  producers: number;
  subscribers: number;
  fetchers: number;
  drainTimeout: number;
  json: boolean;
  history?: string;
  keepData: boolean;
}

/** Default seconds of workload under faults. */
export const durationSecondsDefault = 30;

/**
 * Runs `pubsub verify` with `args`; resolves to the exit code.
 *
 * @example
 * ```ts
 * import { verifyCommand } from "./verify.ts";
 *
 * const code = await verifyCommand(["--duration", "15", "--seed", "7", "--json"]);
 * ```
 */
export function verifyCommand(args: string[]): Promise<number> {
  const program = newProgram(
    "pubsub verify",
    "Jepsen-style check of a live cluster: workload under injected faults, then a history check",
  )
    .option("--nodes <n>", "peers of the local cluster verify starts", integerOption(3, 9), 3)
    .option("--peers <list>", "verify an existing cluster at host:port,... instead", addressList)
    .option("--pids <list>", "pids of the --peers processes, same order (enables pause)", pidList)
    .option(
      "--proxy-ports <list>",
      "id=port,...: proxy each --peers node on 127.0.0.1:port (peers must advertise it)",
      proxyPortList,
    )
    .option(
      "--seed <n>",
      "seed of the fault schedule (default: random)",
      integerOption(0, 2 ** 32 - 1),
    )
    .option(
      "--duration <s>",
      "seconds of workload under faults",
      integerOption(1, 86_400),
      durationSecondsDefault,
    )
    .option(
      "--faults <list>",
      `fault kinds to inject (default all): ${faultKinds.join(",")}`,
      faultList,
    )
    .option("--producers <n>", "idempotent producers", integerOption(1, 64), 4)
    .option("--subscribers <n>", "durable subscribers", integerOption(0, 64), 2)
    .option("--fetchers <n>", "fetchers checking linearizable reads", integerOption(0, 64), 2)
    .option(
      "--drain-timeout <s>",
      "seconds the healed cluster may take to bring every replica in sync",
      integerOption(1, 3600),
      drainTimeoutMsDefault / 1000,
    )
    .option("--json", "print one JSON object on stdout (progress goes to stderr)", false)
    .option("--history <file>", "write the full history (every operation) as JSON")
    .option("--keep-data", "keep the local cluster's data and logs (kept anyway on failure)", false)
    .addHelpText(
      "after",
      `\nFault kinds:\n${
        faultKinds.map((kind) => `  ${kind.padEnd(15)}${faultDescriptions[kind]}`).join("\n")
      }\n\nAnomalies (any one exits 1): ${anomalyKinds.join(", ")}.
With --peers, verify cannot restart or add peers: no kill or membership faults; pause needs
--pids, partitions need --proxy-ports; replicas are read through subscriptions each peer serves.`,
    )
    .action(async (flags: VerifyFlags) => {
      throw new ExitCode(await runCommand(flags));
    });
  return runProgram(program, args);
}

function proxyPortList(value: string): Map<number, number> {
  const ports = new Map<number, number>();
  for (const item of value.split(",").map((part) => part.trim()).filter(Boolean)) {
    const match = /^(\d+)=(\d{1,5})$/.exec(item);
    const [id, port] = [Number(match?.[1]), Number(match?.[2])];
    if (match === null || id < 1 || port < 1 || port > 65535 || ports.has(id)) {
      throw new InvalidArgumentError(`Expected id=port items with distinct ids, got '${item}'.`);
    }
    ports.set(id, port);
  }
  if (ports.size === 0) throw new InvalidArgumentError("Expected at least one id=port.");
  return ports;
}

function faultList(value: string): FaultKind[] {
  const kinds = value.split(",").map((item) => item.trim()).filter(Boolean);
  for (const kind of kinds) {
    if (!(faultKinds as readonly string[]).includes(kind)) {
      throw new InvalidArgumentError(
        `Unknown fault kind '${kind}' (expected ${faultKinds.join(", ")}).`,
      );
    }
  }
  if (kinds.length === 0) throw new InvalidArgumentError("Expected at least one fault kind.");
  return [...new Set(kinds)] as FaultKind[];
}

/** Where human-readable output goes: stderr when stdout carries JSON. */
class Output {
  readonly #stream: typeof Deno.stdout | typeof Deno.stderr;
  readonly #encoder = new TextEncoder();
  readonly isTerminal: boolean;
  #progress: Progress | undefined;

  constructor(json: boolean) {
    this.#stream = json ? Deno.stderr : Deno.stdout;
    this.isTerminal = this.#stream.isTerminal();
  }

  write(text: string): void {
    const bytes = this.#encoder.encode(text);
    let written = 0;
    while (written < bytes.length) written += this.#stream.writeSync(bytes.subarray(written));
  }

  line(text: string): void {
    // A line printed under a live progress line replaces it; the next update redraws it.
    this.write(`${this.#progress !== undefined && this.isTerminal ? "\r\x1b[2K" : ""}${text}\n`);
  }

  progress(acknowledged: number): void {
    this.#progress ??= new Progress("workload under faults", {
      unit: "acks",
      write: (text) => this.write(text),
      isTerminal: this.isTerminal,
    });
    this.#progress.update(acknowledged);
  }

  progressDone(): void {
    this.#progress?.done();
    this.#progress = undefined;
  }
}

async function runCommand(flags: VerifyFlags): Promise<number> {
  if (flags.pids !== undefined && flags.peers === undefined) {
    throw new UsageError("Option --pids needs --peers");
  }
  if (flags.proxyPorts !== undefined && flags.peers === undefined) {
    throw new UsageError("Option --proxy-ports needs --peers (a local cluster has its own proxy)");
  }
  const seed = flags.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
  const output = new Output(flags.json);
  const stop = new AbortController();
  const onSignal = () => {
    output.line("Interrupted: healing, stopping the workload and every peer...");
    stop.abort();
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const name of signals) Deno.addSignalListener(name, onSignal);
  try {
    output.line(
      flags.peers === undefined
        ? `Starting a local ${flags.nodes}-peer cluster (seed ${seed}, ${flags.duration} s of faults)...`
        : `Verifying the cluster at ${
          flags.peers.join(",")
        } (seed ${seed}, ${flags.duration} s of faults)`,
    );
    const result = await runVerify({
      seed,
      durationMs: flags.duration * 1000,
      nodes: flags.nodes,
      peers: flags.peers,
      pids: flags.pids,
      proxyPorts: flags.proxyPorts,
      kinds: flags.faults,
      producers: flags.producers,
      subscribers: flags.subscribers,
      fetchers: flags.fetchers,
      drainTimeoutMs: flags.drainTimeout * 1000,
      keepData: flags.keepData,
      signal: stop.signal,
      events: {
        line: (text) => output.line(text),
        progress: (acknowledged) => output.progress(acknowledged),
        progressDone: () => output.progressDone(),
        fault: (record, phase) => {
          if (phase === "end") output.line(formatFault(record));
        },
      },
    });
    if (result === undefined) {
      output.line("Interrupted: every peer verify started is stopped; no verdict.");
      return 130;
    }
    if (flags.history !== undefined) {
      await Deno.writeTextFile(flags.history, JSON.stringify(result.history));
    }
    for (const line of verdictLines(result, flags)) output.line(line);
    if (flags.json) console.log(JSON.stringify(verifySummary(result, flags)));
    return result.report.ok ? 0 : 1;
  } finally {
    for (const name of signals) Deno.removeSignalListener(name, onSignal);
  }
}

function formatFault(record: FaultRecord): string {
  const start = (record.startMs / 1000).toFixed(1);
  const seconds = (((record.endMs ?? record.startMs) - record.startMs) / 1000).toFixed(1);
  const note = record.injected ? "" : " (not injected)";
  return `  +${start.padStart(5)}s ${record.kind.padEnd(14)} ${
    seconds.padStart(4)
  }s  ${record.detail}${note}`;
}

/**
 * The verdict table, in the bench's style.
 *
 * @example
 * ```ts
 * import { verdictLines } from "./verify.ts";
 *
 * for (const line of verdictLines(result, { duration: 30, nodes: 3 })) console.log(line);
 * ```
 */
export function verdictLines(
  result: VerifyResult,
  flags: Pick<VerifyFlags, "duration" | "nodes" | "peers">,
): string[] {
  const { report } = result;
  const grouped = (value: number) => value.toLocaleString("en-US");
  const sources = [...new Set(result.final.replicas.map((replica) => replica.source))];
  const notes: Partial<Record<string, string>> = {
    diverged: `${report.replicasCompared} replicas compared, read from ${
      sources.join(" and ") || "nowhere"
    }`,
    subscriber_gaps: `${grouped(report.deliveries)} deliveries`,
    stale_reads: `${grouped(report.fetches)} fetches`,
  };
  const lines = [
    "",
    `${"check".padEnd(18)}${"count".padStart(9)}  verdict`,
    `${"-".repeat(18)}${"-".repeat(9)}  -------`,
    `${"acknowledged".padEnd(18)}${grouped(report.acknowledged).padStart(9)}  ` +
    `(${grouped(report.unknown)} unknown outcome, ${
      grouped(report.unknownStored)
    } of them stored; ` +
    `${grouped(report.failed)} refused; log holds ${grouped(report.logLength)})`,
  ];
  for (const kind of anomalyKinds) {
    const count = report.counts[kind];
    const note = notes[kind] === undefined ? "" : ` (${notes[kind]})`;
    lines.push(
      `${kind.padEnd(18)}${grouped(count).padStart(9)}  ${count === 0 ? "✓" : "✗"}${note}`,
    );
  }
  lines.push("", `${"fault".padEnd(18)}${"injected".padStart(9)}`);
  for (const kind of faultKinds) {
    const skipped = result.skippedKinds.find((entry) => entry.kind === kind);
    const count = result.faults[kind] ?? 0;
    lines.push(
      `${kind.padEnd(18)}${(skipped === undefined ? String(count) : "-").padStart(9)}` +
        (skipped === undefined ? "" : `  (${skipped.reason})`),
    );
  }
  if (result.proxied !== undefined) {
    lines.push(
      `(peer links ran through verify's proxy: ${
        grouped(result.proxied.connections)
      } connections, ` +
        `${(result.proxied.bytes / 1e6).toFixed(1)} MB)`,
    );
  }
  for (const example of report.examples) lines.push(`  ✗ ${example.kind}: ${example.detail}`);
  for (const reason of report.unverified) lines.push(`  ✗ not verified: ${reason}`);
  const failing = anomalyKinds.filter((kind) => report.counts[kind] > 0)
    .map((kind) => `${kind} ${report.counts[kind]}`);
  lines.push(
    "",
    report.ok
      ? "Verdict: PASS (no anomaly)"
      : `Verdict: FAIL (${
        [...failing, ...report.unverified.length > 0 ? ["not verified"] : []].join(", ")
      })`,
    `Reproduce the fault schedule: pubsub verify --seed ${result.seed} --duration ${flags.duration}` +
      (flags.peers === undefined ? ` --nodes ${flags.nodes}` : ""),
  );
  if (result.keptData !== undefined) lines.push(`Data and peer logs kept in ${result.keptData}`);
  return lines;
}

/**
 * The `--json` object.
 *
 * @example
 * ```ts
 * import { verifySummary } from "./verify.ts";
 *
 * console.log(JSON.stringify(verifySummary(result, flags)));
 * ```
 */
export function verifySummary(result: VerifyResult, flags: VerifyFlags) {
  const { report } = result;
  return {
    ok: report.ok,
    seed: result.seed,
    duration_s: flags.duration,
    fault_phase_s: round(result.faultPhaseSeconds),
    drain_s: result.drainSeconds === undefined ? null : round(result.drainSeconds),
    cluster: result.cluster,
    topic: result.topic,
    publishes: report.publishes,
    acknowledged: report.acknowledged,
    unknown: report.unknown,
    unknown_stored: report.unknownStored,
    refused: report.failed,
    deliveries: report.deliveries,
    fetches: report.fetches,
    log_length: report.logLength,
    ...report.counts,
    unverified: report.unverified,
    anomalies: report.examples,
    faults: result.faults,
    skipped_kinds: Object.fromEntries(
      result.skippedKinds.map((entry) => [entry.kind, entry.reason]),
    ),
    skipped_faults: result.skippedFaults,
    schedule: result.schedule.map((step) => step.kind),
    fault_log: result.history.faults.map((record) => ({
      kind: record.kind,
      start_s: round(record.startMs / 1000),
      end_s: record.endMs === undefined ? null : round(record.endMs / 1000),
      nodes: record.nodes,
      injected: record.injected,
      detail: record.detail,
    })),
    replicas: result.final.replicas.map((replica) => ({
      node: replica.node,
      source: replica.source,
      messages: replica.messages?.length ?? null,
      error: replica.error ?? null,
    })),
    proxied: result.proxied ?? null,
    kept_data: result.keptData ?? null,
    history_file: flags.history ?? null,
  };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
