/**
 * The networked shell around one `RaftNode`: it persists, sends, applies and
 * advances each Ready in the order the core requires (persist and fsync
 * before send, so nothing is promised that is not durable), resolves
 * proposals when their entry is applied, and confirms linearizable reads.
 *
 * Proposals made while an fsync is in flight gather in the next Ready, so
 * one fsync covers a whole batch (group commit across clients).
 *
 * @module
 */

import { getLogger } from "../logging.ts";
import { NotLeaderError, ProposalDroppedError } from "../raft/errors.ts";
import { type BackgroundWrite, RaftNode } from "../raft/raft_node.ts";
import {
  type ConfChange,
  lazyWaitEffect,
  type Message,
  type Ready,
  type Rng,
  type Role,
} from "../raft/types.ts";
import { isStorageFailure, StorageRecovery } from "../storage/storage_failure.ts";
import { type Entry, EntryType, type LogStore, type Snapshot } from "../storage/types.ts";
import { ProtocolError } from "../wire/errors.ts";
import { type Cancel, type Scheduler, systemScheduler } from "./runtime.ts";
import {
  pullSnapshot,
  serveSnapshotChunk,
  type SnapshotChunk,
  type SnapshotChunkRequest,
  SnapshotPull,
  transferSlots,
} from "./snapshot_transfer.ts";

/** Most proposals waiting for their entry to apply. */
export const pendingProposalsMax = 100_000;
/**
 * Leader heartbeat interval in ticks: 3 heartbeats per minimum election
 * timeout (10 ticks) keep followers and CheckQuorum content, at a third of
 * the idle traffic of one per tick, which matters with thousands of topics.
 */
export const heartbeatTicksDefault = 3;

/** Ticks (1 s) without proposals or reads before a fully replicated group sleeps. */
export const quiesceTicks = 10;
/**
 * Ticks without traffic before a group whose log holds only its bootstrap
 * sleeps: nothing was ever written to it, so a burst of creations leaves
 * few groups awake (each awake group heartbeats).
 */
export const newGroupQuiesceTicks = 2;

/** Entry bytes per Raft append message. */
export const appendBytesMax = 256 * 1024;
/** Appends in flight per follower. */
export const inflightAppendsMax = 16;

/** Most linearizable reads waiting for confirmation. */
export const pendingReadsMax = 10_000;
const decoder = new TextDecoder();

/** Messages a leader sends that promise nothing about its own disk. */
const leaderMessageTypes = new Set<string>(["app", "heartbeat", "snap", "timeoutNow"]);

const isLeaderMessage = (message: Message) => leaderMessageTypes.has(message.type);
const isOtherMessage = (message: Message) => !leaderMessageTypes.has(message.type);
const noMessages: readonly Message[] = [];
const carriesSnapshot = (message: Message) => message.snapshot !== undefined;

/** A read round not confirmed by a quorum within this long is asked again. */
export const readRoundRetryMs = 300;

/** Default entries applied between two snapshots of a group's state machine. */
export const snapshotEntriesDefault = 10_000;
/** Default entry bytes applied between two snapshots of a group's state machine. */
export const snapshotBytesDefault = 64 * 1024 * 1024;

/**
 * What a group's state machine does with committed entries. A machine
 * with `snapshot`, `restore` and `firstNeededIndex` lets its group take
 * snapshots, compact its log and catch followers up by snapshot transfer;
 * one without them keeps its whole log.
 */
export interface GroupStateMachine {
  /** Applies a committed normal entry; the result goes to its proposer. */
  apply(entry: Entry): unknown;
  /** A committed membership change (already applied to the group's conf by Raft). */
  applyConfChange?(entry: Entry): void;
  /** The state at the last applied index, as an image `restore` reads. */
  snapshot?(): Uint8Array;
  /** Replaces the whole state by an image taken at log index `index`. */
  restore?(data: Uint8Array, index: number): void;
  /** The lowest log index the machine still reads back (compaction keeps it and later ones). */
  firstNeededIndex?(): number;
}

/** Settings of one replica. */
export interface ReplicaGroupOptions {
  groupId: string;
  nodeId: number;
  store: LogStore;
  rng: Rng;
  stateMachine: GroupStateMachine;
  /** Sends messages of this group to their `to` nodes (best effort). */
  send: (groupId: string, messages: readonly Message[]) => void;
  /** Voters of a brand-new group (ignored when the store holds a log). */
  voters?: number[];
  /**
   * The leader of term 1 of a brand-new group, without an election (see
   * `RaftOptions.bootstrapLeader`); the same on every founding replica.
   */
  bootstrapLeader?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Called when the known leader or this replica's role changes. */
  onLeaderChange?: (leader: number, role: Role) => void;
  /**
   * Ends the sentence of an `unavailable` answer when this replica cannot
   * reach a quorum (e.g. ": peers 2 and 3 are not reachable, ..."); "" when
   * it knows no reason.
   */
  explainNoQuorum?: (voters: readonly number[]) => string;
  /**
   * Tells follower `to` that its leader let the group sleep at `term` (see
   * `quiescent`). Without it the group never sleeps.
   */
  quiesce?: (groupId: string, to: number, term: number) => void;
  /**
   * Set for a replica rebuilt empty after its log was damaged (see
   * `RaftOptions.recoveringTerm`): it neither votes nor campaigns until it
   * caught up. Default: undefined.
   */
  recoveringTerm?: number;
  /** Clears the persisted recovering flag once the replica caught up (its entries durable). */
  onRecovered?: () => Promise<void>;
  /** Called when the disk refuses writes and the replica stops until it recovers. */
  onStorageFailure?: () => void;
  /** Runs Readys and read retries on it (default: the host's timers). */
  scheduler?: Scheduler;
  /** Entries applied between two snapshots. Default `snapshotEntriesDefault` (10,000). */
  snapshotEntries?: number;
  /** Entry bytes applied between two snapshots. Default `snapshotBytesDefault` (64 MiB). */
  snapshotBytes?: number;
  /**
   * Pulls one chunk of a snapshot transfer from `leader` (the peer RPC
   * `peer_snapshot_chunk`). With it, snapshots travel without their image
   * in Raft messages and a follower installs the image with the leader's
   * retained entries; without it (in-process tests), the image rides in
   * the `snap` message and no retained entries are installed.
   */
  fetchSnapshotChunk?: (leader: number, request: SnapshotChunkRequest) => Promise<SnapshotChunk>;
  /**
   * Lazy followers (`RaftOptions.lazyFollowers`): as leader, this replica
   * marks its appends to the voters a commit does not need; as follower, it
   * handles an append so marked up to this many ms later, with what else
   * arrived meanwhile, in one Ready and one fsync (an unmarked append, a
   * vote or a snapshot ends the wait at once). 0 (default): neither.
   */
  lazySyncMs?: number;
}

interface Waiter {
  term: number;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/**
 * One replica of one Raft group.
 *
 * @example
 * ```ts
 * const group = new ReplicaGroup({ groupId: "t:events", nodeId: 1, store, rng, stateMachine, send });
 * const result = await group.propose(data);
 * ```
 */
export class ReplicaGroup {
  readonly groupId: string;
  #node: RaftNode;
  readonly #options: ReplicaGroupOptions;
  readonly #waiters = new Map<number, Waiter>();
  /** Reads waiting for the next confirmation round, and those in the current one. */
  #nextReads: { resolve(): void; reject(error: Error): void }[] = [];
  #roundReads: { resolve(): void; reject(error: Error): void }[] = [];
  #roundContext: string | undefined;
  #roundTimer: Cancel | undefined;
  readonly #scheduler: Scheduler;
  #readSequence = 0;
  #idleTicks = 0;
  #quiescent = false;
  #driving = false;
  #scheduled = false;
  /** A `#schedule` call came while a drive ran: the drive looks again before it ends. */
  #wokenWhileDriving = false;
  /** The running drive has handled every Ready it had and is finishing (`#drive`). */
  #drivingTail = false;
  /** A `#schedule` call came during that tail only. */
  #wokenInTail = false;
  /** Work arrived while the last drive ran: the group is under load (see `#schedule`). */
  #loaded = false;
  #closed = false;
  #failure: Error | undefined;
  #leader = 0;
  #appliedWaiters: { index: number; resolve(): void }[] = [];
  /** Index of the last entry handed to the state machine (it survives restarts of the node). */
  #appliedIndex = 0;
  /** A failed disk write and the restart from the durable log that follows it. */
  readonly #recovery: StorageRecovery;
  /** Set while this replica rebuilds a lost log (see `recovering`). */
  #recoveringTerm: number | undefined;
  /** Index of the last snapshot taken or installed, and entry bytes applied since. */
  #snapshotIndex = 0;
  #bytesSinceSnapshot = 0;
  #compactionRequested = false;
  /** The snapshot transfer running (one at a time), by snapshot index. */
  #transferring: number | undefined;
  /** Set while a transferred snapshot is installed: no Ready is handled meanwhile. */
  #installing = false;
  /** Cancels the wait of a lazy append (`lazySyncMs`); undefined while none waits. */
  #lazyWait: Cancel | undefined;

  constructor(options: ReplicaGroupOptions) {
    this.groupId = options.groupId;
    this.#options = options;
    this.#scheduler = options.scheduler ?? systemScheduler;
    this.#recoveringTerm = options.recoveringTerm;
    this.#restoreFromStore();
    this.#node = this.#createNode();
    this.#recovery = new StorageRecovery({
      subject: replicaSubject(options.groupId),
      restart: () => this.#restart(),
      timers: this.#scheduler,
    });
    this.#schedule();
  }

  /** The Raft core of this replica (a new one after a restart from the durable log). */
  get node(): RaftNode {
    return this.#node;
  }

  /**
   * At start: the state machine resumes from the store's snapshot, and Raft
   * hands out only the entries after it. Restart time then depends on the
   * retained entries and the snapshot, not on the whole history.
   */
  #restoreFromStore(): void {
    const snapshot = this.#options.store.snapshot();
    if (snapshot === undefined) return;
    this.#snapshotIndex = snapshot.index;
    if (this.#options.stateMachine.restore === undefined) return;
    this.#options.stateMachine.restore(snapshot.data, snapshot.index);
    this.#appliedIndex = snapshot.index;
  }

  #createNode(): RaftNode {
    const options = this.#options;
    return new RaftNode({
      id: options.nodeId,
      store: options.store,
      rng: options.rng,
      voters: options.voters,
      bootstrapLeader: options.bootstrapLeader,
      electionTicks: options.electionTicks ?? 10,
      heartbeatTicks: options.heartbeatTicks ?? heartbeatTicksDefault,
      // Catch-up traffic per follower stays within a peer link's send queue
      // (8 MiB): 16 appends of at most 256 KiB, base64-encoded on the wire.
      appendBytesMax: appendBytesMax,
      inflightAppendsMax: inflightAppendsMax,
      recoveringTerm: this.#recoveringTerm,
      isPeerActive: (id) => this.peerActive?.(id) ?? false,
      lazyFollowers: (options.lazySyncMs ?? 0) > 0,
    });
  }

  /**
   * True while this replica rebuilds a log it lost: it acknowledges appends
   * but neither votes nor campaigns, and its committed log is still behind.
   */
  get recovering(): boolean {
    return this.#recoveringTerm !== undefined;
  }

  /**
   * On the leader: forgets what it recorded of follower `nodeId`'s log,
   * whose process restarted (see `RaftNode.resetProgress`), and probes it
   * again, waking the group if it sleeps.
   */
  resetProgress(nodeId: number): void {
    if (this.#closed || !this.isLeader) return;
    this.#wake();
    this.node.resetProgress(nodeId);
    this.#schedule();
  }

  /** The known leader (0 when none, or while this replica's disk is down). */
  get leader(): number {
    return this.#recovery.down ? 0 : this.node.leader;
  }

  get isLeader(): boolean {
    return !this.#recovery.down && this.node.role === "leader";
  }

  /**
   * True when this replica is its group's only voter (a standalone topic):
   * its applied log is the whole committed log and no other leader can
   * exist, so it may serve linearizable reads even while its disk refuses
   * writes.
   */
  get soleVoter(): boolean {
    const voters = this.node.status().conf.voters;
    return voters.length === 1 && voters[0] === this.#options.nodeId;
  }

  /**
   * True while this replica is its group's only voter and its disk refuses
   * writes: nobody can lead the group, and what it applied is the last word
   * (reads go on; writes get its storage failure).
   */
  get soleVoterDown(): boolean {
    return this.storageFailure !== undefined && this.soleVoter;
  }

  /**
   * The answer to writes while this replica's disk refuses them
   * (`storage_full`, or `unavailable` naming the I/O error); undefined when
   * the disk is fine. It stays set after the restart until a write succeeds.
   */
  get storageFailure(): ProtocolError | undefined {
    return this.#recovery.failure;
  }

  /** The timers this replica runs on (its topic's batching and acks use them too). */
  get scheduler(): Scheduler {
    return this.#scheduler;
  }

  /** The store this replica persists to. */
  get store(): LogStore {
    return this.#options.store;
  }

  /**
   * True while the group sleeps: its leader saw no proposal or read for
   * `quiesceTicks` with every voter holding the whole log, told the
   * followers, and nobody ticks or heartbeats until a message, a proposal or
   * an unreachable leader wakes it. Idle topics then cost nothing, which is
   * what lets one peer hold thousands of them (CockroachDB quiesces idle
   * ranges the same way).
   */
  get quiescent(): boolean {
    return this.#quiescent;
  }

  /**
   * Called when the group wakes from sleep (a proposal, a read, a message,
   * an election or a restart): its host ticks it again (see `RaftHost`).
   */
  onWake: (() => void) | undefined;

  /**
   * Whether peer `id`'s process was heard from lately (set by its host):
   * CheckQuorum counts it as in contact (`RaftOptions.isPeerActive`).
   */
  peerActive: ((id: number) => boolean) | undefined;

  tick(): void {
    if (this.#closed || this.#quiescent || this.#recovery.down) return;
    this.node.tick();
    this.#schedule();
    const idleTicksMax = this.#options.store.lastIndex() <= 1 ? newGroupQuiesceTicks : quiesceTicks;
    if (
      this.#options.quiesce !== undefined && ++this.#idleTicks >= idleTicksMax &&
      this.node.role === "leader"
    ) {
      this.#maybeQuiesce();
    }
  }

  step(message: Message): void {
    // A replica whose disk failed is down like a crashed one: it hears nothing.
    if (this.#closed || this.#recovery.down) return;
    // Heartbeats are the sound of an idle group; anything else is activity.
    if (this.#quiescent || (message.type !== "heartbeat" && message.type !== "heartbeatResp")) {
      this.#wake();
    }
    if (message.type === "snap" && this.#needsTransfer(message)) {
      this.#startTransfer(message);
      return;
    }
    this.node.step(message);
    if (this.#options.lazySyncMs) this.#noteLaziness(message);
    this.#schedule();
  }

  /** Opens or ends a wait of `lazySyncMs` as `message` says (`lazyWaitEffect`). */
  #noteLaziness(message: Message): void {
    const effect = lazyWaitEffect(message);
    if (effect === "open") {
      this.#lazyWait ??= this.#scheduler.schedule(this.#options.lazySyncMs!, () => {
        this.#lazyWait = undefined;
        this.#schedule();
      });
    } else if (effect === "end") {
      this.#endLazyWait();
    }
  }

  #endLazyWait(): void {
    this.#lazyWait?.();
    this.#lazyWait = undefined;
  }

  // ---- snapshots -------------------------------------------------------------

  /**
   * Asks for a snapshot and compaction at the next opportunity (after a
   * retention command moved the first needed entry), besides the ones taken
   * every `snapshotEntries` entries or `snapshotBytes` bytes.
   */
  requestCompaction(): void {
    if (this.#closed) return;
    this.#compactionRequested = true;
    this.#schedule();
  }

  /** Index of the last snapshot this replica took or installed (0: none). */
  get snapshotIndex(): number {
    return this.#snapshotIndex;
  }

  /**
   * Serves one chunk of this replica's current snapshot to a follower
   * catching up (the `peer_snapshot_chunk` RPC). Throws ProtocolError
   * `unavailable` once the snapshot moved on or the entries asked for are gone.
   */
  serveSnapshotChunk(request: SnapshotChunkRequest): SnapshotChunk {
    this.#checkUsable();
    return serveSnapshotChunk(this.#options.store, request);
  }

  /** Whether Raft would replace this replica's log by the snapshot of `message`. */
  #needsTransfer(message: Message): boolean {
    const snapshot = message.snapshot;
    if (this.#options.fetchSnapshotChunk === undefined || snapshot === undefined) return false;
    if (message.term < this.node.term) return false;
    return snapshot.index > this.node.commit &&
      this.node.termAt(snapshot.index) !== snapshot.term;
  }

  /**
   * Pulls the leader's snapshot image and retained entries, then installs
   * them as one unit: the store first (atomic: a crash leaves the old log
   * or the new one), then the state machine, then a Raft node rebuilt from
   * the store, which the `snap` message then reaches (it finds its log at
   * the snapshot already and acknowledges it). A failed pull is dropped:
   * the leader sends its snapshot again, maybe a newer one.
   */
  #startTransfer(message: Message): void {
    const target = message.snapshot!;
    if (this.#transferring !== undefined && this.#transferring >= target.index) return;
    // Each transfer stages its data in memory: a bounded number run at once.
    if (!transferSlots.acquire()) return;
    this.#transferring = target.index;
    const fetch = this.#options.fetchSnapshotChunk!;
    const pull = new SnapshotPull(this.groupId, target);
    pullSnapshot(pull, (request) => fetch(message.from, request))
      .then((staged) => this.#install(message, staged.snapshot, staged.retained))
      .catch((error) => {
        if (this.#closed) return;
        getLogger("cluster").info(
          "Snapshot transfer of {group} from node {leader} failed: {error}",
          {
            group: this.groupId,
            leader: message.from,
            error: (error as Error).message,
          },
        );
      })
      .finally(() => {
        transferSlots.release();
        if (this.#transferring === target.index) this.#transferring = undefined;
      });
  }

  async #install(message: Message, snapshot: Snapshot, retained: Entry[]): Promise<void> {
    this.#installing = true;
    try {
      while (this.#driving) {
        await new Promise<void>((resolve) => this.#scheduler.schedule(1, resolve));
      }
      if (this.#closed || this.#recovery.down) return;
      if (!this.#needsTransfer(message)) {
        // Caught up by appends meanwhile: Raft needs no image to answer.
        this.node.step(message);
        return;
      }
      await this.#options.store.applySnapshot(snapshot, retained);
      this.#restoreMachine(snapshot);
      this.#rejectAll(new ProtocolError("unavailable", "This replica installed a snapshot"));
      this.#node = this.#createNode();
      this.node.step(message);
      getLogger("cluster").info("Installed snapshot {index} of {group} with {retained} entries", {
        index: snapshot.index,
        group: this.groupId,
        retained: retained.length,
      });
    } catch (error) {
      if (isStorageFailure(error) && !this.#closed) this.#storageFailed(error as Error);
      else throw error;
    } finally {
      this.#installing = false;
      this.#schedule();
    }
  }

  #restoreMachine(snapshot: Snapshot): void {
    this.#options.stateMachine.restore?.(snapshot.data, snapshot.index);
    this.#appliedIndex = snapshot.index;
    this.#snapshotIndex = snapshot.index;
    this.#bytesSinceSnapshot = 0;
  }

  /**
   * Takes a snapshot of the state machine at the applied index once enough
   * was applied since the last one (or one was asked for) and compacts the
   * log behind it: only at a durable index, keeping every segment from the
   * machine's first needed entry on (a topic's retained messages).
   */
  async #maybeSnapshot(): Promise<void> {
    const machine = this.#options.stateMachine;
    if (machine.snapshot === undefined || this.#recovery.down || this.#closed) return;
    const since = this.#appliedIndex - this.#snapshotIndex;
    const due = this.#compactionRequested ||
      since >= (this.#options.snapshotEntries ?? snapshotEntriesDefault) ||
      this.#bytesSinceSnapshot >= (this.#options.snapshotBytes ?? snapshotBytesDefault);
    if (!due || since <= 0) {
      if (since <= 0) this.#compactionRequested = false;
      return;
    }
    const store = this.#options.store;
    const status = this.node.status();
    // A follower applies committed entries before its own fsync of them.
    if (status.applied !== this.#appliedIndex || this.#appliedIndex > store.syncedIndex()) return;
    const snapshot = this.node.createSnapshot(machine.snapshot());
    const keepFrom = Math.min(machine.firstNeededIndex?.() ?? Infinity, snapshot.index + 1);
    await store.compact(snapshot, keepFrom);
    this.#snapshotIndex = snapshot.index;
    this.#bytesSinceSnapshot = 0;
    this.#compactionRequested = false;
  }

  campaign(): void {
    if (this.#recovery.down) return;
    this.#wake();
    this.node.campaign();
    this.#schedule();
  }

  /** Hands leadership to `target` (once its log is caught up). */
  transferLeadership(target: number): void {
    if (this.#recovery.down) return;
    this.#wake();
    this.node.transferLeadership(target);
    this.#schedule();
  }

  /** A leader's notice that the group sleeps: its follower stops ticking too. */
  quiesceFollower(term: number, leader: number): void {
    if (this.node.role === "follower" && this.node.term === term && this.node.leader === leader) {
      this.#quiescent = true;
    }
  }

  /** Wakes a sleeping group (its leader became unreachable): elections can run again. */
  wake(): void {
    this.#wake();
  }

  #wake(): void {
    this.#idleTicks = 0;
    if (!this.#quiescent) return;
    this.#quiescent = false;
    this.onWake?.();
  }

  #maybeQuiesce(): void {
    const status = this.node.status();
    const settled = status.commit === status.lastIndex && status.applied === status.commit &&
      status.conf.learners.length === 0 && this.#waiters.size === 0 &&
      this.#roundReads.length + this.#nextReads.length === 0 &&
      status.conf.voters.every((id) =>
        id === this.#options.nodeId || status.progress[id]?.match === status.lastIndex
      );
    if (!settled) {
      this.#idleTicks = quiesceTicks / 2;
      return;
    }
    this.#quiescent = true;
    for (const id of status.conf.voters) {
      if (id !== this.#options.nodeId) this.#options.quiesce?.(this.groupId, id, status.term);
    }
  }

  /**
   * Proposes `data`; resolves with the state machine's result once it is
   * committed and applied. Rejects with ProtocolError `unavailable` when this
   * replica is not the leader or loses the entry.
   */
  propose(data: Uint8Array): Promise<unknown> {
    this.#checkUsable();
    this.#wake();
    if (this.#waiters.size >= pendingProposalsMax) {
      throw new ProtocolError("overloaded", "Too many publishes are waiting for replication");
    }
    const term = this.node.term;
    const index = this.#call(() => this.node.propose(data));
    return this.#await(index, term);
  }

  /** Proposes a membership change; resolves once it is applied. */
  proposeConfChange(change: ConfChange): Promise<unknown> {
    this.#checkUsable();
    this.#wake();
    const term = this.node.term;
    const index = this.#call(() => this.node.proposeConfChange(change));
    return this.#await(index, term);
  }

  #await(index: number, term: number): Promise<unknown> {
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    this.#waiters.set(index, { term, resolve, reject });
    this.#schedule();
    return promise;
  }

  #call(operation: () => number): number {
    try {
      return operation();
    } catch (error) {
      if (error instanceof NotLeaderError || error instanceof ProposalDroppedError) {
        throw new ProtocolError("unavailable", "This replica cannot accept writes right now", {
          cause: error,
        });
      }
      throw error;
    }
  }

  /**
   * Resolves once this leader has confirmed it still leads (ReadIndex) and has
   * applied everything committed before the call: a read after it is
   * linearizable. Reads that arrive together share one confirmation round,
   * and a round whose heartbeat answers were lost is asked again.
   */
  readBarrier(): Promise<void> {
    this.#checkUsable();
    if (!this.isLeader) {
      return Promise.reject(new ProtocolError("unavailable", "This replica is not the leader"));
    }
    if (this.#nextReads.length + this.#roundReads.length >= pendingReadsMax) {
      return Promise.reject(new ProtocolError("overloaded", "Too many reads are waiting"));
    }
    this.#wake();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#nextReads.push({ resolve, reject });
    if (this.#roundContext === undefined) this.#startReadRound();
    return promise;
  }

  #startReadRound(): void {
    this.#roundReads.push(...this.#nextReads.splice(0));
    if (this.#roundReads.length === 0) return;
    const context = `${this.#options.nodeId}:${++this.#readSequence}`;
    this.#roundContext = context;
    this.#roundTimer?.();
    this.#roundTimer = this.#scheduler.schedule(readRoundRetryMs, () => {
      // No quorum answered this round (lost heartbeats): ask again.
      if (this.#roundContext === context && !this.#closed) this.#startReadRound();
    });
    try {
      this.node.readIndex(new TextEncoder().encode(context));
    } catch (error) {
      this.#failReads(
        new ProtocolError("unavailable", "Leadership changed during the read", {
          cause: error,
        }),
      );
      return;
    }
    this.#schedule();
  }

  #failReads(error: Error): void {
    this.#roundTimer?.();
    this.#roundContext = undefined;
    for (const read of [...this.#roundReads.splice(0), ...this.#nextReads.splice(0)]) {
      read.reject(error);
    }
  }

  /** Resolves once the applied index reaches `index`. */
  waitApplied(index: number): Promise<void> {
    if (this.node.status().applied >= index) return Promise.resolve();
    return new Promise((resolve) => this.#appliedWaiters.push({ index, resolve }));
  }

  #checkUsable(): void {
    if (this.#failure) throw new ProtocolError("unavailable", "This replica's storage failed");
    if (this.#closed) throw new ProtocolError("unavailable", "This replica is closed");
    if (this.#recovery.down) throw this.#recovery.failure!;
  }

  /**
   * True while Readys are being handled (an fsync in flight) or proposals
   * wait for their commit: the group is under load, and a topic may as well
   * gather the publishes of several tasks into one entry, as a proposal
   * made now would wait for the current round anyway.
   */
  get busy(): boolean {
    return this.#driving || this.#waiters.size > 0;
  }

  /** A follower waiting out a lazy append (`lazySyncMs`): it drives when the wait ends. */
  #waitsLazily(): boolean {
    return this.#lazyWait !== undefined && this.node.role === "follower";
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#waitsLazily()) return;
    if (this.#driving) {
      // The running drive takes it up: what arrives during an fsync gathers
      // in the next Ready, one fsync round per batch under load.
      if (this.#drivingTail) this.#wokenInTail = true;
      else this.#wokenWhileDriving = true;
      return;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    const run = () => {
      this.#scheduled = false;
      if (!this.#driving && !this.#closed) this.#drive();
    };
    // An idle group handles the Ready in this turn: a microtask, after the
    // rest of the frame or socket read that caused it, so the messages and
    // proposals of one read still share a Ready and its fsync. A loaded one
    // (work arrived while its last drive ran) waits for a later task, so
    // that the answers and acknowledgements of a burst share one Ready.
    if (this.#loaded) this.#scheduler.defer(run);
    else queueMicrotask(run);
  }

  async #drive(): Promise<void> {
    if (this.#installing) return;
    this.#driving = true;
    this.#wokenWhileDriving = false;
    this.#drivingTail = false;
    this.#wokenInTail = false;
    try {
      while (!this.#closed && !this.#installing && !this.#waitsLazily() && this.node.hasReady()) {
        await this.#handle(this.node.ready());
      }
      this.#drivingTail = true;
      if (!this.#installing) await this.#maybeSnapshot();
    } catch (error) {
      if (isStorageFailure(error) && !this.#closed) this.#storageFailed(error);
      else this.#fail(error as Error);
    } finally {
      this.#driving = false;
    }
    // Work arrived while this drive handled a Ready: the group counts as
    // loaded, and looks again (in a later task) for what the loop did not
    // take up. Work that came only once every Ready was handled (the
    // drive's last microtasks) is no sign of load: it is taken up at once,
    // as by an idle group. One publish at a time, a client's next publish
    // often arrives in the same event-loop turn as the second follower's
    // acknowledgement, and counted as load it sent 20-40% of the leader's
    // fsyncs to the thread pool (two thread hops each).
    this.#loaded = this.#wokenWhileDriving;
    if (this.#wokenWhileDriving || this.#wokenInTail) this.#schedule();
  }

  async #handle(rd: Ready): Promise<void> {
    const store = this.#options.store;
    if (rd.snapshot) {
      // Only without a transfer (which installs before Raft sees the message).
      await store.applySnapshot(rd.snapshot);
      this.#restoreMachine(rd.snapshot);
    }
    // A leader's appends may leave before its own fsync (Raft thesis 10.2.1):
    // the leader counts itself toward a commit only once `advance()` reports
    // its entries durable, so followers write in parallel with it. Every
    // answer (votes, append acknowledgements) still waits for the fsync.
    // Usually every message is a leader's: then no filtered copies (two per
    // publish were this handler's own garbage).
    let late: readonly Message[] = rd.messages;
    if (rd.mustSync && this.node.role === "leader" && rd.messages.length > 0) {
      if (rd.messages.every(isLeaderMessage)) {
        this.#send(rd.messages);
        late = noMessages;
      } else {
        const early = rd.messages.filter(isLeaderMessage);
        late = rd.messages.filter(isOtherMessage);
        if (early.length > 0) this.#send(early);
      }
    }
    const background = rd.syncInBackground && late.length === 0;
    if (!background) this.#stage(rd);
    if (rd.softState) this.#leaderChanged(rd.softState.leader, rd.softState.role);
    // A follower's acknowledgement is what the leader's commit waits for:
    // the entries this Ready commits are applied once it has left (below).
    const applyAfterAnswer = late.length > 0 && rd.mustSync && this.node.role !== "leader" &&
      rd.committedEntries.length > 0;
    // Committed entries are durable on a majority already, so they are
    // applied (and their publishers answered) without waiting for this
    // Ready's own fsync, which only covers newer entries.
    if (!applyAfterAnswer) {
      for (const entry of rd.committedEntries) this.#apply(entry);
    }
    for (const read of rd.readStates) this.#confirmRead(read.index, read.context);
    if (rd.droppedReads.length > 0 && this.#droppedRound(rd.droppedReads)) {
      this.#failReads(new ProtocolError("unavailable", "Leadership changed during the read"));
    }
    if (background) {
      // The leader's own fsync runs while it goes on (on the thread pool, or
      // inline while the disk is fast: `_fsync.ts`):
      // two followers' acknowledgements commit without it, so a slow fsync
      // here no longer holds every publish (perf trace: leader fdatasyncs
      // of 4-25 ms with both followers' answers in after 2-6 ms). Its file
      // write comes after its appends have left: RaftHost writes them in a
      // microtask that `#send` above queued, ahead of this one.
      const write = this.node.advance({ entriesDurable: false })!;
      const node = this.node;
      queueMicrotask(() => this.#persistInBackground(rd, write, node));
      this.#wakeApplied();
      return;
    }
    if (rd.mustSync) {
      // An idle group drives in a microtask of the turn that brought its
      // work (`#schedule`): its fsync need not wait for the turn's end.
      await store.sync({ soon: !this.#loaded });
      this.#recovery.succeeded();
    }
    if (rd.recovered) {
      // The entries that ended the recovery are durable now (the sync above).
      this.#recoveringTerm = undefined;
      await this.#options.onRecovered?.();
    }
    if (late.length > 0) this.#send(late);
    if (applyAfterAnswer) {
      // RaftHost writes an acknowledgement in a microtask that `#send`
      // queued: one await lets it leave before the apply.
      await Promise.resolve();
      for (const entry of rd.committedEntries) this.#apply(entry);
    }
    this.node.advance();
    this.#wakeApplied();
  }

  /** Stages a Ready's entries and hard state in the store (written by its next sync). */
  #stage(rd: Ready): void {
    const store = this.#options.store;
    if (rd.entries.length > 0) store.append(rd.entries);
    if (rd.hardState) store.setHardState(rd.hardState);
  }

  /**
   * Writes and syncs a leader's Ready without holding the Ready loop (see
   * `#handle`); Raft counts the write once durable. An idle group's fsync
   * may still run inline while the disk is fast (`_fsync.ts`).
   */
  #persistInBackground(rd: Ready, write: BackgroundWrite, node: RaftNode): void {
    // A restart after a storage failure made another node: not its write.
    if (this.#closed || this.node !== node) return;
    let synced: Promise<void>;
    try {
      this.#stage(rd);
      synced = this.#options.store.sync({ background: true, soon: !this.#loaded });
    } catch (error) {
      if (isStorageFailure(error)) this.#storageFailed(error as Error);
      else this.#fail(error as Error);
      return;
    }
    synced.then(() => {
      // A restart after a storage failure made another node: not its write.
      if (this.#closed || this.node !== node) return;
      this.#recovery.succeeded();
      node.persisted(write);
      this.#schedule();
    }, (error) => {
      if (this.#closed || this.node !== node) return;
      if (isStorageFailure(error)) this.#storageFailed(error);
      else this.#fail(error);
    });
  }

  #droppedRound(contexts: readonly Uint8Array[]): boolean {
    return contexts.some((context) => decoder.decode(context) === this.#roundContext);
  }

  /**
   * With snapshot transfer, a `snap` message leaves without its image (the
   * follower pulls it in chunks): a Raft message stays small.
   */
  #send(messages: readonly Message[]): void {
    if (this.#options.fetchSnapshotChunk !== undefined && messages.some(carriesSnapshot)) {
      messages = messages.map((message) =>
        message.snapshot === undefined
          ? message
          : { ...message, snapshot: { ...message.snapshot, data: new Uint8Array() } }
      );
    }
    this.#options.send(this.groupId, messages);
  }

  #apply(entry: Entry): void {
    if (entry.index <= this.#appliedIndex) {
      // A node restarted from the durable log hands out committed entries
      // again that the state machine applied before the restart. Committed
      // entries never change (Log Matching, Leader Completeness), so they
      // are skipped; nobody waits for them, as every proposal was failed at
      // the restart.
      this.#waiters.get(entry.index)?.reject(
        new ProtocolError("unavailable", "This replica restarted before the write committed"),
      );
      this.#waiters.delete(entry.index);
      return;
    }
    this.#appliedIndex = entry.index;
    this.#bytesSinceSnapshot += entry.data.byteLength;
    let result: unknown;
    let error: Error | undefined;
    if (entry.type === EntryType.ConfChange) {
      this.#options.stateMachine.applyConfChange?.(entry);
    } else {
      try {
        result = this.#options.stateMachine.apply(entry);
      } catch (cause) {
        error = cause as Error;
      }
    }
    const waiter = this.#waiters.get(entry.index);
    if (waiter === undefined) return;
    this.#waiters.delete(entry.index);
    if (waiter.term !== entry.term) {
      waiter.reject(
        new ProtocolError("unavailable", "Leadership changed before the write committed"),
      );
    } else if (error) waiter.reject(error);
    else waiter.resolve(result);
  }

  #confirmRead(index: number, context: Uint8Array): void {
    if (decoder.decode(context) !== this.#roundContext) return;
    this.#roundTimer?.();
    this.#roundContext = undefined;
    const reads = this.#roundReads.splice(0);
    this.waitApplied(index).then(() => {
      for (const read of reads) read.resolve();
    });
    if (this.#nextReads.length > 0) this.#startReadRound();
  }

  #wakeApplied(): void {
    if (this.#appliedWaiters.length === 0) return;
    const applied = this.node.status().applied;
    this.#appliedWaiters = this.#appliedWaiters.filter((waiter) => {
      if (waiter.index > applied) return true;
      waiter.resolve();
      return false;
    });
  }

  #leaderChanged(leader: number, role: Role): void {
    const previous = this.#leader;
    this.#leader = leader;
    if (role !== "leader") {
      // Reads queued on a deposed leader can never be confirmed by it.
      this.#failReads(new ProtocolError("unavailable", "Leadership changed during the read"));
      // Nor can it tell its proposers when their writes commit: a leader that
      // stepped down (lost its quorum, or a newer term exists) answers them
      // now instead of at the request timeout. A write may still commit under
      // the next leader: "unavailable" never claims it was not stored, and an
      // idempotent retry finds it.
      // (A failing disk answers them itself, with storage_full.)
      if (this.#waiters.size > 0 && this.storageFailure === undefined) {
        const why = this.#options.explainNoQuorum?.(this.node.status().conf.voters) ?? "";
        this.#rejectWaiters(
          new ProtocolError(
            "unavailable",
            `The leader stepped down before the write committed${why}`,
          ),
        );
      }
    }
    if (previous !== leader || role === "leader") this.#options.onLeaderChange?.(leader, role);
  }

  #fail(error: Error): void {
    // A failed fsync leaves the log's durable state unknown: stop this replica
    // loudly instead of acknowledging anything more from it.
    this.#failure = error;
    console.error(`pubsub: replica ${this.groupId} stopped: ${error.message}`);
    this.#rejectAll(new ProtocolError("unavailable", "This replica's storage failed"));
  }

  /**
   * A disk write failed (full disk, I/O error): this replica stops like a
   * crashed one and restarts from its durable log once the disk takes
   * writes again (`#restart`). Why that is safe for Raft:
   *
   * - The Ready being handled is never advanced, so nothing of it counts as
   *   durable: the leader does not count its own copy toward a commit, and
   *   the votes and append acknowledgements it held were not sent (they go
   *   out only after the sync). Its early leader messages promise nothing
   *   about this disk.
   * - The store keeps only what a successful sync made durable, and the node
   *   is rebuilt from exactly that, as after a crash; a crash-restart with
   *   fsynced data kept is always safe in Raft.
   * - Proposals waiting here fail with `storage_full` (nothing was
   *   acknowledged); an entry a majority already holds may still commit
   *   under a new leader, and a producer's retry is deduplicated.
   * - The state machine keeps what it applied (committed entries only), so
   *   reads of applied messages go on; the restarted node hands out those
   *   entries again and `#apply` skips them.
   */
  #storageFailed(error: Error): void {
    const answer = this.#recovery.fail(error);
    this.#wake();
    this.#leaderChanged(0, "follower");
    this.#rejectAll(answer);
    this.#options.onStorageFailure?.();
  }

  /** Rebuilds the Raft node from the store once `store.recover()` found the disk usable. */
  async #restart(): Promise<void> {
    await this.#options.store.recover();
    if (this.#closed) return;
    this.#node = this.#createNode();
    this.#wake();
    // A sole voter (a standalone topic) has nobody to elect it: it takes
    // its leadership back at once instead of after an election timeout.
    if (this.soleVoter) this.#node.campaign();
    this.#schedule();
  }

  #rejectAll(error: Error): void {
    this.#rejectWaiters(error);
    this.#failReads(error);
  }

  #rejectWaiters(error: Error): void {
    for (const waiter of this.#waiters.values()) waiter.reject(error);
    this.#waiters.clear();
  }

  /** Stops the replica: pending proposals and reads fail as unavailable. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#endLazyWait();
    this.#recovery.close();
    this.#rejectAll(new ProtocolError("unavailable", "This replica is closing"));
    for (const waiter of this.#appliedWaiters) waiter.resolve();
    this.#appliedWaiters = [];
    while (this.#driving) {
      await new Promise<void>((resolve) => this.#scheduler.schedule(5, resolve));
    }
    await this.#options.store.close();
  }
}

/** How a storage failure names a group's replica: "topic 'events'" or "the metadata". */
function replicaSubject(groupId: string): string {
  if (groupId.startsWith("t:")) return `topic '${groupId.slice(2)}'`;
  return groupId === "meta" ? "the metadata" : `replica ${groupId}`;
}
