/**
 * The replica's view of its log: durable entries read through `LogStore`
 * plus an in-memory "unstable" tail (and possibly a received snapshot) that
 * the shell has not yet persisted, as in etcd-io/raft's `raftLog`/`unstable`.
 *
 * Entries leave the unstable tail only when the shell reports them durable
 * (`stableTo`), so that everything this log reads from the store below
 * `#offset` is covered by a completed `sync()`.
 *
 * @module
 */

import type { Entry, LogStore, Snapshot } from "../storage/types.ts";
import { assert } from "./errors.ts";

/**
 * Raft log = store prefix + unstable suffix, with commit and applied indices.
 *
 * @example
 * ```ts
 * const log = new RaftLog(store);
 * log.append([{ term: 1, index: log.lastIndex() + 1, type: EntryType.Normal, data }]);
 * ```
 */
export class RaftLog {
  readonly #store: LogStore;
  /** Index of `#unstable[0]`; entries below it are read from the store. */
  #offset: number;
  #unstable: Entry[] = [];
  /**
   * How many entries at the start of `#unstable` the shell is writing
   * already, durable only once it says so (`stableTo`): a leader does not
   * wait for its own fsync (etcd's `offsetInProgress`). They are not handed
   * out again.
   */
  #inProgress = 0;
  #unstableSnapshot: Snapshot | undefined;
  committed: number;
  applied: number;

  constructor(store: LogStore) {
    this.#store = store;
    this.#offset = store.lastIndex() + 1;
    const snapshot = store.snapshot();
    this.applied = snapshot?.index ?? 0;
    this.committed = Math.max(this.applied, store.hardState().commit);
    assert(this.committed <= store.lastIndex(), "stored commit beyond the last stored entry");
  }

  firstIndex(): number {
    if (this.#unstableSnapshot) return this.#unstableSnapshot.index + 1;
    return this.#store.firstIndex();
  }

  lastIndex(): number {
    if (this.#unstable.length > 0) return this.#offset + this.#unstable.length - 1;
    if (this.#unstableSnapshot) return this.#unstableSnapshot.index;
    return this.#offset - 1;
  }

  /** Highest index that is durable in the store (nothing above it is trusted as synced). */
  stableIndex(): number {
    // Only leaders ask, and a leader never holds an uninstalled snapshot.
    if (this.#unstableSnapshot) return 0;
    return Math.min(this.#offset - 1, this.#store.syncedIndex());
  }

  /** Term at `index`, or undefined when compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === 0) return 0;
    if (index >= this.#offset) return this.#unstable[index - this.#offset]?.term;
    if (this.#unstableSnapshot) {
      return index === this.#unstableSnapshot.index ? this.#unstableSnapshot.term : undefined;
    }
    return this.#store.term(index);
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, "last entry has no term");
    return term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Whether a candidate whose log ends at (index, term) is at least as up to date as this log. */
  isUpToDate(index: number, term: number): boolean {
    const lastTerm = this.lastTerm();
    return term > lastTerm || (term === lastTerm && index >= this.lastIndex());
  }

  /**
   * Entries in `[low, high)`, at most `maxBytes` of data but at least one.
   * Returns undefined when `low` was compacted (the caller sends a snapshot).
   */
  slice(low: number, high: number, maxBytes = Infinity): Entry[] | undefined {
    if (low >= high) return [];
    if (low < this.firstIndex()) return undefined;
    assert(high <= this.lastIndex() + 1, () => `slice beyond last index: ${high}`);
    const result: Entry[] = [];
    let bytes = 0;
    if (low < this.#offset) {
      const stored = this.#store.entries(low, Math.min(high, this.#offset), maxBytes);
      for (const entry of stored) {
        bytes += entry.data.byteLength;
        result.push(entry);
      }
      if (result.length < Math.min(high, this.#offset) - low) return result;
    }
    for (let index = Math.max(low, this.#offset); index < high; index++) {
      const entry = this.#unstable[index - this.#offset];
      if (result.length > 0 && bytes + entry.data.byteLength > maxBytes) break;
      bytes += entry.data.byteLength;
      result.push(entry);
    }
    return result;
  }

  /**
   * Largest index <= `index` whose term is <= `term` (etcd's findConflictByTerm),
   * used to skip a whole term of mismatching entries per round trip.
   */
  findConflictByTerm(index: number, term: number): number {
    let candidate = Math.min(index, this.lastIndex());
    while (candidate > 0) {
      const found = this.term(candidate);
      if (found === undefined || found <= term) break;
      candidate--;
    }
    return candidate;
  }

  /** Appends entries from the leader after (prevIndex, prevTerm); returns the last new index or undefined. */
  maybeAppend(
    prevIndex: number,
    prevTerm: number,
    commit: number,
    entries: Entry[],
  ): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    const conflict = this.#findConflict(entries);
    if (conflict !== 0) {
      assert(
        conflict > this.committed,
        () => `truncating committed entry ${conflict} <= ${this.committed}`,
      );
      this.append(entries.slice(conflict - entries[0].index));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /** Appends `entries`, truncating any unstable or stable suffix from `entries[0].index`. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const after = entries[0].index;
    assert(
      after > this.committed,
      () => `append at ${after} would overwrite committed ${this.committed}`,
    );
    assert(
      after <= this.lastIndex() + 1,
      () => `append at ${after} leaves a gap after ${this.lastIndex()}`,
    );
    if (after === this.#offset + this.#unstable.length) {
      for (const entry of entries) this.#unstable.push(entry);
    } else if (after <= this.#offset) {
      this.#offset = after;
      this.#unstable = entries.slice();
      this.#inProgress = 0;
    } else {
      this.#unstable = this.#unstable.slice(0, after - this.#offset).concat(entries);
      // Replaced entries are written again (the store truncates in order).
      this.#inProgress = Math.min(this.#inProgress, after - this.#offset);
    }
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(
      index <= this.lastIndex(),
      () => `commit ${index} beyond last index ${this.lastIndex()}`,
    );
    this.committed = index;
  }

  appliedTo(index: number): void {
    assert(
      index <= this.committed && index >= this.applied,
      () => `bad applied index ${index}`,
    );
    this.applied = index;
  }

  /** Replaces the whole log by a snapshot received from the leader. */
  restore(snapshot: Snapshot): void {
    assert(snapshot.index > this.committed, "restoring a snapshot behind commit");
    this.#unstableSnapshot = snapshot;
    this.#unstable = [];
    this.#inProgress = 0;
    this.#offset = snapshot.index + 1;
    this.committed = snapshot.index;
  }

  /** The unstable entries not handed to the shell yet (not in progress). */
  unstableEntries(): Entry[] {
    return this.#inProgress === 0 ? this.#unstable : this.#unstable.slice(this.#inProgress);
  }

  /** Whether entries not handed to the shell yet wait. */
  hasUnstableEntries(): boolean {
    return this.#unstable.length > this.#inProgress;
  }

  /** The last entry the shell is writing without having reported it durable, if any. */
  lastInProgress(): Entry | undefined {
    return this.#inProgress === 0 ? undefined : this.#unstable[this.#inProgress - 1];
  }

  /** The shell took every unstable entry and writes it; `stableTo` reports it durable later. */
  acceptInProgress(): void {
    this.#inProgress = this.#unstable.length;
  }

  unstableSnapshot(): Snapshot | undefined {
    return this.#unstableSnapshot;
  }

  /** Forgets unstable entries up to (index, term) once the shell made them durable. */
  stableTo(index: number, term: number): void {
    if (index < this.#offset || this.term(index) !== term) return;
    const stable = index + 1 - this.#offset;
    this.#unstable = this.#unstable.slice(stable);
    this.#inProgress = Math.max(0, this.#inProgress - stable);
    this.#offset = index + 1;
  }

  stableSnapshotTo(index: number): void {
    if (this.#unstableSnapshot?.index === index) this.#unstableSnapshot = undefined;
  }

  /** Committed entries not yet applied, at most `maxBytes` (at least one). */
  nextCommitted(maxBytes: number): Entry[] {
    if (this.#unstableSnapshot || this.committed <= this.applied) return [];
    return this.slice(this.applied + 1, this.committed + 1, maxBytes) ?? [];
  }

  hasNextCommitted(): boolean {
    return this.#unstableSnapshot === undefined && this.committed > this.applied;
  }

  #findConflict(entries: Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }
}
