/**
 * Load generators of `pubsub bench`: a closed-loop publisher with a fixed
 * number of publishes in flight per producer, the prototype's per-iteration
 * series, and publish-to-delivery latency through a subscription. Every
 * workload is bounded by a duration or a count and stops on `signal`.
 *
 * @module
 */

import type { PubSubClient } from "../client/client.ts";
import type { LatencyHistogram } from "./histogram.ts";
import type { PublishRecord } from "./timeline.ts";

/** Most publishes one producer keeps in flight. */
export const inFlightPerProducerMax = 4096;
/** How long a subscriber may lag behind the last acknowledged publish before the run ends. */
export const deliveryDrainMs = 5_000;

/** Options of {@linkcode publishLoad}. */
export interface PublishLoadOptions {
  /** One client per producer. */
  clients: readonly PubSubClient[];
  /** Topics written round-robin. */
  topics: readonly string[];
  /** Publishes each producer keeps in flight (1 = sequential). */
  inFlight: number;
  /** Payload of every publish (see {@linkcode payloadOf}). */
  payload: string | (() => string);
  /** Stop after this long. */
  durationMs?: number;
  /** Stop after this many publishes were started. */
  count?: number;
  signal?: AbortSignal;
  /** Records the latency of every acknowledged publish. */
  histogram?: LatencyHistogram;
  /** Receives every publish with its send and ack time (`performance.now()`). */
  records?: PublishRecord[];
  /** Called after every acknowledged publish, e.g. for a progress display. */
  onAck?: (acked: number) => void;
}

/** What {@linkcode publishLoad} did. */
export interface PublishLoadResult {
  acked: number;
  failed: number;
  elapsedMs: number;
  /** Acknowledged publishes per second. */
  throughputPerSecond: number;
  /** The message of the first failure, if any. */
  firstError: string | undefined;
}

/**
 * A string of `bytes` ASCII characters, optionally starting with `prefix`.
 *
 * @example
 * ```ts
 * import { payloadOf } from "./workloads.ts";
 *
 * payloadOf(8, "t="); // "t=xxxxxx"
 * ```
 */
export function payloadOf(bytes: number, prefix = ""): string {
  return prefix.length >= bytes ? prefix : prefix + "x".repeat(bytes - prefix.length);
}

/**
 * Publishes with `inFlight` publishes outstanding per producer until the
 * duration or count is reached; a failed publish (after the client's own
 * retries) is counted and the load goes on.
 *
 * @example
 * ```ts
 * import { payloadOf, publishLoad } from "./workloads.ts";
 * import type { PubSubClient } from "../client/client.ts";
 *
 * declare const client: PubSubClient;
 * const result = await publishLoad({
 *   clients: [client],
 *   topics: ["events"],
 *   inFlight: 64,
 *   payload: payloadOf(100),
 *   durationMs: 2000,
 * });
 * console.log(result.throughputPerSecond);
 * ```
 */
export async function publishLoad(options: PublishLoadOptions): Promise<PublishLoadResult> {
  validateLoad(options);
  const startedMs = performance.now();
  const endMs = startedMs + (options.durationMs ?? Number.POSITIVE_INFINITY);
  const countMax = options.count ?? Number.POSITIVE_INFINITY;
  const payload = typeof options.payload === "string"
    ? () => options.payload as string
    : options.payload;
  let started = 0;
  let acked = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async (client: PubSubClient) => {
    while (started < countMax && performance.now() < endMs && !options.signal?.aborted) {
      const topic = options.topics[started % options.topics.length];
      started++;
      const record: PublishRecord = { sentMs: performance.now(), ackedMs: undefined };
      try {
        await client.publish(topic, payload());
        record.ackedMs = performance.now();
        acked++;
        options.histogram?.recordMilliseconds(record.ackedMs - record.sentMs);
        options.onAck?.(acked);
      } catch (error) {
        failed++;
        firstError ??= (error as Error).message;
      }
      options.records?.push(record);
    }
  };
  await Promise.all(
    options.clients.flatMap((client) =>
      Array.from({ length: options.inFlight }, () => worker(client))
    ),
  );
  const elapsedMs = performance.now() - startedMs;
  return {
    acked,
    failed,
    elapsedMs,
    throughputPerSecond: elapsedMs > 0 ? acked * 1000 / elapsedMs : 0,
    firstError,
  };
}

function validateLoad(options: PublishLoadOptions): void {
  if (options.clients.length === 0) {
    throw new RangeError("Cannot run a publish load as 'clients' is empty");
  }
  if (options.topics.length === 0) {
    throw new RangeError("Cannot run a publish load as 'topics' is empty");
  }
  if (
    !Number.isInteger(options.inFlight) || options.inFlight < 1 ||
    options.inFlight > inFlightPerProducerMax
  ) {
    throw new RangeError(
      `Cannot run a publish load as 'inFlight' must be an integer between 1 and ${inFlightPerProducerMax}: current value is ${options.inFlight}`,
    );
  }
  if (options.durationMs === undefined && options.count === undefined) {
    throw new RangeError("Cannot run a publish load without 'durationMs' or 'count'");
  }
}

/** One iteration of the prototype's three series. */
export interface IterationResult {
  topicCreationLatencyMs: number;
  publishThroughputPerSecond: number;
  fetchLatencyMs: number;
}

/**
 * The prototype's iteration: create a fresh topic (latency), publish
 * `messages` messages into it (throughput), fetch all of them (latency).
 *
 * @example
 * ```ts
 * import { runIteration } from "./workloads.ts";
 * import type { PubSubClient } from "../client/client.ts";
 *
 * declare const client: PubSubClient;
 * const result = await runIteration([client], "bench-iter-1", {
 *   messages: 500,
 *   inFlight: 16,
 *   messageBytes: 100,
 * });
 * ```
 */
export async function runIteration(
  clients: readonly PubSubClient[],
  topic: string,
  options: { messages: number; inFlight: number; messageBytes: number; signal?: AbortSignal },
): Promise<IterationResult> {
  const createStartMs = performance.now();
  await clients[0].createTopic(topic);
  const topicCreationLatencyMs = performance.now() - createStartMs;
  const load = await publishLoad({
    clients,
    topics: [topic],
    inFlight: options.inFlight,
    payload: payloadOf(options.messageBytes),
    count: options.messages,
    signal: options.signal,
  });
  if (load.failed > 0) {
    throw new Error(`${load.failed} publishes to '${topic}' failed: ${load.firstError}`);
  }
  const fetchStartMs = performance.now();
  const messages = await clients[0].fetchMessages(topic);
  const fetchLatencyMs = performance.now() - fetchStartMs;
  if (messages.length !== load.acked) {
    throw new Error(
      `Fetched ${messages.length} messages of '${topic}' after ${load.acked} acknowledged publishes`,
    );
  }
  return {
    topicCreationLatencyMs,
    publishThroughputPerSecond: load.throughputPerSecond,
    fetchLatencyMs,
  };
}

/** Options of {@linkcode publishToDelivery}. */
export interface DeliveryOptions {
  durationMs: number;
  messageBytes: number;
  /** Publishes in flight. */
  inFlight: number;
  histogram: LatencyHistogram;
  signal?: AbortSignal;
  onDelivered?: (delivered: number) => void;
}

/**
 * Publish-to-delivery latency: a subscriber on `subscriberClient` receives
 * what `publisherClient` publishes; every message carries its send time, so
 * the latency is taken on one clock in this process.
 *
 * @example
 * ```ts
 * import { LatencyHistogram } from "./histogram.ts";
 * import { publishToDelivery } from "./workloads.ts";
 * import type { PubSubClient } from "../client/client.ts";
 *
 * declare const publisher: PubSubClient, subscriber: PubSubClient;
 * const histogram = new LatencyHistogram();
 * await publishToDelivery(publisher, subscriber, "e2e", {
 *   durationMs: 2000,
 *   messageBytes: 100,
 *   inFlight: 1,
 *   histogram,
 * });
 * ```
 */
export async function publishToDelivery(
  publisherClient: PubSubClient,
  subscriberClient: PubSubClient,
  topic: string,
  options: DeliveryOptions,
): Promise<{ published: number; delivered: number }> {
  const subscription = await subscriberClient.subscribe(topic, `bench-${crypto.randomUUID()}`, {
    from: "latest",
  });
  let delivered = 0;
  let expected = Number.POSITIVE_INFINITY;
  const allDelivered = Promise.withResolvers<void>();
  const consume = (async () => {
    for await (const { message } of subscription) {
      const sentMs = Number(message.slice(0, message.indexOf("|")));
      options.histogram.recordMilliseconds(Math.max(0, performance.now() - sentMs));
      delivered++;
      options.onDelivered?.(delivered);
      if (delivered >= expected) break;
    }
    allDelivered.resolve();
  })();
  const load = await publishLoad({
    clients: [publisherClient],
    topics: [topic],
    inFlight: options.inFlight,
    payload: () => payloadOf(options.messageBytes, `${performance.now().toFixed(3)}|`),
    durationMs: options.durationMs,
    signal: options.signal,
  });
  expected = load.acked;
  if (delivered >= expected) await subscription.close();
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    allDelivered.promise,
    new Promise((resolve) => timer = setTimeout(resolve, deliveryDrainMs)),
  ]);
  clearTimeout(timer);
  await subscription.close();
  await consume.catch(() => {});
  return { published: load.acked, delivered };
}
