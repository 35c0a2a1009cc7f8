/**
 * A broker on one peer alone (`pubsub peer --standalone`). Every topic is a
 * one-voter Raft group (`ReplicaGroup` + `RaftTopic`, the same topic
 * implementation as a replicated topic: one code path for idempotence,
 * acks, snapshots, retention and disk failures) with its log in
 * `<dataDir>/topics/<name>/`; the topic list with each topic's retention is
 * one atomically replaced file, `<dataDir>/topics.json`, instead of a
 * metadata group. A one-voter group commits an entry once its own fsync
 * completes, so acknowledged still means durable. `bench/standalone_bench.ts`
 * measured the one-voter group at least as fast as the separate standalone
 * topic it replaced.
 *
 * @module
 */

import { RaftHost } from "../cluster/raft_host.ts";
import { RaftTopic, TopicMachine } from "../cluster/raft_topic.ts";
import { ReplicaGroup } from "../cluster/replica_group.ts";
import type { LocalReplica } from "../cluster/replica_manager.ts";
import { RetentionLoop } from "../cluster/retention_loop.ts";
import { type ClusterRuntime, systemRuntime } from "../cluster/runtime.ts";
import { Changes, waitUntil } from "../cluster/_changes.ts";
import { readFileAtomic, writeFileAtomic } from "../storage/atomic_file.ts";
import { isStorageFull, SegmentLogStore } from "../storage/segment_log_store.ts";
import type { LogStore } from "../storage/types.ts";
import { ProtocolError } from "../wire/errors.ts";
import type { Broker, ClusterView } from "./broker.ts";
import { subscriptionStart } from "./subscription.ts";
import type { MessageSource, Topic } from "./topic.ts";
import type { SubscribeFrom } from "../wire/requests.ts";
import type { TopicDescription } from "../wire/responses.ts";
import {
  hasLimits,
  patchRetention,
  type Retention,
  type RetentionPatch,
  retentionSegmentBytes,
  validateRetention,
  withDefaults,
} from "../wire/retention.ts";

/** Most topics one peer holds. */
export const topicsMaxDefault = 10_000;
/** How often topics with retention limits delete their expired segments. */
export const retentionIntervalMsDefault = 1000;

/** The topic list file, `topics.json`: names, and the retention of those that have limits. */
interface TopicList {
  topics: string[];
  retention?: Record<string, Retention>;
}

/** Settings of a single-peer broker. */
export interface LocalBrokerOptions {
  nodeId: number;
  dataDir: string;
  /** This peer's advertised "host:port". */
  address: string;
  topicsMax?: number;
  /** Limits of a new topic that its `create_topic` leaves out (`--retention-*`). Default: none. */
  retentionDefaults?: Retention;
  /** How often retention runs, in ms. Default `retentionIntervalMsDefault`. */
  retentionIntervalMs?: number;
}

/** Longest wait for a topic's one-voter group to lead (after a start or a disk failure). */
const leadTimeoutMs = 5000;

/**
 * Single-peer broker.
 *
 * @example
 * ```ts
 * const broker = await LocalBroker.open({ nodeId: 1, dataDir: "./data/1", address: "127.0.0.1:5001" });
 * await broker.createTopic("events");
 * ```
 */
export class LocalBroker implements Broker {
  readonly nodeId: number;
  readonly #options: LocalBrokerOptions;
  readonly #topics = new Map<string, LocalReplica>();
  /** The retention of each topic with limits (topics without any are not listed). */
  readonly #retention = new Map<string, Retention>();
  /** Serializes topic-list changes so the file always matches the map. */
  #metaChain: Promise<void> = Promise.resolve();
  readonly #runtime;
  /** Ticks the groups; a one-voter group sends no messages. */
  readonly #host: RaftHost;
  readonly #retentionLoop: RetentionLoop;
  /** Set by the retention loop: called after topics are created, deleted or altered. */
  #topicsChanged: (() => void) | undefined;
  /** Wakes requests waiting for a group to lead. */
  readonly #changes: Changes;
  #closed = false;

  private constructor(options: LocalBrokerOptions) {
    this.nodeId = options.nodeId;
    this.#options = options;
    this.#runtime = systemRuntime(options.dataDir);
    this.#changes = new Changes();
    this.#host = new RaftHost(options.nodeId, { send: () => {} }, {
      scheduler: this.#runtime.scheduler,
    });
    this.#retentionLoop = new RetentionLoop({
      retentionOf: (name) => this.#retention.get(name),
      replicas: () => this.#topics.entries(),
      onChange: (listener) => this.#topicsChanged = listener,
      scheduler: this.#runtime.scheduler,
      intervalMs: options.retentionIntervalMs ?? retentionIntervalMsDefault,
    });
  }

  /** Opens (or creates) the data directory and every topic in it. */
  static async open(options: LocalBrokerOptions): Promise<LocalBroker> {
    const broker = new LocalBroker(options);
    try {
      await Deno.mkdir(`${options.dataDir}/topics`, { recursive: true });
      const bytes = await readFileAtomic(broker.#metaPath);
      const list: TopicList = bytes ? JSON.parse(new TextDecoder().decode(bytes)) : { topics: [] };
      for (const [name, retention] of Object.entries(list.retention ?? {})) {
        broker.#retention.set(name, validateRetention(retention));
      }
      for (const name of list.topics) {
        const store = await broker.#openStore(name, broker.#retention.get(name));
        broker.#addTopic(name, store);
      }
    } catch (error) {
      await broker.close();
      throw error;
    }
    broker.#retentionLoop.start();
    return broker;
  }

  /** A topic's log, with segments sized to its retention (see `retentionSegmentBytes`). */
  #openStore(name: string, retention: Retention | undefined): Promise<SegmentLogStore> {
    return SegmentLogStore.open(this.#topicDir(name), {
      segmentBytesMax: retentionSegmentBytes(retention),
    });
  }

  /** Serves `name` from `store` as a one-voter group that campaigns at once. */
  #addTopic(name: string, store: LogStore): void {
    const local = openOneVoterTopic(name, store, {
      nodeId: this.nodeId,
      host: this.#host,
      runtime: this.#runtime,
      onChange: () => this.#changes.notify(),
    });
    this.#topics.set(name, local);
  }

  get #metaPath(): string {
    return `${this.#options.dataDir}/topics.json`;
  }

  #topicDir(name: string): string {
    return `${this.#options.dataDir}/topics/${name}`;
  }

  #changeTopics<T>(change: () => Promise<T>): Promise<T> {
    const result = this.#metaChain.then(change);
    // The retention loop looks at every topic again after any change to the set or its limits.
    this.#metaChain = result.then(() => {}, () => {}).then(() => this.#topicsChanged?.());
    return result;
  }

  /**
   * Durably replaces the topic list by `names` with their retention (as in
   * `retention`); a full disk is answered `storage_full`.
   */
  async #writeMeta(
    names: string[],
    change: string,
    retention: Map<string, Retention> = this.#retention,
  ): Promise<void> {
    const list: TopicList = { topics: [...names].sort(), retention: {} };
    for (const name of list.topics) {
      const limits = retention.get(name);
      if (hasLimits(limits)) list.retention![name] = limits!;
    }
    const json = JSON.stringify(list);
    try {
      await writeFileAtomic(this.#metaPath, new TextEncoder().encode(json));
    } catch (error) {
      throw storageFullAnswer(error, change);
    }
  }

  createTopic(name: string, _replicationFactor?: number, retention?: Retention): Promise<boolean> {
    return this.#changeTopics(async () => {
      if (this.#topics.has(name)) return false;
      const topicsMax = this.#options.topicsMax ?? topicsMaxDefault;
      if (this.#topics.size >= topicsMax) {
        throw new ProtocolError(
          "overloaded",
          `The peer already holds its maximum of ${topicsMax} topics`,
        );
      }
      const limits = withDefaults(retention, this.#options.retentionDefaults ?? {});
      const withTopic = new Map(this.#retention).set(name, limits);
      // A leftover directory of a deleted topic must not leak old messages.
      await Deno.remove(this.#topicDir(name), { recursive: true }).catch(() => {});
      const store = await this.#openStore(name, limits).catch((error) => {
        throw storageFullAnswer(error, `topic '${name}' was not created`);
      });
      // The list names the topic before anyone can publish to it, so that no
      // acknowledged message lives in a topic a restart would not reopen.
      try {
        await this.#writeMeta(
          [...this.#topics.keys(), name],
          `topic '${name}' was not created`,
          withTopic,
        );
      } catch (error) {
        await store.close();
        await Deno.remove(this.#topicDir(name), { recursive: true }).catch(() => {});
        throw error;
      }
      if (hasLimits(limits)) this.#retention.set(name, limits);
      this.#addTopic(name, store);
      return true;
    });
  }

  deleteTopic(name: string): Promise<void> {
    return this.#changeTopics(async () => {
      const local = this.#existing(name);
      const rest = [...this.#topics.keys()].filter((other) => other !== name);
      await this.#writeMeta(rest, `topic '${name}' was not deleted`);
      this.#topics.delete(name);
      this.#retention.delete(name);
      local.topic.close();
      await this.#host.remove(local.group.groupId);
      await Deno.remove(this.#topicDir(name), { recursive: true });
    });
  }

  /**
   * Changes a topic's retention, durably. Its segment size follows the new
   * `max_bytes` once the topic's log is opened again (at the next start).
   */
  alterTopic(name: string, patch: RetentionPatch): Promise<Retention> {
    return this.#changeTopics(async () => {
      this.#existing(name);
      const limits = patchRetention(this.#retention.get(name) ?? {}, patch);
      const changed = new Map(this.#retention).set(name, limits);
      await this.#writeMeta([...this.#topics.keys()], `topic '${name}' was not altered`, changed);
      if (hasLimits(limits)) this.#retention.set(name, limits);
      else this.#retention.delete(name);
      return limits;
    });
  }

  topicNames(): Promise<string[]> {
    return Promise.resolve([...this.#topics.keys()].sort());
  }

  /**
   * The topic once its one-voter group leads: at once normally; after a
   * start or a failed disk write, once the group re-elected itself (it
   * campaigns as soon as it knows no leader). A topic whose disk refuses
   * writes is returned at once: it serves reads, and answers writes with
   * that failure (`storage_full`).
   */
  async topic(name: string): Promise<Topic> {
    const local = this.#existing(name);
    const leading = await waitUntil(() => {
      if (local.group.isLeader || local.group.storageFailure !== undefined) return local.topic;
      if (local.group.leader === 0) local.group.campaign();
      return undefined;
    }, {
      scheduler: this.#runtime.scheduler,
      changes: this.#changes,
      timeoutMs: leadTimeoutMs,
      closed: () => this.#closed,
    });
    if (leading !== undefined) return leading;
    throw new ProtocolError("unavailable", `Topic '${name}' is not ready yet; retry`);
  }

  leadingTopic(name: string): Topic | undefined {
    const local = this.#topics.get(name);
    if (local === undefined) return undefined;
    const group = local.group;
    return group.isLeader || group.storageFailure !== undefined ? local.topic : undefined;
  }

  /** A single peer leads every topic, so nothing is ever forwarded. */
  forward(nodeId: number): Promise<unknown> {
    throw new ProtocolError(
      "unavailable",
      `Node ${nodeId} is not part of this single-peer cluster`,
    );
  }

  /** Subscriptions read the applied log, which holds committed entries only. */
  source(name: string): Promise<MessageSource> {
    return Promise.resolve(this.#existing(name).topic);
  }

  async subscribeStart(
    name: string,
    subscriberId: string,
    from: SubscribeFrom | undefined,
  ): Promise<number> {
    return subscriptionStart(await this.topic(name), subscriberId, from);
  }

  #existing(name: string): LocalReplica {
    const local = this.#topics.get(name);
    if (local === undefined) {
      throw new ProtocolError("topic_not_found", `Topic '${name}' does not exist`);
    }
    return local;
  }

  async describeTopic(name: string): Promise<Omit<TopicDescription, "status">> {
    const local = this.#existing(name);
    const { firstOffset, nextOffset } = await (await this.topic(name)).bounds();
    return {
      topic: name,
      replicas: [this.nodeId],
      leader: this.nodeId,
      in_sync: local.group.storageFailure === undefined ? [this.nodeId] : [],
      first_offset: firstOffset,
      next_offset: nextOffset,
      bytes: local.topic.bytes(),
      messages: nextOffset - firstOffset,
      retention: this.#retention.get(name) ?? {},
    };
  }

  clusterStatus(): Promise<ClusterView> {
    return Promise.resolve({
      nodes: [{
        id: this.nodeId,
        address: this.#options.address,
        state: "alive",
        last_heartbeat_ms_ago: 0,
      }],
      meta_leader: this.nodeId,
      meta_voters: [this.nodeId],
      topics: this.#topics.size,
    });
  }

  removeNode(nodeId: number): Promise<void> {
    const reason = nodeId === this.nodeId
      ? "it is the only member of this single-peer cluster"
      : "it is not a member of this cluster";
    throw new ProtocolError("bad_request", `Node ${nodeId} cannot be removed as ${reason}`);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#retentionLoop.stop();
    this.#changes.notify();
    await this.#metaChain;
    // Each topic writes the acks it buffered before the host closes its group.
    await Promise.all([...this.#topics.values()].map((local) => local.topic.close()));
    await this.#host.close();
  }
}

/** What {@linkcode openOneVoterTopic} needs. */
export interface OneVoterTopicOptions {
  nodeId: number;
  /** Ticks the group. */
  host: RaftHost;
  runtime: Pick<ClusterRuntime, "rng" | "scheduler">;
  /** Called when the group's leadership or disk state changes. */
  onChange?: () => void;
}

/**
 * A topic served by a one-voter Raft group over `store`, added to `host`;
 * it campaigns at once (a sole voter elects itself in one step, and again
 * after its disk recovers from a failed write).
 *
 * @example
 * ```ts
 * const host = new RaftHost(1, { send: () => {} });
 * const { topic, group } = openOneVoterTopic("events", store, { nodeId: 1, host, runtime });
 * ```
 */
export function openOneVoterTopic(
  name: string,
  store: LogStore,
  options: OneVoterTopicOptions,
): LocalReplica {
  const fresh = store.lastIndex() === 0 && store.snapshot() === undefined;
  const machine = new TopicMachine(store);
  const group = new ReplicaGroup({
    groupId: `t:${name}`,
    nodeId: options.nodeId,
    store,
    rng: options.runtime.rng,
    scheduler: options.runtime.scheduler,
    stateMachine: machine,
    send: options.host.send,
    voters: fresh ? [options.nodeId] : undefined,
    onLeaderChange: () => options.onChange?.(),
    onStorageFailure: () => options.onChange?.(),
  });
  const topic = new RaftTopic(name, group, machine);
  options.host.add(group);
  group.campaign();
  return { epoch: 0, topic, group };
}

/** A full disk becomes a `storage_full` answer saying what did not happen; other errors stay. */
function storageFullAnswer(error: unknown, change: string): unknown {
  if (!isStorageFull(error)) return error;
  return new ProtocolError(
    "storage_full",
    `The disk is full, so ${change}; it works again once space is freed`,
    { cause: error },
  );
}
