/**
 * The simulated clients. They reach a peer as a client connection does: a
 * `Session` on that peer's broker, each request encoded as a real frame and
 * decoded by the real request validator, each answer encoded back. A
 * client that gets no answer in time (its peer crashed, or is cut off)
 * tries another peer, as `PubSubClient` fails over.
 *
 * - Producers publish one sequence at a time with an idempotent producer id
 *   and retry it until acknowledged, so a retried publish that was stored
 *   the first time must come back with its first offset.
 * - Subscribers resume durably (`subscribeStart`, as a `subscribe` request
 *   does) and receive the message frames the production `SubscriptionPump`
 *   pushes from the peer's message source, then ack what they received; a
 *   resume past the last offset they acked, or a pushed offset other than
 *   the next one, is a skip.
 * - Fetchers read from just below the highest acknowledged offset: a fetch
 *   must see every publish acknowledged before it began.
 *
 * @module
 */

import type { ClusterBroker } from "../../cluster/cluster_broker.ts";
import type { ManualScheduler } from "../../cluster/manual_scheduler.ts";
import { type ByteSink, FrameWriter } from "../../peer/frame_writer.ts";
import { Session } from "../../peer/session.ts";
import { SubscriptionPump } from "../../peer/subscription.ts";
import type { MessageSource } from "../../peer/topic.ts";
import { ProtocolError } from "../../wire/errors.ts";
import { encodeFrame, FrameDecoder } from "../../wire/frame.ts";
import { decodeRequest } from "../../wire/requests.ts";
import type { MessageEvent } from "../../wire/responses.ts";
import type { Prng } from "../prng.ts";
import type { History } from "./sim_history.ts";
import type { SimCluster } from "./sim_cluster.ts";

/** What every client shares. */
export interface ClientContext {
  scheduler: ManualScheduler;
  rng: Prng;
  cluster: SimCluster;
  history: History;
  /** How long a client waits for an answer before it tries another peer. */
  timeoutMs: number;
  /** Set at the end of the run: clients finish what they do and stop. */
  stopped: boolean;
  /**
   * The `fetch-from-follower` broken variant: fetches read the contacted
   * peer's own replica instead of asking the leader.
   */
  fetchLocally?: boolean;
}

/** An answer, or why there was none. */
type Outcome = { ok: true; answer: Record<string, unknown> } | { ok: false; error: string };

const sessions = new WeakMap<ClusterBroker, Session>();

/**
 * Resolves after `ms` of virtual time.
 *
 * @example
 * ```ts
 * await pause(context, 200);
 * ```
 */
export function pause(context: ClientContext, ms: number): Promise<void> {
  return new Promise((resolve) => context.scheduler.schedule(ms, resolve));
}

/** `promise`, or undefined after the client's timeout. */
function bounded<T>(context: ClientContext, promise: Promise<T>): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const cancel = context.scheduler.schedule(context.timeoutMs, () => resolve(undefined));
    promise.then((value) => {
      cancel();
      resolve(value);
    }, (error) => {
      cancel();
      reject(error);
    });
  });
}

/** A peer whose broker is open, picked at random; undefined when none is. */
function pickBroker(context: ClientContext): ClusterBroker | undefined {
  const brokers = [...context.cluster.brokers().values()];
  return brokers.length === 0 ? undefined : context.rng.pick(brokers);
}

/**
 * Sends `request` over `broker`'s client session, through the wire codec
 * both ways; `late` also sees an answer that arrives after the timeout.
 */
async function call(
  context: ClientContext,
  broker: ClusterBroker,
  request: Record<string, unknown>,
  late?: (answer: Record<string, unknown>) => void,
): Promise<Outcome> {
  let session = sessions.get(broker);
  if (session === undefined) {
    session = new Session({ broker });
    sessions.set(broker, session);
  }
  const decoded = decodeRequest(encodeFrame(request).subarray(4));
  const handled = session.handle(decoded).then(
    (result) => wire(result.response),
    (error) => {
      if (error instanceof ProtocolError) return { status: error.code, error: error.message };
      context.history.violate(
        "unexpected_error",
        `Node ${broker.nodeId} failed ${request.action} with ${(error as Error).stack ?? error}`,
      );
      return { status: "unavailable", error: String(error) };
    },
  );
  let timedOut = false;
  if (late !== undefined) handled.then((answer) => timedOut && late(answer));
  const answer = await bounded(context, handled);
  if (answer === undefined) {
    timedOut = true;
    return { ok: false, error: "timeout" };
  }
  return { ok: true, answer };
}

/** The answer as the client decodes it from its frame. */
function wire(response: unknown): Record<string, unknown> {
  const decoded = JSON.parse(new TextDecoder().decode(encodeFrame(response).subarray(4)));
  return Array.isArray(decoded) ? { status: "list", items: decoded } : decoded;
}

/**
 * Publishes `count` messages as producer `name`, one sequence at a time,
 * retrying each until it is acknowledged.
 *
 * @example
 * ```ts
 * await runProducer(context, "alpha-p0", "alpha", 20);
 * ```
 */
export async function runProducer(
  context: ClientContext,
  name: string,
  topic: string,
  count: number,
): Promise<void> {
  const record = (sequence: number, message: string) => (answer: Record<string, unknown>) => {
    if (answer.status !== "message_published") return;
    context.history.acknowledged(topic, name, sequence, message, answer.offset as number);
  };
  for (let sequence = 0; sequence < count && !context.stopped; sequence++) {
    const message = `${name}-${sequence}`;
    const request = { action: "publish", topic_name: topic, message, producer_id: name, sequence };
    while (!context.stopped) {
      const broker = pickBroker(context);
      if (broker === undefined) {
        await pause(context, 200);
        continue;
      }
      const outcome = await call(context, broker, request, record(sequence, message));
      if (outcome.ok && outcome.answer.status === "message_published") {
        record(sequence, message)(outcome.answer);
        break;
      }
      if (outcome.ok && outcome.answer.status === "out_of_order_sequence") {
        context.history.violate(
          "idempotent_retry_refused",
          `A retry of ${name} sequence ${sequence} was refused: ${outcome.answer.error}`,
        );
        break;
      }
      await pause(context, context.rng.range(50, 400));
    }
    await pause(context, context.rng.range(10, 300));
  }
}

/**
 * Fetches from just below the highest acknowledged offset, again and again,
 * until the context stops.
 *
 * @example
 * ```ts
 * runFetcher(context, "alpha");
 * ```
 */
export async function runFetcher(context: ClientContext, topic: string): Promise<void> {
  while (!context.stopped) {
    await pause(context, context.rng.range(200, 1000));
    const broker = pickBroker(context);
    if (broker === undefined) continue;
    const ackedBelow = context.history.ackedBelow(topic);
    const invokedAt = context.scheduler.now();
    const from = Math.max(0, ackedBelow - 3);
    const page = context.fetchLocally
      ? await fetchLocal(context, broker, topic, from)
      : await fetchThroughApi(context, broker, topic, from);
    if (page === undefined) continue;
    context.history.fetched({
      topic,
      node: broker.nodeId,
      invokedAt,
      ackedBelow,
      messages: page.messages.map(({ offset, message }) => ({ offset, message })),
      nextOffset: page.nextOffset,
    });
  }
}

type Page = { messages: { offset: number; message: string }[]; nextOffset: number };

/** A `fetch` request, as a client sends it. */
async function fetchThroughApi(
  context: ClientContext,
  broker: ClusterBroker,
  topic: string,
  from: number,
): Promise<Page | undefined> {
  const outcome = await call(context, broker, {
    action: "fetch",
    topic_name: topic,
    from_offset: from,
    max: 50,
  });
  if (!outcome.ok || outcome.answer.status !== "messages") return undefined;
  return {
    messages: outcome.answer.messages as Page["messages"],
    nextOffset: outcome.answer.next_offset as number,
  };
}

/** The broken variant's fetch: the peer's own committed log, no leader asked. */
async function fetchLocal(
  context: ClientContext,
  broker: ClusterBroker,
  topic: string,
  from: number,
): Promise<Page | undefined> {
  try {
    const source = await bounded(context, broker.source(topic));
    return source === undefined
      ? undefined
      : await bounded(context, source.readCommitted(from, 50));
  } catch {
    return undefined;
  }
}

/** Messages a simulated subscription may hold unacknowledged (its `max_in_flight`). */
const subscriberInFlightMax = 20;
/** Waits of 300 ms one subscription lasts before the subscriber resubscribes elsewhere. */
const subscriptionRoundsMax = 20;

/**
 * A durable subscriber: resumes where its acks say, as a client's
 * `subscribe` does, with the production `SubscriptionPump` pushing message
 * frames from the peer's message source (on the peer's virtual clock), and
 * acks what it received, until the context stops.
 *
 * @example
 * ```ts
 * runSubscriber(context, "alpha-s0", "alpha");
 * ```
 */
export async function runSubscriber(
  context: ClientContext,
  id: string,
  topic: string,
): Promise<void> {
  /** Highest offset this subscriber ever asked to ack. */
  let ackedMax = -1;
  while (!context.stopped) {
    await pause(context, context.rng.range(100, 800));
    const broker = pickBroker(context);
    const scheduler = broker && context.cluster.peer(broker.nodeId).process?.scheduler;
    if (broker === undefined || scheduler === undefined) continue;
    let source: MessageSource | undefined;
    let start: number | undefined;
    try {
      // What `Session` does for a `subscribe` request, in its order.
      source = await bounded(context, broker.source(topic));
      if (source === undefined) continue;
      start = await bounded(context, broker.subscribeStart(topic, id, "earliest"));
    } catch {
      continue;
    }
    if (start === undefined) continue;
    if (start > ackedMax + 1) {
      context.history.violate(
        "subscriber_skip",
        `Subscriber ${id} of '${topic}' resumed at offset ${start} on node ${broker.nodeId}, past its last ack ${ackedMax}`,
      );
    }
    ackedMax = Math.max(ackedMax, start - 1);
    const pushed: MessageEvent[] = [];
    const pump = new SubscriptionPump(
      source,
      id,
      start,
      subscriberInFlightMax,
      new FrameWriter(pushedFrames(pushed)),
      { scheduler },
    );
    // A read that keeps failing stops the pump (a client would reconnect): resubscribe.
    pump.start();
    try {
      ackedMax = await receiveAndAck(context, { broker, pump, pushed, id, topic }, start, ackedMax);
    } finally {
      pump.stop();
    }
  }
}

/** A client connection's byte stream, decoded back into the message events pushed on it. */
function pushedFrames(pushed: MessageEvent[]): ByteSink {
  const decoder = new FrameDecoder();
  const text = new TextDecoder();
  return {
    write(bytes: Uint8Array): Promise<number> {
      for (const event of decoder.push(bytes)) {
        if (event.kind !== "frame") continue;
        const value = JSON.parse(text.decode(event.payload));
        if (value?.event === "message") pushed.push(value as MessageEvent);
      }
      return Promise.resolve(bytes.length);
    },
  };
}

/** One subscription: its peer, its pump, and the events pushed so far. */
interface Subscription {
  broker: ClusterBroker;
  pump: SubscriptionPump;
  pushed: MessageEvent[];
  id: string;
  topic: string;
}

/**
 * Takes the pushed messages in order (each must be the next offset), acks
 * each batch through the session as a client does, until the pump stops,
 * an ack fails or `subscriptionRoundsMax` waits passed; returns the highest
 * ack sent.
 */
async function receiveAndAck(
  context: ClientContext,
  subscription: Subscription,
  start: number,
  ackedMax: number,
): Promise<number> {
  const { broker, pump, pushed, id, topic } = subscription;
  let next = start;
  for (let round = 0; round < subscriptionRoundsMax && !context.stopped; round++) {
    if (pushed.length === 0) {
      if (pump.stopped) return ackedMax;
      await pause(context, 300);
      continue;
    }
    for (const item of pushed.splice(0)) {
      if (item.offset !== next || item.skipped !== undefined) {
        context.history.violate(
          "subscriber_skip",
          `Subscriber ${id} of '${topic}' expected offset ${next} and was pushed ${item.offset}${
            item.skipped === undefined ? "" : ` (${item.skipped} skipped)`
          }`,
        );
      }
      context.history.delivered(topic, item.offset, item.message);
      next = item.offset + 1;
    }
    const offset = next - 1;
    ackedMax = Math.max(ackedMax, offset);
    const outcome = await call(context, broker, {
      action: "ack",
      topic_name: topic,
      subscriber_id: id,
      offset,
    });
    if (!outcome.ok || outcome.answer.status !== "acked") return ackedMax;
    // As `Session` does when the leader confirmed the ack: the window opens.
    pump.ack(offset);
  }
  return ackedMax;
}
