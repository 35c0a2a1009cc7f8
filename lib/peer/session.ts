/**
 * One client connection's requests: authentication state, subscriptions, and
 * the mapping from typed requests to broker calls and exact response shapes
 * (PROTOCOL.md sections 2-4).
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { errorResponse, ProtocolError } from "../wire/errors.ts";
import type { Request } from "../wire/requests.ts";
import { AccessPolicy, fullAccessToken, type Principal, refusalOf } from "./auth.ts";
import { type Broker, type Route, TopicElsewhereError } from "./broker.ts";
import type { FrameWriter } from "./frame_writer.ts";
import { SubscriptionPump } from "./subscription.ts";
import type { Topic } from "./topic.ts";
import { publishRequestOf, type PublishScan } from "../wire/publish_fast.ts";
import type { PublishReceiver, RaftTopic } from "../cluster/raft_topic.ts";

/**
 * A topic that takes messages as the bytes of their JSON text
 * (`RaftTopic.publishBytesTo`, `publishArrayBytesTo`): the fast path's
 * requests go into the entry without being decoded, and are answered
 * without a promise.
 */
type BytesPublisher = Pick<RaftTopic, "publishBytesTo" | "publishArrayBytesTo">;

/** True for a topic of the fast path's kind (every replicated topic). */
function isBytesPublisher(topic: Topic): topic is Topic & BytesPublisher {
  const bytes = topic as Topic & Partial<BytesPublisher>;
  return bytes.publishBytesTo !== undefined && bytes.publishArrayBytesTo !== undefined;
}

/** Most messages one relayed batch of plain publishes carries. */
export const relayedMessagesMax = 1000;
/** Most message characters one relayed batch carries (its frame stays far below the peer limit). */
export const relayedCharsMax = 256 * 1024;

/**
 * Publishes to one topic relayed in one turn: plain ones travel to the
 * leader as one `publish_batch`, idempotent ones (each with its own producer
 * sequence) as one `publish_parts`; each gets its own answer back, in the
 * order they were routed. A batch holds one kind: a publish of the other
 * kind sends the open batch first, so the topic keeps the request order.
 */
interface RelayBatch {
  readonly topic: string;
  readonly leader: number;
  readonly idempotent: boolean;
  readonly messages: string[];
  /** The producer of each message (idempotent batches only). */
  readonly producers: { producer_id: string; sequence: number }[];
  chars: number;
  readonly answers: ((answer: unknown) => void)[];
  readonly failures: ((error: unknown) => void)[];
}

/** Most subscriptions one connection may hold. */
export const subscriptionsPerConnectionMax = 1000;

/** A handled request: its response, and work to run once the response is written. */
export interface Handled {
  response: unknown;
  afterWrite?: () => void;
  /** Close the connection after writing the response. */
  close?: boolean;
}

/** Settings a session needs from its peer. */
export interface SessionOptions {
  broker: Broker;
  /** Where pushed frames go; a session without one (a forwarded request) cannot subscribe. */
  writer?: FrameWriter;
  /** How many peers relayed the requests of this session before it (0 for clients). */
  hops?: number;
  /** Closes the connection (a subscription that cannot go on makes the client start over). */
  close?: () => void;
  /** When set (and `access` is not), `auth` with this token must come first. */
  authToken?: string;
  /**
   * When set, `auth` with one of its tokens must come first, and every
   * request is checked against that token's permissions before the broker
   * sees it. A session with neither `access` nor `authToken` may do
   * everything: the cluster's sessions for forwarded requests are such, since
   * the edge peer checked those requests already.
   */
  access?: AccessPolicy;
}

/**
 * Request handling for one connection.
 *
 * @example
 * ```ts
 * const session = new Session({ broker, writer });
 * const { response } = await session.handle({ action: "ping" });
 * ```
 */
export class Session {
  readonly #broker: Broker;
  /**
   * `broker.leadingTopic`, looked up once: the broker may be a proxy (the
   * delivery counter), and every request on a leader asks it.
   */
  readonly #leadingTopic: ((name: string) => Topic | undefined) | undefined;
  readonly #writer: FrameWriter | undefined;
  readonly #hops: number;
  readonly #options: SessionOptions;
  /**
   * The tail of each topic's routing queue (see `#atLeader`), while one of
   * its requests is being routed; at most one entry per request in progress.
   */
  readonly #routing = new Map<string, Promise<void>>();
  /** The batch of relayed plain publishes of each topic still open in this turn. */
  readonly #relays = new Map<string, RelayBatch>();
  readonly #access: AccessPolicy | undefined;
  /** Who authenticated on this connection; undefined before `auth` or without access control. */
  #principal: Principal | undefined;
  readonly #subscriptions = new Map<string, SubscriptionPump>();

  constructor(options: SessionOptions) {
    this.#broker = options.broker;
    const leadingTopic = options.broker.leadingTopic;
    this.#leadingTopic = leadingTopic === undefined
      ? undefined
      : (name) => leadingTopic.call(options.broker, name);
    this.#writer = options.writer;
    this.#hops = options.hops ?? 0;
    this.#options = options;
    this.#access = options.access ??
      (options.authToken === undefined
        ? undefined
        : new AccessPolicy([fullAccessToken(options.authToken)]));
  }

  /** True once the connection may make requests (always, without access control). */
  get authenticated(): boolean {
    return this.#access === undefined || this.#principal !== undefined;
  }

  /** Handles one request. Throws ProtocolError for protocol-level failures. */
  async handle(request: Request): Promise<Handled> {
    // 'auth' completes synchronously on purpose: a client may pipeline
    // requests right behind it, and the connection hands each one over as
    // soon as it arrives.
    if (request.action === "auth") return this.#auth(request.token);
    if (this.#access !== undefined) this.#authorize(request);
    if (request.action === "subscribe") return await this.#subscribe(request);
    return { response: await this.#respond(request) };
  }

  /**
   * The fast path of a `publish` or `publish_batch` (`Connection` takes it
   * for every request `scanPublish` reads): when the request may be served
   * here at once (authorized, nothing of its topic being routed, the topic
   * led here), the topic's publish is started now, exactly as `handle`
   * would start it, `receiver` hears how it ended, and the result is true;
   * false when `handle` must take the request (it then also answers
   * refusals). The messages go into the entry as the bytes they came as
   * (`RaftTopic.publishBytesTo`, `publishArrayBytesTo`) before this
   * returns: `payload` may be reused then. `receiver` hears nothing before
   * this returns, a refusal by the topic (not the leader any more, its
   * disk failed) included.
   */
  publishScanned(scanned: PublishScan, payload: Uint8Array, receiver: PublishReceiver): boolean {
    const name = scanned.topic_name;
    if (this.#access !== undefined) {
      const principal = this.#principal;
      // Only the topic decides a publish's permission (the same for both actions).
      const asked: Request = { action: "publish", topic_name: name, message: "" };
      if (principal === undefined || refusalOf(principal, asked) !== undefined) return false;
    }
    if (this.#routing.has(name)) return false;
    const topic = this.#leadingTopic?.(name);
    if (topic === undefined) return false;
    const producer = scanned.producer_id === undefined
      ? undefined
      : { producerId: scanned.producer_id, sequence: scanned.sequence! };
    try {
      if (isBytesPublisher(topic)) {
        const { messageStart: start, messageEnd: end } = scanned;
        if (scanned.action === "publish") {
          topic.publishBytesTo(receiver, payload, start, end, producer);
        } else {
          topic.publishArrayBytesTo(receiver, payload, start, end, scanned.messageCount, producer);
        }
        return true;
      }
      const request = publishRequestOf(scanned, payload);
      const messages = request.action === "publish" ? [request.message] : request.messages;
      topic.publish(messages, producer).then(
        (result) => receiver.resolve(result),
        (error) => receiver.reject(error),
      );
    } catch (error) {
      queueMicrotask(() => receiver.reject(error as Error));
    }
    return true;
  }

  #auth(token: string): Handled {
    if (this.#access === undefined) return { response: { status: "authenticated" } };
    const principal = this.#access.authenticate(token);
    if (principal === undefined) {
      this.#principal = undefined;
      return {
        response: { status: "unauthorized", error: "The token is wrong." },
        close: true,
      };
    }
    this.#principal = principal;
    return { response: { status: "authenticated" } };
  }

  /** Throws unauthorized before `auth`, forbidden when the token does not cover the request. */
  #authorize(request: Request): void {
    if (this.#principal === undefined) {
      throw new ProtocolError("unauthorized", "Authenticate with the 'auth' action first");
    }
    const refusal = refusalOf(this.#principal, request);
    if (refusal !== undefined) throw new ProtocolError("forbidden", refusal);
  }

  async #respond(request: Exclude<Request, { action: "auth" | "subscribe" }>): Promise<unknown> {
    const broker = this.#broker;
    switch (request.action) {
      case "create_topic": {
        const created = await broker.createTopic(
          request.topic_name,
          request.replication_factor,
          request.retention,
        );
        return { status: created ? "topic_created" : "topic_exists", topic: request.topic_name };
      }
      case "alter_topic":
        return await alterTopic(broker, request);
      case "publish":
      case "publish_batch":
      case "fetch_messages":
      case "fetch":
        return await this.#atLeader(request, (topic) => serveTopicRequest(topic, request));
      case "publish_parts":
        if (this.#hops === 0) {
          throw new ProtocolError("bad_request", "Action 'publish_parts' is only relayed by peers");
        }
        return await this.#atLeader(request, (topic) => servePublishParts(topic, request));
      case "ack": {
        const answer = await this.#atLeader(request, (topic) => acknowledge(topic, request));
        if ((answer as { status?: string }).status === "acked") {
          this.#subscriptions.get(subscriptionKey(request.topic_name, request.subscriber_id))
            ?.ack(request.offset);
        }
        return answer;
      }
      case "unsubscribe":
        return this.#unsubscribe(request.topic_name, request.subscriber_id);
      case "fetch_topics": {
        const names = await broker.topicNames();
        const principal = this.#principal;
        return principal === undefined ? names : names.filter((name) => principal.sees(name));
      }
      case "delete_topic":
        await broker.deleteTopic(request.topic_name);
        this.#stopTopic(request.topic_name);
        return { status: "topic_deleted", topic: request.topic_name };
      case "describe_topic":
        return {
          status: "topic",
          ...await broker.describeTopic(request.topic_name, { hops: this.#hops }),
        };
      case "cluster_status":
        return { status: "cluster", ...await broker.clusterStatus() };
      case "ping":
        return { status: "pong", node: broker.nodeId };
      case "remove_node":
        await broker.removeNode(request.node_id);
        return { status: "node_removed", node_id: request.node_id };
    }
  }

  /**
   * Serves a topic request here when this node leads the topic, else relays
   * it to the leader. Requests for one topic are routed one after another,
   * and each one's write is proposed (or relayed) before the next is routed,
   * so pipelined publishes on one connection keep their order in the topic.
   * Topics queue separately: one without a leader (or a slow one) does not
   * hold the requests for other topics back.
   */
  async #atLeader(
    request: Request & { topic_name: string },
    serve: (topic: Topic) => Promise<unknown>,
  ): Promise<unknown> {
    const name = request.topic_name;
    if (!this.#routing.has(name)) {
      // Nothing of this topic is being routed, and this node leads it: the
      // write is proposed now, so no later request can overtake it.
      const leading = this.#leadingTopic?.(name);
      if (leading !== undefined) return await serve(leading);
    }
    const route = async () => {
      const where = await this.#where(name);
      if (where.topic !== undefined) return { started: serve(where.topic) };
      if (request.action === "publish") {
        return { started: this.#relayPublish(name, where.elsewhere, request) };
      }
      const { id: _id, ...body } = request;
      const started = this.#broker.forward(where.elsewhere, body as Request, {
        hops: this.#hops + 1,
      }).then(stripId);
      return { started };
    };
    const previous = this.#routing.get(name);
    const step = previous === undefined ? route() : previous.then(route);
    const tail = step.then(() => {}, () => {});
    this.#routing.set(name, tail);
    tail.then(() => {
      if (this.#routing.get(name) === tail) this.#routing.delete(name);
    });
    const { started } = await step;
    return await started;
  }

  /** Where the requests of topic `name` go (brokers without `route` throw for "elsewhere"). */
  async #where(name: string): Promise<Route> {
    if (this.#broker.route !== undefined) {
      return await this.#broker.route(name, { hops: this.#hops });
    }
    try {
      return { topic: await this.#broker.topic(name, { hops: this.#hops }) };
    } catch (error) {
      if (!(error instanceof TopicElsewhereError)) throw error;
      return { elsewhere: error.leader };
    }
  }

  /**
   * Adds a publish to this turn's relayed batch of its topic; the batch
   * leaves once the turn ends (or when full, or when the leader or the kind
   * of publish changed), so a burst of publishes costs one peer request.
   */
  #relayPublish(
    topic: string,
    leader: number,
    request: Extract<Request, { action: "publish" }>,
  ): Promise<unknown> {
    const { message, producer_id, sequence } = request;
    const idempotent = producer_id !== undefined && sequence !== undefined;
    let batch = this.#relays.get(topic);
    if (
      batch !== undefined &&
      (batch.leader !== leader || batch.idempotent !== idempotent ||
        batch.messages.length >= relayedMessagesMax ||
        batch.chars + message.length > relayedCharsMax)
    ) {
      this.#sendRelay(batch);
      batch = undefined;
    }
    if (batch === undefined) {
      const opened: RelayBatch = {
        topic,
        leader,
        idempotent,
        messages: [],
        producers: [],
        chars: 0,
        answers: [],
        failures: [],
      };
      this.#relays.set(topic, opened);
      setImmediate(() => this.#sendRelay(opened));
      batch = opened;
    }
    batch.messages.push(message);
    if (idempotent) batch.producers.push({ producer_id, sequence });
    batch.chars += message.length;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    batch.answers.push(resolve);
    batch.failures.push(reject);
    return promise;
  }

  #sendRelay(batch: RelayBatch): void {
    if (this.#relays.get(batch.topic) !== batch) return;
    this.#relays.delete(batch.topic);
    const body = relayRequest(batch);
    this.#broker.forward(batch.leader, body, { hops: this.#hops + 1 }).then((answer) => {
      const answers = splitRelayAnswer(stripId(answer), batch);
      batch.answers.forEach((resolve, index) => resolve(answers[index]));
    }, (error) => {
      for (const reject of batch.failures) reject(error);
    });
  }

  async #subscribe(request: Extract<Request, { action: "subscribe" }>): Promise<Handled> {
    const key = subscriptionKey(request.topic_name, request.subscriber_id);
    if (
      !this.#subscriptions.has(key) && this.#subscriptions.size >= subscriptionsPerConnectionMax
    ) {
      throw new ProtocolError(
        "overloaded",
        `A connection may hold at most ${subscriptionsPerConnectionMax} subscriptions`,
      );
    }
    if (this.#writer === undefined) {
      throw new ProtocolError("bad_request", "A forwarded request cannot subscribe");
    }
    const source = await this.#broker.source(request.topic_name);
    const start = await this.#broker.subscribeStart(
      request.topic_name,
      request.subscriber_id,
      request.from,
      { hops: this.#hops },
    );
    this.#subscriptions.get(key)?.stop();
    const pump = new SubscriptionPump(
      source,
      request.subscriber_id,
      start,
      request.max_in_flight,
      this.#writer,
    );
    this.#subscriptions.set(key, pump);
    return {
      response: {
        status: "subscribed",
        topic: request.topic_name,
        subscriber_id: request.subscriber_id,
      },
      // Pushed messages must not overtake the 'subscribed' answer.
      afterWrite: () => pump.start(() => this.#options.close?.()),
    };
  }

  #unsubscribe(topicName: string, subscriberId: string): unknown {
    const key = subscriptionKey(topicName, subscriberId);
    const pump = this.#subscriptions.get(key);
    if (pump === undefined) {
      throw new ProtocolError(
        "bad_request",
        `This connection has no subscription of '${subscriberId}' to '${topicName}'`,
      );
    }
    pump.stop();
    this.#subscriptions.delete(key);
    return { status: "unsubscribed", topic: topicName, subscriber_id: subscriberId };
  }

  #stopTopic(topicName: string): void {
    for (const [key, pump] of this.#subscriptions) {
      if (pump.topic.name === topicName) {
        pump.stop();
        this.#subscriptions.delete(key);
      }
    }
  }

  /** Ends every subscription (the connection closed); stored offsets remain. */
  close(): void {
    for (const pump of this.#subscriptions.values()) pump.stop();
    this.#subscriptions.clear();
  }
}

function subscriptionKey(topicName: string, subscriberId: string): string {
  return `${topicName}\u0000${subscriberId}`;
}

function producerOf(request: { producer_id?: string; sequence?: number }) {
  if (request.producer_id === undefined || request.sequence === undefined) return undefined;
  return { producerId: request.producer_id, sequence: request.sequence };
}

/** Most messages `fetch_messages` returns (its answer is one frame). */
export const fetchAllMessagesMax = 1_000_000;

async function fetchAll(topic: Topic): Promise<string[]> {
  const { firstOffset, nextOffset } = await topic.bounds();
  if (nextOffset - firstOffset > fetchAllMessagesMax) {
    throw new ProtocolError(
      "bad_request",
      `Topic '${topic.name}' holds more than ${fetchAllMessagesMax} messages; use 'fetch' with 'from_offset'`,
    );
  }
  const messages: string[] = [];
  let offset = firstOffset;
  while (offset < nextOffset) {
    const page = await topic.read(offset, 10_000);
    if (page.messages.length === 0) break;
    for (const item of page.messages) messages.push(item.message);
    offset = page.nextOffset;
  }
  return messages;
}

/** Serves a publish or fetch on the topic's leader. */
async function serveTopicRequest(
  topic: Topic,
  request: Extract<Request, { action: "publish" | "publish_batch" | "fetch_messages" | "fetch" }>,
): Promise<unknown> {
  switch (request.action) {
    case "publish": {
      const result = await topic.publish([request.message], producerOf(request));
      return { status: "message_published", topic: topic.name, offset: result.firstOffset };
    }
    case "publish_batch": {
      const result = await topic.publish(request.messages, producerOf(request));
      return {
        status: "messages_published",
        topic: topic.name,
        first_offset: result.firstOffset,
        count: result.count,
      };
    }
    case "fetch_messages":
      return await fetchAll(topic);
    case "fetch": {
      const { messages, nextOffset } = await topic.read(request.from_offset, request.max);
      const answer: Record<string, unknown> = {
        status: "messages",
        topic: topic.name,
        messages,
        next_offset: nextOffset,
      };
      const firstOffset = firstOffsetBelow(request.from_offset, messages, nextOffset);
      if (firstOffset !== undefined) answer.first_offset = firstOffset;
      return answer;
    }
  }
}

/**
 * The first retained offset when a fetch asked for offsets retention had
 * already deleted (the read starts at the first retained one), else undefined.
 */
function firstOffsetBelow(
  fromOffset: number,
  messages: readonly { offset: number }[],
  nextOffset: number,
): number | undefined {
  const first = messages.length > 0 ? messages[0].offset : nextOffset;
  return first > fromOffset ? first : undefined;
}

/** Changes a topic's retention (on any node: the change goes through the metadata). */
async function alterTopic(
  broker: Broker,
  request: Extract<Request, { action: "alter_topic" }>,
): Promise<unknown> {
  if (broker.alterTopic === undefined) {
    throw new ProtocolError("bad_request", "This peer cannot change a topic's retention");
  }
  const retention = await broker.alterTopic(request.topic_name, request.retention);
  return { status: "topic_altered", topic: request.topic_name, retention };
}

/** Stores a cumulative ack on the topic's leader. */
async function acknowledge(
  topic: Topic,
  request: Extract<Request, { action: "ack" }>,
): Promise<unknown> {
  const { nextOffset } = await topic.bounds();
  if (request.offset >= nextOffset) {
    throw new ProtocolError(
      "bad_request",
      `Offset ${request.offset} is beyond the end of topic '${topic.name}' (${nextOffset})`,
    );
  }
  topic.ack(request.subscriber_id, request.offset);
  return {
    status: "acked",
    topic: topic.name,
    subscriber_id: request.subscriber_id,
    offset: request.offset,
  };
}

/** The request that relays `batch` to the topic's leader. */
function relayRequest(batch: RelayBatch): Request {
  const topic_name = batch.topic;
  if (batch.idempotent) {
    const parts = batch.messages.map((message, index) => ({ message, ...batch.producers[index] }));
    return { action: "publish_parts", topic_name, parts };
  }
  return batch.messages.length === 1
    ? { action: "publish", topic_name, message: batch.messages[0] }
    : { action: "publish_batch", topic_name, messages: batch.messages };
}

/**
 * Serves a `publish_parts` on the topic's leader: each part is published
 * with its own producer sequence, all in this turn (so they share one log
 * entry), and each gets the answer a `publish` of its own would get.
 */
async function servePublishParts(
  topic: Topic,
  request: Extract<Request, { action: "publish_parts" }>,
): Promise<unknown[]> {
  const publishes = request.parts.map((part) => {
    try {
      return topic.publish([part.message], {
        producerId: part.producer_id,
        sequence: part.sequence,
      });
    } catch (error) {
      return Promise.reject(error);
    }
  });
  const outcomes = await Promise.allSettled(publishes);
  return outcomes.map((outcome) => {
    if (outcome.status === "fulfilled") {
      return { status: "message_published", topic: topic.name, offset: outcome.value.firstOffset };
    }
    if (outcome.reason instanceof ProtocolError) {
      return errorResponse(outcome.reason.code, outcome.reason.message);
    }
    throw outcome.reason;
  });
}

/**
 * One answer per publish of a relayed batch: its own offset when the batch
 * was stored (an idempotent batch brings one answer per part), else the
 * batch's (error) answer for each.
 */
function splitRelayAnswer(answer: unknown, batch: RelayBatch): unknown[] {
  if (batch.idempotent) {
    const each = Array.isArray(answer) && answer.length === batch.messages.length;
    return batch.messages.map((_, index) => each ? (answer as unknown[])[index] : answer);
  }
  const stored = answer as { status?: unknown; offset?: unknown; first_offset?: unknown };
  const first = batch.messages.length === 1 ? stored.offset : stored.first_offset;
  const published = stored.status === "message_published" ||
    stored.status === "messages_published";
  return batch.messages.map((_, index) =>
    published && typeof first === "number"
      ? { status: "message_published", topic: batch.topic, offset: first + index }
      : answer
  );
}

function stripId(answer: unknown): unknown {
  if (typeof answer !== "object" || answer === null || Array.isArray(answer)) return answer;
  const { id: _id, ...rest } = answer as Record<string, unknown>;
  return rest;
}
