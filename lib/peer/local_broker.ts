/**
 * A broker on one peer alone: every topic is a `LocalTopic` in
 * `<dataDir>/topics/<name>/`, and the topic list is one atomically replaced
 * file, `<dataDir>/topics.json`. The cluster broker replaces this with Raft
 * groups; the request handler cannot tell the difference.
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

/** Most topics one peer holds. */
export const topicsMaxDefault = 10_000;

/** Settings of a single-peer broker. */
export interface LocalBrokerOptions {
  nodeId: number;
  dataDir: string;
  /** This peer's advertised "host:port". */
  address: string;
  topicsMax?: number;
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
  /** Serializes topic-list changes so the file always matches the map. */
  #metaChain: Promise<void> = Promise.resolve();

  private constructor(options: LocalBrokerOptions) {
    this.nodeId = options.nodeId;
    this.#options = options;
  }

  /** Opens (or creates) the data directory and every topic in it. */
  static async open(options: LocalBrokerOptions): Promise<LocalBroker> {
    const broker = new LocalBroker(options);
    await Deno.mkdir(`${options.dataDir}/topics`, { recursive: true });
    const bytes = await readFileAtomic(broker.#metaPath);
    const names: string[] = bytes ? JSON.parse(new TextDecoder().decode(bytes)).topics : [];
    for (const name of names) {
      const store = await SegmentLogStore.open(broker.#topicDir(name));
      broker.#topics.set(name, LocalTopic.open(name, store));
    }
    return broker;
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

  /** Durably replaces the topic list by `names`; a full disk is answered `storage_full`. */
  async #writeMeta(names: string[], change: string): Promise<void> {
    const json = JSON.stringify({ topics: [...names].sort() });
    try {
      await writeFileAtomic(this.#metaPath, new TextEncoder().encode(json));
    } catch (error) {
      throw storageFullAnswer(error, change);
    }
  }

  createTopic(name: string): Promise<boolean> {
    return this.#changeTopics(async () => {
      if (this.#topics.has(name)) return false;
      const topicsMax = this.#options.topicsMax ?? topicsMaxDefault;
      if (this.#topics.size >= topicsMax) {
        throw new ProtocolError(
          "overloaded",
          `The peer already holds its maximum of ${topicsMax} topics`,
        );
      }
      // A leftover directory of a deleted topic must not leak old messages.
      await Deno.remove(this.#topicDir(name), { recursive: true }).catch(() => {});
      const store = await SegmentLogStore.open(this.#topicDir(name)).catch((error) => {
        throw storageFullAnswer(error, `topic '${name}' was not created`);
      });
      // The list names the topic before anyone can publish to it, so that no
      // acknowledged message lives in a topic a restart would not reopen.
      try {
        await this.#writeMeta([...this.#topics.keys(), name], `topic '${name}' was not created`);
      } catch (error) {
        await store.close();
        await Deno.remove(this.#topicDir(name), { recursive: true }).catch(() => {});
        throw error;
      }
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
      await topic.close();
      await Deno.remove(this.#topicDir(name), { recursive: true });
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
