/**
 * `MemoryLogStore`: an in-memory `LogStore` for tests and the simulator that
 * models a disk with a volatile write cache. Appends and hard-state writes
 * are buffered; `sync()` makes them durable; `crash()` throws away every
 * buffered write, exactly what power loss does to a real replica.
 *
 * @module
 */

import { confChangeAt, impliedByLog, raisedToLog } from "./_metadata.ts";
import { checkRetained } from "./_retained.ts";
import type { Entry, HardState, LogStore, SegmentInfo, Snapshot } from "./types.ts";

/** Options for {@linkcode MemoryLogStore}. */
export interface MemoryLogStoreOptions {
  /**
   * Entries per modelled segment: segment k holds indices
   * `[k * segmentEntries + 1, (k + 1) * segmentEntries]`, and compaction
   * drops whole segments only. Default 1 (every entry is its own segment).
   */
  segmentEntries?: number;
  /** Clock of `segments()[i].lastWriteMs`. Default `Date.now`. */
  now?: () => number;
}

/**
 * A `LogStore` in memory, with explicit crash semantics.
 *
 * @example
 * ```ts
 * const store = new MemoryLogStore();
 * store.append([{ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array() }]);
 * store.crash(); // the unsynced entry is gone
 * store.lastIndex(); // 0
 * ```
 */
export class MemoryLogStore implements LogStore {
  readonly #segmentEntries: number;
  readonly #now: () => number;
  /** Last write time per modelled segment number. */
  #segmentWrites = new Map<number, number>();
  /** Index of `#entries[0]`. */
  #offset = 1;
  #entries: Entry[] = [];
  #hardState: HardState = { term: 0, vote: 0, commit: 0 };
  #snapshot: Snapshot | undefined;
  /** Durable view: entries up to `#durableLast`, with durable entries overwritten since the last sync. */
  #durableLast = 0;
  #durableHardState: HardState = { term: 0, vote: 0, commit: 0 };
  /** Committed entries up to here hold no conf change past the durable hard state. */
  #confScanIndex = 0;
  #overwritten = new Map<number, Entry>();
  #closed = false;
  /** Error the next sync fails with (tests of disk failures). */
  #injectedFailure: Error | undefined;
  /** Set by a failed sync: writes are refused until `recover()`. */
  #failure: Error | undefined;

  constructor(options: MemoryLogStoreOptions = {}) {
    const segmentEntries = options.segmentEntries ?? 1;
    if (!Number.isInteger(segmentEntries) || segmentEntries < 1) {
      throw new RangeError(
        `Cannot create store as 'segmentEntries' must be a positive integer: current value is ${segmentEntries}`,
      );
    }
    this.#segmentEntries = segmentEntries;
    this.#now = options.now ?? Date.now;
  }

  firstIndex(): number {
    return this.#offset;
  }

  lastIndex(): number {
    return this.#offset + this.#entries.length - 1;
  }

  syncedIndex(): number {
    let synced = Math.min(this.#durableLast, this.lastIndex());
    for (const index of this.#overwritten.keys()) synced = Math.min(synced, index - 1);
    return synced;
  }

  term(index: number): number | undefined {
    if (this.#snapshot && index === this.#snapshot.index) return this.#snapshot.term;
    return this.#entries[index - this.#offset]?.term;
  }

  entries(low: number, high: number, maxBytes = Infinity): Entry[] {
    if (low < this.#offset || high > this.lastIndex() + 1 || low > high) {
      throw new RangeError(
        `Cannot read entries [${low}, ${high}) as the log holds [${this.#offset}, ${
          this.lastIndex() + 1
        })`,
      );
    }
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = low; index < high; index++) {
      const entry = this.#entries[index - this.#offset];
      if (result.length > 0 && bytes + entry.data.byteLength > maxBytes) break;
      bytes += entry.data.byteLength;
      result.push(entry);
    }
    return result;
  }

  hardState(): HardState {
    return { ...this.#hardState };
  }

  snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  append(entries: Entry[]): void {
    this.#requireOpen();
    if (entries.length === 0) return;
    const first = entries[0].index;
    if (first < this.#offset || first > this.lastIndex() + 1) {
      throw new RangeError(
        `Cannot append at ${first} as the log holds [${this.#offset}, ${this.lastIndex() + 1})`,
      );
    }
    for (let index = first; index <= Math.min(this.lastIndex(), this.#durableLast); index++) {
      if (!this.#overwritten.has(index)) {
        this.#overwritten.set(index, this.#entries[index - this.#offset]);
      }
    }
    this.#entries.length = first - this.#offset;
    for (const entry of entries) this.#entries.push(entry);
    const now = this.#now();
    for (const entry of entries) this.#segmentWrites.set(this.#segmentOf(entry.index), now);
  }

  segments(): SegmentInfo[] {
    const result: SegmentInfo[] = [];
    for (const entry of this.#entries) {
      const segment = this.#segmentOf(entry.index);
      let last = result.at(-1);
      if (last === undefined || this.#segmentOf(last.firstIndex) !== segment) {
        last = {
          firstIndex: entry.index,
          lastIndex: entry.index - 1,
          bytes: 0,
          lastWriteMs: this.#segmentWrites.get(segment) ?? 0,
        };
        result.push(last);
      }
      last.lastIndex = entry.index;
      last.bytes += entry.data.byteLength;
    }
    return result;
  }

  #segmentOf(index: number): number {
    return Math.floor((index - 1) / this.#segmentEntries);
  }

  setHardState(state: HardState): void {
    this.#requireOpen();
    this.#hardState = { ...state };
  }

  sync(): Promise<void> {
    try {
      this.syncNow();
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve();
  }

  /**
   * Makes the next sync fail with `error`, as a full disk does to a real
   * store: nothing is made durable and writes are refused until `recover()`.
   *
   * @example
   * ```ts
   * const store = new MemoryLogStore();
   * store.failNextSync(new Error("Cannot write the log as the disk is full"));
   * await store.sync().catch(() => store.recover());
   * ```
   */
  failNextSync(error: Error): void {
    this.#injectedFailure = error;
  }

  /** Drops every write not covered by a successful sync, as `crash()` does, and takes writes again. */
  recover(): Promise<void> {
    if (this.#failure === undefined) return Promise.resolve();
    this.crash();
    this.#failure = undefined;
    return Promise.resolve();
  }

  /** Synchronous `sync()`, for the simulator which models fsync latency itself. */
  syncNow(): void {
    this.#requireOpen();
    if (this.#injectedFailure !== undefined) {
      this.#failure = this.#injectedFailure;
      this.#injectedFailure = undefined;
    }
    if (this.#failure !== undefined) throw this.#failure;
    this.#durableLast = this.lastIndex();
    this.#syncHardState();
    this.#overwritten.clear();
  }

  /** Makes the hard state durable, unless the log implies it (as `SegmentLogStore` skips it). */
  #syncHardState(): void {
    const implied = impliedByLog(this.#hardState, this.term(this.lastIndex()) ?? 0);
    if (implied && !this.#commitPassesConfChange()) return;
    this.#durableHardState = { ...this.#hardState };
  }

  /** As `SegmentLogStore`: an implied hard state is still written once its commit passes a conf change. */
  #commitPassesConfChange(): boolean {
    const from = Math.max(this.#confScanIndex, this.#durableHardState.commit);
    const to = Math.min(this.#hardState.commit, this.lastIndex());
    if (to <= from) return false;
    const result = confChangeAt(from, to, (index) => this.#entries[index - this.#offset]?.type);
    this.#confScanIndex = result.scanned;
    return result.passes;
  }

  /** Installs `snapshot` and `retained` at once: in memory, one step is atomic and durable. */
  applySnapshot(snapshot: Snapshot, retained: Entry[] = []): Promise<void> {
    this.#requireOpen();
    checkRetained(snapshot, retained);
    this.#snapshot = snapshot;
    this.#entries = retained.slice();
    this.#offset = retained[0]?.index ?? snapshot.index + 1;
    this.#durableLast = snapshot.index;
    this.#syncHardState();
    this.#overwritten.clear();
    const now = this.#now();
    for (const entry of retained) this.#segmentWrites.set(this.#segmentOf(entry.index), now);
    return Promise.resolve();
  }

  compact(snapshot: Snapshot, keepFrom = snapshot.index + 1): Promise<void> {
    this.#requireOpen();
    const previous = this.#snapshot?.index ?? 0;
    if (snapshot.index > this.syncedIndex() || snapshot.index < previous) {
      throw new RangeError(
        `Cannot compact at ${snapshot.index} as the durable log holds [${previous}, ${this.syncedIndex()}]`,
      );
    }
    const limit = Math.min(keepFrom, snapshot.index + 1);
    // Whole modelled segments only: the one holding `limit` stays.
    const segmentStart = this.#segmentOf(limit) * this.#segmentEntries + 1;
    const first = Math.max(this.#offset, Math.min(limit, segmentStart));
    this.#entries.splice(0, first - this.#offset);
    this.#offset = first;
    this.#snapshot = snapshot;
    for (const segment of this.#segmentWrites.keys()) {
      if (segment < this.#segmentOf(first)) this.#segmentWrites.delete(segment);
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /**
   * Simulates power loss: every append and hard state not covered by a
   * completed `sync()` is lost; the store is open again afterwards.
   */
  crash(): void {
    const durableEntries: Entry[] = [];
    for (let index = this.#offset; index <= this.#durableLast; index++) {
      durableEntries.push(this.#overwritten.get(index) ?? this.#entries[index - this.#offset]);
    }
    this.#entries = durableEntries;
    this.#overwritten.clear();
    this.#closed = false;
    // As `SegmentLogStore` opens: a skipped hard state comes back from the log.
    this.#hardState = raisedToLog({ ...this.#durableHardState }, this.term(this.lastIndex()) ?? 0);
  }

  #requireOpen(): void {
    if (this.#closed) throw new Error("Cannot write to a closed MemoryLogStore");
    if (this.#failure !== undefined) throw this.#failure;
  }
}
