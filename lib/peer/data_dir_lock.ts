/**
 * One process per data directory: a peer holds an exclusive lock on
 * `<dataDir>/LOCK` for as long as it runs. The lock is the operating
 * system's (flock), so it goes away with the process however that ends, and
 * a stale LOCK file left behind by a crash never blocks a restart. The file
 * holds the holder's pid, only to name it when another peer is refused.
 *
 * @module
 */

import { resolve } from "node:path";

/** Name of the lock file inside a data directory. */
export const lockFileName = "LOCK";

/** Longest pid text read back from a lock file. */
const pidTextLengthMax = 32;

/**
 * Another process holds the data directory.
 *
 * @example
 * ```ts
 * const error = new DataDirLockedError("./data/1", 4242);
 * console.log(error.message);
 * ```
 */
export class DataDirLockedError extends Error {
  readonly dataDir: string;
  /** The holder's pid as it wrote it, when readable. */
  readonly holderPid: number | undefined;
  constructor(dataDir: string, holderPid: number | undefined, options?: ErrorOptions) {
    const holder = holderPid === undefined ? "" : ` (pid ${holderPid})`;
    super(`Data directory ${dataDir} is already in use by another peer${holder}`, options);
    this.name = "DataDirLockedError";
    this.dataDir = dataDir;
    this.holderPid = holderPid;
  }
}

/** The held lock of one data directory. */
export interface DataDirLock {
  readonly dataDir: string;
  /** Releases the lock; later calls do nothing. */
  release(): void;
}

/**
 * Creates `dataDir` if needed and locks it exclusively for this process, or
 * throws DataDirLockedError when another process (or another open of this
 * process) holds it. Call it before opening anything in the directory.
 *
 * @example
 * ```ts
 * const lock = await lockDataDir("./data/1");
 * try {
 *   // ... open the stores in ./data/1
 * } finally {
 *   lock.release();
 * }
 * ```
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  await Deno.mkdir(dataDir, { recursive: true });
  const path = `${dataDir}/${lockFileName}`;
  const file = await Deno.open(path, { read: true, write: true, create: true });
  let locked = false;
  try {
    locked = await file.tryLock(true);
    if (!locked) throw new DataDirLockedError(dataDir, await holderOf(file));
    // The pid is written after locking, so only the holder ever writes it.
    await file.truncate(0);
    const text = new TextEncoder().encode(`${Deno.pid}\n`);
    let written = 0;
    while (written < text.length) written += await file.write(text.subarray(written));
  } catch (error) {
    if (locked) await file.unlock().catch(() => {});
    file.close();
    throw error;
  }
  let released = false;
  return {
    dataDir,
    release: () => {
      if (released) return;
      released = true;
      // Closing the file drops the lock.
      file.close();
    },
  };
}

/** The pid a lock file names, when it names one. */
async function holderOf(file: Deno.FsFile): Promise<number | undefined> {
  const buffer = new Uint8Array(pidTextLengthMax);
  await file.seek(0, Deno.SeekMode.Start);
  const read = await file.read(buffer);
  if (read === null) return undefined;
  const text = new TextDecoder().decode(buffer.subarray(0, read)).trim();
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

/**
 * The pid a data directory's LOCK file names, when the process with that pid
 * still runs a peer on that directory (checked through /proc, without
 * touching the lock, so a peer starting at that moment is never refused).
 * `pubsub cluster` uses it to see, and stop, a peer restarted by hand.
 *
 * @example
 * ```ts
 * const pid = await dataDirHolder("./data/1");
 * ```
 */
export async function dataDirHolder(dataDir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = (await Deno.readTextFile(`${dataDir}/${lockFileName}`)).trim();
  } catch {
    return undefined;
  }
  if (!/^\d{1,10}$/.test(text)) return undefined;
  try {
    const command = (await Deno.readTextFile(`/proc/${text}/cmdline`)).split("\0");
    const index = command.indexOf("--data-dir");
    if (index < 0 || command[index + 1] === undefined) return undefined;
    const cwd = await Deno.readLink(`/proc/${text}/cwd`);
    const theirs = await Deno.realPath(resolve(cwd, command[index + 1]));
    return theirs === await Deno.realPath(dataDir) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}
