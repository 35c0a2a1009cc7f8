/**
 * Crash-safe whole-file replacement: after a crash a reader sees either the
 * complete old contents or the complete new contents, never a mix.
 *
 * The sequence is the one every durable store uses (write temp, fsync,
 * rename, fsync the directory): the first fsync makes the new bytes durable
 * before the rename can expose them, and the directory fsync makes the rename
 * itself durable, without which the old file may reappear after power loss.
 *
 * @module
 */

/** Suffix of the temporary file written next to the target; stale ones can be removed. */
export const temporaryFileSuffix = ".tmp";

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
  const temporaryPath = path + temporaryFileSuffix;
  const file = await Deno.open(temporaryPath, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, bytes);
    await file.syncData();
    options.onFsync?.();
  } finally {
    file.close();
  }
  await Deno.rename(temporaryPath, path);
  await syncDirectory(parentDirectory(path));
  options.onFsync?.();
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
export async function readFileAtomic(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
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
  const directory = await Deno.open(path, { read: true });
  try {
    await directory.sync();
  } finally {
    directory.close();
  }
}

/**
 * Writes all of `bytes` at the file's position; `write` may be partial.
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
  let written = 0;
  while (written < bytes.length) {
    written += await file.write(bytes.subarray(written));
  }
}

function parentDirectory(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return ".";
  return slash === 0 ? "/" : path.slice(0, slash);
}
