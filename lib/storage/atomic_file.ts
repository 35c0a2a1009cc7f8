/**
 * Crash-safe whole-file replacement: after a crash a reader sees either the
 * complete old contents or the complete new contents, never a mix.
 *
 * The sequence is the one every durable store uses (write temp, fsync,
 * rename, fsync the directory): the first fsync makes the new bytes durable
 * before the rename can expose them, and the directory fsync makes the rename
 * itself durable, without which the old file may reappear after power loss.
 *
 * Small writes, reads and closes run synchronously: they touch only the
 * page cache, and an asynchronous call costs a hop to a blocking thread and
 * back (futex wake-ups), which was most of the CPU of creating thousands of
 * replicas. Fsyncs, which wait for the disk, creating and renaming the
 * temp file, which wait for the journal, and writes over
 * `syncWriteBytesMax` leave the event loop.
 *
 * @module
 */

import { writeAll as writeAllTo, writeAllSync as writeAllSyncTo } from "../write_all.ts";

/** Suffix of the temporary file written next to the target; stale ones can be removed. */
export const temporaryFileSuffix = ".tmp";

/**
 * Writes up to this many bytes are made synchronously (a copy into the page
 * cache); larger ones go to a thread, so that a big snapshot does not hold
 * up the event loop.
 */
export const syncWriteBytesMax = 1024 * 1024;

/** Options for {@linkcode writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /** Called once per fsync issued, so callers can count them. Default: none. */
  onFsync?: () => void;
}

/**
 * Durably replaces the file at `path` by `bytes` (temp file, fsync, rename,
 * directory fsync). Resolves once the new contents survive power loss.
 *
 * @example
 * ```ts
 * import { readFileAtomic, writeFileAtomic } from "./atomic_file.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/state`, new Uint8Array([1, 2, 3]));
 * await readFileAtomic(`${dir}/state`); // Uint8Array [1, 2, 3]
 * ```
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  await writeFileDurably(path, bytes, options);
  await syncDirectory(parentDirectory(path));
  options.onFsync?.();
}

/**
 * The first half of {@linkcode writeFileAtomic}: the new contents are
 * durable under `path` (temp file, fsync, rename), but the rename is not
 * until the caller fsyncs the directory, which it may share with other
 * changes of the same directory. After a crash before that fsync, `path`
 * holds the complete old or the complete new contents.
 *
 * @example
 * ```ts
 * import { syncDirectory, writeFileDurably } from "./atomic_file.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileDurably(`${dir}/state`, new Uint8Array([1]));
 * await syncDirectory(dir);
 * ```
 */
export async function writeFileDurably(
  path: string,
  bytes: Uint8Array,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const temporaryPath = path + temporaryFileSuffix;
  // Creating and renaming wait for the file system's journal, which an fsync
  // of another file may hold for milliseconds: these two stay off the event
  // loop (a hard state is written only when a term or vote changes).
  const file = await Deno.open(temporaryPath, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, bytes);
    await file.syncData();
    options.onFsync?.();
  } finally {
    file.close();
  }
  await Deno.rename(temporaryPath, path);
}

/**
 * Reads a file written by {@linkcode writeFileAtomic}; resolves to undefined
 * when it does not exist (it was never written).
 *
 * @example
 * ```ts
 * import { readFileAtomic } from "./atomic_file.ts";
 * const dir = await Deno.makeTempDir();
 * await readFileAtomic(`${dir}/missing`); // undefined
 * ```
 */
export function readFileAtomic(path: string): Promise<Uint8Array | undefined> {
  try {
    return Promise.resolve(readFileAtomicSync(path));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * {@linkcode readFileAtomic}, synchronously (these files are small).
 *
 * @example
 * ```ts
 * import { readFileAtomicSync } from "./atomic_file.ts";
 * const dir = await Deno.makeTempDir();
 * readFileAtomicSync(`${dir}/missing`); // undefined
 * ```
 */
export function readFileAtomicSync(path: string): Uint8Array | undefined {
  try {
    return Deno.readFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * Fsyncs a directory so that creations, renames and removals of its entries
 * are durable.
 *
 * @example
 * ```ts
 * import { syncDirectory } from "./atomic_file.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a`, "a");
 * await syncDirectory(dir);
 * ```
 */
export async function syncDirectory(path: string): Promise<void> {
  const directory = Deno.openSync(path, { read: true });
  try {
    await directory.sync();
  } finally {
    directory.close();
  }
}

/**
 * Writes all of `bytes` at the file's position; `write` may be partial.
 * Up to `syncWriteBytesMax` bytes are written synchronously.
 *
 * @example
 * ```ts
 * import { writeAll } from "./atomic_file.ts";
 * const dir = await Deno.makeTempDir();
 * using file = await Deno.open(`${dir}/f`, { write: true, create: true });
 * await writeAll(file, new Uint8Array(10));
 * ```
 */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  if (bytes.length <= syncWriteBytesMax) {
    writeAllSync(file, bytes);
    return;
  }
  await writeAllTo(file, bytes);
}

/**
 * Writes all of `bytes` at the file's position, synchronously.
 *
 * @example
 * ```ts
 * import { writeAllSync } from "./atomic_file.ts";
 * const dir = await Deno.makeTempDir();
 * using file = Deno.openSync(`${dir}/f`, { write: true, create: true });
 * writeAllSync(file, new Uint8Array(10));
 * ```
 */
export function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  writeAllSyncTo(file, bytes);
}

/**
 * Rethrows `error` unless it says the file was not there: for a removal
 * that may find nothing to remove.
 *
 * @example
 * ```ts
 * import { ignoreNotFound } from "./atomic_file.ts";
 * await Deno.remove("/tmp/surely-missing-file").catch(ignoreNotFound);
 * ```
 */
export function ignoreNotFound(error: unknown): void {
  if (!(error instanceof Deno.errors.NotFound)) throw error;
}

/**
 * The directory holding `path` ("." for a bare name).
 *
 * @example
 * ```ts
 * import { parentDirectory } from "./atomic_file.ts";
 * parentDirectory("/data/topics/events.3"); // "/data/topics"
 * ```
 */
export function parentDirectory(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return ".";
  return slash === 0 ? "/" : path.slice(0, slash);
}
