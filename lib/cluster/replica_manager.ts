/**
 * The topic replicas this peer holds: it opens the ones the committed
 * metadata places here (quarantining and rebuilding damaged logs, retrying
 * a disk that refuses with backoff), drops the ones whose topic was deleted
 * or whose group committed this replica's removal, and writes the
 * clean-shutdown record of every log at close.
 *
 * Destructive steps follow committed state only: a replica's files are
 * removed because the metadata log says so, never because a message asked.
 *
 * Reconciling is incremental: only topics named by metadata commands
 * applied since the last pass (and replicas whose open is due for a retry)
 * are looked at; a full pass over every topic runs when asked (the
 * reconciler's slow sweep) and after a change that named no topic (a
 * restored metadata snapshot). With 10,000 topics a burst of creations then
 * costs work per created topic, not per topic held.
 *
 * @module
 */

import { getLogger } from "../logging.ts";
import { retentionSegmentBytes } from "../wire/retention.ts";
import { backoffDelayMs } from "./_backoff.ts";
import type { Changes } from "./_changes.ts";
import type { LivenessView } from "./liveness.ts";
import type { MetaCommand, MetaState, TopicPlacement } from "./meta_state.ts";
import type { RaftHost } from "./raft_host.ts";
import { RaftTopic, TopicMachine } from "./raft_topic.ts";
import { reconcileMs } from "./reconciler.ts";
import { ReplicaGroup, type ReplicaGroupOptions } from "./replica_group.ts";
import type { ClusterRuntime, OpenedLog } from "./runtime.ts";

/**
 * Replica opens in flight at once; the others wait in a queue, in the order
 * the metadata named them, so a burst of thousands of creations neither
 * floods the disk nor starves the event loop (and the failure detector's
 * heartbeats with it).
 */
export const replicaOpensMax = 16;
/**
 * How long a topic replica that its leader does not need for a commit
 * waits before it makes an append durable and answers, gathering the
 * appends of that while into one fsync (`ReplicaGroupOptions.lazySyncMs`).
 * With 3 replicas a publish then costs two fsyncs instead of three: on this
 * project's 2-vCPU machine an fdatasync costs 85-95 µs of CPU and a block
 * kworker's 60 µs, and three at once queue on one virtual disk. One publish
 * at a time (`bench:ab`, 60 s, against every follower syncing at once): 20
 * ms gave p50 -12%, p99 -5%, the peers' CPU per publish -20%; 5 ms gave p50
 * -3%, p99 -6%, CPU -8% (see bench/RESULTS.md, session 16).
 */
export const lazyFollowerSyncMs = 20;

/** Retry delays for a replica that cannot be opened (each cause is logged once). */
const openRetryBounds = { backoffMinMs: reconcileMs, backoffMaxMs: 30_000 };

/** One topic replica held here. */
export interface LocalReplica {
  epoch: number;
  topic: RaftTopic;
  group: ReplicaGroup;
  /** Placement generation and term at which the group's membership last matched it. */
  settled?: { generation: number; term: number };
}

/** What a {@linkcode ReplicaManager} works with. */
export interface ReplicaManagerOptions {
  nodeId: number;
  runtime: ClusterRuntime;
  host: RaftHost;
  meta: MetaState;
  liveness: LivenessView;
  /** Woken whenever a replica opens, closes or fails to open. */
  changes: Changes;
  /** A hosted group's leader or role changed (see also {@linkcode ReplicaManager.onGroupChange}). */
  onLeaderChange(): void;
  isClosed(): boolean;
  /** Pulls a chunk of a snapshot transfer from a group's leader (see `ReplicaGroupOptions`). */
  fetchSnapshotChunk?: ReplicaGroupOptions["fetchSnapshotChunk"];
  /** Entries a group applies between two snapshots (see `ReplicaGroupOptions`). */
  snapshotEntries?: number;
  /**
   * The identity of this peer's data directory (see `StoreFactory.prepare`):
   * replicas are hosted only once the metadata records this directory as
   * the member's (see {@linkcode ReplicaManager.reconcile}). Default: not checked.
   */
  directoryId?: () => string | undefined;
}

/**
 * The replicas of this peer.
 *
 * @example
 * ```ts
 * const replicas = new ReplicaManager({ nodeId: 1, runtime, host, meta, liveness, changes, ... });
 * await replicas.loadClosedLogs();
 * meta.onChange(() => replicas.reconcile());
 * replicas.get("events")?.topic;
 * ```
 */
export class ReplicaManager {
  readonly #options: ReplicaManagerOptions;
  readonly #replicas = new Map<string, LocalReplica>();
  /** Replicas that could not be opened: the cause last logged and when to try again. */
  readonly #openFailures = new Map<
    string,
    { name: string; cause: string; attempts: number; retryAt: number }
  >();
  /**
   * Tombstones this process left (see `drop`), by topic: the epoch. Deleted
   * once that epoch of the topic is gone. (One left before a restart stays:
   * a directory holding one small file.)
   */
  readonly #tombstones = new Map<string, number>();
  /** Topics named by metadata commands since the last reconcile. */
  readonly #changedTopics = new Set<string>();
  /** Set by a change that named no topic: the next reconcile looks at every topic. */
  #sweepPending = true;
  readonly #groupListeners: ((name: string) => void)[] = [];
  readonly #opening = new Set<string>();
  /** Topics waiting for an open slot (see `replicaOpensMax`). */
  readonly #openQueue = new Set<string>();
  /** Last durable index of each log at the previous clean stop (see `replica_repair.ts`). */
  #closedLogs = new Map<string, number>();
  readonly #logger = getLogger("cluster");

  constructor(options: ReplicaManagerOptions) {
    this.#options = options;
    options.meta.onChange((command?: MetaCommand) => this.#metaChanged(command));
  }

  #metaChanged(command: MetaCommand | undefined): void {
    if (command === undefined) this.#sweepPending = true;
    else if ("name" in command) this.#changedTopics.add(command.name);
    // This directory's record may have arrived (see #recordIsThisDirectory): look at every topic.
    else if (command.op === "add_member" && command.id === this.#options.nodeId) {
      this.#sweepPending = true;
    }
  }

  /**
   * Calls `listener` with a topic's name when its replica here opens or its
   * group's leader or role changes: what the group's leader must do may
   * have changed.
   */
  onGroupChange(listener: (name: string) => void): void {
    this.#groupListeners.push(listener);
  }

  #groupChanged(name: string): void {
    for (const listener of this.#groupListeners) listener(name);
  }

  /** Reads (and deletes) the clean-shutdown record; call once before opening any log. */
  async loadClosedLogs(): Promise<void> {
    this.#closedLogs = await this.#options.runtime.stores.takeClosedLogs();
  }

  /** The replica of `name` held here, if open. */
  get(name: string): LocalReplica | undefined {
    return this.#replicas.get(name);
  }

  /** Whether a replica of `name` is open here. */
  has(name: string): boolean {
    return this.#replicas.has(name);
  }

  /** Names of the replicas open here. */
  names(): IterableIterator<string> {
    return this.#replicas.keys();
  }

  /** The replicas open here, by topic name. */
  entries(): IterableIterator<[string, LocalReplica]> {
    return this.#replicas.entries();
  }

  /** Whether the replica `placement` asks for here cannot be opened (the disk refuses). */
  cannotOpen(placement: TopicPlacement): boolean {
    return this.#openFailures.has(replicaKey(placement));
  }

  /**
   * Opens the log in `directory` (`key` names it in the clean-shutdown
   * record), quarantining and rebuilding it when it is damaged; says so once.
   */
  async openLog(
    directory: string,
    key: string,
    label: string,
    segmentBytes?: number,
  ): Promise<OpenedLog> {
    const closedIndex = this.#closedLogs.get(key);
    // The record holds for the first open after the restart only.
    this.#closedLogs.delete(key);
    const opened = await this.#options.runtime.stores.open(directory, {
      label,
      closedIndex,
      segmentBytes,
    });
    if (opened.quarantined !== undefined) {
      this.#logger.error(
        "Quarantined the damaged replica {directory} in {path} ({reason}); it is rebuilt from the other replicas and neither votes nor campaigns until it caught up",
        { directory, path: opened.quarantined.path, reason: opened.quarantined.reason },
      );
    } else if (opened.recoveringTerm !== undefined) {
      this.#logger.warn("Replica {directory} is still rebuilding a lost log", { directory });
    }
    return opened;
  }

  /** Clears a rebuilt replica's recovering flag: its Raft core caught up. */
  async recovered(what: string, directory: string): Promise<void> {
    try {
      await this.#options.runtime.stores.clearRecovering(directory);
      this.#logger.info("The rebuilt replica of {what} caught up and votes again", { what });
    } catch (error) {
      // The flag stays on disk: after a restart the replica recovers again, which is safe.
      this.#logger.warn("Cannot clear the recovering flag of {directory}: {error}", {
        directory,
        error: (error as Error).message,
      });
    }
  }

  /**
   * Creates replicas this node should hold and drops those of deleted
   * topics or of groups that committed this replica's removal: for the
   * topics changed since the last call and the failed opens due for a
   * retry, or with `options.full` for every topic.
   */
  reconcile(options: { full?: boolean } = {}): void {
    if (this.#options.isClosed()) return;
    const { meta } = this.#options;
    if (options.full || this.#sweepPending) {
      this.#sweepPending = false;
      this.#changedTopics.clear();
      for (const name of meta.topics.keys()) this.#reconcileTopic(name);
      for (const name of [...this.#replicas.keys()]) {
        if (!meta.topics.has(name)) this.#reconcileTopic(name);
      }
      return;
    }
    const now = this.#options.runtime.scheduler.now();
    const names = new Set(this.#changedTopics);
    this.#changedTopics.clear();
    for (const failure of this.#openFailures.values()) {
      if (now >= failure.retryAt) names.add(failure.name);
    }
    for (const name of names) this.#reconcileTopic(name);
  }

  #reconcileTopic(name: string): void {
    const { meta, nodeId, runtime } = this.#options;
    const placement = meta.topics.get(name);
    const local = this.#replicas.get(name);
    if (local === undefined && !this.#opening.has(name)) {
      this.#removeStaleTombstone(name, placement);
    }
    if (placement === undefined) {
      if (local !== undefined) this.drop(name).catch(() => {});
      return;
    }
    if (local !== undefined) {
      if (local.epoch !== placement.epoch || removedFromGroup(placement, nodeId)) {
        this.drop(name).catch(() => {});
      }
      return;
    }
    // A node still in the group's committed membership hosts its replica even
    // when the placement moved it away: until the group removed it, the
    // group may need its vote (a restart must not take a voter out). That
    // membership is this directory's: a replaced directory hosts nothing
    // until the metadata records it (#recordIsThisDirectory), and it joins
    // only once no placement or recorded membership lists its id any more
    // (`join.ts`), so none of the old directory's slots is taken by an empty
    // replica. A node that joined after the topic was created counts too
    // (seed 2174181049: a voter added later, moved away while the group was
    // stuck, never reopened its replica after a restart).
    const member = placement.members?.includes(nodeId) ?? false;
    if ((!placement.replicas.includes(nodeId) && !member) || this.#opening.has(name)) return;
    if (!this.#recordIsThisDirectory()) return;
    const failure = this.#openFailures.get(replicaKey(placement));
    if (failure !== undefined && runtime.scheduler.now() < failure.retryAt) return;
    if (this.#opening.size >= replicaOpensMax) {
      this.#openQueue.add(name);
      return;
    }
    this.#open(placement).catch((error) => this.#openFailed(placement, error as Error));
  }

  /** Deletes the tombstone of `name` once its epoch was deleted or replaced by a newer one. */
  #removeStaleTombstone(name: string, placement: TopicPlacement | undefined): void {
    const epoch = this.#tombstones.get(name);
    if (epoch === undefined || placement?.epoch === epoch) return;
    this.#tombstones.delete(name);
    this.#options.runtime.stores.remove(this.#topicDir(name, epoch)).catch(() => {});
  }

  /** Starts queued opens while slots are free; each looks at its placement afresh. */
  #openQueued(): void {
    for (const name of this.#openQueue) {
      if (this.#opening.size >= replicaOpensMax || this.#options.isClosed()) return;
      this.#openQueue.delete(name);
      this.#reconcileTopic(name);
    }
  }

  /**
   * Closes the replica of `name` and deletes its files. When the group lives
   * on (the topic's epoch is still the one held here), a tombstone holding
   * the replica's last term stays: if the topic is placed here again, the
   * new replica must not vote again in a term this one voted in, nor for a
   * candidate missing entries this one acknowledged (see `replica_tombstone.ts`).
   */
  async drop(name: string): Promise<void> {
    const local = this.#replicas.get(name);
    if (local === undefined) return;
    this.#replicas.delete(name);
    this.#options.changes.notify();
    local.topic.close();
    try {
      await this.#options.host.remove(local.group.groupId);
      const directory = this.#topicDir(name, local.epoch);
      if (this.#options.meta.topics.get(name)?.epoch === local.epoch) {
        const term = Math.max(local.group.node.term, local.group.store.hardState().term);
        await this.#options.runtime.stores.retire(directory, term);
        this.#tombstones.set(name, local.epoch);
      } else {
        await this.#options.runtime.stores.remove(directory);
      }
    } finally {
      // A newer epoch of the topic may be placed here: look again.
      this.#changedTopics.add(name);
    }
  }

  /**
   * Stops serving every replica's topic; resolves once each wrote the acks
   * it buffered (the groups are closed by the host, afterwards).
   */
  async closeTopics(): Promise<void> {
    await Promise.all([...this.#replicas.values()].map((local) => local.topic.close()));
  }

  /**
   * Writes the clean-shutdown record: the durable end of every log, so that
   * the next start finds a log that lost synced entries meanwhile (a cut or
   * deleted file) instead of taking it for a torn tail.
   */
  async recordClosedLogs(metaGroup: ReplicaGroup | undefined): Promise<void> {
    if (metaGroup === undefined) return;
    const logs = new Map<string, number>([["meta", metaGroup.store.syncedIndex()]]);
    for (const [name, local] of this.#replicas) {
      logs.set(`topics/${name}.${local.epoch}`, local.group.store.syncedIndex());
    }
    try {
      await this.#options.runtime.stores.writeClosedLogs(logs);
    } catch (error) {
      this.#logger.warn("Cannot write the clean-shutdown record: {error}", {
        error: (error as Error).message,
      });
    }
  }

  /**
   * A replica that cannot be opened (a damaged one is quarantined and
   * rebuilt instead, so this is the disk refusing: permissions, no space) is
   * retried with backoff; each cause is logged once, not at every retry.
   * Meanwhile this peer forwards the topic's requests to its leader.
   */
  #openFailed(placement: TopicPlacement, error: Error): void {
    const { runtime, changes } = this.#options;
    const key = replicaKey(placement);
    const previous = this.#openFailures.get(key);
    const attempts = (previous?.attempts ?? 0) + 1;
    const cause = error.message;
    const random = () => runtime.rng.next();
    const retryAt = runtime.scheduler.now() +
      backoffDelayMs(attempts - 1, openRetryBounds, random);
    this.#openFailures.set(key, { name: placement.name, cause, attempts, retryAt });
    changes.notify();
    if (previous?.cause === cause) return;
    this.#logger.error(
      "Cannot open the replica of {topic}: {error}; its requests go to the leader meanwhile, and the open is retried",
      { topic: placement.name, error: cause },
    );
  }

  async #open(placement: TopicPlacement): Promise<void> {
    if (this.#opening.has(placement.name)) return;
    this.#opening.add(placement.name);
    try {
      await this.#openInner(placement);
    } finally {
      this.#opening.delete(placement.name);
      // The placement may have changed while the log opened: look again.
      this.#changedTopics.add(placement.name);
      this.#openQueued();
    }
  }

  async #openInner(placement: TopicPlacement): Promise<void> {
    const { nodeId, runtime, host, liveness, changes } = this.#options;
    const key = replicaKey(placement);
    const directory = this.#topicDir(placement.name, placement.epoch);
    // Segments follow the topic's retention, so deleting whole ones bounds its disk use.
    const opened = await this.openLog(
      directory,
      key,
      `${placement.name}.${placement.epoch}`,
      retentionSegmentBytes(placement.retention),
    );
    const store = opened.store;
    // A tombstone opened is a rebuilt replica now (its flag stays until it caught up).
    this.#tombstones.delete(placement.name);
    if (this.#options.isClosed()) {
      await store.close();
      return;
    }
    const fresh = store.lastIndex() === 0 && store.snapshot() === undefined;
    // Founding replicas bootstrap the group together; a replica added later
    // starts empty and learns the membership from the leader's log, and so
    // does a rebuilt one (its group exists: bootstrapping again would be
    // voting as a member that never lost anything).
    const founding = fresh && placement.generation === 0 && opened.recoveringTerm === undefined;
    if (this.#openFailures.delete(key)) {
      this.#logger.info("Opened the replica of {topic}", { topic: placement.name });
    }
    const original = this.#original(placement);
    const machine = new TopicMachine(store);
    const group = new ReplicaGroup({
      groupId: `t:${placement.name}`,
      nodeId,
      store,
      rng: runtime.rng,
      scheduler: runtime.scheduler,
      stateMachine: machine,
      send: host.send,
      quiesce: host.quiesce,
      voters: founding ? placement.replicas : undefined,
      // The preferred leader leads term 1 without an election, so a new
      // topic takes writes as soon as its replicas are durable.
      bootstrapLeader: founding && original ? placement.replicas[0] : undefined,
      onLeaderChange: () => {
        this.#options.onLeaderChange();
        this.#groupChanged(placement.name);
      },
      onStorageFailure: () => changes.notify(),
      explainNoQuorum: (voters) => liveness.explainNoQuorum(voters),
      recoveringTerm: opened.recoveringTerm,
      onRecovered: () => this.recovered(`topic '${placement.name}'`, directory),
      fetchSnapshotChunk: this.#options.fetchSnapshotChunk,
      snapshotEntries: this.#options.snapshotEntries,
      lazySyncMs: lazyFollowerSyncMs,
    });
    const topic = new RaftTopic(placement.name, group, machine);
    this.#replicas.set(placement.name, { epoch: placement.epoch, topic, group });
    host.add(group);
    changes.notify();
    this.#groupChanged(placement.name);
    // Without a known leader the preferred one campaigns at once, so the
    // topic takes writes after a round trip instead of an election timeout.
    if (founding && !original && placement.replicas[0] === nodeId) group.campaign();
  }

  /**
   * Whether this data directory existed when the topic was created: a
   * founding replica missing from it was lost in a crash before its
   * bootstrap was durable, and may bootstrap again with the group's known
   * leader of term 1 (`RaftOptions.bootstrapLeader`). A replaced disk may
   * have lost a bootstrap that was durable and led on: its replicas start
   * without one and are caught up by an elected leader.
   */
  #original(placement: TopicPlacement): boolean {
    const since = this.#options.meta.members.get(this.#options.nodeId)?.directorySinceEpoch;
    return since !== undefined && placement.epoch > since;
  }

  /**
   * Whether the applied metadata describes this data directory. A replaced
   * (empty) directory that rejoined under its id replays the metadata log
   * from its start: until it applied its own rejoin, the placements and the
   * member record it sees are the old directory's, which founded groups and
   * led their first term. Acting on them, it bootstrapped a founding replica
   * with an empty log, as the leader of a term the old directory led
   * (whole-cluster seed 107299). Its replicas wait until the record is its own.
   */
  #recordIsThisDirectory(): boolean {
    const own = this.#options.directoryId?.();
    if (own === undefined) return true;
    const record = this.#options.meta.members.get(this.#options.nodeId);
    return record !== undefined && (record.directoryId === undefined || record.directoryId === own);
  }

  #topicDir(name: string, epoch: number): string {
    return this.#options.runtime.stores.topicDirectory(name, epoch);
  }
}

/** A topic replica's key in the clean-shutdown record: its directory under the data directory. */
function replicaKey(placement: TopicPlacement): string {
  return `topics/${placement.name}.${placement.epoch}`;
}

/**
 * True once the committed metadata says this node's replica left the group:
 * the placement no longer lists it and the group's reported membership (a
 * committed conf change) does not either. Only then may the replica's files go.
 *
 * @example
 * ```ts
 * removedFromGroup({ ...placement, replicas: [2, 3, 4], members: [2, 3, 4] }, 1); // true
 * ```
 */
export function removedFromGroup(placement: TopicPlacement, nodeId: number): boolean {
  return !placement.replicas.includes(nodeId) && placement.members !== undefined &&
    !placement.members.includes(nodeId);
}
