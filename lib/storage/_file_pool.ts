/**
 * One process-wide pool of open segment files shared by every
 * `SegmentLogStore`, so open descriptors stay bounded however many topic
 * replicas a peer holds: a least-recently-used cache of read handles and of
 * write handles (positional writes: `seek`, then `write`) that closes the
 * coldest idle handle once `openFilesMax` are open and reopens a file on
 * its next use. Handles in use by a running disk job
 * are pinned and never closed under it (the pool may then exceed its limit
 * by the number of pinned handles, which is bounded by the flushes running).
 *
 * Recency is a use stamp per handle, not the order of a map: a store keeps
 * the `PooledFile` of its active segment and marks each use by a counter
 * (no key string, no map shuffle per append); the pool looks for the
 * coldest handle only when it must close one, which happens only when it
 * opens a file.
 *
 * Also keeps the process-wide count of bytes held in segment files, which
 * the stores update incrementally, so metrics never walk the data directory.
 *
 * @module
 */

import assert from "node:assert/strict";

/** Default number of segment handles open at once in this process. */
export const openFilesMaxDefault = 256;

/**
 * How a pooled file is opened: synchronous positioned reads, or positioned
 * writes (not O_APPEND: records go into preallocated, zero-filled space).
 */
export type FileMode = "read" | "write";

/** An open handle in the pool; `closed` once the pool closed it (then acquire it again). */
export interface PooledFile {
  readonly file: Deno.FsFile;
  readonly path: string;
  readonly mode: FileMode;
  /** Running disk jobs using it: the pool never closes a pinned handle. */
  pins: number;
  /** The pool's use counter at its last use: the smallest is the coldest. */
  lastUse: number;
  closed: boolean;
}

/**
 * An LRU of open files keyed by mode and path.
 *
 * @example
 * ```ts
 * import { FilePool } from "./_file_pool.ts";
 * const pool = new FilePool(16);
 * const path = await Deno.makeTempFile();
 * const file = pool.openSync(path, "read");
 * pool.closePath(path);
 * ```
 */
export class FilePool {
  #openFilesMax: number;
  readonly #files = new Map<string, PooledFile>();
  /** Counts uses; a handle's `lastUse` is this counter at its last use. */
  #uses = 0;

  constructor(openFilesMax: number) {
    this.#openFilesMax = openFilesMax;
    this.limit = openFilesMax;
  }

  /** Number of handles open now. */
  get size(): number {
    return this.#files.size;
  }

  /** The most handles kept open (idle handles beyond it are closed, coldest first). */
  get limit(): number {
    return this.#openFilesMax;
  }

  set limit(openFilesMax: number) {
    assert.ok(Number.isInteger(openFilesMax) && openFilesMax >= 2, "openFilesMax must be >= 2");
    this.#openFilesMax = openFilesMax;
    this.#evict();
  }

  /** A handle of `path` for synchronous reads (opened when not pooled). */
  openSync(path: string, mode: FileMode): Deno.FsFile {
    return this.acquire(path, mode).file;
  }

  /**
   * The pooled handle of `path` (opened when not pooled), to keep and use
   * again while `closed` is false: mark each use with `touch`, and `pin` it
   * across a disk job.
   */
  acquire(path: string, mode: FileMode): PooledFile {
    const pooled = this.#touch(mode, path);
    if (pooled !== undefined) return pooled;
    const file = Deno.openSync(path, mode === "read" ? { read: true } : { write: true });
    return this.#add(mode, path, file);
  }

  /** Marks a use of `pooled` (it becomes the most recently used handle). */
  touch(pooled: PooledFile): void {
    pooled.lastUse = ++this.#uses;
  }

  /** Pins `pooled` (from `acquire`) for a disk job: it stays open until `release`. */
  pin(pooled: PooledFile): void {
    // Checked before asserting: node:assert allocates on every call.
    if (pooled.closed) assert.fail("pin: the handle is closed");
    pooled.pins++;
  }

  /** Releases a pin taken by `pin` (a handle closed meanwhile by `closePath` is left closed). */
  release(pooled: PooledFile): void {
    pooled.pins = Math.max(0, pooled.pins - 1);
    if (!pooled.closed) this.#evict();
  }

  /**
   * A pinned handle of `path` for writes; `create` creates (or empties) the
   * file. Release it with `unpin` once the disk job is done.
   */
  openPinned(path: string, mode: FileMode, create = false): Deno.FsFile {
    if (create) this.closePath(path);
    // Opening is metadata work: synchronous, as a thread hop would cost more.
    let pooled = this.#touch(mode, path);
    if (pooled === undefined) {
      const file = Deno.openSync(path, mode === "read" ? { read: true } : { write: true, create });
      pooled = this.#add(mode, path, file);
    }
    pooled.pins++;
    if (create) pooled.file.truncateSync(0);
    return pooled.file;
  }

  /** Releases a handle pinned by `openPinned`. */
  unpin(path: string, mode: FileMode): void {
    const pooled = this.#files.get(key(mode, path));
    if (pooled === undefined) return;
    pooled.pins = Math.max(0, pooled.pins - 1);
    this.#evict();
  }

  /** Closes every handle of `path` (before the file is deleted or re-created). */
  closePath(path: string): void {
    for (const mode of ["read", "write"] as const) {
      const name = key(mode, path);
      const pooled = this.#files.get(name);
      if (pooled === undefined) continue;
      this.#close(name, pooled);
    }
  }

  #touch(mode: FileMode, path: string): PooledFile | undefined {
    const name = key(mode, path);
    const pooled = this.#files.get(name);
    if (pooled === undefined) return undefined;
    pooled.lastUse = ++this.#uses;
    return pooled;
  }

  #add(mode: FileMode, path: string, file: Deno.FsFile): PooledFile {
    const pooled: PooledFile = { file, path, mode, pins: 0, lastUse: ++this.#uses, closed: false };
    const name = key(mode, path);
    this.#files.set(name, pooled);
    this.#evict(name);
    return pooled;
  }

  /** Closes the coldest idle handles beyond the limit, never `keep` (the one just asked for). */
  #evict(keep?: string): void {
    while (this.#files.size > this.#openFilesMax) {
      let coldestName: string | undefined;
      let coldest: PooledFile | undefined;
      for (const [name, pooled] of this.#files) {
        if (pooled.pins > 0 || name === keep) continue;
        if (coldest === undefined || pooled.lastUse < coldest.lastUse) {
          coldestName = name;
          coldest = pooled;
        }
      }
      if (coldest === undefined) return;
      this.#close(coldestName!, coldest);
    }
  }

  #close(name: string, pooled: PooledFile): void {
    this.#files.delete(name);
    pooled.closed = true;
    closeQuietly(pooled.file);
  }
}

function key(mode: FileMode, path: string): string {
  return `${mode}:${path}`;
}

function closeQuietly(file: Deno.FsFile): void {
  try {
    file.close();
  } catch {
    // Already closed (the store was closed under it): nothing to release.
  }
}

/** The pool every `SegmentLogStore` of this process shares. */
export const segmentFiles = new FilePool(openFilesMaxDefault);

/** Bytes held in segment files by the open stores of this process (kept incrementally). */
export const storedBytes = { total: 0 };
