/**
 * Simulated disks of the whole-cluster simulator: one `SimDisk` per peer,
 * outliving the peer's processes. It is the peer's `StoreFactory` (replica
 * logs, the data directory's identity and clean-shutdown record), so the
 * production `ClusterBroker` opens its logs here instead of on the host's
 * file system.
 *
 * Each log is a `MemoryLogStore` (owned by lib/storage) behind a
 * `SimLogStore` handle that adds what a real disk does to a process:
 * - fsync takes time (a slow disk takes much longer), and may fail
 *   (`LogFailedError`, which the replica answers by restarting itself from
 *   its durable state);
 * - a crash or power loss keeps what the last completed fsync made durable,
 *   plus, at random, part of the fsync in flight: its hard state (written
 *   first, as `SegmentLogStore` does) and a prefix of its entries, the last
 *   one possibly torn (a torn record is cut off at open: it is lost);
 * - a crashed process's handles are fenced: its writes throw and its fsyncs
 *   never finish, so a dead incarnation cannot touch its successor's files.
 *
 * @module
 */

import type { OpenedLog, OpenLogOptions, StoreFactory } from "../../cluster/runtime.ts";
import type { ManualScheduler } from "../../cluster/manual_scheduler.ts";
import { NodeIdentityError } from "../../cluster/node_identity.ts";
import { MemoryLogStore } from "../../storage/memory_log_store.ts";
import { LogFailedError } from "../../storage/segment_log_store.ts";
import type { Entry, HardState, LogStore, SegmentInfo, Snapshot } from "../../storage/types.ts";
import type { Prng } from "../prng.ts";

/** How one peer's disk behaves. */
export interface DiskProfile {
  /** Fastest fsync, in virtual ms. */
  syncMsMin: number;
  /** Slowest fsync of a healthy disk, in virtual ms. */
  syncMsMax: number;
  /** Chance that one fsync fails with an I/O error (0 for a healthy disk). */
  syncFailureChance: number;
}

/** A healthy local SSD. */
export const healthyDisk: DiskProfile = { syncMsMin: 1, syncMsMax: 4, syncFailureChance: 0 };

/** What a crash keeps of the fsync in flight (see the module comment). */
export type CrashKind = "kill" | "power_loss";

/** One buffered write, replayed in part when a crash keeps part of the fsync in flight. */
type Write = { kind: "append"; entries: Entry[] } | { kind: "hard_state"; state: HardState };

/** A replica log on the simulated disk: survives crashes of its peer. */
interface DiskLog {
  readonly directory: string;
  readonly medium: MemoryLogStore;
  /** Set while the replica rebuilds a lost log (see `replica_repair.ts`). */
  recoveringTerm: number | undefined;
}

/**
 * The simulated disk of one peer.
 *
 * @example
 * ```ts
 * const disk = new SimDisk(1, { scheduler, rng: new Prng(7), profile: healthyDisk });
 * const stores = disk.boot(); // the StoreFactory of the peer's next process
 * disk.crash("power_loss"); // its writes since the last fsync are (mostly) gone
 * ```
 */
export class SimDisk {
  readonly nodeId: number;
  readonly #scheduler: ManualScheduler;
  readonly #rng: Prng;
  profile: DiskProfile;
  /** Extra latency of every fsync while the disk is slow (0 when it is not). */
  slowMs = 0;
  /**
   * A broken disk (a variant the checker must catch): `all` reports every
   * fsync done before it is, `hard_state` only those of hard-state writes alone.
   */
  lies: "all" | "hard_state" | undefined;
  /** Told each time a lying disk reports an fsync it has not done (a nemesis may crash then). */
  onLie: (() => void) | undefined;
  #identity: { nodeId: number; directoryId: string } | undefined;
  readonly #logs = new Map<string, DiskLog>();
  #closedLogs: Map<string, number> | undefined;
  /** Handles of the running process; fenced at a crash. */
  #handles: SimLogStore[] = [];
  /** Fsyncs failed so far (for the run's report). */
  syncFailures = 0;
  /** Damaged logs found at open (quarantined and rebuilt). */
  quarantines = 0;
  /** Times the disk was replaced: each is another voter to Raft under the same node id. */
  wipes = 0;

  constructor(
    nodeId: number,
    options: { scheduler: ManualScheduler; rng: Prng; profile: DiskProfile },
  ) {
    this.nodeId = nodeId;
    this.#scheduler = options.scheduler;
    this.#rng = options.rng;
    this.profile = options.profile;
  }

  /** The replica logs present, by directory (for the checker: read only). */
  get logs(): ReadonlyMap<string, { medium: LogStore; recoveringTerm: number | undefined }> {
    return this.#logs;
  }

  /** The store factory of a new process of this peer. */
  boot(): StoreFactory {
    this.#handles = [];
    return {
      prepare: (nodeId) => Promise.resolve(this.#prepare(nodeId)),
      metaDirectory: "meta",
      topicDirectory: (name, epoch) => `topics/${name}.${epoch}`,
      open: (directory, options) => Promise.resolve(this.#open(directory, options)),
      remove: (directory) => {
        this.#logs.delete(directory);
        return Promise.resolve();
      },
      retire: (directory, term) => {
        // The tombstone survives the process (its rename is durable at once, as in production).
        const previous = this.#logs.get(directory)?.recoveringTerm ?? 0;
        const recoveringTerm = Math.max(term, previous);
        this.#logs.set(directory, { directory, medium: this.#newMedium(), recoveringTerm });
        return Promise.resolve();
      },
      clearRecovering: (directory) => {
        const log = this.#logs.get(directory);
        if (log !== undefined) log.recoveringTerm = undefined;
        return Promise.resolve();
      },
      takeClosedLogs: () => {
        const logs = this.#closedLogs ?? new Map<string, number>();
        this.#closedLogs = undefined;
        return Promise.resolve(logs);
      },
      writeClosedLogs: (logs) => {
        this.#closedLogs = new Map(logs);
        return Promise.resolve();
      },
    };
  }

  /**
   * The process died: its handles are fenced, and each log keeps its
   * durable state plus, at random, part of the fsync in flight.
   */
  crash(kind: CrashKind): void {
    for (const handle of this.#handles) handle.fence();
    const survivors = this.#handles.map((handle) => ({
      handle,
      kept: handle.keptOfFlight(this.#rng, kind),
    }));
    this.#handles = [];
    for (const log of this.#logs.values()) {
      log.medium.crash();
      // A new process opens the files afresh: a failed write of the dead one refuses nothing.
      void log.medium.recover();
    }
    for (const { handle, kept } of survivors) {
      if (this.#logs.get(handle.directory)?.medium !== handle.medium) continue;
      replay(handle.medium, kept);
    }
  }

  /** The whole data directory is lost (a replaced machine): the peer starts empty. */
  wipe(): void {
    this.wipes++;
    for (const handle of this.#handles) handle.fence();
    this.#handles = [];
    this.#logs.clear();
    this.#identity = undefined;
    this.#closedLogs = undefined;
  }

  /** Latency of one fsync now. */
  syncDelayMs(): number {
    return this.#rng.range(this.profile.syncMsMin, this.profile.syncMsMax) + this.slowMs;
  }

  /** Whether this fsync fails. */
  syncFails(): boolean {
    const fails = this.profile.syncFailureChance > 0 &&
      this.#rng.chance(this.profile.syncFailureChance);
    if (fails) this.syncFailures++;
    return fails;
  }

  get scheduler(): ManualScheduler {
    return this.#scheduler;
  }

  #prepare(nodeId: number): { directoryId: string } {
    if (this.#identity === undefined) {
      const directoryId = `d${this.nodeId}-${this.#rng.nextUint32().toString(16)}`;
      this.#identity = { nodeId, directoryId };
    }
    if (this.#identity.nodeId !== nodeId) {
      throw new NodeIdentityError(
        `Data directory of peer ${this.nodeId} belongs to node ${this.#identity.nodeId}`,
      );
    }
    return { directoryId: this.#identity.directoryId };
  }

  #open(directory: string, options: OpenLogOptions): OpenedLog {
    let log = this.#logs.get(directory);
    let quarantined: OpenedLog["quarantined"];
    if (log === undefined) {
      log = { directory, medium: this.#newMedium(), recoveringTerm: undefined };
      this.#logs.set(directory, log);
    } else if (options.closedIndex !== undefined && log.medium.lastIndex() < options.closedIndex) {
      // The log lost entries it had made durable: quarantine and rebuild, as replica_repair does.
      const lostTerm = Math.max(log.medium.hardState().term, log.recoveringTerm ?? 0);
      this.quarantines++;
      quarantined = {
        path: `quarantine/${options.label}`,
        reason: `the log ends at ${log.medium.lastIndex()}, before ${options.closedIndex}`,
      };
      log = { directory, medium: this.#newMedium(), recoveringTerm: lostTerm };
      this.#logs.set(directory, log);
    }
    const store = new SimLogStore(this, log.directory, log.medium);
    this.#handles.push(store);
    return { store, recoveringTerm: log.recoveringTerm, quarantined };
  }

  #newMedium(): MemoryLogStore {
    return new MemoryLogStore({ now: () => this.#scheduler.now() });
  }
}

/**
 * Replays the kept part of an fsync in flight onto a crashed medium and
 * makes it durable: the hard state first, then the entries (a write that
 * no longer fits the log ends the replay, as a torn record ends a log).
 */
function replay(medium: MemoryLogStore, kept: Write[]): void {
  if (kept.length === 0) return;
  const hard = kept.findLast((write) => write.kind === "hard_state");
  try {
    if (hard !== undefined) {
      const state = hard.state;
      medium.setHardState({ ...state, commit: Math.min(state.commit, medium.lastIndex()) });
    }
    for (const write of kept) {
      if (write.kind === "append") medium.append(write.entries);
    }
  } catch {
    // The rest did not reach the disk.
  }
  const state = medium.hardState();
  medium.setHardState({ ...state, commit: Math.min(state.commit, medium.lastIndex()) });
  medium.syncNow();
}

/**
 * A process's handle on one simulated log (see the module comment).
 *
 * @example
 * ```ts
 * const { store } = await disk.boot().open("topics/events.1", { label: "events.1" });
 * store.append(entries);
 * await store.sync(); // resolves after the disk's fsync latency
 * ```
 */
export class SimLogStore implements LogStore {
  readonly directory: string;
  readonly medium: MemoryLogStore;
  readonly #disk: SimDisk;
  #fenced = false;
  /** Writes since the last completed fsync, in order. */
  #writes: Write[] = [];
  /** How many of `#writes` the fsync in flight covers. */
  #flight = 0;
  /** The index a lying disk last reported synced (0 for an honest one). */
  #claimed = 0;

  constructor(disk: SimDisk, directory: string, medium: MemoryLogStore) {
    this.#disk = disk;
    this.directory = directory;
    this.medium = medium;
  }

  /** The process died: writes throw and fsyncs never finish from now on. */
  fence(): void {
    this.#fenced = true;
  }

  /** What a crash keeps of the fsync in flight: none, all, or a torn prefix. */
  keptOfFlight(rng: Prng, kind: CrashKind): Write[] {
    const flight = this.#writes.slice(0, this.#flight);
    if (flight.length === 0 || rng.chance(0.5)) return [];
    if (kind === "kill") return flight;
    const entries = flight.reduce(
      (sum, write) => sum + (write.kind === "append" ? write.entries.length : 0),
      0,
    );
    const hard = flight.filter((write) => write.kind === "hard_state");
    return [...hard, ...prefixOfWrites(flight, rng.int(entries + 1))];
  }

  firstIndex(): number {
    return this.medium.firstIndex();
  }
  lastIndex(): number {
    return this.medium.lastIndex();
  }
  syncedIndex(): number {
    // A lying disk claims what it reported synced, not what is durable.
    return Math.max(this.medium.syncedIndex(), Math.min(this.#claimed, this.medium.lastIndex()));
  }
  term(index: number): number | undefined {
    return this.medium.term(index);
  }
  entries(low: number, high: number, maxBytes?: number): Entry[] {
    return this.medium.entries(low, high, maxBytes);
  }
  hardState(): HardState {
    return this.medium.hardState();
  }
  snapshot(): Snapshot | undefined {
    return this.medium.snapshot();
  }
  segments(): SegmentInfo[] {
    return this.medium.segments();
  }

  append(entries: Entry[]): void {
    this.#requireLive();
    this.medium.append(entries);
    if (entries.length > 0) this.#writes.push({ kind: "append", entries });
  }

  setHardState(state: HardState): void {
    this.#requireLive();
    this.medium.setHardState(state);
    this.#writes.push({ kind: "hard_state", state: { ...state } });
  }

  sync(): Promise<void> {
    if (this.#fenced) return new Promise(() => {});
    this.#flight = this.#writes.length;
    const lie = this.#disk.lies === "all" ||
      (this.#disk.lies === "hard_state" && this.#writes.length > 0 &&
        this.#writes.every((write) => write.kind === "hard_state"));
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    if (lie) {
      this.#claimed = this.medium.lastIndex();
      resolve();
      this.#disk.onLie?.();
    }
    this.#disk.scheduler.schedule(this.#disk.syncDelayMs(), () => {
      if (this.#fenced) return;
      if (this.#disk.syncFails()) {
        this.medium.failNextSync(new LogFailedError(new Error("EIO"), this.directory));
      }
      try {
        this.medium.syncNow();
      } catch (error) {
        reject(error);
        return;
      }
      this.#writes = [];
      this.#flight = 0;
      resolve();
    });
    return promise;
  }

  applySnapshot(snapshot: Snapshot, retained?: Entry[]): Promise<void> {
    if (this.#fenced) return new Promise(() => {});
    this.#writes = [];
    this.#flight = 0;
    return this.medium.applySnapshot(snapshot, retained);
  }

  compact(snapshot: Snapshot, keepFrom?: number): Promise<void> {
    if (this.#fenced) return new Promise(() => {});
    return this.medium.compact(snapshot, keepFrom);
  }

  recover(): Promise<void> {
    if (this.#fenced) return new Promise(() => {});
    this.#writes = [];
    this.#flight = 0;
    return this.medium.recover();
  }

  close(): Promise<void> {
    // A clean stop: the medium stays usable for the next process (writes not synced are kept,
    // as the page cache keeps them when a process exits normally).
    this.#fenced = true;
    return Promise.resolve();
  }

  #requireLive(): void {
    if (this.#fenced) throw new Error(`The process that opened ${this.directory} is gone`);
  }
}

/** The writes of `flight` up to its `keep`-th entry (hard states excluded), in order. */
function prefixOfWrites(flight: Write[], keep: number): Write[] {
  const kept: Write[] = [];
  let left = keep;
  for (const write of flight) {
    if (write.kind !== "append" || left === 0) continue;
    const entries = write.entries.slice(0, left);
    left -= entries.length;
    kept.push({ kind: "append", entries });
  }
  return kept;
}
