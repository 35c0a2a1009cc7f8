/**
 * The storage contract shared by the Raft core, the simulator and the peer.
 *
 * A `LogStore` holds one replica's log: entries addressed by a dense 1-based
 * `index`, the Raft hard state, and at most one snapshot: a checkpoint of the
 * state machine at its index. Entries at or below the snapshot's index may
 * still be held (a topic's retained messages live in them); compaction
 * deletes only whole segments the state machine no longer reads. Writes are buffered and become durable only after
 * `sync()` resolves; a crash (real or simulated) loses every write not yet
 * synced. Reads are synchronous so that the Raft core can read its log inside
 * `step()` without I/O scheduling, as etcd-io/raft's `Storage` does.
 *
 * @module
 */

/** Kind of a log entry. Normal entries carry application commands. */
export enum EntryType {
  Normal = 0,
  /** A membership change; `data` holds the encoded change. */
  ConfChange = 1,
}

/** One log entry. `index` is 1-based and dense; `term` is the leader's term. */
export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** The state Raft must persist before it sends a message that depends on it. */
export interface HardState {
  term: number;
  /** Node id voted for in `term`; 0 means none. */
  vote: number;
  /** Highest index known committed; may lag (it is recomputed after restart). */
  commit: number;
}

/** Voters and learners of a group; ids are positive integers. */
export interface ConfState {
  voters: number[];
  learners: number[];
}

/** A point-in-time image of the state machine after applying entries <= index. */
export interface Snapshot {
  index: number;
  term: number;
  conf: ConfState;
  data: Uint8Array;
}

/** One segment of a store's log, for retention by bytes or age. */
export interface SegmentInfo {
  /** Index of its first entry. */
  firstIndex: number;
  /** Index of its last entry (`firstIndex - 1` when it holds none yet). */
  lastIndex: number;
  /** Bytes of its records, written or buffered. */
  bytes: number;
  /** When it was last written (ms since the epoch; the file's mtime after a reopen). */
  lastWriteMs: number;
}

/** Options of `LogStore.sync`. */
export interface SyncOptions {
  /**
   * Nobody waits on this thread for the fsync (a leader's own write, see
   * `Ready.syncInBackground`): it may run on the thread pool so the event
   * loop keeps serving meanwhile. Default false.
   */
  background?: boolean;
  /**
   * The caller runs in a microtask of the event-loop turn that brought its
   * work, not in a deferred task (an idle replica handling one read): the
   * fsync may start after the microtasks queued so far instead of at the
   * turn's end; syncs asked for in those still join it. Default false.
   */
  soon?: boolean;
}

/**
 * One replica's durable log. Implementations: `MemoryLogStore` (tests and the
 * simulator, with crash semantics) and `SegmentLogStore` (segment files).
 */
export interface LogStore {
  /**
   * Index of the first entry still held: 1 for a new log, at most the
   * snapshot's index + 1, and possibly at or below it (retained entries).
   */
  firstIndex(): number;
  /** Index of the last entry appended, synced or not (snapshot index when empty). */
  lastIndex(): number;
  /** Highest index whose entry is durable (covered by a completed `sync()`). */
  syncedIndex(): number;
  /** Term of the entry at `index` when held, the snapshot's term at its index, else undefined. */
  term(index: number): number | undefined;
  /**
   * Entries in `[low, high)`. Throws RangeError when `low < firstIndex()` or
   * `high > lastIndex() + 1`. Returns at least one entry when the range is not
   * empty, and stops once `maxBytes` of data would be exceeded.
   */
  entries(low: number, high: number, maxBytes?: number): Entry[];
  /** The persisted hard state (the last one passed to `setHardState`). */
  hardState(): HardState;
  /** The current snapshot, if any. */
  snapshot(): Snapshot | undefined;
  /**
   * Buffers `entries` (consecutive indices). When `entries[0].index <=
   * lastIndex()`, the conflicting suffix from that index on is dropped first.
   * Requires `firstIndex() <= entries[0].index <= lastIndex() + 1`.
   */
  append(entries: Entry[]): void;
  /** Buffers a new hard state. */
  setHardState(state: HardState): void;
  /**
   * Makes every earlier `append` and `setHardState` durable. Concurrent calls
   * share one fsync (group commit).
   */
  sync(options?: SyncOptions): Promise<void>;
  /**
   * Replaces the whole log by `snapshot` and the leader's `retained` entries
   * (consecutive, ending at the snapshot's index with its term; empty when
   * the leader holds none at or below it), as one unit: a crash leaves the
   * old log or the new one, never a mix. Durable before resolving, together
   * with the buffered hard state.
   */
  applySnapshot(snapshot: Snapshot, retained?: Entry[]): Promise<void>;
  /**
   * Records `snapshot` (taken locally at an index <= syncedIndex()) and
   * deletes the whole segments whose entries all lie below `keepFrom`
   * (default and maximum: snapshot index + 1); entries from the first kept
   * segment on stay readable. Durable before resolving.
   */
  compact(snapshot: Snapshot, keepFrom?: number): Promise<void>;
  /** The segments of the log, oldest first (for retention by bytes or age). */
  segments(): SegmentInfo[];
  /**
   * After a failed write (`sync()`, `applySnapshot()` or `compact()` rejected,
   * and the store refuses writes since), returns the store to its last
   * durable state, as a crash-restart would: writes not covered by a
   * successful `sync()` are dropped and the state is read back from the disk.
   * Rejects, leaving the store failed, while the disk still refuses writes
   * (it may be retried). Resolves at once when nothing failed.
   */
  recover(): Promise<void>;
  /** Releases files; pending unsynced writes may be lost. */
  close(): Promise<void>;
}
