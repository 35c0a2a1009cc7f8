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
 * @module
 */

import { getLogger } from "../logging.ts";

/** How often the allocator is asked to return free pages. */
export const trimIntervalMsDefault = 10_000;

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
 * Calls `malloc_trim(0)` every `intervalMs` (default
 * {@linkcode trimIntervalMsDefault}) until the returned function is called;
 * does nothing where `malloc_trim` is not available.
 *
 * @example
 * ```ts
 * import { startMemoryTrim } from "./memory_trim.ts";
 *
 * const stop = startMemoryTrim();
 * stop();
 * ```
 */
export function startMemoryTrim(intervalMs = trimIntervalMsDefault): () => void {
  if (!(Number.isFinite(intervalMs) && intervalMs > 0)) {
    throw new RangeError(
      `Cannot trim memory as 'intervalMs' must be positive: current value is ${intervalMs}`,
    );
  }
  const library = openMallocTrim();
  if (library === undefined) return () => {};
  const timer = setInterval(() => library.symbols.malloc_trim(0n), intervalMs);
  // The trimming alone must not keep a finished process alive.
  Deno.unrefTimer(timer);
  return () => {
    clearInterval(timer);
    library.close();
  };
}
