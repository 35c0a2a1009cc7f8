/**
 * `SimReplica`: the simulator's shell around one `RaftNode`. It follows the
 * documented Ready order (install snapshot, persist, sync, send, apply,
 * advance) against a `MemoryLogStore` whose sync takes simulated time, keeps
 * a model of the topic state machine (`TopicModel`: offsets, idempotent
 * producers, durable subscriber positions) next to the real one
 * (`TopicState`, see state_mirror.ts), and reports to the invariant checker
 * every entry it writes, every move of its commit index (after every event
 * that reaches it) and every entry it applies.
 *
 * Snapshots run the peers' code: a compaction keeps whole segments from a
 * random first needed entry (retained entries below the snapshot), a `snap`
 * message travels without its image, and the receiver pulls image and
 * retained entries in chunks from its leader's store (`SnapshotPull`,
 * `serveSnapshotChunk`), installs them as one unit, restores both state
 * machines from the image and rebuilds its Raft node from the store.
 *
 * @module
 */

import { serveSnapshotChunk, SnapshotPull } from "../cluster/snapshot_transfer.ts";
import { decodeConfChange } from "../raft/conf_change.ts";
import type { RaftOptions } from "../raft/options.ts";
import { type BackgroundWrite, RaftNode } from "../raft/raft_node.ts";
import { type ConfChange, lazyWaitEffect, type Message, type Ready } from "../raft/types.ts";
import { MemoryLogStore } from "../storage/memory_log_store.ts";
import { type Entry, EntryType, type LogStore, type Snapshot } from "../storage/types.ts";
import type { InvariantChecker } from "./checker.ts";
import type { Prng } from "./prng.ts";
import {
  agreeingOutcome,
  decodeImage,
  describeModel,
  encodeImage,
  StateMirror,
} from "./state_mirror.ts";
import { decodeTopicCommand, TopicModel, type TopicOutcome } from "./topic_model.ts";

/** Entries per modelled segment: compaction drops whole segments only. */
export const segmentEntries = 4;
/** Most entries a compaction keeps below its snapshot (as a topic's retained messages). */
export const retainedEntriesMax = 24;
/** Bytes per chunk of a simulated snapshot transfer (small, so transfers take several). */
export const transferChunkBytes = 256;

/** What a replica needs from the simulation around it. */
export interface ReplicaHost {
  readonly checker: InvariantChecker;
  now(): number;
  send(message: Message): void;
  /** Runs `action` on this replica after `delayMs` unless it crashed meanwhile. */
  schedule(replica: SimReplica, delayMs: number, action: () => void): void;
  syncDelayMs(): number;
  trace(kind: string, node: number, detail: string | number, extra: string | number): void;
  onConfApplied(change: ConfChange): void;
  /** This replica just became leader (its first Ready as leader is being handled). */
  onElected(replica: SimReplica): void;
  /** The store of live replica `id`, which serves its snapshot transfers; undefined when down. */
  snapshotSource(id: number): LogStore | undefined;
  /** A snapshot transfer was installed here, with `retainedEntries` entries. */
  onSnapshotInstalled(retainedEntries: number): void;
  /** Proposal `id`, made on this replica, was applied here: its client gets `outcome`. */
  onAcknowledged(id: string, outcome: TopicOutcome): void;
}

/** Bugs of the replica shell and its state machine that broken variants plant (all off by default). */
export interface ReplicaBugs {
  /** Send messages and acknowledge entries before the Ready's fsync (votes still wait for it). */
  ackBeforeSync?: boolean;
  /** Apply entries as soon as they are written, before they are committed. */
  applyBeforeCommit?: boolean;
  /** Restore the state machine from its own snapshot at a restart without the producer table. */
  forgetProducersOnRestart?: boolean;
  /** Store a subscriber's acknowledgement as the offset after the acknowledged one. */
  skipSubscriberOffset?: boolean;
  /** Restore the real topic state from a snapshot without its subscriber positions. */
  restoreWithoutSubscribers?: boolean;
}

interface PendingRead {
  requiredIndex: number;
  index: number;
}

const decoder = new TextDecoder();

/**
 * One simulated replica: node + disk + state machine.
 *
 * @example
 * ```ts
 * const replica = new SimReplica(host, 1, options, prng);
 * replica.start([1, 2, 3]);
 * ```
 */
export class SimReplica {
  readonly id: number;
  store = new MemoryLogStore({ segmentEntries });
  /**
   * Set while the replica rebuilds a log it lost (`wipe()`): persisted like
   * the marker file a peer keeps next to a rebuilt replica, so it survives
   * crashes until a Ready reports `recovered`.
   */
  recoveringTerm: number | undefined;
  /** A rebuilt replica never bootstraps again; it learns the conf from its leader. */
  #rebuilt = false;
  /**
   * The incarnation (epoch) last heard from each sender, as a peer's
   * RaftHost remembers them; lost at a crash with the rest of the process.
   */
  #incarnations = new Map<number, number>();
  node: RaftNode | undefined;
  /** The state machine: what this replica applied. */
  topic: TopicModel;
  /** The real topic state machine, applying the same entries. */
  mirror = new StateMirror();
  appliedIndex = 0;
  /** Client proposals made on this replica, by index, awaiting their apply. */
  readonly pending = new Map<number, string>();
  readonly #readsWaiting = new Map<string, number>();
  #readsReady: PendingRead[] = [];
  paused = false;
  /** Actions that arrived while paused, run in order on resume. */
  deferred: (() => void)[] = [];
  removed = false;
  /** Incremented on every crash so that events scheduled before it are void. */
  epoch = 0;
  #inflight: Ready | undefined;
  /** Commit index up to which the checker has seen this node's commits. */
  #checkedCommit = 0;
  readonly #host: ReplicaHost;
  readonly #options: Omit<RaftOptions, "id" | "store" | "rng">;
  readonly #prng: Prng;
  readonly #bugs: ReplicaBugs;
  readonly #founding: number[];
  /** A leader writes its own entries in the background, as `ReplicaGroup` does. */
  readonly #leaderBackgroundSync: boolean;
  /**
   * A follower handles a `lazySync` append this long late, with whatever
   * arrives meanwhile (`ReplicaGroup`'s `lazySyncMs`); 0: lazy followers off.
   */
  readonly #lazySyncMs: number;
  /**
   * The open lazy wait, undefined while none is (Readys wait for it, as in
   * `ReplicaGroup`); its timer ends it only while it is still this one.
   */
  #lazyWait: object | undefined;

  constructor(
    host: ReplicaHost,
    id: number,
    options: Omit<RaftOptions, "id" | "store" | "rng"> & {
      founding: number[];
      bugs?: ReplicaBugs;
      leaderBackgroundSync?: boolean;
      lazySyncMs?: number;
    },
    prng: Prng,
  ) {
    this.#host = host;
    this.id = id;
    const { founding, bugs, leaderBackgroundSync, lazySyncMs, ...raftOptions } = options;
    this.#lazySyncMs = lazySyncMs ?? 0;
    this.#options = { ...raftOptions, lazyFollowers: this.#lazySyncMs > 0 };
    this.#founding = founding;
    this.#leaderBackgroundSync = leaderBackgroundSync === true;
    this.#bugs = bugs ?? {};
    this.#prng = prng;
    this.topic = this.#newTopic();
  }

  get live(): boolean {
    return this.node !== undefined;
  }

  /** Whether a crash now would lose writes (a sync in flight, or entries written but not synced). */
  get unsynced(): boolean {
    return this.#inflight !== undefined || this.store.syncedIndex() < this.store.lastIndex();
  }

  /** Starts (or restarts) the node from whatever the disk holds. */
  start(): void {
    this.#boot();
    this.#restoreState(this.store.snapshot(), this.#bugs.forgetProducersOnRestart === true);
    this.pump();
  }

  /** A Raft node built from the store, as after a restart. */
  #boot(): void {
    this.node = new RaftNode({
      ...this.#options,
      id: this.id,
      store: this.store,
      rng: this.#prng.fork(),
      voters: this.#rebuilt ? [] : this.#founding,
      recoveringTerm: this.recoveringTerm,
    });
    const { term, vote } = this.store.hardState();
    this.#host.checker.observeRestart(this.id, term, vote);
    // The durable commit index is checked again: what survived must agree.
    this.#checkedCommit = 0;
  }

  /** Power loss: the node and every unsynced write are gone. */
  crash(): void {
    this.node = undefined;
    this.store.crash();
    this.epoch++;
    this.#incarnations.clear();
    this.#inflight = undefined;
    this.#lazyWait = undefined;
    this.pending.clear();
    this.#readsWaiting.clear();
    this.#readsReady = [];
    this.topic = this.#newTopic();
    this.mirror = new StateMirror();
    this.appliedIndex = 0;
  }

  /**
   * The replica's log is found damaged and rebuilt empty, as a peer
   * quarantines it: the node is down, only the hard state's term and vote
   * survive (a separate file), and it restarts later recovering after that
   * term. The state machine forgets everything it applied.
   */
  wipe(): void {
    if (this.live) this.crash();
    const { term, vote } = this.store.hardState();
    this.store = new MemoryLogStore({ segmentEntries });
    this.store.setHardState({ term, vote, commit: 0 });
    this.store.syncNow();
    this.recoveringTerm = term;
    this.#rebuilt = true;
  }

  /**
   * Notes the incarnation of a message's sender, as a peer's RaftHost does
   * with every frame: a sender that restarted since its last message has its
   * progress forgotten by this replica if it leads (`onPeerRestart`).
   */
  noteIncarnation(from: number, epoch: number): void {
    const known = this.#incarnations.get(from);
    if (known !== undefined && epoch <= known) return;
    this.#incarnations.set(from, epoch);
    if (known !== undefined) this.node?.resetProgress(from);
  }

  /** Proposes entry data made by `encodeTopicCommand` for proposal `id`; returns its index. */
  propose(id: string, data: Uint8Array): number {
    const index = this.node!.propose(data);
    this.pending.set(index, id);
    return index;
  }

  readIndex(context: string, requiredIndex: number): void {
    this.node!.readIndex(new TextEncoder().encode(context));
    this.#readsWaiting.set(context, requiredIndex);
  }

  /** Whether at least `entries` entries were applied since the last snapshot. */
  compactionDue(entries: number): boolean {
    return this.appliedIndex - (this.store.snapshot()?.index ?? 0) >= entries;
  }

  /**
   * Compacts the log at the applied index, keeping both state machine
   * images in the snapshot and whole segments from a random first needed
   * entry on (up to `retainedEntriesMax` below the snapshot).
   */
  compact(): void {
    const node = this.node!;
    // Not while a Ready waits for its sync: the node may hold a snapshot
    // received since, not yet installed, which replaced the applied index.
    if (this.#inflight !== undefined) return;
    if (
      this.appliedIndex > this.store.syncedIndex() || this.appliedIndex < this.store.firstIndex()
    ) return;
    const image = encodeImage(this.topic.serialize(), this.mirror.state.snapshot());
    const snapshot = node.createSnapshot(image);
    if (snapshot.index !== this.appliedIndex) return;
    const keepFrom = snapshot.index + 1 - this.#prng.range(0, retainedEntriesMax);
    void this.store.compact(snapshot, keepFrom);
    this.#host.trace("compact", this.id, snapshot.index, "");
  }

  /**
   * Steps a message into the node, except a `snap` that would replace this
   * replica's log: its image and the leader's retained entries are pulled
   * first and installed as one unit (see the module doc).
   */
  receive(message: Message): void {
    const node = this.node!;
    const snapshot = message.snapshot;
    if (this.#lazySyncMs > 0) this.#noteLaziness(message);
    if (
      message.type !== "snap" || snapshot === undefined || message.term < node.term ||
      snapshot.index <= node.commit || node.termAt(snapshot.index) === snapshot.term
    ) {
      node.step(message);
      return;
    }
    this.#transfer(message, snapshot);
  }

  /** Opens or ends a wait of `lazySyncMs` as `message` says (`lazyWaitEffect`), as `ReplicaGroup` does. */
  #noteLaziness(message: Message): void {
    const effect = lazyWaitEffect(message);
    if (effect === "open" && this.#lazyWait === undefined) {
      const wait = {};
      this.#lazyWait = wait;
      this.#host.schedule(this, this.#lazySyncMs, () => {
        if (this.#lazyWait !== wait) return;
        this.#lazyWait = undefined;
        this.pump();
      });
    } else if (effect === "end") {
      this.#lazyWait = undefined;
    }
  }

  #transfer(message: Message, target: Snapshot): void {
    // Not while a Ready waits for its sync: the leader sends its snapshot again.
    if (this.#inflight !== undefined) return;
    const source = this.#host.snapshotSource(message.from);
    if (source === undefined) return;
    const pull = new SnapshotPull("t:sim", target);
    try {
      for (let request = pull.next(); request !== undefined; request = pull.next()) {
        pull.accept(serveSnapshotChunk(source, request, transferChunkBytes));
      }
    } catch {
      // The leader moved on (a newer snapshot, or compacted further): start over later.
      this.#host.trace("snapshot-restart", this.id, target.index, `from n${message.from}`);
      return;
    }
    const { snapshot, retained } = pull.result();
    if (retained.length > 0) {
      this.#host.checker.observeEntries(this.id, retained, undefined);
    }
    void this.store.applySnapshot(snapshot, retained);
    this.#boot();
    this.#restoreState(snapshot, false);
    this.#host.trace("install-snapshot", this.id, snapshot.index, `${retained.length} retained`);
    this.#host.onSnapshotInstalled(retained.length);
    this.node!.step(message);
  }

  /**
   * Handles Readys until none is left or one waits for its sync, then shows
   * the checker how far the commit index moved. Every event that reaches
   * this replica's node ends here, so the checks run after every event.
   */
  pump(): void {
    this.#handleReadys();
    this.#observeCommit();
  }

  #handleReadys(): void {
    while (
      this.node && !this.paused && this.#inflight === undefined &&
      !(this.#lazyWait !== undefined && this.node.role === "follower") && this.node.hasReady()
    ) {
      const rd = this.node.ready();
      const early = this.#bugs.ackBeforeSync === true && !this.#changesVote(rd);
      this.#persist(rd);
      if (rd.syncInBackground && this.#leaderBackgroundSync && !early) {
        // The leader goes on; its entries count for it once the sync is done.
        const node = this.node;
        const write = this.#finish(rd, false)!;
        this.#host.schedule(this, this.#host.syncDelayMs(), () => {
          this.store.syncNow();
          if (this.node !== node) return;
          node.persisted(write);
          this.pump();
        });
        continue;
      }
      if (rd.mustSync && !early) {
        this.#inflight = rd;
        this.#host.schedule(this, this.#host.syncDelayMs(), () => {
          this.store.syncNow();
          this.#inflight = undefined;
          this.#finish(rd);
          this.pump();
        });
        return;
      }
      if (rd.mustSync) {
        // Broken variant: acknowledge entries now, make them durable later.
        this.#host.schedule(this, this.#host.syncDelayMs(), () => this.store.syncNow());
      }
      this.#finish(rd);
    }
  }

  /** Whether `rd` changes the term or the vote (the broken variant ack-before-fsync still syncs those). */
  #changesVote(rd: Ready): boolean {
    if (rd.hardState === undefined) return false;
    const { term, vote } = this.store.hardState();
    return rd.hardState.term !== term || rd.hardState.vote !== vote;
  }

  /** Reports every index committed since the last report (incremental: O(new commits)). */
  #observeCommit(): void {
    const node = this.node;
    if (!node) return;
    const commit = node.commit;
    if (commit <= this.#checkedCommit) return;
    const term = node.term;
    const low = Math.max(this.#checkedCommit + 1, node.firstIndex() - 1, 1);
    for (let index = low; index <= commit; index++) {
      const entryTerm = node.termAt(index);
      if (entryTerm !== undefined) {
        this.#host.checker.observeCommitted(this.id, index, entryTerm, term);
      }
    }
    this.#checkedCommit = commit;
  }

  #persist(rd: Ready): void {
    const node = this.node!;
    if (rd.softState?.role === "leader") {
      this.#host.checker.observeLeader(node.term, this.id, node);
      this.#host.trace("leader", this.id, `term ${node.term}`, "");
      this.#host.onElected(this);
    }
    if (rd.snapshot) {
      void this.store.applySnapshot(rd.snapshot);
      this.#restoreState(rd.snapshot, false);
      this.#host.trace("install-snapshot", this.id, rd.snapshot.index, "");
    }
    if (rd.entries.length > 0) {
      const previousTerm = node.termAt(rd.entries[0].index - 1);
      this.#host.checker.observeEntries(this.id, rd.entries, previousTerm);
      this.store.append(rd.entries);
    }
    if (rd.hardState) this.store.setHardState(rd.hardState);
  }

  #finish(rd: Ready, entriesDurable = true): BackgroundWrite | undefined {
    if (rd.recovered) {
      // The Ready's entries and hard state are durable: clear the flag.
      this.recoveringTerm = undefined;
      this.#host.trace("recovered", this.id, `term ${this.node!.term}`, "");
    }
    for (const message of rd.messages) this.#host.send(withoutImage(message));
    if (this.#bugs.applyBeforeCommit === true) {
      for (const entry of rd.entries) if (entry.index === this.appliedIndex + 1) this.#apply(entry);
    }
    // The checker learns the commit index before any entry under it is applied.
    this.#observeCommit();
    for (const entry of rd.committedEntries) this.#apply(entry);
    for (const read of rd.readStates) {
      const key = decoder.decode(read.context);
      const requiredIndex = this.#readsWaiting.get(key);
      if (requiredIndex === undefined) continue;
      this.#readsWaiting.delete(key);
      this.#readsReady.push({ requiredIndex, index: read.index });
    }
    for (const context of rd.droppedReads) this.#readsWaiting.delete(decoder.decode(context));
    this.#serveReads();
    return this.node!.advance({ entriesDurable });
  }

  #apply(entry: Entry): void {
    // The broken variant apply-before-commit applied it already.
    if (entry.index <= this.appliedIndex && this.#bugs.applyBeforeCommit === true) return;
    if (entry.index !== this.appliedIndex + 1) {
      throw new Error(`Cannot apply entry ${entry.index} after entry ${this.appliedIndex}`);
    }
    const checker = this.#host.checker;
    this.appliedIndex = entry.index;
    if (entry.type === EntryType.ConfChange) {
      checker.observeApply(this.id, entry.index, entry.term, "conf", { kind: "none" });
      this.mirror.skip(entry.index);
      this.#host.onConfApplied(decodeConfChange(entry.data));
      return;
    }
    const command = decodeTopicCommand(entry.data);
    const outcome: TopicOutcome = command
      ? this.topic.apply(entry.index, command)
      : { kind: "none" };
    checker.observeApply(this.id, entry.index, entry.term, command?.id ?? "", outcome);
    // The real state machine plants the same subscriber bug as the model, if any.
    const skew = command?.kind === "ack" && this.#bugs.skipSubscriberOffset === true ? 1 : 0;
    const mirrored = command?.kind === "ack"
      ? { ...command, offset: command.offset + skew }
      : command;
    const actual = this.mirror.apply(entry.index, mirrored);
    checker.observeStateAgreement(this.id, entry.index, agreeingOutcome(outcome, actual), actual);
    if (command) this.#acknowledge(entry.index, command.id, outcome);
  }

  /** A client's proposal is acknowledged when its entry is applied here; another entry there means dropped. */
  #acknowledge(index: number, id: string, outcome: TopicOutcome): void {
    const pending = this.pending.get(index);
    if (pending === undefined) return;
    this.pending.delete(index);
    if (pending !== id) return;
    this.#host.checker.observeAck(id, index);
    this.#host.trace("ack", this.id, id, index);
    this.#host.onAcknowledged(id, outcome);
  }

  #serveReads(): void {
    const waiting: PendingRead[] = [];
    for (const read of this.#readsReady) {
      if (read.index <= this.appliedIndex) {
        this.#host.checker.observeRead(this.id, read.requiredIndex, this.appliedIndex);
        this.#host.trace(
          "read",
          this.id,
          `at ${this.appliedIndex}`,
          `required ${read.requiredIndex}`,
        );
      } else {
        waiting.push(read);
      }
    }
    this.#readsReady = waiting;
  }

  #restoreState(snapshot: Snapshot | undefined, withoutProducers: boolean): void {
    this.topic = this.#newTopic();
    this.mirror = new StateMirror();
    this.appliedIndex = snapshot?.index ?? 0;
    if (!snapshot || snapshot.data.byteLength === 0) return;
    const image = decodeImage(snapshot.data);
    this.topic.restore(image.model, !withoutProducers);
    this.mirror.state.restore(image.state, snapshot.index);
    if (this.#bugs.restoreWithoutSubscribers === true) this.mirror.state.subscribers.clear();
    for (const [index, id] of this.topic.entryIds) {
      this.#host.checker.observeRestored(this.id, index, id);
    }
    this.#host.checker.observeStateAgreement(
      this.id,
      snapshot.index,
      describeModel(this.topic),
      this.mirror.describe(this.topic),
    );
  }

  #newTopic(): TopicModel {
    return new TopicModel({ skipSubscriberOffset: this.#bugs.skipSubscriberOffset });
  }
}

/** A `snap` message leaves without its image: the receiver pulls it (see `SimReplica.receive`). */
function withoutImage(message: Message): Message {
  if (message.snapshot === undefined) return message;
  return { ...message, snapshot: { ...message.snapshot, data: new Uint8Array() } };
}
