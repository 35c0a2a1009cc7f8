/**
 * `RaftNode`: the public, pure API of the Raft core (etcd-io/raft's RawNode).
 *
 * The node never does I/O. A shell drives it:
 *
 * 1. Inputs: call `tick()` every tick interval, `step(message)` for every
 *    message received, and the leader operations `propose`,
 *    `proposeConfChange`, `readIndex`, `transferLeadership`.
 * 2. Whenever `hasReady()` is true, take `const rd = node.ready()` and handle
 *    it in exactly this order:
 *    a. if `rd.snapshot`: `await store.applySnapshot(rd.snapshot)` and restore
 *       the state machine from `rd.snapshot.data`;
 *    b. `store.append(rd.entries)` (when non-empty) and
 *       `store.setHardState(rd.hardState)` (when present);
 *    c. if `rd.mustSync`: `await store.sync()` (group commit is fine);
 *    d. send `rd.messages` (they may promise the entries and votes just made
 *       durable, which is why they go out only now);
 *    e. apply `rd.committedEntries` in order (`ConfChange` entries are applied
 *       to the membership by the core in `advance()`; the state machine may
 *       ignore them) and acknowledge clients whose entry is applied;
 *    f. serve `rd.readStates` once the applied index reaches their `index`,
 *       and fail the reads in `rd.droppedReads` (leadership was lost);
 *    g. if `rd.recovered`: clear the persisted recovering flag (after c);
 *    h. `node.advance()`.
 *    `step` and `tick` may be called between `ready()` and `advance()` (for
 *    instance while the sync is in flight); `ready()` may not.
 *
 * The leader counts its own log toward the commit quorum only up to the
 * index it knows durable: `advance()` reports the entries of the Ready as
 * persisted. Hence an entry is committed, and a publish acknowledged, only
 * once it is fsynced on a majority.
 *
 * Recovery: a replica rebuilt empty after its log was damaged is created
 * with `recoveringTerm` (persisted by the shell next to the log); it neither
 * votes nor campaigns until a Ready reports `recovered` (see `Raft`).
 *
 * Snapshots: after applying up to some index the shell may call
 * `createSnapshot(data)` and then `await store.compact(snapshot)`; the core
 * notices the new `store.firstIndex()` and sends `snap` messages to peers
 * that lag behind it. Received snapshots arrive as `rd.snapshot`.
 *
 * @example
 * ```ts
 * const node = new RaftNode({ id: 1, store, rng, voters: [1, 2, 3] });
 * setInterval(() => node.tick(), 100);
 * while (node.hasReady()) {
 *   const rd = node.ready();
 *   store.append(rd.entries);
 *   if (rd.hardState) store.setHardState(rd.hardState);
 *   if (rd.mustSync) await store.sync();
 *   for (const message of rd.messages) transport.send(message);
 *   for (const entry of rd.committedEntries) stateMachine.apply(entry);
 *   node.advance();
 * }
 * ```
 *
 * @module
 */

import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Snapshot,
} from "../storage/types.ts";
import { assert } from "./errors.ts";
import { type RaftOptions, resolveRaftOptions } from "./options.ts";
import { Raft } from "./raft.ts";
import type {
  ConfChange,
  Message,
  ProgressStatus,
  Ready,
  Role,
  SoftState,
  Status,
} from "./types.ts";

/** Entries a leader writes without waiting: see `RaftNode.advance` and `persisted`. */
export interface BackgroundWrite {
  /** The last entry written. */
  index: number;
  term: number;
  /** The commit index of the hard state written before it. */
  commit: number;
}

/**
 * One replica of one Raft group, driven by a shell through `Ready`s.
 *
 * @example
 * ```ts
 * const node = new RaftNode({ id: 1, store: new MemoryLogStore(), rng, voters: [1] });
 * node.campaign();
 * ```
 */
export class RaftNode {
  readonly #raft: Raft;
  readonly #applyBytesMax: number;
  readonly #voteWithoutSync: boolean;
  /** Commit index of the last hard state an fsync covered (see `#committedToApply`). */
  #syncedCommit: number;
  #hardState: HardState;
  #softState: SoftState;
  #outstanding: Ready | undefined;
  /** The last entry the outstanding Ready's sync covers (its own, or earlier ones in progress). */
  #persistThrough: Entry | undefined;

  constructor(options: RaftOptions) {
    const resolved = resolveRaftOptions(options);
    this.#raft = new Raft(resolved);
    this.#applyBytesMax = resolved.applyBytesMax;
    this.#voteWithoutSync = resolved.unsafe.voteWithoutSync === true;
    this.#hardState = resolved.store.hardState();
    // Durable, or committed by construction (a founding replica's bootstrap conf).
    this.#syncedCommit = this.#raft.log.committed;
    this.#softState = { role: this.#raft.role, leader: this.#raft.leader };
  }

  get id(): number {
    return this.#raft.id;
  }

  /** Advances logical time by one tick (elections, heartbeats, CheckQuorum). */
  tick(): void {
    this.#raft.tick();
  }

  /** Feeds a message received from a peer of this group. */
  step(message: Message): void {
    this.#raft.step(message);
  }

  /** Starts an election now (tests, or an operator forcing a campaign). */
  campaign(): void {
    this.#raft.campaign(false);
  }

  /**
   * Appends `data` to the leader's log; returns its index. The entry's term
   * is `node.term` at the time of the call: it is committed when a later
   * Ready lists an entry with that index and term in `committedEntries`; an
   * entry of another term at that index means the proposal was lost (a new
   * leader overwrote it) and the client must be told so.
   * Throws `NotLeaderError` on a non-leader, `ProposalDroppedError` when over
   * a limit or during a leadership transfer.
   */
  propose(data: Uint8Array): number {
    return this.#raft.propose(data, EntryType.Normal);
  }

  /** Proposes one membership change; refused while another one is not applied. Returns its index. */
  proposeConfChange(change: ConfChange): number {
    return this.#raft.proposeConfChange(change);
  }

  /** Requests a linearizable read; confirmed later as a `ReadState` carrying `context`. */
  readIndex(context: Uint8Array): void {
    this.#raft.readIndex(context);
  }

  /**
   * On the leader: follower `id`'s process restarted, so what this leader
   * recorded of its log is forgotten (match 0) and it is probed again from
   * the leader's last index. A restart may have cut a torn tail or rebuilt
   * the replica; a stale `match` would make the follower's rejections look
   * stale, count it toward commits for entries it lost, and report it in
   * sync. Does nothing on a non-leader.
   */
  resetProgress(id: number): void {
    this.#raft.resetProgress(id);
  }

  /** Hands leadership to `target` once its log is caught up (TimeoutNow). */
  transferLeadership(target: number): void {
    this.#raft.transferLeadership(target);
  }

  /**
   * Builds a snapshot of the applied state: `data` must be the state machine
   * image at `status().applied`. Pass the result to `store.compact()`.
   */
  createSnapshot(data: Uint8Array): Snapshot {
    const index = this.#raft.log.applied;
    const term = this.#raft.log.term(index);
    assert(term !== undefined, `no term at applied index ${index}`);
    assert(
      index <= this.#raft.log.stableIndex() || this.#raft.role !== "leader",
      "snapshot beyond durable log",
    );
    return { index, term, conf: cloneConf(this.#raft.conf), data };
  }

  /** Whether `ready()` would return something to do. */
  hasReady(): boolean {
    if (this.#outstanding) return false;
    const raft = this.#raft;
    raft.flush();
    return raft.messages.length > 0 || raft.readStates.length > 0 || raft.droppedReads.length > 0 ||
      raft.log.hasUnstableEntries() || raft.log.unstableSnapshot() !== undefined ||
      raft.log.hasNextCommitted() || this.#hardStateChanged() || this.#softStateChanged() ||
      raft.recovered;
  }

  /** Collects the pending side effects; the shell must call `advance()` after handling them. */
  ready(): Ready {
    assert(this.#outstanding === undefined, "ready() called again before advance()");
    const raft = this.#raft;
    raft.flush();
    const hardState = { term: raft.term, vote: raft.vote, commit: raft.log.committed };
    const entries = raft.log.unstableEntries().slice();
    const snapshot = raft.log.unstableSnapshot();
    const { committedEntries, syncCommit } = this.#committedToApply();
    const hardChanged = this.#hardStateChanged() || syncCommit;
    const termOrVote = hardChanged && this.#termOrVoteChanged(hardState);
    // Entries a leader still writes in the background: a sync here covers
    // them too, and a node that stopped leading must not answer for them
    // before it (its acknowledgements promise them durable).
    const inProgress = raft.log.lastInProgress();
    this.#persistThrough = entries.at(-1) ?? inProgress;
    const rd: Ready = {
      softState: this.#softStateChanged() ? { role: raft.role, leader: raft.leader } : undefined,
      hardState: hardChanged ? hardState : undefined,
      snapshot,
      entries,
      messages: raft.messages,
      committedEntries,
      readStates: raft.readStates,
      droppedReads: raft.droppedReads,
      mustSync: entries.length > 0 || snapshot !== undefined || syncCommit || termOrVote ||
        (inProgress !== undefined && raft.role !== "leader"),
      // A lone voter commits only on its own fsync: nothing to gain there.
      syncInBackground: raft.role === "leader" && raft.conf.voters.length > 1 &&
        entries.length > 0 && snapshot === undefined && !syncCommit && !termOrVote &&
        !raft.recovered,
      recovered: raft.recovered,
    };
    raft.recovered = false;
    raft.messages = [];
    raft.readStates = [];
    raft.droppedReads = [];
    this.#outstanding = rd;
    return rd;
  }

  /**
   * Reports the last Ready handled: its committed entries applied, and its
   * entries durable, unless `entriesDurable` is false (allowed only when
   * `rd.syncInBackground`): then the returned write is reported with
   * `persisted()` once the fsync completed.
   */
  advance(options: { entriesDurable?: boolean } = {}): BackgroundWrite | undefined {
    const rd = this.#outstanding;
    assert(rd !== undefined, "advance() without ready()");
    const durable = options.entriesDurable !== false;
    assert(durable || rd.syncInBackground, "advance() without durable entries for a sync Ready");
    this.#outstanding = undefined;
    const raft = this.#raft;
    if (rd.softState) this.#softState = rd.softState;
    if (rd.hardState) this.#hardState = rd.hardState;
    const last = this.#persistThrough;
    this.#persistThrough = undefined;
    // The fsync covered every hard state written so far.
    if (rd.mustSync && durable) {
      this.#syncedCommit = Math.max(this.#syncedCommit, this.#hardState.commit);
    }
    if (rd.snapshot) {
      raft.log.stableSnapshotTo(rd.snapshot.index);
      raft.log.appliedTo(Math.max(raft.log.applied, rd.snapshot.index));
    }
    let write: BackgroundWrite | undefined;
    if (!durable) {
      raft.log.acceptInProgress();
      write = { index: last!.index, term: last!.term, commit: this.#hardState.commit };
    } else if (last) raft.persisted(last.index, last.term);
    this.#applyCommitted(rd.committedEntries);
    return write;
  }

  /**
   * The fsync of a write that `advance({ entriesDurable: false })` returned
   * completed: its entries (and the hard state written before it) are
   * durable, and a leader counts them toward a commit now.
   */
  persisted(write: BackgroundWrite): void {
    this.#syncedCommit = Math.max(this.#syncedCommit, write.commit);
    this.#raft.persisted(write.index, write.term);
  }

  /**
   * The committed entries to hand out for applying, cut before the first
   * conf change the durable commit index does not cover yet; then this
   * Ready must make the commit index durable (`syncCommit`), and the next
   * one hands the conf change out.
   *
   * Why: a commit-only hard state is written without an fsync, and conf
   * changes take effect when applied. A replica that applied a conf change
   * (and a leader that went on to the next one) must not come back after a
   * crash with a commit index below it: it would apply an older membership
   * again. Two changes back, the old and the current voters' majorities
   * need not intersect ({1,2,3} and {1,3,4}), and the replica could win an
   * election with voters that no longer count, beside the real leader of
   * the term; or wait forever for a removed voter (whole-cluster seed
   * 3854095129: a group of {1,2,3,4} after the removal of 3 had committed).
   */
  #committedToApply(): { committedEntries: Entry[]; syncCommit: boolean } {
    const entries = this.#raft.log.nextCommitted(this.#applyBytesMax);
    const cut = entries.findIndex((entry) =>
      entry.type === EntryType.ConfChange && entry.index > this.#syncedCommit
    );
    if (cut < 0) return { committedEntries: entries, syncCommit: false };
    return { committedEntries: entries.slice(0, cut), syncCommit: true };
  }

  #applyCommitted(entries: Entry[]): void {
    const raft = this.#raft;
    for (const entry of entries) {
      if (entry.index <= raft.log.applied) continue;
      if (entry.type === EntryType.ConfChange) raft.applyConfEntry(entry);
      raft.log.appliedTo(entry.index);
    }
  }

  /** A read-only view for the shell, tests and the simulator. */
  status(): Status {
    const raft = this.#raft;
    const progress: Record<number, ProgressStatus> = {};
    if (raft.role === "leader") {
      for (const [id, tracked] of raft.progress) {
        progress[id] = tracked.status(raft.ticks);
        if (id !== raft.id) continue;
        progress[id].heardTicksAgo = 0;
        // The leader's own log: durable up to the commit index now, or when it last was.
        if (tracked.match >= raft.log.committed) progress[id].caughtUpTicksAgo = 0;
      }
    }
    return {
      id: raft.id,
      role: raft.role,
      term: raft.term,
      vote: raft.vote,
      leader: raft.leader,
      commit: raft.log.committed,
      applied: raft.log.applied,
      lastIndex: raft.log.lastIndex(),
      conf: cloneConf(raft.conf),
      recovering: raft.recoveringTerm !== undefined,
      progress,
      leadTransferee: raft.leadTransferee,
    };
  }

  /** Current role, without building a whole `status()`. */
  get role(): Role {
    return this.#raft.role;
  }

  /** Current term, without building a whole `status()`. */
  get term(): number {
    return this.#raft.term;
  }

  /** Whether this replica is rebuilding a lost log (it neither votes nor campaigns yet). */
  get recovering(): boolean {
    return this.#raft.recoveringTerm !== undefined;
  }

  /** Commit index, without building a whole `status()` (the simulator reads it after every event). */
  get commit(): number {
    return this.#raft.log.committed;
  }

  /** Known leader id (0 when unknown), without building a whole `status()`. */
  get leader(): number {
    return this.#raft.leader;
  }

  /** Term of the entry at `index` in this replica's log, undefined when absent (checkers, tests). */
  termAt(index: number): number | undefined {
    return this.#raft.log.term(index);
  }

  /** First index still held in this replica's log (after compaction or snapshot). */
  firstIndex(): number {
    return this.#raft.log.firstIndex();
  }

  /** Entries `[low, high)` of this replica's log, durable or not (checkers, tests). */
  entries(low: number, high: number): Entry[] {
    return this.#raft.log.slice(low, high) ?? [];
  }

  /**
   * A new term or vote must be durable before any message that depends on
   * it leaves: a vote forgotten in a crash could be granted again, to
   * another candidate of the same term.
   */
  #termOrVoteChanged(hardState: HardState): boolean {
    if (hardState.term !== this.#hardState.term) return true;
    return hardState.vote !== this.#hardState.vote && !this.#voteWithoutSync;
  }

  #hardStateChanged(): boolean {
    const raft = this.#raft;
    return raft.term !== this.#hardState.term || raft.vote !== this.#hardState.vote ||
      raft.log.committed !== this.#hardState.commit;
  }

  #softStateChanged(): boolean {
    return this.#raft.role !== this.#softState.role || this.#raft.leader !== this.#softState.leader;
  }
}

function cloneConf(conf: ConfState): ConfState {
  return { voters: [...conf.voters], learners: [...conf.learners] };
}
