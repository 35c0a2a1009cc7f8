/**
 * `pubsub sim`: runs the deterministic cluster simulator over many seeds.
 *
 * ```
 * pubsub sim [--cluster] [--seeds N] [--seed S] [--ticks T] [--json] [--broken VARIANT]
 * ```
 *
 * Without `--cluster` it simulates the Raft core (`lib/sim`); with it, whole
 * clusters of real `ClusterBroker`s on a simulated network and disks
 * (`lib/sim/cluster`). Without `--seed` a random base seed is drawn (and
 * printed); with `--seed S` alone exactly that seed runs and its output is
 * deterministic (no timings), so a failure replays byte for byte; a cluster
 * run prints the hash of everything it did. Exit code 0 when every seed
 * passed, 1 on any violation, 2 on bad flags.
 *
 * @module
 */

import { Command, CommanderError, Option } from "commander";
import { BROKEN_VARIANTS, type BrokenVariant } from "../sim/config.ts";
import { formatResult, runSimulation } from "../sim/simulation.ts";
import { runClusterSeed } from "../sim/cluster/cluster_sim.ts";
import { type ClusterBrokenVariant, clusterBrokenVariants } from "../sim/cluster/sim_config.ts";
import { formatClusterResult, SeedsHash } from "../sim/cluster/report.ts";

const SEEDS_DEFAULT = 1000;
const SEEDS_MAX = 10_000_000;
const SEED_MAX = 0xffffffff;
const TICKS_MAX = 1_000_000;
/** Violations reported in full; later ones are counted and listed by seed only. */
const REPORTS_MAX = 10;

interface SimFlags {
  cluster?: boolean;
  seeds?: string;
  seed?: string;
  ticks?: string;
  json?: boolean;
  broken?: string;
}

interface ParsedFlags {
  cluster: boolean;
  seeds: number;
  baseSeed: number;
  single: boolean;
  ticks: number | undefined;
  json: boolean;
  broken: BrokenVariant | ClusterBrokenVariant | undefined;
}

/** A flag value that failed validation. */
class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

/**
 * Runs the `sim` command on `args` (the arguments after `sim`) and returns
 * the exit code.
 *
 * @example
 * ```ts
 * const code = await simCommand(["--seeds", "100", "--seed", "1", "--json"]);
 * ```
 */
export async function simCommand(args: string[]): Promise<number> {
  let parsed: ParsedFlags | "help";
  try {
    parsed = parseFlags(args);
  } catch (error) {
    if (error instanceof FlagError) {
      console.error(`pubsub sim: ${error.message}`);
      return 2;
    }
    throw error;
  }
  if (parsed === "help") return 0;
  return parsed.cluster ? await runClusterSeeds(parsed) : await runSeeds(parsed);
}

function buildCommand(): Command {
  return new Command("pubsub sim")
    .description(
      "Run the deterministic simulator over many seeds: the Raft core under loss, partitions, crashes and membership changes, or with --cluster whole clusters of real peers",
    )
    .option(
      "--cluster",
      "simulate whole clusters: real ClusterBrokers, clients and a nemesis on a simulated network and disks",
    )
    .option("--seeds <N>", `number of seeds to run (default ${SEEDS_DEFAULT}, or 1 with --seed)`)
    .option("--seed <S>", "base seed; alone, replays exactly that seed")
    .option("--ticks <T>", "safety-phase ticks per seed of the Raft core (default 1200)")
    .option("--json", "print exactly one JSON summary object")
    .addOption(
      new Option(
        "--broken <VARIANT>",
        `enable a deliberately broken variant: ${BROKEN_VARIANTS.join(", ")}; with --cluster: ${
          clusterBrokenVariants.join(", ")
        }`,
      ),
    )
    .helpOption("-h, --help", "show this help")
    .allowExcessArguments(false);
}

function parseFlags(args: string[]): ParsedFlags | "help" {
  const command = buildCommand();
  let errorLine = "";
  command.exitOverride();
  command.configureOutput({
    writeOut: (text) => console.log(text.trimEnd()),
    writeErr: (text) => errorLine ||= text.trim().split("\n")[0].replace(/^error: /, ""),
  });
  try {
    command.parse(args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError && error.code === "commander.helpDisplayed") return "help";
    if (error instanceof CommanderError) throw new FlagError(errorLine || error.message);
    throw error;
  }
  return validateFlags(command.opts<SimFlags>());
}

function validateFlags(flags: SimFlags): ParsedFlags {
  const single = flags.seed !== undefined && flags.seeds === undefined;
  const seeds = flags.seeds === undefined
    ? (single ? 1 : SEEDS_DEFAULT)
    : integerFlag("--seeds", flags.seeds, 1, SEEDS_MAX);
  const baseSeed = flags.seed === undefined
    ? randomSeed()
    : integerFlag("--seed", flags.seed, 0, SEED_MAX);
  const ticks = flags.ticks === undefined
    ? undefined
    : integerFlag("--ticks", flags.ticks, 1, TICKS_MAX);
  const cluster = flags.cluster === true;
  const variants: readonly string[] = cluster ? clusterBrokenVariants : BROKEN_VARIANTS;
  if (flags.broken !== undefined && !variants.includes(flags.broken)) {
    throw new FlagError(
      `'--broken' must be one of ${variants.join(", ")}${
        cluster ? " with --cluster" : ""
      }: current value is ${flags.broken}`,
    );
  }
  if (cluster && ticks !== undefined) {
    throw new FlagError("'--ticks' applies to the Raft-core simulator only, not with --cluster");
  }
  return {
    cluster,
    seeds,
    baseSeed,
    single,
    ticks,
    json: flags.json === true,
    broken: flags.broken as BrokenVariant | ClusterBrokenVariant | undefined,
  };
}

function integerFlag(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new FlagError(
      `'${name}' must be an integer between ${min} and ${max}: current value is ${text}`,
    );
  }
  return value;
}

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

async function runSeeds(flags: ParsedFlags): Promise<number> {
  const progress = new ProgressLine(flags.json || flags.single, flags.seeds);
  const failed: number[] = [];
  const details: { seed: number; invariant: string; detail: string }[] = [];
  const started = performance.now();
  if (!flags.json && !flags.single) {
    console.log(`pubsub sim: ${flags.seeds} seeds from base seed ${flags.baseSeed}`);
  }
  for (let offset = 0; offset < flags.seeds; offset++) {
    const seed = (flags.baseSeed + offset) % (SEED_MAX + 1);
    const result = runSimulation(seed, {
      safetyTicks: flags.ticks,
      broken: flags.broken as BrokenVariant | undefined,
    });
    if (result.violation) {
      failed.push(seed);
      details.push({ seed, ...result.violation });
      if (!flags.json && failed.length <= REPORTS_MAX) progress.print(formatResult(result));
    } else if (flags.single && !flags.json) {
      console.log(formatResult(result));
    }
    progress.update(offset + 1, failed.length);
    // Let signals and I/O through between seeds.
    if (offset % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  progress.done();
  const elapsed = Math.round(performance.now() - started);
  printSummary(flags, failed, details, elapsed);
  return failed.length > 0 ? 1 : 0;
}

/** `pubsub sim --cluster`: whole-cluster runs, one seed after another. */
async function runClusterSeeds(flags: ParsedFlags): Promise<number> {
  const progress = new ProgressLine(flags.json || flags.single, flags.seeds);
  const failed: number[] = [];
  const details: { seed: number; invariant: string; detail: string }[] = [];
  const hash = new SeedsHash();
  const started = performance.now();
  if (!flags.json && !flags.single) {
    console.log(`pubsub sim --cluster: ${flags.seeds} seeds from base seed ${flags.baseSeed}`);
  }
  const broken = flags.broken as ClusterBrokenVariant | undefined;
  let last: Awaited<ReturnType<typeof runClusterSeed>> | undefined;
  for (let offset = 0; offset < flags.seeds; offset++) {
    const seed = (flags.baseSeed + offset) % (SEED_MAX + 1);
    const result = await runClusterSeed(seed, { broken });
    last = result;
    hash.add(seed, result.hash);
    if (result.violationCount > 0) {
      failed.push(seed);
      for (const violation of result.violations.slice(0, 3)) {
        details.push({ seed, invariant: violation.invariant, detail: violation.detail });
      }
      if (!flags.json && !flags.single && failed.length <= REPORTS_MAX) {
        progress.print(formatClusterResult(result, false));
      }
    }
    progress.update(offset + 1, failed.length);
  }
  progress.done();
  const elapsed = Math.round(performance.now() - started);
  if (flags.single && last !== undefined) {
    console.log(
      flags.json ? JSON.stringify(singleJson(last)) : formatClusterResult(last, true),
    );
  } else {
    printClusterSummary(flags, failed, details.slice(0, REPORTS_MAX), elapsed, hash.hex());
  }
  return failed.length > 0 ? 1 : 0;
}

/** A replayed seed's JSON: no timings, so two replays print the same bytes. */
function singleJson(result: Awaited<ReturnType<typeof runClusterSeed>>): unknown {
  const { trace, violations, violationCount, virtualMs, ...rest } = result;
  return {
    mode: "cluster",
    ...rest,
    virtual_ms: virtualMs,
    violations: violationCount,
    details: violations,
    trace: violationCount > 0 ? trace : undefined,
  };
}

function printClusterSummary(
  flags: ParsedFlags,
  failed: number[],
  details: { seed: number; invariant: string; detail: string }[],
  elapsed: number,
  hash: string,
): void {
  const seedsPerSecond = Math.round((flags.seeds / Math.max(elapsed, 1)) * 1000 * 10) / 10;
  if (flags.json) {
    console.log(JSON.stringify({
      mode: "cluster",
      seeds: flags.seeds,
      violations: failed.length,
      failed_seeds: failed,
      elapsed_ms: elapsed,
      base_seed: flags.baseSeed,
      seeds_per_second: seedsPerSecond,
      broken: flags.broken ?? null,
      hash,
      details,
    }));
    return;
  }
  const list = failed.length === 0
    ? ""
    : ` (failed seeds: ${failed.slice(0, 50).join(", ")}${failed.length > 50 ? ", ..." : ""})`;
  console.log(
    `pubsub sim --cluster: ${flags.seeds} seeds, ${failed.length} violations${list} in ${elapsed} ms (${seedsPerSecond} seeds/s), hash ${hash}`,
  );
}

function printSummary(
  flags: ParsedFlags,
  failed: number[],
  details: { seed: number; invariant: string; detail: string }[],
  elapsed: number,
): void {
  const seedsPerSecond = Math.round((flags.seeds / Math.max(elapsed, 1)) * 1000 * 10) / 10;
  if (flags.json) {
    console.log(JSON.stringify({
      seeds: flags.seeds,
      violations: failed.length,
      failed_seeds: failed,
      elapsed_ms: elapsed,
      base_seed: flags.baseSeed,
      seeds_per_second: seedsPerSecond,
      broken: flags.broken ?? null,
      details: details.slice(0, REPORTS_MAX),
    }));
    return;
  }
  // A single replayed seed prints nothing time-dependent: replays match byte for byte.
  if (flags.single) return;
  const list = failed.length === 0
    ? ""
    : ` (failed seeds: ${failed.slice(0, 50).join(", ")}${failed.length > 50 ? ", ..." : ""})`;
  console.log(
    `pubsub sim: ${flags.seeds} seeds, ${failed.length} violations${list} in ${elapsed} ms (${seedsPerSecond} seeds/s)`,
  );
}

/** Progress on stderr: one updating line on a TTY, a line every 10% otherwise. */
class ProgressLine {
  readonly #quiet: boolean;
  readonly #tty: boolean;
  readonly #total: number;
  readonly #encoder = new TextEncoder();
  #lastReported = 0;

  constructor(quiet: boolean, total: number) {
    this.#quiet = quiet;
    this.#tty = Deno.stderr.isTerminal();
    this.#total = total;
  }

  update(done: number, violations: number): void {
    if (this.#quiet) return;
    if (this.#tty) {
      if (done % 10 === 0 || done === this.#total) {
        this.#write(`\r${done}/${this.#total} seeds, ${violations} violations`);
      }
      return;
    }
    const step = Math.max(1, Math.ceil(this.#total / 10));
    if (done - this.#lastReported >= step || done === this.#total) {
      this.#lastReported = done;
      this.#write(`${done}/${this.#total} seeds, ${violations} violations\n`);
    }
  }

  print(text: string): void {
    if (this.#tty && !this.#quiet) this.#write("\r\x1b[K");
    console.log(text);
  }

  done(): void {
    if (this.#tty && !this.#quiet) this.#write("\n");
  }

  #write(text: string): void {
    Deno.stderr.writeSync(this.#encoder.encode(text));
  }
}
