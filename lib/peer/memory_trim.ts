/**
 * Gives memory the C allocator keeps after a burst back to the system.
 *
 * A burst of work (creating thousands of topics opens and writes thousands
 * of files) makes the runtime's native side allocate and free many small
 * buffers; glibc keeps the freed pages in its heap, where a few live
 * allocations near the top pin them, so an idle peer stayed at twice the
 * memory it uses. `malloc_trim(0)` returns every free page in the middle of
 * the heap too. It is called through FFI at most every `trimIntervalMs`,
 * costs a few milliseconds, and is skipped where it is not available
 * (another C library, or no `--allow-ffi`): it is an optimization only.
 *
 * An idle process frees nothing new, so trimming it again is wasted work
 * (5% of an idle peer's main-thread samples at 5,000 topics): a trim runs
 * only while the process was busy (at least {@linkcode busyCpuShare} of a
 * core since the last look) and once more after that, for the garbage
 * collected once the work ended.
 *
 * @module
 */

import { cpuUsage } from "node:process";
import { getLogger } from "../logging.ts";

/** How often the allocator is asked to return free pages. */
export const trimIntervalMsDefault = 10_000;

/** Share of one core above which an interval counts as busy. */
export const busyCpuShare = 0.02;

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
 * Decides at each look whether to trim: after a busy interval, and after
 * the first quiet one that follows. `busy` is the CPU time used since the
 * previous look as a share of the interval.
 *
 * @example
 * ```ts
 * import { TrimCadence } from "./memory_trim.ts";
 *
 * const cadence = new TrimCadence();
 * cadence.shouldTrim(0.5); // true: busy
 * cadence.shouldTrim(0); // true: the first quiet look
 * cadence.shouldTrim(0); // false: still quiet
 * ```
 */
export class TrimCadence {
  #wasBusy = true;

  shouldTrim(busy: number): boolean {
    const isBusy = busy >= busyCpuShare;
    const trim = isBusy || this.#wasBusy;
    this.#wasBusy = isBusy;
    return trim;
  }
}

/** CPU time (user and system) of this process so far, in milliseconds. */
function cpuMs(): number {
  const { user, system } = cpuUsage();
  return (user + system) / 1000;
}

/**
 * Looks every `intervalMs` (default {@linkcode trimIntervalMsDefault}) and
 * calls `malloc_trim(0)` when {@linkcode TrimCadence} says so, until the
 * returned function is called; does nothing where `malloc_trim` is not
 * available. `onTrim` (for tests) is called after each trim.
 *
 * @example
 * ```ts
 * import { startMemoryTrim } from "./memory_trim.ts";
 *
 * const stop = startMemoryTrim();
 * stop();
 * ```
 */
export function startMemoryTrim(
  intervalMs = trimIntervalMsDefault,
  onTrim?: () => void,
): () => void {
  if (!(Number.isFinite(intervalMs) && intervalMs > 0)) {
    throw new RangeError(
      `Cannot trim memory as 'intervalMs' must be positive: current value is ${intervalMs}`,
    );
  }
  const library = openMallocTrim();
  if (library === undefined) return () => {};
  const cadence = new TrimCadence();
  let cpuAt = cpuMs();
  const timer = setInterval(() => {
    const cpu = cpuMs();
    const busy = (cpu - cpuAt) / intervalMs;
    cpuAt = cpu;
    if (!cadence.shouldTrim(busy)) return;
    library.symbols.malloc_trim(0n);
    onTrim?.();
  }, intervalMs);
  // The trimming alone must not keep a finished process alive.
  Deno.unrefTimer(timer);
  return () => {
    clearInterval(timer);
    library.close();
  };
}
