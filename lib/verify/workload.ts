/**
 * The workload of `pubsub verify`: idempotent producers, durable
 * subscribers and fetchers running against the cluster while the nemesis
 * injects faults, recording every operation in a {@linkcode History}.
 *
 * - **Producers** publish unique messages with `PubSubClient`'s idempotent
 *   producer; even-numbered ones one at a time, odd-numbered ones with
 *   `pipelineDepth` publishes in flight. Every fourth producer is impatient
 *   (short timeouts, one retry), so outcomes become unknown during faults. A publish that fails (refused, or
 *   its outcome unknown: timed out, connection lost, `unavailable` after
 *   every retry) ends the client session: the producer continues with a new
 *   client.
 * - **Subscribers** are durable (`subscriber_id`), acknowledge by hand, and
 *   end their session every 1-4 s to resume on another peer from the
 *   cluster's stored position, which is what the gap rule checks.
 * - **Fetchers** read a window just below the highest acknowledged offset,
 *   so a stale read (a fetch missing an acknowledged publish) shows up.
 *
 * @module
 */

import type { PubSubClient } from "../client/client.ts";
import { PubSubError } from "../client/errors.ts";
import type { Subscription } from "../client/subscription.ts";
import type { OffsetMessage } from "../wire/responses.ts";
import { sleep } from "../async.ts";
import type { History } from "./history.ts";

/** Publishes in flight on a pipelined producer. */
export const pipelineDepthDefault = 4;
/** Messages a fetcher asks for at once. */
export const fetchWindowMax = 50;
/** How far below the highest acknowledged offset a fetch may start. */
export const fetchLookbackMax = 20;
/** Unacknowledged pushes a subscriber allows. */
export const subscriberInFlightMax = 100;
/** A subscriber acknowledges after this many deliveries or `ackIntervalMs`, whichever first. */
export const ackEveryMessages = 20;
export const ackIntervalMs = 100;
/** How long a subscriber session lasts before it resumes elsewhere. */
export const subscriberSessionMsMin = 1_000;
export const subscriberSessionMsMax = 4_000;
/** Pause after a failed connect, and between two fetches. */
const reconnectPauseMs = 200;
const fetchPauseMs = 20;

/** Options of a {@linkcode Workload}. */
export interface WorkloadOptions {
  topic: string;
  /** Prefix of every message, unique to the run. */
  runTag: string;
  producers: number;
  subscribers: number;
  fetchers: number;
  pipelineDepth?: number;
  /**
   * A client of the cluster's current members, in a random order; an
   * impatient one gives up sooner (its publishes end unknown more often).
   */
  connect: (options: { impatient: boolean }) => Promise<PubSubClient>;
  history: History;
}

/**
 * Workers that run until told to stop.
 *
 * @example
 * ```ts
 * import { Workload } from "./workload.ts";
 *
 * const workload = new Workload({ topic, runTag, producers: 4, subscribers: 2, fetchers: 2, connect, history });
 * workload.start();
 * // ... faults ...
 * await workload.stopWriters();
 * await workload.drainSubscribers(history.highestAcknowledged + 1, 10_000);
 * ```
 */
export class Workload {
  readonly #options: WorkloadOptions;
  readonly #writers = new AbortController();
  readonly #readers = new AbortController();
  readonly #producers: Promise<void>[] = [];
  readonly #fetchers: Promise<void>[] = [];
  readonly #subscribers: Promise<void>[] = [];
  /** Highest offset each subscriber was delivered. */
  readonly #delivered: number[];
  /** Set while draining: subscribers keep their session until they reach it. */
  #drainTarget: number | undefined;

  constructor(options: WorkloadOptions) {
    this.#options = options;
    this.#delivered = Array.from({ length: options.subscribers }, () => -1);
  }

  start(): void {
    for (let index = 0; index < this.#options.producers; index++) {
      this.#producers.push(this.#produce(index));
    }
    for (let index = 0; index < this.#options.fetchers; index++) {
      this.#fetchers.push(this.#fetch(index));
    }
    for (let index = 0; index < this.#options.subscribers; index++) {
      this.#subscribers.push(this.#subscribe(index));
    }
  }

  /** Stops publishing and fetching; resolves once every publish in flight settled. */
  async stopWriters(): Promise<void> {
    this.#writers.abort();
    await Promise.all([...this.#producers, ...this.#fetchers]);
  }

  /**
   * Lets the subscribers run until each was delivered every offset below
   * `endOffset`, at most `timeoutMs`; then stops them. Returns the highest
   * offset each reached.
   */
  async drainSubscribers(endOffset: number, timeoutMs: number): Promise<number[]> {
    this.#drainTarget = endOffset - 1;
    const deadlineMs = performance.now() + timeoutMs;
    while (
      performance.now() < deadlineMs &&
      this.#delivered.some((highest) => highest < endOffset - 1)
    ) {
      await sleep(50);
    }
    this.#readers.abort();
    await Promise.all(this.#subscribers);
    return [...this.#delivered];
  }

  /** Stops every worker (Ctrl-C). */
  async stop(): Promise<void> {
    this.#writers.abort();
    this.#readers.abort();
    await Promise.all([...this.#producers, ...this.#fetchers, ...this.#subscribers]);
  }

  async #produce(producer: number): Promise<void> {
    const { history, topic, runTag } = this.#options;
    const stop = this.#writers.signal;
    const depth = producer % 2 === 0 ? 1 : this.#options.pipelineDepth ?? pipelineDepthDefault;
    const impatient = producer % 4 === 3;
    let sequence = 0;
    for (let session = 0; !stop.aborted; session++) {
      const client = await this.#connect(stop, impatient);
      if (client === undefined) continue;
      let broken = false;
      const lane = async () => {
        while (!stop.aborted && !broken) {
          const op = history.invokePublish({
            producer,
            session,
            message: `${runTag}:p${producer}:${sequence++}`,
          });
          try {
            const { offset } = await client.publish(topic, op.message);
            history.completePublish(op, { outcome: "ok", offset });
          } catch (error) {
            const definite = error instanceof PubSubError && error.code === "out_of_order_sequence";
            history.completePublish(op, {
              outcome: definite ? "failed" : "unknown",
              error: describeError(error),
            });
            // Any failure retires this client: the next session starts afresh.
            broken = true;
          }
        }
      };
      await Promise.all(Array.from({ length: depth }, lane));
      await closeQuietly(client);
    }
  }

  async #fetch(fetcher: number): Promise<void> {
    const { history, topic } = this.#options;
    const stop = this.#writers.signal;
    while (!stop.aborted) {
      const client = await this.#connect(stop);
      if (client === undefined) continue;
      while (!stop.aborted) {
        const acknowledgedBefore = history.highestAcknowledged;
        const fromOffset = Math.max(
          0,
          acknowledgedBefore - Math.floor(Math.random() * (fetchLookbackMax + 1)),
        );
        const invokedMs = history.now();
        try {
          const { messages, nextOffset } = await client.fetch(topic, {
            fromOffset,
            max: fetchWindowMax,
          });
          history.fetch({
            fetcher,
            invokedMs,
            fromOffset,
            max: fetchWindowMax,
            acknowledgedBefore,
            messages,
            nextOffset,
          });
        } catch (error) {
          history.fetch({
            fetcher,
            invokedMs,
            fromOffset,
            max: fetchWindowMax,
            acknowledgedBefore,
            error: describeError(error),
          });
          break;
        }
        await sleep(fetchPauseMs, stop);
      }
      await closeQuietly(client);
    }
  }

  async #subscribe(subscriber: number): Promise<void> {
    const stop = this.#readers.signal;
    for (let session = 0; !stop.aborted; session++) {
      const client = await this.#connect(stop);
      if (client === undefined) continue;
      try {
        const subscription = await client.subscribe(
          this.#options.topic,
          `${this.#options.runTag}-subscriber-${subscriber}`,
          { from: "earliest", autoAck: false, maxInFlight: subscriberInFlightMax },
        );
        await this.#session(subscriber, session, subscription);
        await withTimeout(subscription.close(), 2_000);
      } catch {
        // The session ended with an error: the next one resumes from the stored position.
      } finally {
        await closeQuietly(client);
      }
    }
  }

  /** Takes deliveries and acknowledges them until the session's time is up. */
  async #session(subscriber: number, session: number, subscription: Subscription): Promise<void> {
    const { history } = this.#options;
    const stop = this.#readers.signal;
    const lengthMs = subscriberSessionMsMin +
      Math.random() * (subscriberSessionMsMax - subscriberSessionMsMin);
    const endMs = performance.now() + lengthMs;
    let next: Promise<IteratorResult<OffsetMessage>> = subscription.next();
    let highest = -1;
    let acked = -1;
    let ackedAt = performance.now();
    let acking: Promise<void> | undefined;
    const ack = (offset: number) => {
      const invokedMs = history.now();
      acked = offset;
      ackedAt = performance.now();
      acking = subscription.ack(offset).then(
        () => history.ack({ subscriber, session, offset, invokedMs, ok: true }),
        () => history.ack({ subscriber, session, offset, invokedMs, ok: false }),
      ).finally(() => acking = undefined);
    };
    const draining = () =>
      this.#drainTarget !== undefined && this.#delivered[subscriber] < this.#drainTarget;
    while (!stop.aborted && (performance.now() < endMs || draining())) {
      const result = await Promise.race([next, sleep(ackIntervalMs).then(() => undefined)]);
      if (result !== undefined) {
        if (result.done) return;
        const { offset, message } = result.value;
        history.deliver({ subscriber, session, offset, message });
        highest = offset;
        this.#delivered[subscriber] = Math.max(this.#delivered[subscriber], offset);
        next = subscription.next();
      }
      const due = highest - acked >= ackEveryMessages ||
        performance.now() - ackedAt >= ackIntervalMs;
      if (highest > acked && due && acking === undefined) ack(highest);
    }
    // A pending read would reject once the client closes; nobody waits for it.
    next.catch(() => {});
    await acking;
    if (highest > acked) {
      ack(highest);
      await acking;
    }
  }

  async #connect(stop: AbortSignal, impatient = false): Promise<PubSubClient | undefined> {
    try {
      return await this.#options.connect({ impatient });
    } catch {
      await sleep(reconnectPauseMs, stop);
      return undefined;
    }
  }
}

function describeError(error: unknown): string {
  if (error instanceof PubSubError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

async function closeQuietly(client: PubSubClient): Promise<void> {
  await withTimeout(client.close().catch(() => {}), 5_000);
}

async function withTimeout(promise: Promise<unknown>, timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    promise.catch(() => {}),
    new Promise((resolve) => timer = setTimeout(resolve, timeoutMs)),
  ]);
  clearTimeout(timer);
}
