/**
 * Gives memory back to the system once a burst of work ends.
 *
 * A burst of work (creating thousands of topics opens and writes thousands
 * of files; forwarding thousands of requests) leaves two kinds of memory
 * behind:
 *
 * - garbage on the JavaScript heap and the buffers it holds: V8 collects
 *   its old generation only when it grows or the memory reducer gets to
 *   it, which took 30-60 s after the last request (the peer that forwarded
 *   a 10,000-topic bench's 20,000 requests held 215 MiB of heap and 185
 *   MiB of buffers, 108 and 11 MiB of them live);
 * - pages glibc keeps in its heap after the runtime's native side freed
 *   many small buffers, where a few live allocations near the top pin
 *   them. `malloc_trim(0)` returns every free page in the middle of the
 *   heap too.
 *
 * The process looks at its CPU time every `lookMs`. While it is busy (at
 * least {@linkcode busyCpuShare} of a core since the last look) it trims at
 * most every `trimMs`. At the first quiet look after at least
 * {@linkcode collectWorkMsMin} of busy CPU time, it runs a full garbage
 * collection and then trims: one pause of some 100 ms at 10,000 topics,
 * at most every {@linkcode collectSpacingMsMin}, taken when nothing is
 * waiting. An idle process does nothing (it frees nothing new). Both are
 * optimizations, skipped where not available: `malloc_trim` needs glibc
 * and `--allow-ffi`; the collection needs V8's `gc` (exposed at run time
 * through `node:v8` and `node:vm`).
 *
 * @module
 */

import { cpuUsage } from "node:process";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { getLogger } from "../logging.ts";

/**
 * The V8 flags every peer process runs with (`deno run --v8-flags=...`);
 * neither can be set once V8 runs.
 *
 * - `--no-memory-reducer`: V8's memory reducer starts a major collection on
 *   its own 8-20 s after the collection above, costing about 0.5 s of CPU
 *   at 10,000 topics for nothing (this module already gave the memory
 *   back). 10,000-topic runs, 3 peers, CPU 10-20 s after the last publish:
 *   0.5-7.4% of a core without the flag, 0.7-1.1% with it.
 * - `--single-threaded-gc`: the garbage collector works on the event loop's
 *   thread only, with no helper threads (parallel scavenging, concurrent
 *   marking and sweeping). Even at `SCHED_IDLE` (`helper_threads.ts`) a
 *   helper holds its core while it runs in the kernel (page faults, unmaps),
 *   and on a machine with few cores that is the core a woken peer waits for.
 *   `perf sched` of one publish at a time on 2 cores, the slowest 1%:
 *   runnable event loop threads waited some 300 µs per publish behind the
 *   peers' and the client's V8 helpers. With the flag (`bench:ab`, two 40-60
 *   s runs): p99 -49 and -61 µs (0.95-0.96x), p50 -7 and -12 µs; pipelined
 *   throughput within run-to-run noise (146k against 153k msgs/s).
 */
export const peerV8Flags = "--v8-flags=--no-memory-reducer,--single-threaded-gc";

/** How often the process looks at its CPU time. */
export const lookMsDefault = 2_000;
/** How often the allocator is asked to return free pages while the process is busy. */
export const trimIntervalMsDefault = 10_000;
/** Share of one core above which an interval counts as busy. */
export const busyCpuShare = 0.05;
/** Busy CPU time since the last collection that makes the next quiet look collect. */
export const collectWorkMsMin = 1_000;
/** Least time between two collections. */
export const collectSpacingMsMin = 30_000;

type TrimLibrary = { symbols: { malloc_trim(pad: bigint): number }; close(): void };

/**
 * Opens glibc's `malloc_trim`, or undefined where it cannot be had.
 *
 * @example
 * ```ts
 * import { openMallocTrim } from "./memory_trim.ts";
 *
 * const trim = openMallocTrim();
 * trim?.symbols.malloc_trim(0n);
 * trim?.close();
 * ```
 */
export function openMallocTrim(): TrimLibrary | undefined {
  if (Deno.build.os !== "linux") return undefined;
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
    return Deno.dlopen("libc.so.6", {
      malloc_trim: { parameters: ["usize"], result: "i32" },
    }) as TrimLibrary;
  } catch (error) {
    getLogger("peer").debug("No malloc_trim: {error}", { error: (error as Error).message });
    return undefined;
  }
}

/**
 * Opens V8's full garbage collection, or undefined where it cannot be had.
 *
 * @example
 * ```ts
 * import { openCollector } from "./memory_trim.ts";
 *
 * openCollector()?.();
 * ```
 */
export function openCollector(): (() => void) | undefined {
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc");
    return typeof gc === "function" ? () => gc() : undefined;
  } catch (error) {
    getLogger("peer").debug("No garbage collection on demand: {error}", {
      error: (error as Error).message,
    });
    return undefined;
  }
}

/** What a look decided: nothing, a trim, or a full collection and then a trim. */
export type TrimStep = "none" | "trim" | "collect";

/** Settings of a {@linkcode TrimCadence} (defaults: the exported constants). */
export interface TrimCadenceOptions {
  trimMs?: number;
  collectWorkMs?: number;
  collectSpacingMs?: number;
}

/**
 * Decides at each look what to do, from the time and the process's CPU
 * time (both in milliseconds): see the module documentation.
 *
 * @example
 * ```ts
 * import { TrimCadence } from "./memory_trim.ts";
 *
 * const cadence = new TrimCadence(0, 0);
 * cadence.look(2_000, 1_500); // "trim": busy
 * cadence.look(4_000, 1_510); // "collect": quiet after 1.5 s of work
 * cadence.look(6_000, 1_520); // "none": still quiet
 * ```
 */
export class TrimCadence {
  readonly #trimMs: number;
  readonly #collectWorkMs: number;
  readonly #collectSpacingMs: number;
  #lookAt: number;
  #cpuAt: number;
  #trimmedAt = -Infinity;
  #collectedAt = -Infinity;
  /** Busy CPU time since the last collection. */
  #work = 0;
  /** A trim is owed: the process was busy since the last one. */
  #owed = false;

  constructor(nowMs: number, cpuMs: number, options: TrimCadenceOptions = {}) {
    this.#lookAt = nowMs;
    this.#cpuAt = cpuMs;
    this.#trimMs = options.trimMs ?? trimIntervalMsDefault;
    this.#collectWorkMs = options.collectWorkMs ?? collectWorkMsMin;
    this.#collectSpacingMs = options.collectSpacingMs ?? collectSpacingMsMin;
  }

  /** What to do at a look at `nowMs`, the process having used `cpuMs` of CPU time so far. */
  look(nowMs: number, cpuMs: number): TrimStep {
    const used = cpuMs - this.#cpuAt;
    const busy = used >= busyCpuShare * Math.max(1, nowMs - this.#lookAt);
    this.#lookAt = nowMs;
    this.#cpuAt = cpuMs;
    if (busy) {
      this.#work += used;
      const step = nowMs - this.#trimmedAt < this.#trimMs ? "none" : this.#did("trim", nowMs);
      // Once more after the work: what it freed since this trim.
      this.#owed = true;
      return step;
    }
    if (
      this.#work >= this.#collectWorkMs && nowMs - this.#collectedAt >= this.#collectSpacingMs
    ) {
      this.#work = 0;
      this.#collectedAt = nowMs;
      return this.#did("collect", nowMs);
    }
    return this.#owed ? this.#did("trim", nowMs) : "none";
  }

  /**
   * Moves the CPU baseline to `cpuMs` after a step: what the collection or
   * trim itself used is not work that owes another one.
   */
  rebase(cpuMs: number): void {
    this.#cpuAt = cpuMs;
  }

  #did(step: TrimStep, nowMs: number): TrimStep {
    this.#trimmedAt = nowMs;
    this.#owed = false;
    return step;
  }
}

/** CPU time (user and system) of this process so far, in milliseconds. */
function cpuMs(): number {
  const { user, system } = cpuUsage();
  return (user + system) / 1000;
}

/** Settings of {@linkcode startMemoryTrim}. */
export interface MemoryTrimOptions extends TrimCadenceOptions {
  /** Default {@linkcode lookMsDefault}. */
  lookMs?: number;
  /** Called after each step taken (for tests). */
  onStep?: (step: TrimStep) => void;
  /**
   * CPU time used so far, in milliseconds; default this process's. Tests
   * give their own: the process's includes whatever else runs in it.
   */
  cpuMs?: () => number;
}

/**
 * Looks every `lookMs` and trims or collects as {@linkcode TrimCadence}
 * decides, until the returned function is called; does nothing where
 * `malloc_trim` is not available.
 *
 * @example
 * ```ts
 * import { startMemoryTrim } from "./memory_trim.ts";
 *
 * const stop = startMemoryTrim();
 * stop();
 * ```
 */
export function startMemoryTrim(options: MemoryTrimOptions = {}): () => void {
  const lookMs = options.lookMs ?? lookMsDefault;
  if (!(Number.isFinite(lookMs) && lookMs > 0)) {
    throw new RangeError(
      `Cannot trim memory as 'lookMs' must be positive: current value is ${lookMs}`,
    );
  }
  const library = openMallocTrim();
  if (library === undefined) return () => {};
  const collect = openCollector();
  const cpuNow = options.cpuMs ?? cpuMs;
  const cadence = new TrimCadence(performance.now(), cpuNow(), options);
  const timer = setInterval(() => {
    const step = cadence.look(performance.now(), cpuNow());
    if (step === "none") return;
    if (step === "collect") collect?.();
    library.symbols.malloc_trim(0n);
    cadence.rebase(cpuNow());
    options.onStep?.(step);
  }, lookMs);
  // The trimming alone must not keep a finished process alive.
  Deno.unrefTimer(timer);
  return () => {
    clearInterval(timer);
    library.close();
  };
}
