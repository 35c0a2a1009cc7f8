/**
 * `SegmentLogStore`: the durable `LogStore`, an append-only log of segment
 * files with a CRC per record, group commit and torn-tail recovery.
 *
 * Layout of a replica directory:
 *
 * - `00000000000000000001.log`, ...: segments named by their first index
 *   (20 digits), records of 24 header bytes and a payload (entry type byte +
 *   data) with a CRC-32C (`_record.ts`). The active (last) segment is
 *   preallocated: zero-filled ahead of its records in chunks of 4-256 KiB,
 *   made durable by an ordinary flush, so the fdatasync of a later append
 *   writes only its data, not the inode of a grown file; records go in by
 *   positional writes. A segment is trimmed to its records when the next
 *   one starts, and the active one when the store closes cleanly. Each v2
 *   record carries the offset that was durable when it was staged, which
 *   tells a torn write from damage at open (`scanRecords`). Segments of the
 *   first format (v1, no padding, no stamp) are read, never appended to.
 * - `hardstate`: term, vote and commit, replaced atomically when term or vote
 *   change (commit rides along; Raft recomputes it after a restart).
 * - `snapshot`: the latest snapshot (a state machine checkpoint), replaced
 *   atomically. Segments may hold entries at or below its index (retained
 *   entries); compaction deletes whole segments only.
 * - `*.install`: segments of a snapshot being installed with its retained
 *   entries (see `applySnapshot`); they replace the `.log` files once the
 *   snapshot file names them, and are deleted at open otherwise.
 *
 * Disk work happens only in `sync()` (and the snapshot calls that end in
 * one), strictly one job at a time, as an ordered plan of create, write,
 * truncate and delete operations recorded by the synchronous methods. The
 * common case, records staged for the active segment and nothing else with
 * no job running (one publish at a time), is a flush at once: `sync()`
 * writes them during the call and returns one promise for the turn-end
 * fdatasync, which later syncs of the same turn join (`#flushAtOnce`).
 *
 * @module
 */

import { type FsyncRequest, fsyncTurnsStarted, requestFileSync, syncFileData } from "./_fsync.ts";
import assert from "node:assert/strict";
import {
  ignoreNotFound,
  parentDirectory,
  readFileAtomicSync,
  syncDirectory,
  temporaryFileSuffix,
  writeAll,
  writeAllSync,
  writeFileAtomic,
} from "./atomic_file.ts";
import {
  decodeHardState,
  decodeSnapshot,
  encodeHardState,
  encodeSnapshot,
  impliedByLog,
  raisedToLog,
} from "./_metadata.ts";
import {
  checkRecord,
  decodeRecord,
  encodeSegmentRecord,
  isSegmentRecord,
  recordBytesMax,
  recordHeaderBytes,
  recordNumberMax,
  recordSize,
  type ScanMode,
  scanRecords,
  type ScanResult,
} from "./_record.ts";
import { type PooledFile, segmentFiles, storedBytes } from "./_file_pool.ts";
import { checkRetained } from "./_retained.ts";
import { EntryCache } from "./_entry_cache.ts";
import {
  type Entry,
  EntryType,
  type HardState,
  type LogStore,
  type SegmentInfo,
  type Snapshot,
  type SyncOptions,
} from "./types.ts";

export { openFilesMaxDefault } from "./_file_pool.ts";

/**
 * Bytes held in the segment files of every open `SegmentLogStore` of this
 * process, maintained incrementally (appends, truncations, deletions, opens
 * and closes), so a metric never walks the data directory.
 *
 * @example
 * ```ts
 * import { storedBytesTotal } from "./segment_log_store.ts";
 * storedBytesTotal(); // 0 before any store is opened
 * ```
 */
export function storedBytesTotal(): number {
  return storedBytes.total;
}

/**
 * Sets how many segment files this process keeps open at once (default
 * 256): the pool closes the least recently used idle handle beyond it.
 *
 * @example
 * ```ts
 * import { setOpenSegmentFilesMax } from "./segment_log_store.ts";
 * setOpenSegmentFilesMax(64);
 * ```
 */
export function setOpenSegmentFilesMax(openFilesMax: number): void {
  segmentFiles.limit = openFilesMax;
}

/** Number of segment files open now in this process (tests and metrics). */
export function openSegmentFiles(): number {
  return segmentFiles.size;
}

export { recordBytesMax } from "./_record.ts";

/** Default size at which the active segment is closed and a new one started. */
export const segmentBytesMaxDefault = 64 * 1024 * 1024;
/** Smallest accepted `segmentBytesMax` (tests use small segments to exercise rolling). */
export const segmentBytesMaxMin = 1024;
/** Largest accepted `segmentBytesMax`: record offsets are kept in a Uint32Array. */
export const segmentBytesMaxMax = 2 ** 32 - 1;
/** Default memory for the entry cache that serves tail reads without disk access. */
export const cacheBytesMaxDefault = 32 * 1024 * 1024;
/** Memory charged per cached entry on top of its data (object or packed slots). */
const cacheEntryOverheadBytes = 64;
/** Spare staging buffers above this size are dropped instead of reused. */
const stagingBufferBytesKeepMax = 8 * 1024 * 1024;
/**
 * The first staging buffer after an idle spell: small, since a lone append
 * (one publish at a time) would otherwise make a 64 KiB buffer of garbage
 * per flush, and garbage in ArrayBuffers drives V8's full collections.
 * Under load the buffer doubles and is recycled, so this costs nothing there.
 */
const stagingBufferBytesInitial = 512;
/** An idle store holds no staging buffer: this empty one stands in until the next append. */
const emptyBuffer = new Uint8Array(0);
/**
 * Staging buffers that idle stores gave back, shared by every store of the
 * process: a store that flushes one small append at a time takes the same
 * buffer back at its next append instead of allocating one per flush (an
 * ArrayBuffer costs microseconds and drives V8's collections), and an idle
 * store still holds none. At most `idleBuffersMax` of at most
 * `idleBufferBytesMax` each (1 MiB in all).
 */
// A stack with its own count: popping never shrinks the array's store (garbage per flush).
const idleBuffers: (Uint8Array | undefined)[] = [];
let idleBufferCount = 0;
const idleBuffersMax = 64;
const idleBufferBytesMax = 16 * 1024;
/**
 * One larger staging buffer an idle store gave back, shared by every store
 * of the process: a store that flushes one large record at a time (512 KiB
 * messages, a few in flight) went idle after each flush and staged the next
 * record in a new 1 MiB buffer, 1.6-2x the messages' bytes in garbage on
 * every replica, which drove a mark-compact every 70 ms on the leader
 * (session 14). One buffer of at most `largeIdleBufferBytesMax` is kept.
 */
let largeIdleBuffer: Uint8Array | undefined;
const largeIdleBufferBytesMax = 2 * 1024 * 1024;
/** Preallocation works in whole pages; a preallocated file's size is a multiple of this. */
const pageBytes = 4096;
/**
 * The first zero-filled chunk of a new active segment: one page, which ext4
 * allocates for any non-empty file anyway, so an idle replica (thousands
 * per peer) costs no disk for its padding.
 */
export const preallocationBytesMin = pageBytes;
/**
 * The largest chunk: each extension doubles the file up to this. Measured
 * on this project's VM (ext4 on virtio, write of zeros + fdatasync, p50):
 * 128 KiB 0.25-0.44 ms, 256 KiB 0.39-0.56 ms, 1 MiB 1.0-4.0 ms, 4 MiB 16 ms.
 * 256 KiB holds about 1,400 records of a 150-byte message, so the one
 * flush in that many that carries an extension pays about half a
 * millisecond, where 1 MiB would cost a 1-4 ms outlier.
 */
export const preallocationBytesMax = 256 * 1024;
/** Zeros written by extensions (read only; allocated on the first extension). */
let zeroChunk: Uint8Array | undefined;

const segmentSuffix = ".log";
const installSuffix = ".install";
const hardStateFileName = "hardstate";
const snapshotFileName = "snapshot";

/** Options for {@linkcode SegmentLogStore.open}. */
export interface SegmentLogStoreOptions {
  /** Roll to a new segment before one would exceed this many bytes. Default 64 MiB. */
  segmentBytesMax?: number;
  /** Same as `segmentBytesMax` (the name retention settings use); `segmentBytesMax` wins. */
  segmentBytes?: number;
  /**
   * Test hook: called after each durable step of installing a snapshot with
   * retained entries ("staged": the new segments are durable; "committed":
   * the snapshot file names them; "replaced": they replaced the old log).
   * Throwing from it stops the install there, as a crash would.
   */
  onInstallStep?: (step: InstallStep) => void;
  /** Memory for cached entries (unsynced entries are always held on top). Default 32 MiB. */
  cacheBytesMax?: number;
}

/** The log on disk is damaged before its last record; rebuild the replica from its leader. */
export class CorruptLogError extends Error {
  /**
   * @example
   * ```ts
   * import { CorruptLogError } from "./segment_log_store.ts";
   * new CorruptLogError("/data/1.log", 24, "crc mismatch");
   * ```
   */
  constructor(readonly file: string, readonly offset: number, readonly reason: string) {
    super(`Cannot read log file '${file}' at offset ${offset}: ${reason}`);
    this.name = "CorruptLogError";
  }
}

/** An entry does not fit in one record of at most `recordBytesMax` bytes. */
export class RecordTooLargeError extends RangeError {
  /**
   * @example
   * ```ts
   * import { RecordTooLargeError } from "./segment_log_store.ts";
   * new RecordTooLargeError(7, 20_000_000);
   * ```
   */
  constructor(readonly index: number, readonly bytes: number) {
    super(
      `Cannot append entry ${index} as its record is ${bytes} bytes: recordBytesMax is ${recordBytesMax}`,
    );
    this.name = "RecordTooLargeError";
  }
}

/** The store was closed; no further operation is possible. */
export class LogClosedError extends Error {
  /**
   * @example
   * ```ts
   * import { LogClosedError } from "./segment_log_store.ts";
   * new LogClosedError();
   * ```
   */
  constructor() {
    super("Cannot use the log store as it is closed");
    this.name = "LogClosedError";
  }
}

/**
 * A disk operation failed with an I/O error other than a full disk. The
 * files beyond the last successful sync are in an unknown state (a failed
 * fsync may have dropped dirty pages), so the store refuses further writes
 * until `recover()` brings it back to its last durable state.
 */
export class LogFailedError extends Error {
  /**
   * @example
   * ```ts
   * import { LogFailedError } from "./segment_log_store.ts";
   * new LogFailedError(new Error("EIO"), "/data/topics/events");
   * ```
   */
  constructor(cause: unknown, readonly directory?: string) {
    super(
      `Cannot write the log${
        directory === undefined ? "" : ` in '${directory}'`
      } as a disk operation failed: ${ioErrorName(cause)}`,
      { cause },
    );
    this.name = "LogFailedError";
  }
}

/**
 * The disk holding the log is full (ENOSPC) or over quota (EDQUOT). Nothing
 * written since the last successful sync is durable (and none of it was
 * acknowledged); the store refuses further writes until `recover()` finds
 * space again and brings it back to its last durable state.
 */
export class StorageFullError extends Error {
  /**
   * @example
   * ```ts
   * import { StorageFullError } from "./segment_log_store.ts";
   * new StorageFullError("/data/topics/events");
   * ```
   */
  constructor(readonly directory: string, options?: ErrorOptions) {
    super(`Cannot write the log in '${directory}' as the disk is full`, options);
    this.name = "StorageFullError";
  }
}

/** True for an error of a full disk or an exhausted quota. */
export function isStorageFull(error: unknown): boolean {
  if (error instanceof StorageFullError) return true;
  if (error instanceof LogFailedError) return isStorageFull(error.cause);
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

/** The typed error of a failed disk operation on the log in `directory`. */
export function storageError(error: unknown, directory: string): Error {
  if (error instanceof StorageFullError || error instanceof LogFailedError) return error;
  if (error instanceof LogClosedError) return error;
  return isStorageFull(error)
    ? new StorageFullError(directory, { cause: error })
    : new LogFailedError(error, directory);
}

/** A short name of an I/O error: its code and message, e.g. "EIO: Input/output error". */
function ioErrorName(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
}

/** Bytes written (and removed) to check that a full disk takes writes again. */
export const probeBytes = 64 * 1024;

/** A durable step of `applySnapshot` with retained entries (see `onInstallStep`). */
export type InstallStep = "staged" | "committed" | "replaced";

interface Segment {
  firstIndex: number;
  path: string;
  /** Logical size: bytes on disk plus bytes staged or planned for it. */
  bytes: number;
  /** Size of the file once the planned operations ran: records plus zero padding. */
  fileBytes: number;
  /**
   * Bytes of its records made durable by a completed flush (lowered by
   * truncations): the stamp of each record staged for it.
   */
  syncedBytes: number;
  /** Lowest truncation since the running flush began (Infinity: none). */
  truncatedTo: number;
  /** Written in the first record format (v1): read, never appended to. */
  legacy: boolean;
  /** Last append to it (ms since the epoch; the file's mtime after a reopen). */
  lastWriteMs: number;
  deleted: boolean;
}

type DiskOperation =
  | { kind: "create"; segment: Segment }
  | { kind: "write"; segment: Segment; offset: number; bytes: Uint8Array; buffer: Uint8Array }
  | { kind: "extend"; segment: Segment; from: number; to: number }
  | { kind: "truncate"; segment: Segment; bytes: number }
  | { kind: "delete"; segment: Segment };

/**
 * The durable `LogStore`. Reads are synchronous: terms and record positions
 * live in typed arrays, recent entries in a bounded cache, and older entries
 * are read with one positioned read per segment run.
 *
 * The newest entries passed to `append` are kept by reference in the cache
 * and returned by `entries()`; callers must not mutate them. Older cached
 * ones are packed into shared buffers (`_entry_cache.ts`) and read back as
 * copies.
 *
 * @example
 * ```ts
 * import { SegmentLogStore } from "./segment_log_store.ts";
 * import { EntryType } from "./types.ts";
 * const store = await SegmentLogStore.open(await Deno.makeTempDir());
 * store.append([{ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array([42]) }]);
 * await store.sync();
 * store.syncedIndex(); // 1
 * await store.close();
 * ```
 */
export class SegmentLogStore implements LogStore {
  readonly #directory: string;
  readonly #segmentBytesMax: number;
  readonly #cacheBytesMax: number;
  readonly #onInstallStep: ((step: InstallStep) => void) | undefined;

  #segments: Segment[] = [];
  #lastIndex = 0;
  #syncedIndex = 0;
  /** Highest index whose record is in its file (reads below the cache go to disk). */
  #writtenIndex = 0;
  /** Target of the running flush, lowered by truncations that happen meanwhile. */
  #flightIndex = 0;

  /** Index of slot 0 of the position arrays. */
  #base = 1;
  // Grown on demand from nothing: an idle replica with a handful of entries
  // costs bytes here, not the 16 KiB of a preallocated block.
  #terms = new Float64Array(0);
  #offsets = new Uint32Array(0);
  #sizes = new Uint32Array(0);

  /** Cached entries, `[#cache.firstIndex, #lastIndex]`. */
  #cache = new EntryCache(1);

  /** Records appended to the last segment and not yet handed to a flush. */
  #staging: Uint8Array = emptyBuffer;
  #stagingLength = 0;
  #spareBuffers: Uint8Array[] = [];
  /** The byte budget of the running `entries()` call (reused: no object per read). */
  readonly #readBudget = { bytes: 0 };
  /** The last view of staged records written by a flush at once (`#stagedBytes`). */
  #stagedView: Uint8Array = emptyBuffer;
  #plan: DiskOperation[] = [];

  #hardState: HardState = { term: 0, vote: 0, commit: 0 };
  #persistedHardState: HardState = { term: 0, vote: 0, commit: 0 };
  #snapshot: Snapshot | undefined;
  #snapshotToWrite: Snapshot | undefined;

  /** Disk jobs run one at a time in this chain (read it through `#tail()`). */
  #queue: Promise<unknown> = Promise.resolve();
  /** Jobs queued or running, a flush at once (`#flushAtOnce`) included. */
  #jobs = 0;
  readonly #jobDone = (): void => {
    this.#jobs--;
  };
  /** The running flush at once, until a job queued behind it chains it into `#queue`. */
  #unchainedFlush: Promise<void> | undefined;
  /** The active segment's pooled write handle, kept across flushes while the pool keeps it open. */
  #activeHandle: PooledFile | undefined;
  /**
   * Where the active handle's file position is after the last write of a
   * flush at once (-1: unknown): the next one starts there when one publish
   * follows another, and skips its seek. Every other writer of this store's
   * files (`#execute`, `#extendAhead`) resets it, and only this store writes them.
   */
  #activePosition = -1;
  /** What the running flush at once covers (`#flushAtOnce`), for its fsync's callback. */
  #atOnce: {
    handle: PooledFile | undefined;
    segment: Segment | undefined;
    end: number;
    /** `fsyncTurnsStarted()` when its fsync was asked for. */
    turn: number;
    flush: Promise<void> | undefined;
    resolve: () => void;
    reject: (error: unknown) => void;
  } = {
    handle: undefined,
    segment: undefined,
    end: 0,
    turn: 0,
    flush: undefined,
    resolve: () => {},
    reject: () => {},
  };
  readonly #captureAtOnce = (resolve: () => void, reject: (error: unknown) => void): void => {
    this.#atOnce.resolve = resolve;
    this.#atOnce.reject = reject;
  };
  /** One fsync request object for every flush at once of this store (no closure per flush). */
  readonly #fsyncRequest: FsyncRequest & { file: Deno.FsFile; onPool: boolean; soon: boolean } = {
    file: undefined as unknown as Deno.FsFile,
    onPool: false,
    soon: false,
    fsynced: (error?: unknown) => this.#atOnceSynced(error),
  };
  /** A flush queued but not started: later `sync()` calls join it (group commit). */
  #pendingFlush: Promise<void> | undefined;
  #runningFlush: Promise<void> | undefined;
  /** The typed error of a failed disk operation; writes are refused until `recover()`. */
  #failure: Error | undefined;
  /**
   * Per segment file, the bytes a successful sync made durable: the only
   * part of the file that is trusted after a failed write (see `recover()`).
   */
  #durableBytes = new Map<string, number>();
  /** The running `recover()`, which concurrent callers share. */
  #recovering: Promise<void> | undefined;
  #closed = false;
  #fsyncCount = 0;
  /** Committed entries up to here hold no conf change past the last written hard state. */
  #confScanIndex = 0;
  /** An extension ahead of the active segment's records is queued (`#scheduleExtension`). */
  #extensionQueued = false;
  /** Set when `open` created the directory: the first directory fsync also syncs its parent. */
  #parentUnsynced = false;

  private constructor(
    directory: string,
    segmentBytesMax: number,
    cacheBytesMax: number,
    onInstallStep?: (step: InstallStep) => void,
  ) {
    this.#directory = directory;
    this.#segmentBytesMax = segmentBytesMax;
    this.#cacheBytesMax = cacheBytesMax;
    this.#onInstallStep = onInstallStep;
  }

  /**
   * Opens (creating if needed) the log in `directory`, truncating a torn
   * final record. Throws `CorruptLogError` when earlier data is damaged.
   *
   * @example
   * ```ts
   * import { SegmentLogStore } from "./segment_log_store.ts";
   * const store = await SegmentLogStore.open(await Deno.makeTempDir(), {
   *   segmentBytesMax: 16 * 1024 * 1024,
   * });
   * await store.close();
   * ```
   */
  static async open(
    directory: string,
    options: SegmentLogStoreOptions = {},
  ): Promise<SegmentLogStore> {
    const segmentBytesMax = options.segmentBytesMax ?? options.segmentBytes ??
      segmentBytesMaxDefault;
    const cacheBytesMax = options.cacheBytesMax ?? cacheBytesMaxDefault;
    validateOptions(segmentBytesMax, cacheBytesMax);
    const created = createDirectory(directory);
    const store = new SegmentLogStore(
      directory,
      segmentBytesMax,
      cacheBytesMax,
      options.onInstallStep,
    );
    // A directory this call created holds nothing to read back: a new
    // replica costs one mkdir here and its first flush, not a dozen reads of
    // files that cannot exist. Its first flush fsyncs the parent directory
    // too; until then a crash may lose the directory, which leaves what a
    // new replica is anyway (nothing in it was durable or acknowledged).
    if (created) store.#parentUnsynced = true;
    else await store.#load();
    return store;
  }

  /** Number of fsync calls issued (data, directory and atomic-file ones); for tests and metrics. */
  get fsyncCount(): number {
    return this.#fsyncCount;
  }

  /** Number of segment files currently making up the log. */
  get segmentCount(): number {
    return this.#segments.length;
  }

  /**
   * Bytes of buffers this store holds besides its entry cache: the staging
   * buffer, spare buffers and the index arrays. Small for an idle store.
   */
  get bufferBytes(): number {
    let bytes = this.#staging.byteLength + this.#terms.byteLength + this.#offsets.byteLength +
      this.#sizes.byteLength;
    for (const buffer of this.#spareBuffers) bytes += buffer.byteLength;
    return bytes;
  }

  /** Bytes charged to the entry cache (data plus per-entry overhead); for tests and metrics. */
  get cachedBytes(): number {
    return this.#cache.dataBytes + this.#cache.count * cacheEntryOverheadBytes;
  }

  firstIndex(): number {
    const first = this.#segments[0]?.firstIndex;
    if (first === undefined || first > this.#lastIndex) return (this.#snapshot?.index ?? 0) + 1;
    return first;
  }

  segments(): SegmentInfo[] {
    return this.#segments.map((segment, position) => ({
      firstIndex: segment.firstIndex,
      lastIndex: (this.#segments[position + 1]?.firstIndex ?? this.#lastIndex + 1) - 1,
      bytes: segment.bytes,
      lastWriteMs: segment.lastWriteMs,
    }));
  }

  lastIndex(): number {
    return this.#lastIndex;
  }

  syncedIndex(): number {
    return this.#syncedIndex;
  }

  term(index: number): number | undefined {
    if (this.#snapshot !== undefined && index === this.#snapshot.index) return this.#snapshot.term;
    if (index < this.firstIndex() || index > this.#lastIndex) return undefined;
    return this.#terms[index - this.#base];
  }

  hardState(): HardState {
    return { ...this.#hardState };
  }

  snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  entries(low: number, high: number, maxBytes = Infinity): Entry[] {
    this.#assertOpen();
    if (low < this.firstIndex() || high > this.#lastIndex + 1 || low > high) {
      throw new RangeError(
        `Cannot read entries [${low}, ${high}) as the log holds [${this.firstIndex()}, ${
          this.#lastIndex + 1
        })`,
      );
    }
    const result: Entry[] = [];
    // One budget object per store: a read is synchronous, so none overlaps another.
    const budget = this.#readBudget;
    budget.bytes = maxBytes;
    let index = low;
    while (index < high) {
      const before = result.length;
      if (index >= this.#cache.firstIndex) this.#readCached(index, high, budget, result);
      else this.#readDisk(index, Math.min(high, this.#cache.firstIndex), budget, result);
      if (result.length === before) break;
      index = low + result.length;
      if (index < high && budget.bytes < 0) break;
    }
    return result;
  }

  append(entries: Entry[]): void {
    this.#assertWritable();
    if (entries.length === 0) return;
    const first = entries[0].index;
    if (first < this.firstIndex() || first > this.#lastIndex + 1) {
      throw new RangeError(
        `Cannot append at index ${first} as the log holds [${this.firstIndex()}, ${
          this.#lastIndex + 1
        })`,
      );
    }
    this.#validateBatch(entries);
    if (first <= this.#lastIndex) this.#truncateFrom(first);
    for (const entry of entries) this.#appendOne(entry);
    this.#evictCache();
  }

  setHardState(state: HardState): void {
    this.#assertWritable();
    this.#hardState = { term: state.term, vote: state.vote, commit: state.commit };
  }

  /**
   * `background` (a leader's own write) runs a flush at once's fsync on the
   * thread pool; other flushes choose as before (`_fsync.ts`).
   */
  sync(options?: SyncOptions): Promise<void> {
    if (this.#closed) return Promise.reject(new LogClosedError());
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#pendingFlush !== undefined) return this.#pendingFlush;
    if (!this.#hasUnflushedWork()) return this.#runningFlush ?? Promise.resolve();
    if (this.#canFlushAtOnce()) {
      return this.#flushAtOnce(options?.background === true, options?.soon === true);
    }
    if (this.#canJoinAtOnce()) return this.#joinAtOnce();
    const flush: Promise<void> = this.#enqueue(async () => {
      if (this.#pendingFlush === flush) this.#pendingFlush = undefined;
      this.#runningFlush = flush;
      try {
        await this.#flush();
      } finally {
        if (this.#runningFlush === flush) this.#runningFlush = undefined;
      }
    });
    this.#pendingFlush = flush;
    return flush;
  }

  applySnapshot(snapshot: Snapshot, retained: Entry[] = []): Promise<void> {
    this.#assertWritable();
    const previousIndex = this.#snapshot?.index ?? 0;
    if (snapshot.index < previousIndex) {
      throw new RangeError(
        `Cannot apply snapshot at index ${snapshot.index} as it is older than the current one at ${previousIndex}`,
      );
    }
    checkRetained(snapshot, retained);
    if (retained.length > 0) return this.#installWithRetained(snapshot, retained);
    this.#sealStaging();
    for (const segment of this.#segments) {
      this.#plan.push({ kind: "delete", segment });
      storedBytes.total -= segment.bytes;
    }
    this.#segments = [];
    this.#snapshot = snapshot;
    this.#snapshotToWrite = snapshot;
    // Nothing of the old log counts as durable any more; the flush that
    // writes the snapshot advances syncedIndex again.
    this.#syncedIndex = Math.min(this.#syncedIndex, previousIndex);
    this.#flightIndex = Math.min(this.#flightIndex, previousIndex);
    this.#writtenIndex = snapshot.index;
    this.#lastIndex = snapshot.index;
    this.#base = snapshot.index + 1;
    this.#cache.clear(snapshot.index + 1);
    return this.sync();
  }

  /**
   * Installs a snapshot with the leader's retained entries as one unit:
   *
   * 1. staged: the entries are written as `*.install` segment files, fsynced;
   * 2. committed: the snapshot file is replaced atomically (the commit point:
   *    its index and term are those of the last staged entry);
   * 3. replaced: every `.log` file is deleted and the staged files renamed.
   *
   * A crash before 2 leaves the old log (open deletes the staged files); a
   * crash after it leaves the new one (open finishes step 3). The store is
   * then loaded back from its directory, as `open()` would.
   */
  async #installWithRetained(snapshot: Snapshot, retained: Entry[]): Promise<void> {
    await this.sync();
    await this.#enqueue(async () => {
      const hardState = this.#hardState;
      try {
        await this.#install(snapshot, retained);
        const loaded = await SegmentLogStore.open(this.#directory, {
          segmentBytesMax: this.#segmentBytesMax,
          cacheBytesMax: this.#cacheBytesMax,
          onInstallStep: this.#onInstallStep,
        });
        this.#adopt(loaded);
      } catch (error) {
        this.#failure = storageError(error, this.#directory);
        throw this.#failure;
      }
      // Term and vote were synced above; the commit index is only a hint.
      this.#hardState = hardState;
    });
  }

  async #install(snapshot: Snapshot, retained: Entry[]): Promise<void> {
    const onFsync = () => this.#fsyncCount++;
    const staged = stageSegments(retained, this.#segmentBytesMax);
    for (const segment of staged) {
      await writeDurably(this.#path(installName(segment.firstIndex)), segment.bytes);
      onFsync();
    }
    await syncDirectory(this.#directory);
    onFsync();
    this.#onInstallStep?.("staged");
    await writeFileAtomic(this.#path(snapshotFileName), encodeSnapshot(snapshot), { onFsync });
    // From here on the new log is the durable one, should recover() run.
    this.#durableBytes = new Map(
      staged.map((
        segment,
      ) => [segmentPath(this.#directory, segment.firstIndex), segment.bytes.length]),
    );
    this.#onInstallStep?.("committed");
    for (const segment of this.#segments) segmentFiles.closePath(segment.path);
    await finishInstall(this.#directory, true);
    onFsync();
    this.#onInstallStep?.("replaced");
  }

  compact(snapshot: Snapshot, keepFrom = snapshot.index + 1): Promise<void> {
    this.#assertWritable();
    const previousIndex = this.#snapshot?.index ?? 0;
    assert.ok(
      snapshot.index >= previousIndex && snapshot.index <= this.#syncedIndex,
      `compact(${snapshot.index}) outside [${previousIndex}, syncedIndex ${this.#syncedIndex}]`,
    );
    assert.equal(this.term(snapshot.index) ?? 0, snapshot.term, "compact: snapshot term mismatch");
    this.#snapshot = snapshot;
    this.#snapshotToWrite = snapshot;
    // Whole segments whose entries all lie below `limit` go; the last one
    // stays as the active segment even when fully covered.
    const limit = Math.min(keepFrom, snapshot.index + 1);
    while (this.#segments.length > 1 && this.#segments[1].firstIndex <= limit) {
      const segment = this.#segments.shift()!;
      this.#plan.push({ kind: "delete", segment });
      storedBytes.total -= segment.bytes;
    }
    this.#trimPositions();
    const first = this.firstIndex();
    while (this.#cache.firstIndex < first && this.#cache.firstIndex <= this.#lastIndex) {
      this.#cache.evictFirst();
    }
    if (this.#cache.firstIndex < first) this.#cache.clear(first);
    return this.sync();
  }

  /** The typed error that made the store refuse writes, if any (until `recover()`). */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /**
   * Brings the store back after a failed write, as a crash-restart would.
   *
   * 1. Probe: a file of `probeBytes` is written, fsynced and removed, so a
   *    disk that is still full fails here (StorageFullError), cheaply, and
   *    the caller retries later.
   * 2. Roll back: every segment file is cut back to the bytes that the last
   *    successful sync made durable, and files no successful sync created
   *    are removed. After a failed fsync the page cache may still show bytes
   *    that never reached the disk (or have dropped ones that did not), so
   *    nothing beyond the last successful sync is trusted; nothing beyond it
   *    was acknowledged either, since acknowledgements wait for `sync()`.
   * 3. Reload: the log, hard state and snapshot are read back from disk, as
   *    `open()` does, and replace this store's state in one synchronous step
   *    (concurrent readers never see a half-loaded log).
   *
   * Entries appended but not synced are gone afterwards: the owner must
   * rebuild whatever it derived from them (Raft restarts from the store).
   * Resolves at once when the store has not failed.
   *
   * @example
   * ```ts
   * import { SegmentLogStore } from "./segment_log_store.ts";
   * const store = await SegmentLogStore.open(await Deno.makeTempDir());
   * await store.sync().catch(() => store.recover());
   * ```
   */
  recover(): Promise<void> {
    if (this.#closed) return Promise.reject(new LogClosedError());
    if (this.#failure === undefined) return Promise.resolve();
    this.#recovering ??= this.#recover().finally(() => this.#recovering = undefined);
    return this.#recovering;
  }

  async #recover(): Promise<void> {
    await this.#tail();
    try {
      await this.#probe();
      await this.#rollBack();
      const loaded = await SegmentLogStore.open(this.#directory, {
        segmentBytesMax: this.#segmentBytesMax,
        cacheBytesMax: this.#cacheBytesMax,
      });
      if (this.#closed) {
        await loaded.close();
        throw new LogClosedError();
      }
      this.#adopt(loaded);
    } catch (error) {
      if (error instanceof CorruptLogError || error instanceof LogClosedError) throw error;
      throw storageError(error, this.#directory);
    }
  }

  async #probe(): Promise<void> {
    const path = this.#path(`probe${temporaryFileSuffix}`);
    try {
      const file = await Deno.open(path, { write: true, create: true, truncate: true });
      try {
        await writeAll(file, new Uint8Array(probeBytes));
        await file.syncData();
        this.#fsyncCount++;
      } finally {
        file.close();
      }
    } finally {
      await Deno.remove(path).catch(() => {});
    }
  }

  /** Cuts the files back to their durable bytes (see `recover()`). */
  async #rollBack(): Promise<void> {
    for await (const entry of Deno.readDir(this.#directory)) {
      const path = this.#path(entry.name);
      if (entry.name.endsWith(temporaryFileSuffix)) {
        await Deno.remove(path).catch(ignoreNotFound);
        continue;
      }
      if (!entry.isFile || !/^\d{20}\.log$/.test(entry.name)) continue;
      const durable = this.#durableBytes.get(path) ?? 0;
      if (durable === 0) {
        await Deno.remove(path).catch(ignoreNotFound);
      } else if ((await Deno.stat(path)).size > durable) {
        await truncateFile(path, durable);
        this.#fsyncCount++;
      }
    }
    await syncDirectory(this.#directory);
    this.#fsyncCount++;
  }

  /** Takes over the state of `loaded`, a fresh store of the same directory. */
  #adopt(loaded: SegmentLogStore): void {
    for (const segment of this.#segments) {
      closeFiles(segment);
      storedBytes.total -= segment.bytes;
    }
    for (const operation of this.#plan) closeFiles(operation.segment);
    this.#segments = loaded.#segments;
    this.#lastIndex = loaded.#lastIndex;
    this.#syncedIndex = loaded.#syncedIndex;
    this.#writtenIndex = loaded.#writtenIndex;
    this.#flightIndex = loaded.#flightIndex;
    this.#base = loaded.#base;
    this.#terms = loaded.#terms;
    this.#offsets = loaded.#offsets;
    this.#sizes = loaded.#sizes;
    this.#cache = loaded.#cache;
    this.#staging = loaded.#staging;
    this.#stagingLength = loaded.#stagingLength;
    this.#spareBuffers = loaded.#spareBuffers;
    this.#plan = loaded.#plan;
    this.#hardState = loaded.#hardState;
    this.#persistedHardState = loaded.#persistedHardState;
    this.#snapshot = loaded.#snapshot;
    this.#snapshotToWrite = loaded.#snapshotToWrite;
    this.#queue = Promise.resolve();
    this.#unchainedFlush = undefined;
    this.#pendingFlush = undefined;
    this.#runningFlush = undefined;
    this.#durableBytes = loaded.#durableBytes;
    this.#fsyncCount += loaded.#fsyncCount;
    this.#failure = undefined;
    // The loaded store's file handles now belong to this one.
    loaded.#segments = [];
    loaded.#closed = true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail();
    if (this.#failure === undefined) await this.#trimActive();
    for (const segment of this.#segments) {
      closeFiles(segment);
      storedBytes.total -= segment.bytes;
    }
    for (const operation of this.#plan) closeFiles(operation.segment);
    this.#segments = [];
    this.#plan = [];
  }

  /**
   * Cuts the zero padding off the active segment at a clean close, so the
   * segment reads as exact at the next open (any damage followed by a valid
   * record is reported) and idle replicas hold no padding. Its mtime (the
   * last append, which retention by age reads) is put back. A failure
   * leaves the padding, which the next open handles as after a crash.
   */
  async #trimActive(): Promise<void> {
    const active = this.#segments.at(-1);
    const durable = active === undefined ? undefined : this.#durableBytes.get(active.path);
    if (active === undefined || durable === undefined || active.legacy) return;
    try {
      const file = segmentFiles.openSync(active.path, "write");
      if (file.statSync().size <= durable) return;
      file.truncateSync(durable);
      await syncFileData(file);
      this.#fsyncCount++;
      Deno.utimeSync(active.path, new Date(), new Date(active.lastWriteMs));
    } catch {
      // The padding stays: the next open treats the segment as not closed cleanly.
    }
  }

  // ---- append path -------------------------------------------------------

  #validateBatch(entries: Entry[]): void {
    const first = entries[0];
    const previousTerm = this.term(first.index - 1) ?? 0;
    // Checked before asserting: a message is built only on failure (garbage per append).
    if (first.term < previousTerm) {
      assert.fail(`append: term ${first.term} < previous ${previousTerm}`);
    }
    for (let position = 0; position < entries.length; position++) {
      const entry = entries[position];
      if (entry.index !== first.index + position) {
        assert.equal(entry.index, first.index + position, "append: indices must be consecutive");
      }
      if (position > 0 && entry.term < entries[position - 1].term) {
        assert.fail("append: term decreases");
      }
      const size = recordSize(entry);
      if (size > recordBytesMax) throw new RecordTooLargeError(entry.index, size);
    }
    const last = entries[entries.length - 1];
    if (last.index > recordNumberMax || last.term > recordNumberMax) {
      assert.fail("append: term or index over 2^48");
    }
  }

  #appendOne(entry: Entry): void {
    const size = recordSize(entry);
    let active = this.#segments.at(-1);
    if (
      active === undefined ||
      (active.bytes > 0 && (active.legacy || active.bytes + size > this.#segmentBytesMax))
    ) {
      active = this.#roll(entry.index);
    }
    // An empty segment holds no record of the first format to continue.
    active.legacy = false;
    if (active.bytes + size > active.fileBytes) this.#planExtension(active, active.bytes + size);
    this.#reserveStaging(size);
    encodeSegmentRecord(this.#staging, this.#stagingLength, entry, active.syncedBytes);
    this.#stagingLength += size;
    const position = this.#reservePosition(entry.index);
    this.#terms[position] = entry.term;
    this.#offsets[position] = active.bytes;
    this.#sizes[position] = size;
    active.bytes += size;
    storedBytes.total += size;
    this.#lastIndex = entry.index;
    this.#cache.push(entry);
  }

  #roll(firstIndex: number): Segment {
    this.#sealStaging();
    const previous = this.#segments.at(-1);
    if (previous !== undefined && previous.fileBytes > previous.bytes) {
      // Sealed: trimmed to its records, so a closed segment is exact (and
      // durable, by the barrier that precedes the next one's creation).
      this.#plan.push({ kind: "truncate", segment: previous, bytes: previous.bytes });
      previous.fileBytes = previous.bytes;
    }
    const segment: Segment = {
      firstIndex,
      path: segmentPath(this.#directory, firstIndex),
      bytes: 0,
      fileBytes: 0,
      syncedBytes: 0,
      truncatedTo: Infinity,
      legacy: false,
      lastWriteMs: Date.now(),
      deleted: false,
    };
    this.#segments.push(segment);
    this.#plan.push({ kind: "create", segment });
    return segment;
  }

  /**
   * Plans an extension of `segment` with zeros in the next flush, for a
   * record that would end at `end`, past its allocated space: the first
   * records of a segment, a record larger than a chunk, or appends that
   * outran the extension ahead (`#extendAhead`).
   */
  #planExtension(segment: Segment, end: number): void {
    const target = this.#extensionTarget(segment, end);
    this.#plan.push({ kind: "extend", segment, from: segment.fileBytes, to: target });
    segment.fileBytes = target;
  }

  /**
   * The size to extend `segment` to once records reach `end`: one chunk
   * more (the chunk doubles with the file, 4 KiB up to 256 KiB), and a
   * quarter chunk past `end` at least, but not past `segmentBytesMax`
   * rounded up to a page, except for a record larger than that, which gets
   * the room it needs. Returns its size when it is at that limit.
   */
  #extensionTarget(segment: Segment, end: number): number {
    const chunk = preallocationChunkBytes(segment.fileBytes);
    const limit = Math.max(roundUpToPage(end), roundUpToPage(this.#segmentBytesMax));
    const wanted = Math.max(segment.fileBytes + chunk, end + chunk / 4);
    return Math.max(segment.fileBytes, Math.min(roundUpToPage(wanted), limit));
  }

  /**
   * After a flush, queues the extension of the active segment once its
   * records came within a quarter chunk of its allocated end, as a disk
   * job of its own: the sync() that the flush resolves does not wait for
   * it, and later flushes write their records over zeros it made durable.
   */
  #scheduleExtension(): void {
    const active = this.#segments.at(-1);
    if (this.#extensionQueued || active === undefined || !needsExtension(active)) return;
    this.#extensionQueued = true;
    this.#enqueue(() => this.#extendAhead()).catch(() => {
      // A failure is kept in #failure, which the next sync() reports.
      this.#extensionQueued = false;
    });
  }

  /**
   * The job `#scheduleExtension` queued. It runs alone (no flush runs
   * meanwhile), so every record and extension planned so far lies below the
   * segment's planned size, and everything planned after its start is
   * written by later flushes, after its zeros: it zeroes only from there.
   * A segment with a truncation, deletion or creation still planned is left
   * to the flush that carries it.
   */
  async #extendAhead(): Promise<void> {
    this.#activePosition = -1;
    this.#extensionQueued = false;
    const active = this.#segments.at(-1);
    if (active === undefined || !needsExtension(active)) return;
    for (const operation of this.#plan) {
      const destructive = operation.kind !== "write" && operation.kind !== "extend";
      if (destructive && operation.segment === active) return;
    }
    const from = active.fileBytes;
    const to = this.#extensionTarget(active, active.bytes);
    if (to <= from) return;
    active.fileBytes = to;
    try {
      const file = segmentFiles.openPinned(active.path, "write");
      try {
        await writeZeros(file, from, to);
        // On the thread pool: the event loop keeps serving meanwhile.
        await file.syncData();
        this.#fsyncCount++;
      } finally {
        segmentFiles.unpin(active.path, "write");
      }
    } catch (error) {
      this.#failure = storageError(error, this.#directory);
      throw this.#failure;
    }
  }

  /** Moves the staged records of the last segment into the plan. */
  #sealStaging(): void {
    if (this.#stagingLength === 0) return;
    const segment = this.#segments.at(-1)!;
    const buffer = this.#staging;
    this.#plan.push({
      kind: "write",
      segment,
      offset: segment.bytes - this.#stagingLength,
      bytes: buffer.subarray(0, this.#stagingLength),
      buffer,
    });
    this.#staging = this.#spareBuffers.pop() ?? emptyBuffer;
    this.#stagingLength = 0;
  }

  #reserveStaging(size: number): void {
    const needed = this.#stagingLength + size;
    if (needed <= this.#staging.length) return;
    if (this.#staging === emptyBuffer && idleBufferCount > 0) {
      const idle = idleBuffers[idleBufferCount - 1]!;
      if (needed <= idle.length) {
        idleBuffers[--idleBufferCount] = undefined;
        this.#staging = idle;
        return;
      }
    }
    let capacity = Math.max(stagingBufferBytesInitial, this.#staging.length * 2);
    while (capacity < needed) capacity *= 2;
    const large = largeIdleBuffer;
    const reused = large !== undefined && needed <= large.length && capacity > idleBufferBytesMax;
    if (reused) largeIdleBuffer = undefined;
    const grown = reused ? large : new Uint8Array(capacity);
    grown.set(this.#staging.subarray(0, this.#stagingLength));
    this.#staging = grown;
  }

  #reservePosition(index: number): number {
    const position = index - this.#base;
    if (position >= this.#terms.length) {
      const capacity = Math.max(this.#terms.length * 2, position + 1);
      this.#terms = grow(this.#terms, new Float64Array(capacity));
      this.#offsets = grow(this.#offsets, new Uint32Array(capacity));
      this.#sizes = grow(this.#sizes, new Uint32Array(capacity));
    }
    return position;
  }

  /** Drops position slots of entries in deleted segments once they are a large share. */
  #trimPositions(): void {
    const keepFrom = this.#segments[0]?.firstIndex ?? this.firstIndex();
    const drop = keepFrom - this.#base;
    if (drop < 1024 || drop < (this.#lastIndex - this.#base) / 2) return;
    const count = this.#lastIndex - keepFrom + 1;
    this.#terms.copyWithin(0, drop, drop + count);
    this.#offsets.copyWithin(0, drop, drop + count);
    this.#sizes.copyWithin(0, drop, drop + count);
    this.#base = keepFrom;
  }

  /** Drops entries `[index, lastIndex]`, in memory now and on disk at the next flush. */
  #truncateFrom(index: number): void {
    const segmentPosition = this.#segmentPosition(index);
    const segment = this.#segments[segmentPosition];
    const offset = this.#offsets[index - this.#base];
    const isLast = segmentPosition === this.#segments.length - 1;
    const stagedStart = isLast ? segment.bytes - this.#stagingLength : segment.bytes;
    if (!isLast) this.#stagingLength = 0; // Staged bytes belong to a segment being deleted.
    for (const later of this.#segments.splice(segmentPosition + 1)) {
      this.#plan.push({ kind: "delete", segment: later });
      storedBytes.total -= later.bytes;
    }
    if (offset >= stagedStart) {
      this.#stagingLength -= segment.bytes - offset;
    } else {
      this.#stagingLength = 0;
      this.#plan.push({ kind: "truncate", segment, bytes: offset });
      segment.fileBytes = offset;
    }
    // Records staged from here on must not vouch for the removed ones.
    segment.syncedBytes = Math.min(segment.syncedBytes, offset);
    segment.truncatedTo = Math.min(segment.truncatedTo, offset);
    storedBytes.total -= segment.bytes - offset;
    segment.bytes = offset;
    this.#lastIndex = index - 1;
    this.#syncedIndex = Math.min(this.#syncedIndex, index - 1);
    this.#writtenIndex = Math.min(this.#writtenIndex, index - 1);
    this.#flightIndex = Math.min(this.#flightIndex, index - 1);
    this.#cache.truncateFrom(index);
  }

  // ---- cache ---------------------------------------------------------------

  /** Evicts the oldest entries over budget; unwritten ones stay, as the disk cannot serve them yet. */
  #evictCache(): void {
    while (
      this.#cache.count > 0 && this.#cache.firstIndex <= this.#writtenIndex &&
      this.cachedBytes > this.#cacheBytesMax
    ) {
      this.#cache.evictFirst();
    }
  }

  // ---- read path -------------------------------------------------------------

  #readCached(low: number, high: number, budget: { bytes: number }, result: Entry[]): void {
    for (let index = low; index < high; index++) {
      const entry = this.#cache.get(index)!;
      if (!takeBudget(budget, entry.data.length, result.length)) return;
      result.push(entry);
    }
  }

  /** Reads `[low, high)` (all written, none cached) with one read per segment. */
  #readDisk(low: number, high: number, budget: { bytes: number }, result: Entry[]): void {
    const segmentPosition = this.#segmentPosition(low);
    const segment = this.#segments[segmentPosition];
    const segmentEnd = this.#segments[segmentPosition + 1]?.firstIndex ?? this.#lastIndex + 1;
    const end = Math.min(high, segmentEnd);
    let last = low;
    let bytes = 0;
    for (let index = low; index < end; index++) {
      const dataBytes = this.#sizes[index - this.#base] - recordHeaderBytes - 1;
      if (!takeBudget(budget, dataBytes, result.length + index - low)) break;
      bytes += dataBytes + recordHeaderBytes + 1;
      last = index + 1;
    }
    if (last === low) return;
    const start = this.#offsets[low - this.#base];
    const buffer = new Uint8Array(bytes);
    readAt(segment, start, buffer);
    let offset = 0;
    for (let index = low; index < last; index++) {
      const reason = checkRecord(buffer, offset, buffer.length, index);
      if (reason !== undefined) throw new CorruptLogError(segment.path, start + offset, reason);
      result.push(decodeRecord(buffer, offset));
      offset += this.#sizes[index - this.#base];
    }
  }

  #segmentPosition(index: number): number {
    let low = 0;
    let high = this.#segments.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if (this.#segments[middle].firstIndex <= index) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  // ---- flush ---------------------------------------------------------------

  #hasUnflushedWork(): boolean {
    return this.#stagingLength > 0 || this.#plan.length > 0 ||
      this.#snapshotToWrite !== undefined || this.#hardStateNeedsWrite();
  }

  /**
   * The hard state is written when its term or vote changed (unless the
   * log implies it, `impliedByLog`), and when its commit index passed a
   * conf change: Raft applies a conf change only once a synced hard state
   * covers its index (`RaftNode`), since a replica that came back with a
   * lower commit index would apply an older membership again. Other
   * commit-only changes are not written: the commit index is a hint that
   * Raft relearns from its leader.
   */
  #hardStateNeedsWrite(): boolean {
    if (this.#commitPassesConfChange()) return true;
    const changed = this.#hardState.term !== this.#persistedHardState.term ||
      this.#hardState.vote !== this.#persistedHardState.vote;
    return changed && !impliedByLog(this.#hardState, this.term(this.#lastIndex) ?? 0);
  }

  /**
   * Whether the commit index passed a conf change after the bootstrap entry
   * since the hard state was last written (`confChangeAt`). Entries already
   * looked at are not looked at again.
   */
  #commitPassesConfChange(): boolean {
    const from = Math.max(this.#confScanIndex, this.#persistedHardState.commit);
    const to = Math.min(this.#hardState.commit, this.#lastIndex);
    if (to <= from) return false;
    // An entry out of the cache is not at hand (`typeOf` undefined): write
    // rather than read it. (`confChangeAt`'s rule, inlined: no closure or
    // result object per sync.) The cache never holds an entry below
    // `firstIndex()`: compaction and snapshots clear it up to there.
    for (let index = Math.max(from, 1) + 1; index <= to; index++) {
      const type = this.#cache.typeOf(index);
      if (type === undefined || type === EntryType.ConfChange) {
        this.#confScanIndex = index - 1;
        return true;
      }
    }
    this.#confScanIndex = Math.max(from, to);
    return false;
  }

  #enqueue(job: () => Promise<void>): Promise<void> {
    this.#jobs++;
    const run = this.#tail().then(() => {
      if (this.#closed) throw new LogClosedError();
      if (this.#failure !== undefined) throw this.#failure;
      return job();
    });
    this.#queue = run.then(this.#jobDone, this.#jobDone);
    return run;
  }

  /** The end of the job chain, a running flush at once included. */
  #tail(): Promise<unknown> {
    const flush = this.#unchainedFlush;
    if (flush !== undefined) {
      // Only when a job queues behind it: its own promise is all it costs otherwise.
      this.#unchainedFlush = undefined;
      this.#queue = flush.catch(() => {});
    }
    return this.#queue;
  }

  /**
   * Whether `sync()` can write at once: nothing but records staged for the
   * active segment (no segment to create, extend, cut or delete, no hard
   * state or snapshot file), and no job queued or running.
   */
  #canFlushAtOnce(): boolean {
    return this.#jobs === 0 && this.#stagingLength > 0 && this.#planOnlyExtendsActive() &&
      this.#snapshotToWrite === undefined && !this.#parentUnsynced &&
      !this.#hardStateNeedsWrite();
  }

  /**
   * Whether the plan holds nothing but extensions of the active segment
   * (records that outran its zeros): a flush at once writes those zeros
   * first, as `#flush` would.
   */
  #planOnlyExtendsActive(): boolean {
    const plan = this.#plan;
    const active = this.#segments[this.#segments.length - 1];
    for (let position = 0; position < plan.length; position++) {
      const operation = plan[position];
      if (operation.kind !== "extend" || operation.segment !== active) return false;
    }
    return true;
  }

  /** Writes the staged records (after the planned extensions) into `file`, synchronously. */
  #writeStagedSync(file: Deno.FsFile, end: number): void {
    const plan = this.#plan;
    const offset = end - this.#stagingLength;
    if (plan.length > 0 || this.#activePosition !== offset) {
      this.#activePosition = -1;
      for (let position = 0; position < plan.length; position++) {
        const operation = plan[position];
        if (operation.kind === "extend") writeZerosSync(file, operation.from, operation.to);
      }
      if (plan.length > 0) this.#plan = [];
      file.seekSync(offset, Deno.SeekMode.Start);
    }
    this.#activePosition = -1;
    writeAllSync(file, this.#stagedBytes());
    this.#activePosition = end;
  }

  /**
   * The staged records as one view, kept while the buffer and length stay
   * the same: one append at a time of same-sized records makes no view per
   * flush.
   */
  #stagedBytes(): Uint8Array {
    const view = this.#stagedView;
    if (view.buffer === this.#staging.buffer && view.length === this.#stagingLength) return view;
    this.#stagedView = this.#staging.subarray(0, this.#stagingLength);
    return this.#stagedView;
  }

  /**
   * Whether `sync()` can join the running flush at once: its fsync has not
   * started (same event-loop turn), and what is unflushed is only records
   * staged for the same segment (group commit of syncs within one turn).
   */
  #canJoinAtOnce(): boolean {
    const atOnce = this.#atOnce;
    return atOnce.segment !== undefined && this.#jobs === 1 &&
      atOnce.turn === fsyncTurnsStarted() && this.#stagingLength > 0 &&
      atOnce.segment === this.#segments[this.#segments.length - 1] &&
      this.#planOnlyExtendsActive() &&
      this.#snapshotToWrite === undefined && !this.#hardStateNeedsWrite();
  }

  /**
   * Writes the records staged since the running flush at once into the
   * same file before its fsync starts, and answers with that flush: one
   * fsync for every sync() of the turn, as `#pendingFlush` gives the queued
   * flushes. Costs a positional write per joining sync().
   */
  #joinAtOnce(): Promise<void> {
    const atOnce = this.#atOnce;
    const segment = atOnce.segment!;
    try {
      const end = segment.bytes;
      this.#writeStagedSync(atOnce.handle!.file, end);
      atOnce.end = end;
    } catch (error) {
      // The running flush must not count these records, nor what it wrote, as durable.
      this.#failure = storageError(error, this.#directory);
      return Promise.reject(this.#failure);
    }
    this.#stagingLength = 0;
    segment.truncatedTo = Infinity;
    this.#flightIndex = this.#lastIndex;
    return atOnce.flush!;
  }

  /**
   * The flush of one small append at a time (one publish at a time): the
   * staged records go into the active segment's preallocated space now,
   * synchronously, through the handle the store keeps, and the one promise
   * returned resolves once their fdatasync (at the end of this event-loop
   * turn, `requestFileSync`) is done. It is a job like `#flush` (later jobs
   * wait for it) and keeps its guarantees: the records reach the file before
   * the fsync, and nothing counts as durable before it succeeded. It saves
   * `#flush`'s chain of async functions, plan objects and pool lookups.
   */
  #flushAtOnce(onPool: boolean, soon: boolean): Promise<void> {
    const segment = this.#segments[this.#segments.length - 1];
    const end = segment.bytes;
    let handle = this.#activeHandle;
    try {
      if (handle === undefined || handle.closed || handle.path !== segment.path) {
        handle = segmentFiles.acquire(segment.path, "write");
        this.#activeHandle = handle;
        this.#activePosition = -1;
      } else {
        segmentFiles.touch(handle);
      }
      this.#writeStagedSync(handle.file, end);
    } catch (error) {
      this.#failure = storageError(error, this.#directory);
      return Promise.reject(this.#failure);
    }
    // The staging buffer is free again: its bytes are in the page cache.
    this.#stagingLength = 0;
    segment.lastWriteMs = Date.now();
    segment.truncatedTo = Infinity;
    this.#flightIndex = this.#lastIndex;
    segmentFiles.pin(handle);
    this.#jobs++;
    const atOnce = this.#atOnce;
    atOnce.handle = handle;
    atOnce.segment = segment;
    atOnce.end = end;
    atOnce.turn = fsyncTurnsStarted();
    const flush = new Promise<void>(this.#captureAtOnce);
    atOnce.flush = flush;
    this.#runningFlush = flush;
    this.#unchainedFlush = flush;
    this.#fsyncRequest.file = handle.file;
    this.#fsyncRequest.onPool = onPool;
    this.#fsyncRequest.soon = soon;
    this.#fsyncCount++;
    requestFileSync(this.#fsyncRequest);
    return flush;
  }

  /** The end of a flush at once: its fdatasync is done (or failed with `error`). */
  #atOnceSynced(error: unknown): void {
    const { handle, segment, end, flush, resolve, reject } = this.#atOnce;
    this.#atOnce.handle = undefined;
    this.#atOnce.segment = undefined;
    this.#atOnce.flush = undefined;
    segmentFiles.release(handle!);
    this.#jobs--;
    if (this.#unchainedFlush === flush) this.#unchainedFlush = undefined;
    if (this.#runningFlush === flush) this.#runningFlush = undefined;
    if (error !== undefined || this.#failure !== undefined) {
      this.#failure ??= storageError(error, this.#directory);
      reject(this.#failure);
      return;
    }
    this.#durableBytes.set(segment!.path, end);
    segment!.syncedBytes = Math.max(segment!.syncedBytes, Math.min(end, segment!.truncatedTo));
    this.#syncedIndex = Math.max(this.#syncedIndex, this.#flightIndex);
    this.#writtenIndex = Math.max(this.#writtenIndex, this.#flightIndex);
    if (this.#stagingLength === 0 && this.#plan.length === 0) this.#releaseStaging();
    this.#evictCache();
    this.#scheduleExtension();
    resolve();
  }

  /** An idle store gives its staging buffer back to the process's idle buffers. */
  #releaseStaging(): void {
    // The view may outlive the store's hold on the buffer only while the idle list keeps it.
    if (!giveBackIdle(this.#staging)) this.#stagedView = emptyBuffer;
    this.#staging = emptyBuffer;
  }

  /** One group commit: hard state and snapshot files, then the planned operations, then fsync. */
  async #flush(): Promise<void> {
    this.#sealStaging();
    const operations = this.#plan;
    this.#plan = [];
    this.#flightIndex = this.#lastIndex;
    // With nothing staged, each live segment's logical size is its size on
    // disk once the plan ran: what this flush makes durable.
    const flushed = this.#segments.map((segment) => {
      segment.truncatedTo = Infinity;
      return { segment, bytes: segment.bytes };
    });
    const durableBytes = new Map(flushed.map(({ segment, bytes }) => [segment.path, bytes]));
    const hardState = this.#hardStateNeedsWrite() ? { ...this.#hardState } : undefined;
    const snapshot = this.#snapshotToWrite;
    this.#snapshotToWrite = undefined;
    try {
      const onFsync = () => this.#fsyncCount++;
      if (hardState !== undefined) {
        await writeFileAtomic(this.#path(hardStateFileName), encodeHardState(hardState), {
          onFsync,
        });
        this.#persistedHardState = hardState;
      }
      // The snapshot must be durable before the deletions it justifies run.
      if (snapshot !== undefined) {
        await writeFileAtomic(this.#path(snapshotFileName), encodeSnapshot(snapshot), { onFsync });
      }
      if (this.#parentUnsynced && (hardState !== undefined || snapshot !== undefined)) {
        await this.#syncParent();
      }
      await this.#execute(operations);
    } catch (error) {
      this.#failure = storageError(error, this.#directory);
      throw this.#failure;
    }
    this.#durableBytes = durableBytes;
    for (const { segment, bytes } of flushed) {
      segment.syncedBytes = Math.max(segment.syncedBytes, Math.min(bytes, segment.truncatedTo));
    }
    this.#syncedIndex = Math.max(this.#syncedIndex, this.#flightIndex);
    this.#writtenIndex = Math.max(this.#writtenIndex, this.#flightIndex);
    for (const operation of operations) {
      if (operation.kind === "write") this.#recycle(operation.buffer);
    }
    // An idle store (nothing staged since the flush began) keeps no buffers.
    if (this.#stagingLength === 0) {
      for (const buffer of this.#spareBuffers) giveBackIdle(buffer);
      this.#spareBuffers = [];
      if (this.#plan.length === 0) this.#releaseStaging();
    }
    this.#evictCache();
    this.#scheduleExtension();
  }

  /**
   * Runs the plan in order with as few fsyncs as ordering allows: all data
   * of a segment goes out in one write and one fdatasync at the end. A
   * barrier (fsync of what is dirty so far) precedes writing after a
   * truncation or deletion, so that removed records cannot reappear behind
   * new ones after a crash, and precedes creating a segment, so that a later
   * segment never exists on disk while an earlier one has a torn tail. One
   * also precedes truncating a segment written in this flush (a seal's trim,
   * a conflict's cut): a size that is not a multiple of the page marks an
   * exact file at open, so it must never reach the disk before the data
   * below it.
   */
  async #execute(operations: DiskOperation[]): Promise<void> {
    this.#activePosition = -1;
    const pinned = new Set<string>();
    try {
      await this.#executeOperations(operations, pinned);
    } finally {
      for (const path of pinned) segmentFiles.unpin(path, "write");
    }
  }

  /** A pooled append handle of `segment`, pinned until the running flush ends. */
  #writer(segment: Segment, pinned: Set<string>, create = false): Deno.FsFile {
    if (pinned.has(segment.path) && !create) return segmentFiles.openSync(segment.path, "write");
    if (pinned.has(segment.path)) segmentFiles.unpin(segment.path, "write");
    const file = segmentFiles.openPinned(segment.path, "write", create);
    pinned.add(segment.path);
    return file;
  }

  async #executeOperations(operations: DiskOperation[], pinned: Set<string>): Promise<void> {
    const dirty = new Set<Segment>();
    const state = { directoryDirty: false, destructive: false };
    const now = Date.now();
    for (const operation of operations) {
      const { segment } = operation;
      if (operation.kind === "create" && (dirty.size > 0 || state.destructive)) {
        await this.#barrier(dirty, state);
      }
      const writes = operation.kind === "write" || operation.kind === "extend";
      if (writes && state.destructive) await this.#barrier(dirty, state);
      if (operation.kind === "truncate" && dirty.has(segment)) await this.#barrier(dirty, state);
      this.#distrust(operation);
      switch (operation.kind) {
        case "create":
          this.#writer(segment, pinned, true);
          state.directoryDirty = true;
          break;
        case "write":
          if (segment.deleted) break;
          await writeAt(this.#writer(segment, pinned), operation.offset, operation.bytes);
          segment.lastWriteMs = now;
          dirty.add(segment);
          break;
        case "extend":
          if (segment.deleted) break;
          await writeZeros(this.#writer(segment, pinned), operation.from, operation.to);
          dirty.add(segment);
          break;
        case "truncate":
          if (segment.deleted) break;
          this.#writer(segment, pinned).truncateSync(operation.bytes);
          dirty.add(segment);
          state.destructive = true;
          break;
        case "delete":
          segment.deleted = true;
          dirty.delete(segment);
          if (pinned.delete(segment.path)) segmentFiles.unpin(segment.path, "write");
          segmentFiles.closePath(segment.path);
          removeQuietly(segment.path);
          state.directoryDirty = true;
          state.destructive = true;
          break;
      }
    }
    await this.#barrier(dirty, state);
  }

  /**
   * Lowers the trusted size of a segment file before an operation that may
   * change bytes a sync made durable: should the flush fail, `recover()`
   * must not keep them (a truncated file could otherwise regrow with bytes
   * that were never synced in their new place).
   */
  #distrust(operation: DiskOperation): void {
    const { path } = operation.segment;
    const durable = this.#durableBytes.get(path);
    if (operation.kind === "create" || operation.kind === "delete") {
      this.#durableBytes.delete(path);
    } else if (operation.kind === "truncate" && durable !== undefined) {
      this.#durableBytes.set(path, Math.min(durable, operation.bytes));
    }
  }

  /**
   * Fsyncs the dirty segments (in parallel, each on its own thread), then
   * the directory when entries were created, renamed or removed; a store
   * that created its directory also fsyncs the parent once, so the
   * directory itself survives a crash.
   */
  async #barrier(
    dirty: Set<Segment>,
    state: { directoryDirty: boolean; destructive: boolean },
  ): Promise<void> {
    const syncs: Promise<void>[] = [];
    for (const segment of dirty) {
      // Pinned since its write or truncation in this flush: still open.
      syncs.push(syncFileData(segmentFiles.openSync(segment.path, "write")));
      this.#fsyncCount++;
    }
    dirty.clear();
    await settleAll(syncs);
    if (state.directoryDirty) {
      const directories = [syncDirectory(this.#directory)];
      this.#fsyncCount++;
      if (this.#parentUnsynced) directories.push(this.#syncParent());
      await settleAll(directories);
    }
    state.directoryDirty = false;
    state.destructive = false;
  }

  /** Makes the entry of a directory this store created durable in its parent. */
  async #syncParent(): Promise<void> {
    this.#fsyncCount++;
    await syncDirectory(parentDirectory(this.#directory));
    this.#parentUnsynced = false;
  }

  #recycle(buffer: Uint8Array): void {
    if (buffer.length <= stagingBufferBytesKeepMax && this.#spareBuffers.length < 2) {
      this.#spareBuffers.push(buffer);
    }
  }

  // ---- open ------------------------------------------------------------------

  async #load(): Promise<void> {
    // Listing and small reads are synchronous: a thread hop per call costs
    // more CPU than the calls (thousands of replicas open at a restart).
    const listing = listDirectory(this.#directory);
    this.#loadHardState();
    this.#loadSnapshot();
    const committed = installCommitted(this.#directory, this.#snapshot, listing.installs);
    let names = listing.logs;
    if (await finishInstall(this.#directory, committed, listing)) {
      this.#fsyncCount++;
      names = listDirectory(this.#directory).logs;
    }
    for (let position = 0; position < names.length; position++) {
      await this.#loadSegment(names[position], position === names.length - 1);
    }
    await this.#reconcileWithSnapshot();
    // A skipped bootstrap hard state comes back as term 1 with no vote.
    this.#hardState = raisedToLog(this.#hardState, this.term(this.#lastIndex) ?? 0);
    this.#syncedIndex = this.#lastIndex;
    this.#writtenIndex = this.#lastIndex;
    this.#cache.clear(this.#lastIndex + 1);
    this.#durableBytes = new Map(this.#segments.map((segment) => [segment.path, segment.bytes]));
    // The commit index rides along with term and vote, written before the
    // records of the same flush: a failed or interrupted flush can leave it
    // naming entries that are not on disk. It is only a hint (Raft
    // relearns it from the leader), so it is capped at the log instead.
    this.#hardState.commit = Math.min(this.#hardState.commit, this.#lastIndex);
  }

  #loadHardState(): void {
    const path = this.#path(hardStateFileName);
    const bytes = readFileAtomicSync(path);
    if (bytes === undefined) return;
    const decoded = decodeHardState(bytes);
    if (typeof decoded === "string") throw new CorruptLogError(path, 0, decoded);
    this.#hardState = decoded;
    this.#persistedHardState = { ...decoded };
  }

  #loadSnapshot(): void {
    const path = this.#path(snapshotFileName);
    const bytes = readFileAtomicSync(path);
    if (bytes === undefined) return;
    const decoded = decodeSnapshot(bytes);
    if (typeof decoded === "string") throw new CorruptLogError(path, 0, decoded);
    this.#snapshot = decoded;
  }

  async #loadSegment(name: string, isLast: boolean): Promise<void> {
    const firstIndex = Number(name.slice(0, -segmentSuffix.length));
    const path = this.#path(name);
    const expected = this.#segments.length === 0 ? firstIndex : this.#lastIndex + 1;
    if (firstIndex !== expected) {
      throw new CorruptLogError(path, 0, `segment starts at ${firstIndex}, expected ${expected}`);
    }
    if (this.#segments.length === 0) {
      this.#base = firstIndex;
      this.#lastIndex = firstIndex - 1;
    }
    const bytes = Deno.readFileSync(path);
    // Only a last segment that was not trimmed (a crash, or a kill) can hold
    // writes that never completed: its size is a multiple of the page.
    const mode: ScanMode = isLast && bytes.length % pageBytes === 0 ? "stamped" : "exact";
    let previousTerm = this.#segments.length === 0 ? 0 : this.#terms[this.#lastIndex - this.#base];
    let termProblem: { offset: number; reason: string } | undefined;
    let count = 0;
    const result = scanRecords(bytes, firstIndex, (term, offset, size) => {
      if (term < previousTerm) termProblem ??= { offset, reason: `term decreases to ${term}` };
      previousTerm = term;
      const position = this.#reservePosition(firstIndex + count);
      this.#terms[position] = term;
      this.#offsets[position] = offset;
      this.#sizes[position] = size;
      count++;
    }, mode);
    if (count > 0) this.#lastIndex = firstIndex + count - 1;
    if (termProblem !== undefined) {
      throw new CorruptLogError(path, termProblem.offset, termProblem.reason);
    }
    const fileBytes = await this.#repairTail(path, bytes.length, result, isLast, mode);
    if (result.count === 0 && !isLast) {
      throw new CorruptLogError(path, 0, "empty segment before the last one");
    }
    const lastWriteMs = Deno.statSync(path).mtime?.getTime() ?? Date.now();
    this.#segments.push({
      firstIndex,
      path,
      bytes: result.validBytes,
      fileBytes,
      syncedBytes: result.validBytes,
      truncatedTo: Infinity,
      legacy: result.count > 0 && !isSegmentRecord(bytes, 0),
      lastWriteMs,
      deleted: false,
    });
    storedBytes.total += result.validBytes;
  }

  /**
   * Deals with what follows the valid records of a segment file of
   * `length` bytes; returns the file's size afterwards.
   *
   * - Damage (a bad record followed by one that proves it was durable, or
   *   any bad record before the last segment) is reported.
   * - Zeros to the end of a preallocated last segment are its padding: kept.
   * - Anything else is a torn write: cut off (ftruncate, fdatasync), so that
   *   no part of it can pass for a record once new records reach it.
   *
   * A preallocated last segment was not closed cleanly: what the stopped
   * process wrote may still sit in the page cache only. It is made durable
   * here, before new records are stamped with it as durable.
   */
  async #repairTail(
    path: string,
    length: number,
    result: ScanResult,
    isLast: boolean,
    mode: ScanMode,
  ): Promise<number> {
    const { problem } = result;
    if (problem !== undefined && (!isLast || problem.followedByValidRecord)) {
      const suffix = problem.followedByValidRecord
        ? " followed by valid records"
        : " in a non-last segment";
      throw new CorruptLogError(path, problem.offset, problem.reason + suffix);
    }
    if (problem !== undefined && !(mode === "stamped" && problem.zeroTail)) {
      if (mode === "stamped") {
        // The cut leaves a size off the page grid, read as exact from then
        // on: the records below it must be on disk before that size is.
        await syncFile(path);
        this.#fsyncCount++;
      }
      await truncateFile(path, result.validBytes);
      this.#fsyncCount++;
      return result.validBytes;
    }
    if (mode === "stamped" && result.validBytes > 0) {
      await syncFile(path);
      this.#fsyncCount++;
    }
    return length;
  }

  /**
   * A crash inside `applySnapshot` can leave the old segments next to the new
   * snapshot. They are kept only when they continue it (hold its index with
   * its term, or start right after it); otherwise they are stale and go.
   */
  async #reconcileWithSnapshot(): Promise<void> {
    const snapshot = this.#snapshot;
    const first = this.#segments[0]?.firstIndex;
    if (first === undefined) {
      this.#lastIndex = snapshot?.index ?? 0;
      this.#base = this.#lastIndex + 1;
      return;
    }
    if (snapshot === undefined) {
      if (first !== 1) {
        throw new CorruptLogError(this.#segments[0].path, 0, "log does not start at 1");
      }
      return;
    }
    const continues = first === snapshot.index + 1 ||
      (first <= snapshot.index && this.#lastIndex >= snapshot.index &&
        this.#terms[snapshot.index - this.#base] === snapshot.term);
    if (continues) {
      this.#lastIndex = Math.max(this.#lastIndex, snapshot.index);
      return;
    }
    for (const segment of this.#segments) {
      await Deno.remove(segment.path);
      storedBytes.total -= segment.bytes;
    }
    await syncDirectory(this.#directory);
    this.#fsyncCount++;
    this.#segments = [];
    this.#lastIndex = snapshot.index;
    this.#base = snapshot.index + 1;
  }

  // ---- misc ------------------------------------------------------------------

  #path(name: string): string {
    return `${this.#directory}/${name}`;
  }

  #assertOpen(): void {
    if (this.#closed) throw new LogClosedError();
  }

  #assertWritable(): void {
    this.#assertOpen();
    if (this.#failure !== undefined) throw this.#failure;
  }
}

function validateOptions(segmentBytesMax: number, cacheBytesMax: number): void {
  if (
    !Number.isInteger(segmentBytesMax) || segmentBytesMax < segmentBytesMaxMin ||
    segmentBytesMax > segmentBytesMaxMax
  ) {
    throw new RangeError(
      `Cannot open log store as 'segmentBytesMax' must be an integer between ${segmentBytesMaxMin} and ${segmentBytesMaxMax}: current value is ${segmentBytesMax}`,
    );
  }
  if (!Number.isInteger(cacheBytesMax) || cacheBytesMax < 0) {
    throw new RangeError(
      `Cannot open log store as 'cacheBytesMax' must be a non-negative integer: current value is ${cacheBytesMax}`,
    );
  }
}

function segmentPath(directory: string, firstIndex: number): string {
  return `${directory}/${String(firstIndex).padStart(20, "0")}${segmentSuffix}`;
}

function installName(firstIndex: number): string {
  return `${String(firstIndex).padStart(20, "0")}${installSuffix}`;
}

/** The records of `entries` cut into segment-sized files. */
function stageSegments(
  entries: Entry[],
  segmentBytesMax: number,
): { firstIndex: number; bytes: Uint8Array }[] {
  const result: { firstIndex: number; bytes: Uint8Array }[] = [];
  let start = 0;
  while (start < entries.length) {
    let bytes = 0;
    let end = start;
    while (end < entries.length) {
      const size = recordSize(entries[end]);
      if (end > start && bytes + size > segmentBytesMax) break;
      bytes += size;
      end++;
    }
    const buffer = new Uint8Array(bytes);
    let offset = 0;
    for (let position = start; position < end; position++) {
      // Written whole and fdatasynced before use: nothing in it was durable before.
      encodeSegmentRecord(buffer, offset, entries[position], 0);
      offset += recordSize(entries[position]);
    }
    result.push({ firstIndex: entries[start].index, bytes: buffer });
    start = end;
  }
  return result;
}

async function writeDurably(path: string, bytes: Uint8Array): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, bytes);
    await file.syncData();
  } finally {
    file.close();
  }
}

/** The segment and staged install files of a replica directory, sorted by name. */
interface Listing {
  logs: string[];
  installs: string[];
}

/**
 * Lists `directory` synchronously, removing temporary files an interrupted
 * atomic write left behind.
 */
function listDirectory(directory: string): Listing {
  const listing: Listing = { logs: [], installs: [] };
  for (const entry of Deno.readDirSync(directory)) {
    if (entry.name.endsWith(temporaryFileSuffix)) removeQuietly(`${directory}/${entry.name}`);
    else if (!entry.isFile) continue;
    else if (/^\d{20}\.log$/.test(entry.name)) listing.logs.push(entry.name);
    else if (/^\d{20}\.install$/.test(entry.name)) listing.installs.push(entry.name);
  }
  listing.logs.sort();
  listing.installs.sort();
  return listing;
}

/**
 * Ends an install interrupted by a crash (see `applySnapshot`): when it was
 * committed, the staged files replace every `.log` file; otherwise they go.
 * Returns whether anything was done.
 */
async function finishInstall(
  directory: string,
  committed: boolean,
  listing: Listing = listDirectory(directory),
): Promise<boolean> {
  const { logs, installs } = listing;
  if (installs.length === 0) return false;
  if (committed) {
    for (const name of logs) removeQuietly(`${directory}/${name}`);
    await syncDirectory(directory);
    for (const name of installs) {
      const target = name.slice(0, -installSuffix.length) + segmentSuffix;
      Deno.renameSync(`${directory}/${name}`, `${directory}/${target}`);
    }
  } else {
    for (const name of installs) removeQuietly(`${directory}/${name}`);
  }
  await syncDirectory(directory);
  return true;
}

/** Whether the staged install files `installs` end at the snapshot's entry (it was committed). */
function installCommitted(
  directory: string,
  snapshot: Snapshot | undefined,
  installs: readonly string[],
): boolean {
  if (snapshot === undefined) return false;
  const last = installs.at(-1);
  if (last === undefined) return false;
  const firstIndex = Number(last.slice(0, -installSuffix.length));
  const bytes = Deno.readFileSync(`${directory}/${last}`);
  let lastTerm = 0;
  const result = scanRecords(bytes, firstIndex, (term) => lastTerm = term);
  return result.problem === undefined && result.count > 0 &&
    firstIndex + result.count - 1 === snapshot.index && lastTerm === snapshot.term;
}

/** Creates `directory` (and missing parents); true when this call created it. */
function createDirectory(directory: string): boolean {
  try {
    Deno.mkdirSync(directory);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  Deno.mkdirSync(directory, { recursive: true });
  return true;
}

/** Charges `bytes` to the budget; the first entry of a read is always taken. */
function takeBudget(budget: { bytes: number }, bytes: number, taken: number): boolean {
  if (taken > 0 && bytes > budget.bytes) {
    budget.bytes = -1;
    return false;
  }
  budget.bytes -= bytes;
  return true;
}

function readAt(segment: Segment, offset: number, buffer: Uint8Array): void {
  // Opened on first use: tail reads come from the cache, so most segments of
  // most logs (one log per topic replica) never need a read descriptor.
  const reader = segmentFiles.openSync(segment.path, "read");
  reader.seekSync(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < buffer.length) {
    const read = reader.readSync(buffer.subarray(filled));
    if (read === null || read === 0) {
      throw new CorruptLogError(segment.path, offset + filled, "unexpected end of file");
    }
    filled += read;
  }
}

/** Writes all of `bytes` at `offset` of `file` (a positional write). */
async function writeAt(file: Deno.FsFile, offset: number, bytes: Uint8Array): Promise<void> {
  file.seekSync(offset, Deno.SeekMode.Start);
  await writeAll(file, bytes);
}

/** Fills `[from, to)` of `file` with zeros, synchronously (an extension in a flush at once). */
function writeZerosSync(file: Deno.FsFile, from: number, to: number): void {
  zeroChunk ??= new Uint8Array(preallocationBytesMax);
  file.seekSync(from, Deno.SeekMode.Start);
  for (let offset = from; offset < to; offset += zeroChunk.length) {
    writeAllSync(file, zeroChunk.subarray(0, Math.min(zeroChunk.length, to - offset)));
  }
}

/**
 * Keeps a buffer an idle store gave back for the next store that stages
 * records (a small one in the idle list, a larger one in `largeIdleBuffer`);
 * false when dropped.
 */
function giveBackIdle(buffer: Uint8Array): boolean {
  if (buffer.length > idleBufferBytesMax && buffer.length <= largeIdleBufferBytesMax) {
    if (largeIdleBuffer !== undefined && largeIdleBuffer.length >= buffer.length) return false;
    largeIdleBuffer = buffer;
    return true;
  }
  if (buffer.length === 0 || buffer.length > idleBufferBytesMax) return false;
  if (idleBufferCount >= idleBuffersMax) return false;
  idleBuffers[idleBufferCount++] = buffer;
  return true;
}

/** Fills `[from, to)` of `file` with zeros, a chunk at a time. */
async function writeZeros(file: Deno.FsFile, from: number, to: number): Promise<void> {
  zeroChunk ??= new Uint8Array(preallocationBytesMax);
  file.seekSync(from, Deno.SeekMode.Start);
  for (let offset = from; offset < to; offset += zeroChunk.length) {
    await writeAll(file, zeroChunk.subarray(0, Math.min(zeroChunk.length, to - offset)));
  }
}

/** The extension chunk of a file of `fileBytes`: it doubles the file, within 4-256 KiB. */
function preallocationChunkBytes(fileBytes: number): number {
  return Math.min(preallocationBytesMax, Math.max(preallocationBytesMin, roundUpToPage(fileBytes)));
}

/** Whether the records of `segment` came within a quarter chunk of its allocated end. */
function needsExtension(segment: Segment): boolean {
  if (segment.legacy || segment.bytes === 0) return false;
  return segment.bytes + preallocationChunkBytes(segment.fileBytes) / 4 > segment.fileBytes;
}

function roundUpToPage(bytes: number): number {
  return Math.ceil(bytes / pageBytes) * pageBytes;
}

async function syncFile(path: string): Promise<void> {
  const file = await Deno.open(path, { write: true });
  try {
    await file.syncData();
  } finally {
    file.close();
  }
}

async function truncateFile(path: string, bytes: number): Promise<void> {
  const file = await Deno.open(path, { write: true });
  try {
    await file.truncate(bytes);
    await file.syncData();
  } finally {
    file.close();
  }
}

function grow<T extends Float64Array | Uint32Array>(source: T, target: T): T {
  target.set(source);
  return target;
}

function closeFiles(segment: Segment): void {
  segmentFiles.closePath(segment.path);
}

/**
 * Waits for every promise and then throws the first failure, if any (so no
 * rejection is left unhandled and no disk job outlives the flush).
 */
async function settleAll(promises: Promise<void>[]): Promise<void> {
  if (promises.length === 1) return await promises[0];
  const results = await Promise.allSettled(promises);
  const failed = results.find((result) => result.status === "rejected");
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
}

/** Removes a file synchronously (metadata work), ignoring one already gone. */
function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (error) {
    ignoreNotFound(error);
  }
}
