/**
 * A broker on one peer alone: every topic is a `LocalTopic` in
 * `<dataDir>/topics/<name>/`, and the topic list with each topic's retention
 * is one atomically replaced file, `<dataDir>/topics.json`. Retention runs
 * here too, with the cluster's semantics: every second each topic with
 * limits deletes its expired whole segments. The cluster broker replaces
 * this with Raft groups; the request handler cannot tell the difference.
 *
 * @module
 */

import { readFileAtomic, writeFileAtomic } from "../storage/atomic_file.ts";
import { isStorageFull, SegmentLogStore } from "../storage/segment_log_store.ts";
import { ProtocolError } from "../wire/errors.ts";
import type { Broker, ClusterView } from "./broker.ts";
import { LocalTopic } from "./local_topic.ts";
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
  readonly #topics = new Map<string, LocalTopic>();
  /** The retention of each topic with limits (topics without any are not listed). */
  readonly #retention = new Map<string, Retention>();
  /** Serializes topic-list changes so the file always matches the map. */
  #metaChain: Promise<void> = Promise.resolve();
  #retentionTimer: ReturnType<typeof setInterval> | undefined;
  /** The running retention pass, if any (passes never overlap). */
  #retaining: Promise<void> | undefined;

  private constructor(options: LocalBrokerOptions) {
    this.nodeId = options.nodeId;
    this.#options = options;
  }

  /** Opens (or creates) the data directory and every topic in it. */
  static async open(options: LocalBrokerOptions): Promise<LocalBroker> {
    const broker = new LocalBroker(options);
    await Deno.mkdir(`${options.dataDir}/topics`, { recursive: true });
    const bytes = await readFileAtomic(broker.#metaPath);
    const list: TopicList = bytes ? JSON.parse(new TextDecoder().decode(bytes)) : { topics: [] };
    for (const [name, retention] of Object.entries(list.retention ?? {})) {
      broker.#retention.set(name, validateRetention(retention));
    }
    for (const name of list.topics) {
      const store = await broker.#openStore(name);
      broker.#topics.set(name, LocalTopic.open(name, store));
    }
    broker.#retentionTimer = setInterval(
      () => broker.#retainAll(),
      options.retentionIntervalMs ?? retentionIntervalMsDefault,
    );
    return broker;
  }

  /** A topic's log, with segments sized to its retention (see `retentionSegmentBytes`). */
  #openStore(name: string): Promise<SegmentLogStore> {
    return SegmentLogStore.open(this.#topicDir(name), {
      segmentBytesMax: retentionSegmentBytes(this.#retention.get(name)),
    });
  }

  /** One retention pass over the topics with limits; skipped while the last one runs. */
  #retainAll(): void {
    if (this.#retaining !== undefined) return;
    this.#retaining = (async () => {
      for (const [name, retention] of this.#retention) {
        await this.#topics.get(name)?.enforceRetention(retention, Date.now());
      }
    })().finally(() => this.#retaining = undefined);
  }

  get #metaPath(): string {
    return `${this.#options.dataDir}/topics.json`;
  }

  #topicDir(name: string): string {
    return `${this.#options.dataDir}/topics/${name}`;
  }

  #changeTopics<T>(change: () => Promise<T>): Promise<T> {
    const result = this.#metaChain.then(change);
    this.#metaChain = result.then(() => {}, () => {});
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
      const store = await SegmentLogStore.open(this.#topicDir(name), {
        segmentBytesMax: retentionSegmentBytes(limits),
      }).catch((error) => {
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
      this.#topics.set(name, LocalTopic.open(name, store));
      return true;
    });
  }

  deleteTopic(name: string): Promise<void> {
    return this.#changeTopics(async () => {
      const topic = this.#existing(name);
      const rest = [...this.#topics.keys()].filter((other) => other !== name);
      await this.#writeMeta(rest, `topic '${name}' was not deleted`);
      this.#topics.delete(name);
      this.#retention.delete(name);
      await topic.close();
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

  topic(name: string): Promise<Topic> {
    return Promise.resolve(this.#existing(name));
  }

  /** A single peer leads every topic, so nothing is ever forwarded. */
  forward(nodeId: number): Promise<unknown> {
    throw new ProtocolError(
      "unavailable",
      `Node ${nodeId} is not part of this single-peer cluster`,
    );
  }

  source(name: string): Promise<MessageSource> {
    return Promise.resolve(this.#existing(name));
  }

  subscribeStart(
    name: string,
    subscriberId: string,
    from: SubscribeFrom | undefined,
  ): Promise<number> {
    return subscriptionStart(this.#existing(name), subscriberId, from);
  }

  #existing(name: string): LocalTopic {
    const topic = this.#topics.get(name);
    if (topic === undefined) {
      throw new ProtocolError("topic_not_found", `Topic '${name}' does not exist`);
    }
    return topic;
  }

  async describeTopic(name: string): Promise<Omit<TopicDescription, "status">> {
    const topic = this.#existing(name);
    const { firstOffset, nextOffset } = await topic.bounds();
    return {
      topic: name,
      replicas: [this.nodeId],
      leader: this.nodeId,
      in_sync: [this.nodeId],
      first_offset: firstOffset,
      next_offset: nextOffset,
      bytes: topic.bytes(),
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
    clearInterval(this.#retentionTimer);
    await this.#retaining;
    await this.#metaChain;
    await Promise.all([...this.#topics.values()].map((topic) => topic.close()));
  }
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
