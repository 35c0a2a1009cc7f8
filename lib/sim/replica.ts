/**
 * `SimReplica`: the simulator's shell around one `RaftNode`. It follows the
 * documented Ready order (install snapshot, persist, sync, send, apply,
 * advance) against a `MemoryLogStore` whose sync takes simulated time, keeps
 * a toy state machine (payload key per index), and reports what it applies
 * to the invariant checker.
 *
 * @module
 */

import { decodeConfChange } from "../raft/conf_change.ts";
import type { RaftOptions } from "../raft/options.ts";
import { RaftNode } from "../raft/raft_node.ts";
import type { ConfChange, Message, Ready } from "../raft/types.ts";
import { MemoryLogStore } from "../storage/memory_log_store.ts";
import { type Entry, EntryType, type Snapshot } from "../storage/types.ts";
import type { InvariantChecker } from "./checker.ts";
import type { Prng } from "./prng.ts";

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
  store = new MemoryLogStore();
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
  /** Applied payload key per index (the toy state machine). */
  state = new Map<number, string>();
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
  readonly #host: ReplicaHost;
  readonly #options: Omit<RaftOptions, "id" | "store" | "rng">;
  readonly #prng: Prng;
  readonly #ackBeforeSync: boolean;
  readonly #founding: number[];

  constructor(
    host: ReplicaHost,
    id: number,
    options: Omit<RaftOptions, "id" | "store" | "rng"> & {
      founding: number[];
      ackBeforeSync: boolean;
    },
    prng: Prng,
  ) {
    this.#host = host;
    this.id = id;
    const { founding, ackBeforeSync, ...raftOptions } = options;
    this.#options = raftOptions;
    this.#founding = founding;
    this.#ackBeforeSync = ackBeforeSync;
    this.#prng = prng;
  }

  get live(): boolean {
    return this.node !== undefined;
  }

  /** Starts (or restarts) the node from whatever the disk holds. */
  start(): void {
    this.node = new RaftNode({
      ...this.#options,
      id: this.id,
      store: this.store,
      rng: this.#prng.fork(),
      voters: this.#rebuilt ? [] : this.#founding,
      recoveringTerm: this.recoveringTerm,
    });
    this.#restoreState(this.store.snapshot());
    this.pump();
  }

  /** Power loss: the node and every unsynced write are gone. */
  crash(): void {
    this.node = undefined;
    this.store.crash();
    this.epoch++;
    this.#incarnations.clear();
    this.#inflight = undefined;
    this.pending.clear();
    this.#readsWaiting.clear();
    this.#readsReady = [];
    this.state = new Map();
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
    this.store = new MemoryLogStore();
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

  propose(key: string): number {
    const index = this.node!.propose(new TextEncoder().encode(key));
    this.pending.set(index, key);
    return index;
  }

  readIndex(context: string, requiredIndex: number): void {
    this.node!.readIndex(new TextEncoder().encode(context));
    this.#readsWaiting.set(context, requiredIndex);
  }

  /** Compacts the log at the applied index, keeping the state machine image in the snapshot. */
  compact(): void {
    const node = this.node!;
    if (
      this.appliedIndex > this.store.syncedIndex() || this.appliedIndex < this.store.firstIndex()
    ) return;
    const data = new TextEncoder().encode(JSON.stringify([...this.state]));
    const snapshot = node.createSnapshot(data);
    if (snapshot.index !== this.appliedIndex) return;
    void this.store.compact(snapshot);
    this.#host.trace("compact", this.id, snapshot.index, "");
  }

  /** Handles Readys until none is left or one waits for its sync. */
  pump(): void {
    while (this.node && !this.paused && this.#inflight === undefined && this.node.hasReady()) {
      const rd = this.node.ready();
      this.#persist(rd);
      if (rd.mustSync && !this.#ackBeforeSync) {
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
        // Broken variant: acknowledge now, make durable later.
        this.#host.schedule(this, this.#host.syncDelayMs(), () => this.store.syncNow());
      }
      this.#finish(rd);
    }
  }

  #persist(rd: Ready): void {
    if (rd.softState?.role === "leader") {
      this.#host.checker.observeLeader(this.node!.term, this.id);
      this.#host.trace("leader", this.id, `term ${this.node!.term}`, "");
    }
    if (rd.snapshot) {
      void this.store.applySnapshot(rd.snapshot);
      this.#restoreState(rd.snapshot);
      this.#host.trace("install-snapshot", this.id, rd.snapshot.index, "");
    }
    if (rd.entries.length > 0) this.store.append(rd.entries);
    if (rd.hardState) this.store.setHardState(rd.hardState);
  }

  #finish(rd: Ready): void {
    if (rd.recovered) {
      // The Ready's entries and hard state are durable: clear the flag.
      this.recoveringTerm = undefined;
      this.#host.trace("recovered", this.id, `term ${this.node!.term}`, "");
    }
    for (const message of rd.messages) this.#host.send(message);
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
    this.node!.advance();
  }

  #apply(entry: Entry): void {
    const checker = this.#host.checker;
    if (entry.type === EntryType.ConfChange) {
      const change = decodeConfChange(entry.data);
      checker.observeApply(
        this.id,
        entry.index,
        `${entry.term}/conf/${JSON.stringify(change)}`,
        "",
      );
      this.#host.onConfApplied(change);
    } else {
      const key = entry.data.byteLength === 0 ? "" : decoder.decode(entry.data);
      checker.observeApply(this.id, entry.index, `${entry.term}/${key}`, key);
      if (key !== "") this.state.set(entry.index, key);
    }
    this.appliedIndex = entry.index;
    this.#acknowledge(entry);
  }

  /** A client's proposal is acknowledged when its entry is applied here; another entry there means dropped. */
  #acknowledge(entry: Entry): void {
    const key = this.pending.get(entry.index);
    if (key === undefined) return;
    this.pending.delete(entry.index);
    if (this.state.get(entry.index) === key) {
      this.#host.checker.observeAck(key, entry.index);
      this.#host.trace("ack", this.id, key, entry.index);
    }
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

  #restoreState(snapshot: Snapshot | undefined): void {
    this.state = new Map();
    this.appliedIndex = snapshot?.index ?? 0;
    if (!snapshot || snapshot.data.byteLength === 0) return;
    const pairs = JSON.parse(decoder.decode(snapshot.data)) as [number, string][];
    for (const [index, key] of pairs) {
      this.state.set(index, key);
      this.#host.checker.observeRestored(this.id, index, key);
    }
  }
}
