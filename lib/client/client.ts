/**
 * `PubSubClient`: the library applications embed to talk to a pubsub cluster.
 * One pipelined home connection to one peer of a bootstrap list, failover to
 * the next peer, bounded retries of idempotent requests, an idempotent
 * producer (producer_id + sequence) and durable subscriptions. Publishes go
 * straight to each topic's leader when it is one of the bootstrap peers
 * (learned in the background; until then the home peer forwards), and
 * concurrent publishes to a topic leave as one `publish_batch` (a lone one
 * goes out at once). Subscriptions live on the topic leader's connection
 * once it is known (`_subscriptions.ts`). Deadlines are kept by one sweep
 * per client.
 *
 * @module
 */

import assert from "node:assert/strict";
import { isErrorResponse } from "../wire/errors.ts";
import { sleep } from "../async.ts";
import { producerSequencesMax } from "../peer/topic_state.ts";
import { frameBytesMaxDefault } from "../wire/frame.ts";
import {
  inFlightMessagesDefault,
  inFlightMessagesMax,
  validateTopicName,
} from "../wire/requests.ts";
import type { NodeStatus, OffsetMessage } from "../wire/responses.ts";
import type { Retention, RetentionPatch } from "../wire/retention.ts";
import { Connection, type PendingRequest } from "./_connection.ts";
import { jsonArrayBytes, jsonStringBytes } from "./_json_size.ts";
import { LeaderDirectory, leaderRefreshMsDefault } from "./_leaders.ts";
import {
  connectTransport,
  parseAddress,
  type Transport,
  type TransportOptions,
} from "./_transport.ts";
import {
  ClientClosedError,
  ConnectionError,
  OutOfOrderSequenceError,
  PubSubError,
  RequestTimeoutError,
} from "./errors.ts";
import type { Subscription, SubscriptionOptions } from "./subscription.ts";
import { SubscriptionTable } from "./_subscriptions.ts";

/** Default time one attempt of a request may take. */
export const requestTimeoutMsDefault = 5000;
/** Default largest response frame (fetches of many messages are large). */
export const responseBytesMaxDefault = 64 * 1024 * 1024;
/** Default retries after the first attempt. */
export const retriesDefault = 6;
/** First backoff between attempts; it doubles per attempt up to `retryBackoffMsMax`. */
export const retryBackoffMsMin = 100;
export const retryBackoffMsMax = 2000;
/** Most requests awaiting an answer on one connection. */
export const inFlightRequestsMaxDefault = 10_000;
/** Most bytes queued for writing before senders wait. */
export const sendQueueBytesMax = 8 * 1024 * 1024;
/**
 * Most idempotent publishes to one topic in flight at once (sent, or waiting
 * to be resent, and not answered); more wait for a slot. A peer remembers the
 * last `producerSequencesMax` sequences of a producer, so a retry of any
 * publish still in flight is always recognised as one.
 */
export const publishesInFlightMax = 512;
/** Topics whose producer sequence a client keeps; the least recently used idle one is forgotten. */
export const producerStreamsMax = 10_000;
/** Topics whose (empty) publish outbox a client keeps; the oldest idle one is dropped. */
export const outboxesMax = 10_000;
/**
 * Most messages one coalesced `publish_batch` carries (the protocol allows
 * `batchMessagesMax`; smaller batches keep one slow batch from holding many
 * callers).
 */
export const coalescedMessagesMax = 4096;
/** Bytes a request needs besides its messages (action, topic, producer id, sequence, id). */
export const requestEnvelopeBytesMax = 1024;
/** Shortest and longest period of the sweep that enforces request deadlines. */
const sweepPeriodMsMin = 5;
const sweepPeriodMsMax = 250;
assert(
  publishesInFlightMax <= producerSequencesMax,
  "a peer's producer window must cover every publish a client keeps in flight",
);

/** Options of `PubSubClient.connect`. */
export interface ClientOptions {
  /** Bootstrap list of "host:port" addresses; any peer serves any request. */
  peers: string[];
  /** Auth token, sent first on every connection when given. */
  token?: string;
  /** Time one attempt may take before the connection is presumed dead. Default 5000. */
  requestTimeoutMs?: number;
  /** Largest response frame accepted. Default 64 MiB. */
  frameBytesMax?: number;
  /** Largest request frame sent, the peers' `--max-frame`. Default 1 MiB. */
  requestBytesMax?: number;
  /** Retries of a failed idempotent request (and reconnect rounds). Default 6. */
  retries?: number;
  /**
   * Most time one call may take over all its attempts. Default
   * `requestTimeoutMs` × (`retries` + 1). The CLI sets it to `--timeout`,
   * so a one-shot command never waits longer than it was told.
   */
  callTimeoutMs?: number;
  /** Try the bootstrap list in random order. Default false: in order. */
  shuffle?: boolean;
  /** Add producer_id and sequence to publishes so retries never duplicate. Default true. */
  idempotent?: boolean;
  /** Connect with TLS. */
  tls?: TransportOptions["tls"];
  /**
   * Send publishes straight to each topic's leader when it is one of
   * `peers` (learned with `describe_topic` and `ping`, refreshed every
   * `leaderRefreshMs` while publishing and after a refusal), and hold
   * subscriptions on the leader's connection (moved there once it is
   * learned). Default true; without it every request goes to the connected
   * peer, which forwards.
   */
  leaderDirect?: boolean;
  /** How long a learned leader is used before it is asked again. Default 2000. */
  leaderRefreshMs?: number;
  /**
   * Coalesce concurrent `publish` calls to one topic into `publish_batch`
   * requests (one producer sequence per batch). Default true; false sends
   * one request (and one sequence) per call.
   */
  coalesce?: boolean;
  /** Opens connections; tests substitute it. Default: TCP via `Deno.connect`. */
  connect?: (address: string, options: TransportOptions) => Promise<Transport>;
}

/** Answer of `createTopic`. */
export interface TopicCreated {
  topic: string;
  /** False when the topic existed and `ifNotExists` was set. */
  created: boolean;
}

/** Answer of `describeTopic`. */
export interface TopicInfo {
  topic: string;
  replicas: number[];
  leader: number | null;
  inSync: number[];
  /** The earliest retained offset. */
  firstOffset: number;
  nextOffset: number;
  /** Bytes of the leader's replica log (undefined from peers that do not report it). */
  bytes?: number;
  /** Messages retained (`nextOffset - firstOffset`). */
  messages?: number;
  /** The retention in force (`{}` keeps everything; undefined from peers that do not report it). */
  retention?: Retention;
}

/** Answer of `clusterStatus`. */
export interface ClusterInfo {
  nodes: NodeStatus[];
  metaLeader: number | null;
  /** Voters of the metadata group as the answering peer knows them (empty when it did not say). */
  metaVoters: number[];
  topics: number;
}

/** Options of one request sent with `PubSubClient.request`. */
export interface RequestOptions {
  /** Resend after a lost connection or an `unavailable` answer. Only for idempotent requests. */
  retry?: boolean;
}

/**
 * The idempotent publishes of this client to one topic: one producer id and
 * dense sequences from 0, which the topic stores in order, each once.
 */
interface ProducerStream {
  readonly topic: string;
  readonly producerId: string;
  nextSequence: number;
  /** Sequences assigned and not answered yet (ascending: assigned in order). */
  readonly unresolved: Set<number>;
  /** Calls refused as out of order while an earlier sequence was unresolved. */
  readonly parked: Map<number, Call>;
  /** Publishes waiting for one of the `publishesInFlightMax` slots. */
  slotWaiters: (() => void)[];
  /**
   * True once the stream's first publish was stored. Until then nothing else
   * is sent: the topic takes a new producer's first sequence as it comes, so
   * a later one must never overtake it.
   */
  started: boolean;
}

/** One request of a caller, over all its attempts; it is its own `PendingRequest`. */
interface Call extends PendingRequest {
  readonly order: number;
  readonly body: Record<string, unknown>;
  readonly retryable: boolean;
  /** The producer stream and sequence of an idempotent publish. */
  readonly producer?: { stream: ProducerStream; sequence: number };
  /** The topic a publish goes to: it is sent to that topic's leader when known. */
  readonly topic?: string;
  /** The connection a publish batch was assigned to; retries after it closed go elsewhere. */
  readonly pinned?: Connection;
  /** Fail rather than go elsewhere when `pinned` is closed (an unsubscribe must not reach another). */
  readonly strict?: boolean;
  readonly deadline: number;
  /** The whole call's time budget, for the timeout sentence. */
  readonly timeoutMs: number;
  /** When the current attempt's connection is presumed dead (Infinity while not sent). */
  attemptDeadline: number;
  /** The last retryable error answer: what the caller hears if the deadline ends the retries. */
  lastError?: { status: "unavailable"; error?: string };
  attempts: number;
  /** The id of the current attempt (answers to an earlier one are ignored). */
  id: number;
  connection: Connection | undefined;
  done: boolean;
  resolve(value: { response: unknown; connection: Connection }): void;
  reject(error: Error): void;
}

/**
 * The publish batches of one topic not answered yet, and the connection
 * they went out on: a batch goes to another connection (a newly learned
 * leader, the home peer again) only once they are answered, so publishes
 * of one client keep their order in the topic when the route changes.
 */
interface TopicRoute {
  connection: Connection | undefined;
  unanswered: number;
  settled: (() => void)[];
}

/** Single publishes to one topic waiting to go out together. */
interface Outbox {
  readonly topic: string;
  items: QueuedPublish[];
  draining: boolean;
  /** Runs `#drain` on this outbox (made once, queued as a microtask per burst). */
  readonly drain: () => void;
}

/** A request's measured size (see `#checkRequestSize`). */
interface RequestSize {
  /** An upper bound of its UTF-8 bytes as sent (any producer id, sequence and request id). */
  readonly bytes: number;
  /** Its message is ASCII with nothing to escape: its JSON text is the message between quotes. */
  readonly plain: boolean;
}

interface QueuedPublish {
  readonly message: string;
  /** An upper bound of the message's bytes in a JSON frame. */
  readonly bytes: number;
  /** Its publish request's size, when it was measured (a message near `requestBytesMax`). */
  readonly measured?: RequestSize;
  resolve(value: { offset: number }): void;
  reject(error: Error): void;
}

type ResolvedOptions =
  & Required<Omit<ClientOptions, "token" | "tls" | "callTimeoutMs">>
  & Pick<ClientOptions, "token" | "tls" | "callTimeoutMs">;

/**
 * A client of a pubsub cluster.
 *
 * @example
 * ```ts
 * const client = await PubSubClient.connect({ peers: ["localhost:5001", "localhost:5002"] });
 * await client.createTopic("events", { ifNotExists: true });
 * const { offset } = await client.publish("events", "hello");
 * console.log(offset, await client.fetchMessages("events"));
 * await client.close();
 * ```
 */
export class PubSubClient {
  /** This client's producer identity; publishes carry it with a sequence. */
  readonly producerId: string = crypto.randomUUID();
  #options: ResolvedOptions;
  #addresses: string[];
  #addressIndex = -1;
  #connection: Connection | undefined;
  #connecting: Promise<Error | undefined> | undefined;
  // Aborted by close() so that backoff sleeps end at once.
  #closing = new AbortController();
  #waiting: Call[] = [];
  #pumping = false;
  #nextId = 1;
  #nextOrder = 0;
  /** The current producer stream per topic, least recently used first. */
  #streams = new Map<string, ProducerStream>();
  /** The stream used last: it is the most recent one in `#streams` already. */
  #recentStream: ProducerStream | undefined;
  /** Streams started so far: numbers the producer id of the next one. */
  #streamEpoch = 0;
  #closed = false;
  #subscriptions: SubscriptionTable;
  /** Publishes per topic that wait for the next batch. */
  #outboxes = new Map<string, Outbox>();
  #leaders: LeaderDirectory;
  /** Connections to leaders other than the home connection, by node id. */
  #peers = new Map<number, Connection>();
  #discovering: Promise<void> | undefined;
  #learning = new Set<string>();
  #peerNodes = new Map<Connection, number>();
  /** Per topic with publish batches in flight: where they went. */
  #routes = new Map<string, TopicRoute>();
  /** Calls not answered yet; the sweep enforces their deadlines. */
  #unanswered = new Set<Call>();
  #sweepTimer: ReturnType<typeof setInterval> | undefined;

  private constructor(options: ResolvedOptions) {
    this.#options = options;
    this.#leaders = new LeaderDirectory({ refreshMs: options.leaderRefreshMs });
    this.#addresses = [...options.peers];
    if (options.shuffle) shuffleInPlace(this.#addresses);
    this.#subscriptions = this.#subscriptionTable();
  }

  #subscriptionTable(): SubscriptionTable {
    // deno-lint-ignore no-this-alias
    const client = this;
    const placing = this.#options.leaderDirect && this.#addresses.length > 1;
    return new SubscriptionTable({
      call: (body, { retry, connection, strict }) =>
        this.#call(body, retry, undefined, undefined, connection, strict),
      home: () => this.#connection,
      leaderConnection: (topic) => this.#leaderConnection(topic),
      refreshLeader: (topic) => this.#refreshLeader(topic),
      forgetLeader: (topic) => this.#leaders.forgetTopic(topic),
      retire: (connection) => this.#retire(connection),
      reconnect: () => void this.#reconnect(),
      get closed() {
        return client.#closed;
      },
    }, {
      retries: this.#options.retries,
      placeEveryMs: placing ? this.#options.leaderRefreshMs : 0,
      backoffMs,
    });
  }

  /**
   * Connects to the first reachable peer of `options.peers`.
   *
   * @example
   * ```ts
   * const client = await PubSubClient.connect({ peers: ["127.0.0.1:5001"], requestTimeoutMs: 2000 });
   * ```
   */
  static async connect(options: ClientOptions): Promise<PubSubClient> {
    const client = new PubSubClient(resolveOptions(options));
    const error = await client.#reconnect();
    if (error !== undefined) throw error;
    return client;
  }

  /** The address of the peer currently connected, if any. */
  get address(): string | undefined {
    return this.#connection?.address;
  }

  /**
   * Sends one raw request and resolves with the raw answer (without `id`).
   * Error answers reject with `PubSubError`.
   *
   * @example
   * ```ts
   * const answer = await client.request({ action: "ping" }, { retry: true });
   * ```
   */
  async request(body: Record<string, unknown>, options: RequestOptions = {}): Promise<unknown> {
    const { response } = await this.#call(body, options.retry ?? false);
    if (typeof response === "object" && response !== null && !Array.isArray(response)) {
      delete (response as { id?: unknown }).id;
    }
    return response;
  }

  /**
   * Creates a topic. Rejects with code `topic_exists` if it exists, unless `ifNotExists`.
   *
   * @example
   * ```ts
   * await client.createTopic("events", { ifNotExists: true });
   * ```
   */
  async createTopic(
    topic: string,
    options: { ifNotExists?: boolean; replicationFactor?: number; retention?: Retention } = {},
  ): Promise<TopicCreated> {
    const body: Record<string, unknown> = { action: "create_topic", topic_name: checkTopic(topic) };
    if (options.replicationFactor !== undefined) {
      body.replication_factor = options.replicationFactor;
    }
    if (options.retention !== undefined) body.retention = options.retention;
    try {
      await this.request(body, { retry: options.ifNotExists === true });
      return { topic, created: true };
    } catch (error) {
      if (options.ifNotExists && error instanceof PubSubError && error.code === "topic_exists") {
        return { topic, created: false };
      }
      throw error;
    }
  }

  /**
   * Changes a topic's retention: a number sets a limit, `null` removes it,
   * a limit left out stays. Resolves with the retention now in force.
   *
   * @example
   * ```ts
   * await client.alterTopic("events", { max_bytes: 100 * 1024 * 1024, max_age_ms: null });
   * ```
   */
  async alterTopic(topic: string, retention: RetentionPatch): Promise<Retention> {
    const answer = await this.request(
      { action: "alter_topic", topic_name: checkTopic(topic), retention },
      { retry: true },
    ) as { retention: Retention };
    return answer.retention;
  }

  /**
   * Publishes one message; resolves once it is durable on a majority.
   *
   * @example
   * ```ts
   * const { offset } = await client.publish("events", "hello");
   * ```
   */
  publish(topic: string, message: string): Promise<{ offset: number }> {
    if (this.#closed) return Promise.reject(new ClientClosedError());
    // A topic with an outbox was validated when the outbox was made.
    const outbox = this.#outboxes.get(topic);
    let measured: RequestSize | undefined;
    try {
      if (outbox === undefined) checkTopic(topic);
      // Checked here: one bad message must not fail the batch it would share with others.
      if (typeof message !== "string") {
        throw new PubSubError("bad_request", "Cannot publish as 'message' must be a string");
      }
      if (message.length * 6 + 1024 >= this.#options.requestBytesMax) {
        measured = this.#checkRequestSize({ action: "publish", topic_name: topic, message });
      }
    } catch (error) {
      return Promise.reject(error);
    }
    const queued = outbox ?? this.#newOutbox(topic);
    return new Promise((resolve, reject) => {
      queued.items.push({ message, bytes: message.length * 6 + 8, measured, resolve, reject });
      if (!queued.draining) {
        queued.draining = true;
        queueMicrotask(queued.drain);
      }
    });
  }

  /**
   * An outbox for `topic`. Empty outboxes stay for the next publish; past
   * `outboxesMax` the oldest idle one is dropped.
   */
  #newOutbox(topic: string): Outbox {
    if (this.#outboxes.size >= outboxesMax) {
      for (const [name, idle] of this.#outboxes) {
        if (!idle.draining && idle.items.length === 0) {
          this.#outboxes.delete(name);
          break;
        }
      }
    }
    const outbox: Outbox = {
      topic,
      items: [],
      draining: false,
      drain: () => void this.#drain(outbox),
    };
    this.#outboxes.set(topic, outbox);
    return outbox;
  }

  /**
   * Publishes messages as one batch with dense offsets.
   *
   * @example
   * ```ts
   * const { firstOffset, count } = await client.publishBatch("events", ["a", "b"]);
   * ```
   */
  async publishBatch(
    topic: string,
    messages: string[],
  ): Promise<{ firstOffset: number; count: number }> {
    const answer = await this.#publish({
      action: "publish_batch",
      topic_name: checkTopic(topic),
      messages,
    }) as { first_offset: number; count: number };
    return { firstOffset: answer.first_offset, count: answer.count };
  }

  /**
   * Every retained message of a topic, oldest first.
   *
   * @example
   * ```ts
   * const messages = await client.fetchMessages("events");
   * ```
   */
  async fetchMessages(topic: string): Promise<string[]> {
    return await this.request({ action: "fetch_messages", topic_name: checkTopic(topic) }, {
      retry: true,
    }) as string[];
  }

  /**
   * Up to `max` messages from `fromOffset`, and the offset to fetch next.
   * When retention already deleted `fromOffset`, the messages start at the
   * first retained offset, which `firstOffset` then tells.
   *
   * @example
   * ```ts
   * const { messages, nextOffset } = await client.fetch("events", { fromOffset: 10, max: 100 });
   * ```
   */
  async fetch(
    topic: string,
    options: { fromOffset?: number; max?: number } = {},
  ): Promise<{ messages: OffsetMessage[]; nextOffset: number; firstOffset?: number }> {
    const body: Record<string, unknown> = { action: "fetch", topic_name: checkTopic(topic) };
    if (options.fromOffset !== undefined) body.from_offset = options.fromOffset;
    if (options.max !== undefined) body.max = options.max;
    const answer = await this.request(body, { retry: true }) as {
      messages: OffsetMessage[];
      next_offset: number;
      first_offset?: number;
    };
    const page = { messages: answer.messages, nextOffset: answer.next_offset };
    return answer.first_offset === undefined ? page : { ...page, firstOffset: answer.first_offset };
  }

  /**
   * Topic names, sorted.
   *
   * @example
   * ```ts
   * const names = await client.topics();
   * ```
   */
  async topics(): Promise<string[]> {
    return await this.request({ action: "fetch_topics" }, { retry: true }) as string[];
  }

  /**
   * Deletes a topic (not retried: a retry could answer `topic_not_found`).
   *
   * @example
   * ```ts
   * await client.deleteTopic("events");
   * ```
   */
  async deleteTopic(topic: string): Promise<void> {
    await this.request({ action: "delete_topic", topic_name: checkTopic(topic) });
  }

  /**
   * Replicas, leader and offsets of a topic.
   *
   * @example
   * ```ts
   * const { leader, inSync } = await client.describeTopic("events");
   * ```
   */
  async describeTopic(topic: string): Promise<TopicInfo> {
    const answer = await this.request({ action: "describe_topic", topic_name: checkTopic(topic) }, {
      retry: true,
    }) as Record<string, unknown>;
    return {
      topic: answer.topic as string,
      replicas: answer.replicas as number[],
      leader: (answer.leader ?? null) as number | null,
      inSync: answer.in_sync as number[],
      firstOffset: answer.first_offset as number,
      nextOffset: answer.next_offset as number,
      bytes: answer.bytes as number | undefined,
      messages: answer.messages as number | undefined,
      retention: answer.retention as Retention | undefined,
    };
  }

  /**
   * Nodes and their states as the connected peer sees them.
   *
   * @example
   * ```ts
   * const { nodes } = await client.clusterStatus();
   * ```
   */
  async clusterStatus(): Promise<ClusterInfo> {
    const answer = await this.request({ action: "cluster_status" }, { retry: true }) as Record<
      string,
      unknown
    >;
    return {
      nodes: answer.nodes as NodeStatus[],
      metaLeader: (answer.meta_leader ?? null) as number | null,
      metaVoters: Array.isArray(answer.meta_voters) ? answer.meta_voters as number[] : [],
      topics: answer.topics as number,
    };
  }

  /**
   * Round trip to the connected peer; resolves with its node id.
   *
   * @example
   * ```ts
   * const { node } = await client.ping();
   * ```
   */
  async ping(): Promise<{ node: number }> {
    const answer = await this.request({ action: "ping" }, { retry: true }) as { node: number };
    return { node: answer.node };
  }

  /**
   * Stores `offset` as the last acknowledged offset of a durable subscriber.
   *
   * @example
   * ```ts
   * await client.ack("events", "billing", 41);
   * ```
   */
  async ack(topic: string, subscriberId: string, offset: number): Promise<void> {
    await this.request({
      action: "ack",
      topic_name: checkTopic(topic),
      subscriber_id: subscriberId,
      offset,
    }, { retry: true });
  }

  /**
   * Removes a node from the cluster for good.
   *
   * @example
   * ```ts
   * await client.removeNode(3);
   * ```
   */
  async removeNode(nodeId: number): Promise<void> {
    await this.request({ action: "remove_node", node_id: nodeId });
  }

  /**
   * Subscribes as the durable subscriber `subscriberId`; resolves once the peer
   * answered `subscribed`. After a reconnect it resubscribes by itself.
   *
   * @example
   * ```ts
   * const subscription = await client.subscribe("events", "billing", { from: "earliest" });
   * for await (const { offset, message } of subscription) console.log(offset, message);
   * ```
   */
  async subscribe(
    topic: string,
    subscriberId: string,
    options: SubscriptionOptions = {},
  ): Promise<Subscription> {
    const maxInFlight = options.maxInFlight ?? inFlightMessagesDefault;
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > inFlightMessagesMax) {
      throw new RangeError(
        `Cannot subscribe as 'maxInFlight' must be an integer between 1 and ${inFlightMessagesMax}: current value is ${maxInFlight}`,
      );
    }
    if (this.#closed) throw new ClientClosedError();
    return await this.#subscriptions.open(checkTopic(topic), subscriberId, {
      ...options,
      maxInFlight,
      autoAck: options.autoAck ?? true,
    });
  }

  /**
   * The address of the connection that holds a subscription (the topic's
   * leader once the client knows it), for tests and diagnostics.
   *
   * @example
   * ```ts
   * await client.subscribe("events", "billing");
   * console.log(client.subscriptionAddress("events", "billing"));
   * ```
   */
  subscriptionAddress(topic: string, subscriberId: string): string | undefined {
    return this.#subscriptions.connectionOf(topic, subscriberId)?.address;
  }

  /** Closes subscriptions (flushing their acks) and the connection; pending requests reject. */
  async close(): Promise<void> {
    if (this.#closed) return;
    // Unsubscribing is a courtesy: a dead peer must not hold close() for the whole retry budget.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#subscriptions.closeAll(),
      new Promise((resolve) => timer = setTimeout(resolve, this.#options.requestTimeoutMs)),
    ]);
    clearTimeout(timer);
    this.#closed = true;
    this.#closing.abort();
    for (const call of this.#waiting.splice(0)) this.#finish(call, new ClientClosedError());
    for (const stream of this.#streams.values()) {
      for (const call of stream.parked.values()) this.#finish(call, new ClientClosedError());
      for (const wake of stream.slotWaiters.splice(0)) wake();
    }
    for (const outbox of this.#outboxes.values()) {
      for (const item of outbox.items.splice(0)) item.reject(new ClientClosedError());
    }
    this.#connection?.close(new ClientClosedError());
    this.#connection = undefined;
    for (const peer of [...this.#peers.values()]) peer.close(new ClientClosedError());
    this.#subscriptions.stop();
    this.#stopSweep();
  }

  /**
   * Sends the queued publishes of one topic: the first at once, then, each
   * time the connection has written what went before, everything that
   * queued up meanwhile as one batch. An idempotent batch takes one sequence
   * and is retried whole, so the topic stores it once.
   */
  async #drain(outbox: Outbox): Promise<void> {
    try {
      while (outbox.items.length > 0 && !this.#closed) {
        this.#refreshLeader(outbox.topic);
        const connection = this.#connectionFor(outbox.topic);
        const route = this.#routes.get(outbox.topic);
        if (route !== undefined && route.connection !== connection) {
          // The route changed: what went out on the old one lands first.
          await new Promise<void>((resolve) => route.settled.push(resolve));
          continue;
        }
        if (connection?.busy) await connection.idle();
        let stream: ProducerStream | undefined;
        if (this.#options.idempotent) {
          const slot = this.#freeSlot(outbox.topic);
          // Waited for: then the route and the connection are looked at again.
          if (slot instanceof Promise) {
            await slot;
            continue;
          }
          stream = slot;
        }
        this.#sendBatch(outbox.topic, this.#takeBatch(outbox), stream, connection);
      }
    } catch (error) {
      for (const item of outbox.items.splice(0)) item.reject(error as Error);
    } finally {
      outbox.draining = false;
    }
  }

  /** The oldest queued publishes that fit one request frame. */
  #takeBatch(outbox: Outbox): QueuedPublish[] {
    if (!this.#options.coalesce) return outbox.items.splice(0, 1);
    const budget = this.#options.requestBytesMax - requestEnvelopeBytesMax;
    let count = 1;
    let bytes = outbox.items[0].bytes;
    while (count < outbox.items.length && count < coalescedMessagesMax) {
      bytes += outbox.items[count].bytes;
      if (bytes > budget) break;
      count++;
    }
    return outbox.items.splice(0, count);
  }

  #sendBatch(
    topic: string,
    items: QueuedPublish[],
    stream: ProducerStream | undefined,
    connection: Connection | undefined,
  ): void {
    let producer: Call["producer"];
    if (stream !== undefined) {
      const sequence = stream.nextSequence++;
      stream.unresolved.add(sequence);
      producer = { stream, sequence };
    }
    const body = publishBody(topic, items, producer);
    const single = items.length === 1 ? items[0] : undefined;
    const bodyJson = single === undefined
      ? undefined
      : publishJson(topic, single.message, producer, single.measured?.plain === true);
    let route = this.#routes.get(topic);
    if (route === undefined) {
      route = { connection, unanswered: 0, settled: [] };
      this.#routes.set(topic, route);
    }
    route.unanswered++;
    const sent = route;
    // Told by callbacks, not a promise: the answer reaches the publishers
    // without one more promise and turn of the microtask queue.
    this.#start(
      body,
      stream !== undefined,
      ({ response }) => {
        this.#batchSettled(topic, sent);
        const answer = response as { offset?: number; first_offset?: number };
        const first = (items.length === 1 ? answer.offset : answer.first_offset) as number;
        for (let index = 0; index < items.length; index++) {
          items[index].resolve({ offset: first + index });
        }
      },
      (error: Error) => {
        this.#batchSettled(topic, sent);
        for (const item of items) item.reject(error);
      },
      producer,
      topic,
      connection,
      false,
      bodyJson,
      single?.measured?.bytes,
    );
  }

  #batchSettled(topic: string, route: TopicRoute): void {
    if (--route.unanswered > 0) return;
    if (this.#routes.get(topic) === route) this.#routes.delete(topic);
    if (route.settled.length > 0) { for (const wake of route.settled.splice(0)) wake(); }
  }

  /**
   * Sends a publish; an idempotent one carries its topic stream's producer id
   * and next sequence, and is retried with them after a lost answer, so the
   * topic stores it once. A publish that fails for good may leave a gap in
   * the sequences, which the topic would refuse after it
   * (`out_of_order_sequence`): later publishes to the topic start a new
   * stream (a new producer id, from sequence 0).
   */
  async #publish(body: Record<string, unknown>): Promise<unknown> {
    if (!this.#options.idempotent) {
      return (await this.#call(body, false, undefined, body.topic_name as string)).response;
    }
    // Refused before a sequence is spent on it, so that it leaves no gap.
    this.#checkRequestSize(body);
    const stream = await this.#acquireSlot(body.topic_name as string);
    const sequence = stream.nextSequence++;
    stream.unresolved.add(sequence);
    const fields = { ...body, producer_id: stream.producerId, sequence };
    return (await this.#call(fields, true, { stream, sequence }, body.topic_name as string))
      .response;
  }

  /**
   * The publish `call` was answered for good (synchronously, so that an
   * answer read right after it already sees it settled). A failure retires
   * the stream: the failed sequence may be a gap the topic refuses after.
   */
  #producerSettled(call: Call, failed: boolean): void {
    if (call.producer === undefined) return;
    const { stream, sequence } = call.producer;
    stream.unresolved.delete(sequence);
    stream.parked.delete(sequence);
    if (!failed && !stream.started) {
      stream.started = true;
      // Everything that waited for the first publish may go now.
      for (const wake of stream.slotWaiters.splice(0)) wake();
    }
    if (failed && this.#streams.get(stream.topic) === stream) {
      this.#streams.delete(stream.topic);
      // Publishes waiting for a slot of the retired stream take the next one.
      for (const wake of stream.slotWaiters.splice(0)) wake();
    }
    stream.slotWaiters.shift()?.();
    this.#releaseParked(stream);
  }

  /** The topic's current stream once it has a free in-flight slot. */
  async #acquireSlot(topic: string): Promise<ProducerStream> {
    while (true) {
      const stream = this.#freeSlot(topic);
      if (!(stream instanceof Promise)) return stream;
      await stream;
    }
  }

  /** The topic's current stream when it has a free slot now, else when one may have freed up. */
  #freeSlot(topic: string): ProducerStream | Promise<void> {
    if (this.#closed) throw new ClientClosedError();
    const stream = this.#stream(topic);
    const open = stream.started || stream.nextSequence === 0;
    if (open && stream.unresolved.size < publishesInFlightMax) return stream;
    return new Promise<void>((resolve) => stream.slotWaiters.push(resolve));
  }

  #stream(topic: string): ProducerStream {
    let stream = this.#streams.get(topic);
    if (stream !== undefined) {
      if (stream !== this.#recentStream) {
        this.#streams.delete(topic);
        this.#streams.set(topic, stream);
        this.#recentStream = stream;
      }
      return stream;
    }
    if (this.#streams.size >= producerStreamsMax) {
      for (const [name, idle] of this.#streams) {
        if (idle.unresolved.size === 0 && idle.slotWaiters.length === 0) {
          this.#streams.delete(name);
          break;
        }
      }
    }
    // A new stream restarts at sequence 0, so its id must be one no topic
    // has seen: the client's own id first, then numbered ones.
    const epoch = this.#streamEpoch++;
    const producerId = epoch === 0 ? this.producerId : `${this.producerId}.${epoch}`;
    stream = {
      topic,
      producerId,
      nextSequence: 0,
      unresolved: new Set(),
      parked: new Map(),
      slotWaiters: [],
      started: false,
    };
    this.#streams.set(topic, stream);
    this.#recentStream = stream;
    return stream;
  }

  /**
   * Resends the parked calls of `stream` once nothing earlier is in flight:
   * their gap was an earlier publish still on its way, which has landed or
   * failed now. They go out in sequence order on one connection.
   */
  #releaseParked(stream: ProducerStream): void {
    if (stream.parked.size === 0) return;
    const lowest = stream.unresolved.values().next().value;
    if (lowest === undefined || !stream.parked.has(lowest)) return;
    const calls = [...stream.parked.values()];
    stream.parked.clear();
    for (const call of calls) {
      if (!call.done) this.#enqueue(call);
    }
  }

  /**
   * Refuses a request larger than `requestBytesMax` (`frame_too_large`);
   * one near the limit is measured exactly, and its size returned.
   */
  #checkRequestSize(body: Record<string, unknown>): RequestSize | undefined {
    const text = body.message ?? body.messages;
    const texts = Array.isArray(text) && text.every((item) => typeof item === "string")
      ? text as string[]
      : undefined;
    // Only a request near the limit is measured exactly (UTF-8, JSON escapes),
    // and its messages without encoding them (`_json_size.ts`).
    let roughBytes = 0;
    if (typeof text === "string") roughBytes = text.length;
    else if (texts !== undefined) { for (const item of texts) roughBytes += item.length + 1; }
    else roughBytes = JSON.stringify(text ?? null).length;
    if (roughBytes * 6 + 1024 < this.#options.requestBytesMax) return undefined;
    const measured = typeof text === "string" || texts !== undefined;
    // The largest envelope it can go out with: a topic stream's producer id
    // is this client's id or a numbered one (`#stream`), and the
    // connection trusts this bound instead of measuring the request again.
    const envelope = new TextEncoder().encode(JSON.stringify({
      ...body,
      ...(typeof text === "string" ? { message: "" } : texts !== undefined ? { messages: [] } : {}),
      producer_id: `${this.producerId}.${Number.MAX_SAFE_INTEGER}`,
      sequence: Number.MAX_SAFE_INTEGER,
      id: Number.MAX_SAFE_INTEGER,
    })).length;
    // The envelope holds "" or [] (two bytes) where the messages go.
    const textBytes = typeof text === "string" ? jsonStringBytes(text) : undefined;
    const bytes = !measured
      ? envelope
      : envelope - 2 + (textBytes !== undefined ? textBytes : jsonArrayBytes(texts!));
    if (bytes > this.#options.requestBytesMax) {
      throw new PubSubError(
        "frame_too_large",
        `Cannot send a ${bytes}-byte request as the limit is requestBytesMax ${this.#options.requestBytesMax}`,
      );
    }
    // Anything escaped or wider than a byte makes the JSON text longer than the message + 2.
    return { bytes, plain: textBytes !== undefined && textBytes === (text as string).length + 2 };
  }

  #call(
    body: Record<string, unknown>,
    retryable: boolean,
    producer?: Call["producer"],
    topic?: string,
    pinned?: Connection,
    strict?: boolean,
  ): Promise<{ response: unknown; connection: Connection }> {
    return new Promise((resolve, reject) => {
      this.#start(body, retryable, resolve, reject, producer, topic, pinned, strict);
    });
  }

  /**
   * `#call` telling `resolve` or `reject` (once, never during this call)
   * instead of a promise; `bodyJson` is the body's JSON without its closing
   * brace when the caller wrote it (see `PendingRequest.bodyJson`).
   */
  #start(
    body: Record<string, unknown>,
    retryable: boolean,
    resolve: Call["resolve"],
    reject: Call["reject"],
    producer?: Call["producer"],
    topic?: string,
    pinned?: Connection,
    strict?: boolean,
    bodyJson?: string,
    bodyBytes?: number,
  ): void {
    if (this.#closed) {
      queueMicrotask(() => reject(new ClientClosedError()));
      return;
    }
    const attemptsMax = retryable ? this.#options.retries + 1 : 1;
    const callTimeoutMs = Math.min(
      this.#options.callTimeoutMs ?? Infinity,
      this.#options.requestTimeoutMs * attemptsMax,
    );
    const call: Call = {
      order: this.#nextOrder++,
      body,
      bodyJson,
      bodyBytes,
      retryable,
      producer,
      topic: this.#options.leaderDirect ? topic : undefined,
      pinned,
      strict,
      deadline: Date.now() + callTimeoutMs,
      timeoutMs: callTimeoutMs,
      attemptDeadline: Infinity,
      attempts: 0,
      id: 0,
      connection: undefined,
      done: false,
      resolve,
      reject,
      settle: (response, id) => this.#onAnswer(call, id, response),
    };
    this.#unanswered.add(call);
    this.#startSweep();
    this.#enqueue(call);
  }

  /** One timer per client, not two per call: it runs while calls are unanswered. */
  #startSweep(): void {
    if (this.#sweepTimer !== undefined) return;
    const periodMs = Math.min(
      sweepPeriodMsMax,
      Math.max(sweepPeriodMsMin, Math.floor(this.#options.requestTimeoutMs / 10)),
    );
    this.#sweepTimer = setInterval(() => this.#sweep(), periodMs);
  }

  #sweep(): void {
    const now = Date.now();
    for (const call of this.#unanswered) {
      if (now >= call.deadline) {
        // A retried "unavailable" says why better than a timeout does.
        const last = call.lastError;
        this.#finish(
          call,
          last !== undefined
            ? new PubSubError(
              last.status,
              last.error ?? `Request '${call.body.action}' answered '${last.status}'`,
            )
            : new RequestTimeoutError(timeoutSentence(call.body.action, call.timeoutMs)),
        );
      } else if (now >= call.attemptDeadline && call.connection !== undefined) {
        // A silent connection is presumed dead: closing it retries or fails everything on it.
        call.attemptDeadline = Infinity;
        call.connection.close(
          new RequestTimeoutError(
            `No answer from ${call.connection.address} within ${this.#options.requestTimeoutMs} ms`,
          ),
        );
      }
    }
    if (this.#unanswered.size === 0) this.#stopSweep();
  }

  #stopSweep(): void {
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
  }

  /** Inserts in creation order, so retried requests go out before newer ones. */
  #enqueue(call: Call): void {
    let at = this.#waiting.length;
    while (at > 0 && this.#waiting[at - 1].order > call.order) at--;
    if (at === this.#waiting.length) this.#waiting.push(call);
    else this.#waiting.splice(at, 0, call);
    if (this.#connection === undefined) {
      this.#reconnect();
    } else {
      this.#pump();
    }
  }

  /**
   * Sends waiting calls in order while their connections have room; when
   * one has none, it goes on once that connection has (no promise per call).
   */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    let blocked: Connection | undefined;
    try {
      while (this.#waiting.length > 0) {
        const call = this.#waiting[0];
        if (call.done) {
          this.#waiting.shift();
          continue;
        }
        const pinned = call.attempts === 0 ? call.pinned : undefined;
        if (call.strict && pinned?.closed) {
          this.#waiting.shift();
          this.#finish(
            call,
            new ConnectionError(
              `Lost the connection to ${pinned.address} before '${call.body.action}'`,
            ),
          );
          continue;
        }
        const connection = pinned !== undefined && !pinned.closed
          ? pinned
          : this.#connectionFor(call.topic);
        if (connection === undefined) break;
        if (!connection.hasRoom) {
          blocked = connection;
          break;
        }
        this.#waiting.shift();
        this.#send(call, connection);
      }
    } finally {
      if (blocked === undefined) this.#pumping = false;
    }
    blocked?.room().then(this.#resumePump);
  }

  readonly #resumePump = (): void => {
    this.#pumping = false;
    this.#pump();
  };

  /** The leader's connection for a publish to `topic` when open, else the home connection. */
  #connectionFor(topic: string | undefined): Connection | undefined {
    if (topic === undefined || this.#peers.size === 0) return this.#connection;
    const leader = this.#leaders.leaderOf(topic);
    const direct = leader === undefined ? undefined : this.#peers.get(leader);
    return direct !== undefined && !direct.closed ? direct : this.#connection;
  }

  /**
   * Asks, in the background, who leads `topic` when that is unknown or
   * stale, and opens a connection to it; publishes meanwhile go through the
   * home connection. Only with more than one bootstrap address.
   */
  #refreshLeader(topic: string): void {
    if (!this.#options.leaderDirect || this.#addresses.length < 2) return;
    if (this.#learning.has(topic) || !this.#leaders.stale(topic, Date.now())) return;
    this.#learning.add(topic);
    this.#learnLeader(topic).finally(() => {
      this.#learning.delete(topic);
      this.#subscriptions.placeTopic(topic);
    });
  }

  /** The open connection to `topic`'s leader, when known (only with `leaderDirect`). */
  #leaderConnection(topic: string): Connection | undefined {
    if (!this.#options.leaderDirect) return undefined;
    const leader = this.#leaders.leaderOf(topic);
    const connection = leader === undefined ? undefined : this.#peers.get(leader);
    return connection !== undefined && !connection.closed ? connection : undefined;
  }

  async #learnLeader(topic: string): Promise<void> {
    let leader: number | null;
    try {
      const answer = await this.#call({ action: "describe_topic", topic_name: topic }, false);
      leader = (answer.response as { leader?: number | null }).leader ?? null;
    } catch {
      // Unknown now (no leader, no topic yet, no connection): publishes go home until asked again.
      this.#leaders.learnLeader(topic, null, Date.now());
      return;
    }
    this.#leaders.learnLeader(topic, leader, Date.now());
    if (leader === null || this.#peers.has(leader) || this.#closed) return;
    if (this.#leaders.addressOf(leader) === undefined) await this.#discoverNodes();
    const address = this.#leaders.addressOf(leader);
    if (address === undefined || this.#peers.has(leader) || this.#closed) return;
    try {
      this.#adoptPeer(leader, await this.#open(address));
    } catch {
      // Unreachable from here: the home connection forwards instead.
    }
  }

  /** Learns which node answers at each bootstrap address (one `ping` each), once at a time. */
  #discoverNodes(): Promise<void> {
    this.#discovering ??= this.#pingAll().finally(() => {
      this.#discovering = undefined;
    });
    return this.#discovering;
  }

  async #pingAll(): Promise<void> {
    for (const address of this.#addresses) {
      if (this.#closed || this.#leaders.nodeAt(address) !== undefined) continue;
      let connection: Connection;
      try {
        connection = await this.#open(address);
      } catch {
        continue;
      }
      try {
        const node = await this.#pingOn(connection);
        this.#leaders.learnNode(address, node);
        if (!this.#peers.has(node) && !this.#closed) {
          this.#adoptPeer(node, connection);
          continue;
        }
      } catch {
        // No answer: this address stays unknown.
      }
      connection.close(new PubSubError("disconnected", "Only asked who answers here"));
    }
  }

  #pingOn(connection: Connection): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new RequestTimeoutError(`No answer to 'ping' from ${connection.address}`)),
        this.#options.requestTimeoutMs,
      );
      connection.send({ action: "ping" }, {
        id: this.#nextId++,
        settle: (response) => {
          clearTimeout(timer);
          const node = (response as { node?: unknown }).node;
          if (typeof node === "number") resolve(node);
          else reject(new PubSubError("protocol", `Peer ${connection.address} did not say its id`));
        },
      });
    });
  }

  #adoptPeer(node: number, connection: Connection): void {
    if (this.#closed) {
      connection.close(new ClientClosedError());
      return;
    }
    this.#peers.set(node, connection);
    this.#peerNodes.set(connection, node);
  }

  #send(call: Call, connection: Connection): void {
    call.attempts++;
    call.id = this.#nextId++;
    call.connection = connection;
    try {
      connection.send(call.body, call);
    } catch (error) {
      this.#finish(call, error as Error);
      return;
    }
    call.attemptDeadline = Date.now() + this.#options.requestTimeoutMs;
  }

  #onAnswer(call: Call, id: number, response: unknown): void {
    const connection = call.connection;
    if (call.done || call.id !== id || connection === undefined) return;
    call.attemptDeadline = Infinity;
    if (isErrorResponse(response)) {
      if (call.topic !== undefined && this.#peerNodes.has(connection)) {
        // The leader it went to refused: ask again who leads before the next batch.
        this.#leaders.forgetTopic(call.topic);
      }
      if (response.status === "unavailable" && this.#mayRetry(call)) {
        call.lastError = { status: "unavailable", error: response.error };
        this.#retire(connection);
        this.#enqueue(call);
        return;
      }
      if (response.status === "out_of_order_sequence" && this.#mayPark(call)) return;
      if (response.status === "out_of_order_sequence") {
        this.#finish(call, new OutOfOrderSequenceError(response.error));
        return;
      }
      // Seed-era answers such as topic_exists carry no sentence: name the status instead.
      const topic = (response as { topic?: unknown }).topic;
      const message = typeof response.error === "string" && response.error !== ""
        ? response.error
        : response.status === "topic_exists" && typeof topic === "string"
        ? `Topic '${topic}' already exists`
        : `Request '${call.body.action}' answered '${response.status}'`;
      this.#finish(call, new PubSubError(response.status, message));
      return;
    }
    call.done = true;
    this.#unanswered.delete(call);
    this.#producerSettled(call, false);
    call.resolve({ response, connection });
  }

  /**
   * Parks a publish refused as out of order while an earlier one of its
   * stream is unanswered: the gap is that earlier publish, still on its way
   * (sent on another connection, or retried after this one went out). It is
   * resent once nothing earlier is in flight; a gap that remains then is
   * real, and the refusal reaches the caller.
   */
  #mayPark(call: Call): boolean {
    const producer = call.producer;
    if (producer === undefined || !this.#mayRetry(call)) return false;
    const lowest = producer.stream.unresolved.values().next().value;
    if (lowest === undefined || lowest >= producer.sequence) return false;
    producer.stream.parked.set(producer.sequence, call);
    this.#releaseParked(producer.stream);
    return true;
  }

  #mayRetry(call: Call): boolean {
    return call.retryable && !this.#closed && call.attempts <= this.#options.retries &&
      Date.now() < call.deadline;
  }

  #finish(call: Call, error: Error): void {
    if (call.done) return;
    call.done = true;
    this.#unanswered.delete(call);
    this.#producerSettled(call, true);
    call.reject(error);
  }

  /** Stops using a connection that answered `unavailable`; the next request goes elsewhere. */
  #retire(connection: Connection): void {
    if (this.#connection !== connection) return;
    this.#connection = undefined;
    connection.retire();
  }

  #onClose(connection: Connection, error: Error, unanswered: PendingRequest[]): void {
    if (this.#connection === connection) this.#connection = undefined;
    const node = this.#peerNodes.get(connection);
    if (node !== undefined) {
      this.#peerNodes.delete(connection);
      if (this.#peers.get(node) === connection) this.#peers.delete(node);
      this.#leaders.forgetNode(node);
    }
    for (const request of unanswered) {
      // Requests of the library itself (auth, ping) are no calls.
      if (!isCall(request)) continue;
      const call = request;
      if (call.done || call.connection !== connection) continue;
      call.attemptDeadline = Infinity;
      if (this.#mayRetry(call)) {
        this.#enqueue(call);
      } else {
        const reason = error instanceof PubSubError ? error : undefined;
        this.#finish(
          call,
          reason?.code === "timeout" || reason?.code === "closed" ? reason : new ConnectionError(
            `Lost the connection to ${connection.address} during '${call.body.action}'`,
            {
              cause: error,
            },
          ),
        );
      }
    }
    if (this.#closed) return;
    const orphaned = this.#subscriptions.connectionLost(connection);
    if (!orphaned && this.#waiting.length === 0) return;
    if (this.#connection === undefined) this.#reconnect();
    else this.#pump();
  }

  /** Connects to the next reachable address; one attempt runs at a time. */
  #reconnect(): Promise<Error | undefined> {
    this.#connecting ??= this.#connectLoop().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connectLoop(): Promise<Error | undefined> {
    let lastError: unknown;
    for (let round = 0; round <= this.#options.retries && !this.#closed; round++) {
      if (round > 0) await sleep(backoffMs(round), this.#closing.signal);
      for (let tried = 0; tried < this.#addresses.length && !this.#closed; tried++) {
        if (this.#connection !== undefined) break;
        this.#addressIndex = (this.#addressIndex + 1) % this.#addresses.length;
        try {
          const connection = await this.#open(this.#addresses[this.#addressIndex]);
          if (this.#closed) {
            connection.close(new ClientClosedError());
            break;
          }
          this.#connection = connection;
        } catch (error) {
          if (error instanceof PubSubError && error.code === "unauthorized") {
            this.#failWaiting(error);
            return error;
          }
          lastError = error;
          continue;
        }
      }
      if (this.#connection !== undefined) {
        this.#subscriptions.resubscribeLost();
        this.#pump();
        return undefined;
      }
    }
    const error = this.#closed
      ? new ClientClosedError()
      : new ConnectionError(`Cannot reach any peer of ${this.#addresses.join(",")}`, {
        cause: lastError,
      });
    this.#failWaiting(error);
    return error;
  }

  async #open(address: string): Promise<Connection> {
    const transport = await this.#options.connect(address, {
      connectTimeoutMs: this.#options.requestTimeoutMs,
      tls: this.#options.tls,
    });
    const connection = new Connection(transport, {
      frameBytesMax: this.#options.frameBytesMax,
      requestBytesMax: this.#options.requestBytesMax,
      inFlightRequestsMax: inFlightRequestsMaxDefault,
      sendQueueBytesMax,
    }, {
      onPush: (event, from) => this.#subscriptions.deliver(event, from),
      onClose: (closed, error, unanswered) => this.#onClose(closed, error, unanswered),
    });
    if (this.#options.token === undefined) return connection;
    const answer = await new Promise<unknown>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), this.#options.requestTimeoutMs);
      connection.send({ action: "auth", token: this.#options.token }, {
        id: this.#nextId++,
        settle: (response) => {
          clearTimeout(timer);
          resolve(response);
        },
      });
    });
    if (isErrorResponse(answer) || (answer as { status?: string })?.status !== "authenticated") {
      connection.close(new PubSubError("unauthorized", "Authentication failed"));
      throw isErrorResponse(answer) && answer.status === "unauthorized"
        ? new PubSubError("unauthorized", answer.error)
        : new ConnectionError(`No answer to 'auth' from ${address}`);
    }
    return connection;
  }

  #failWaiting(error: Error): void {
    for (const call of this.#waiting.splice(0)) this.#finish(call, error);
    this.#subscriptions.failLost(error);
  }
}

function resolveOptions(options: ClientOptions): ResolvedOptions {
  if (!Array.isArray(options.peers) || options.peers.length === 0) {
    throw new RangeError("Cannot connect as 'peers' must list at least one 'host:port' address");
  }
  for (const address of options.peers) parseAddress(address);
  const resolved: ResolvedOptions = {
    peers: options.peers,
    token: options.token,
    tls: options.tls,
    requestTimeoutMs: options.requestTimeoutMs ?? requestTimeoutMsDefault,
    frameBytesMax: options.frameBytesMax ?? responseBytesMaxDefault,
    requestBytesMax: options.requestBytesMax ?? frameBytesMaxDefault,
    retries: options.retries ?? retriesDefault,
    shuffle: options.shuffle ?? false,
    idempotent: options.idempotent ?? true,
    leaderDirect: options.leaderDirect ?? true,
    coalesce: options.coalesce ?? true,
    leaderRefreshMs: options.leaderRefreshMs ?? leaderRefreshMsDefault,
    connect: options.connect ?? connectTransport,
  };
  const integers: [keyof ResolvedOptions, number, number][] = [
    ["requestTimeoutMs", 1, 3_600_000],
    ["frameBytesMax", 1, 0xffffffff],
    ["requestBytesMax", 1, 0xffffffff],
    ["retries", 0, 1000],
    ["leaderRefreshMs", 1, 3_600_000],
  ];
  if (options.callTimeoutMs !== undefined) {
    resolved.callTimeoutMs = options.callTimeoutMs;
    integers.push(["callTimeoutMs", 1, 3_600_000]);
  }
  for (const [name, min, max] of integers) {
    const value = resolved[name] as number;
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new RangeError(
        `Cannot connect as '${name}' must be an integer between ${min} and ${max}: current value is ${value}`,
      );
    }
  }
  return resolved;
}

function checkTopic(topic: string): string {
  try {
    return validateTopicName(topic, "topic");
  } catch (error) {
    throw new PubSubError("bad_request", (error as Error).message, { cause: error });
  }
}

/**
 * A publish (or batch) request with every field set at once: one object
 * shape, which `JSON.stringify` writes on its fast path (fields added later
 * made the client's encoding of each request the slower one). A batch is
 * sent as this object's JSON; a lone publish as `publishJson`'s text, the
 * same bytes (tests/client/publish_request_test.ts), and the object serves
 * the call's bookkeeping and error messages.
 */
function publishBody(
  topic: string,
  items: readonly QueuedPublish[],
  producer: Call["producer"],
): Record<string, unknown> {
  if (items.length === 1) {
    const message = items[0].message;
    return producer === undefined ? { action: "publish", topic_name: topic, message } : {
      action: "publish",
      topic_name: topic,
      message,
      producer_id: producer.stream.producerId,
      sequence: producer.sequence,
    };
  }
  const messages = items.map((item) => item.message);
  return producer === undefined ? { action: "publish_batch", topic_name: topic, messages } : {
    action: "publish_batch",
    topic_name: topic,
    messages,
    producer_id: producer.stream.producerId,
    sequence: producer.sequence,
  };
}

/** Actions whose effect may land on the cluster although no answer came back. */
const writeActions = new Set([
  "publish",
  "publish_batch",
  "create_topic",
  "delete_topic",
  "alter_topic",
  "ack",
]);

/**
 * What a call that got no answer in `timeoutMs` says. For a write, the
 * request may have reached the cluster and taken effect before the answer
 * was lost (an idempotent publish retried meanwhile is still stored once):
 * the sentence says so rather than suggest it failed.
 *
 * @example
 * ```ts
 * timeoutSentence("publish", 5000);
 * // "No answer to 'publish' within 5000 ms; it may still have taken effect"
 * ```
 */
export function timeoutSentence(action: unknown, timeoutMs: number): string {
  const sentence = `No answer to '${action}' within ${timeoutMs} ms`;
  return typeof action === "string" && writeActions.has(action)
    ? `${sentence}; it may still have taken effect`
    : sentence;
}

/** The last topic and producer id written by `publishJson`, with their JSON texts. */
let publishJsonTopic = { topic: "", json: '""' };
let publishJsonProducer = { id: "", json: '""' };

/**
 * `JSON.stringify(publishBody(topic, [item], producer))` without its closing
 * brace, written as a template: a client publishes to few topics with one
 * producer id each, so their JSON texts are kept from the last publish. A
 * `plain` message (ASCII, nothing `JSON.stringify` escapes: measured so by
 * the size check) goes between quotes as it is, without one more scan and
 * copy (a 512 KiB message).
 */
function publishJson(
  topic: string,
  message: string,
  producer: Call["producer"],
  plain: boolean,
): string {
  if (publishJsonTopic.topic !== topic) publishJsonTopic = { topic, json: JSON.stringify(topic) };
  const text = plain ? `"${message}"` : JSON.stringify(message);
  const head = `{"action":"publish","topic_name":${publishJsonTopic.json},"message":${text}`;
  if (producer === undefined) return head;
  const id = producer.stream.producerId;
  if (publishJsonProducer.id !== id) publishJsonProducer = { id, json: JSON.stringify(id) };
  return `${head},"producer_id":${publishJsonProducer.json},"sequence":${producer.sequence}`;
}

function isCall(request: PendingRequest): request is Call {
  return "order" in request;
}

/** Exponential backoff with jitter so clients of a failed peer do not reconnect in lockstep. */
function backoffMs(round: number): number {
  const ceiling = Math.min(retryBackoffMsMax, retryBackoffMsMin * 2 ** (round - 1));
  return ceiling / 2 + Math.random() * ceiling / 2;
}

function shuffleInPlace<T>(items: T[]): void {
  for (let at = items.length - 1; at > 0; at--) {
    const other = Math.floor(Math.random() * (at + 1));
    [items[at], items[other]] = [items[other], items[at]];
  }
}
