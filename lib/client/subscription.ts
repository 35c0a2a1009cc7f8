/**
 * A durable subscription as an async iterable of messages, with coalesced
 * cumulative acks and duplicate suppression across reconnects.
 *
 * @module
 */

import type { OffsetMessage } from "../wire/responses.ts";

/**
 * A message of a subscription. `skipped` (absent when 0) counts the offsets
 * right before this one that retention deleted before they could be
 * delivered: the subscriber's saved position (or the next offset it was
 * due) had fallen below the topic's first retained offset.
 */
export interface SubscribedMessage extends OffsetMessage {
  skipped?: number;
}
import type { SubscribeFrom } from "../wire/requests.ts";
import { ClientClosedError, PubSubError } from "./errors.ts";

/** How long a taken message may wait before its coalesced ack goes out. */
export const ackDelayMs = 50;

/** What a subscription needs from its client. */
export interface SubscriptionHost {
  request(body: Record<string, unknown>, options: { retry: boolean }): Promise<unknown>;
  detach(subscription: Subscription): void;
}

/** Options of a subscription (see `PubSubClient.subscribe`). */
export interface SubscriptionOptions {
  /** Where a new subscriber starts: "latest" (default), "earliest" or an offset. */
  from?: SubscribeFrom;
  /** Most unacknowledged messages the peer pushes before waiting for acks. Default 1000. */
  maxInFlight?: number;
  /** Acknowledge each message once the consumer took it. Default true. */
  autoAck?: boolean;
}

/**
 * Messages of one topic for one durable subscriber, in offset order, each
 * offset at most once. Iterate it with `for await`; leaving the loop closes it.
 *
 * @example
 * ```ts
 * const subscription = await client.subscribe("events", "billing");
 * for await (const { offset, message } of subscription) {
 *   console.log(offset, message);
 *   if (message === "stop") break; // sends unsubscribe
 * }
 * ```
 */
export class Subscription implements AsyncIterable<SubscribedMessage> {
  readonly topic: string;
  readonly subscriberId: string;
  readonly maxInFlight: number;
  readonly autoAck: boolean;
  #host: SubscriptionHost;
  #from: SubscribeFrom | undefined;
  #buffer: SubscribedMessage[] = [];
  #bufferHead = 0;
  #highestReceived = -1;
  #ackTarget = -1;
  #ackSent = -1;
  #takenSinceAck = 0;
  #ackTimer: ReturnType<typeof setTimeout> | undefined;
  /** Send the ack again even if not advanced: the connection now holding it has not heard it. */
  #reack = false;
  #waiter: ((result: IteratorResult<SubscribedMessage>) => void) | undefined;
  #waiterReject: ((error: Error) => void) | undefined;
  #error: Error | undefined;
  #closed = false;

  /** Created by `PubSubClient.subscribe`; not meant to be constructed directly. */
  constructor(
    host: SubscriptionHost,
    topic: string,
    subscriberId: string,
    options: Required<Pick<SubscriptionOptions, "maxInFlight" | "autoAck">> & SubscriptionOptions,
  ) {
    this.#host = host;
    this.topic = topic;
    this.subscriberId = subscriberId;
    this.#from = options.from;
    this.maxInFlight = options.maxInFlight;
    this.autoAck = options.autoAck;
  }

  /** True once closed (by `close`, by leaving a loop, or by a fatal error). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The highest offset received so far, or -1. */
  get lastOffset(): number {
    return this.#highestReceived;
  }

  /**
   * The subscribe request for the current state: after a reconnect it asks to
   * resume right after the last offset received, so nothing is skipped even
   * if an ack was lost; anything the peer still resends is dropped by offset.
   */
  subscribeRequest(): Record<string, unknown> {
    const from = this.#highestReceived >= 0 ? this.#highestReceived + 1 : this.#from;
    const request: Record<string, unknown> = {
      action: "subscribe",
      topic_name: this.topic,
      subscriber_id: this.subscriberId,
      max_in_flight: this.maxInFlight,
    };
    if (from !== undefined) request.from = from;
    return request;
  }

  /** Called by the client for every pushed message of this subscription. */
  deliver(offset: number, message: string, skipped?: number): void {
    if (this.#closed) return;
    if (offset <= this.#highestReceived) {
      // Pushed again after a resubscribe: if it was acked before, the ack must
      // reach the connection that pushed it again, or its window fills up.
      if (offset <= this.#ackSent) this.reack();
      return;
    }
    this.#highestReceived = offset;
    const value: SubscribedMessage = skipped ? { offset, message, skipped } : { offset, message };
    if (this.#waiter !== undefined) {
      const resolve = this.#waiter;
      this.#waiter = this.#waiterReject = undefined;
      this.#taken(offset);
      resolve({ value, done: false });
      return;
    }
    // The peer pushes at most maxInFlight unacknowledged messages; more is a protocol breach.
    if (this.#buffer.length - this.#bufferHead >= 2 * this.maxInFlight) {
      this.fail(
        new PubSubError(
          "protocol",
          `Peer pushed more than ${2 * this.maxInFlight} unacknowledged messages`,
        ),
      );
      return;
    }
    this.#buffer.push(value);
  }

  /**
   * Sends the current ack again soon (within `ackDelayMs`), even though it
   * did not advance: called after the subscription moved to another
   * connection, whose flow control has not heard the acks sent before.
   */
  reack(): void {
    if (this.#closed || this.#ackTarget < 0) return;
    this.#reack = true;
    this.#ackTimer ??= setTimeout(() => {
      this.#ackTimer = undefined;
      this.#flushAck().catch(() => {});
    }, ackDelayMs);
  }

  /** Ends the subscription with an error the consumer sees on its next read. */
  fail(error: Error): void {
    if (this.#closed) return;
    this.#error = error;
    this.#closed = true;
    this.#clearAckTimer();
    this.#host.detach(this);
    if (this.#waiterReject !== undefined) {
      const reject = this.#waiterReject;
      this.#waiter = this.#waiterReject = undefined;
      reject(error);
    }
  }

  /**
   * Acknowledges every offset up to and including `offset` (cumulative).
   *
   * @example
   * ```ts
   * const subscription = await client.subscribe("events", "audit", { autoAck: false });
   * for await (const { offset } of subscription) await subscription.ack(offset);
   * ```
   */
  async ack(offset: number): Promise<void> {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(
        `Cannot ack as 'offset' must be a non-negative integer: current value is ${offset}`,
      );
    }
    if (offset > this.#ackTarget) this.#ackTarget = offset;
    await this.#flushAck();
  }

  /** Flushes the pending ack, sends unsubscribe and ends iteration. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearAckTimer();
    // Untaken messages are not acked, so the subscriber gets them again next time.
    this.#buffer = [];
    this.#bufferHead = 0;
    if (this.#waiter !== undefined) {
      const resolve = this.#waiter;
      this.#waiter = this.#waiterReject = undefined;
      resolve({ value: undefined, done: true });
    }
    try {
      await this.#flushAck();
      await this.#host.request({
        action: "unsubscribe",
        topic_name: this.topic,
        subscriber_id: this.subscriberId,
      }, { retry: false });
    } catch (error) {
      // The connection is gone or the client closed: the peer ends the subscription anyway.
      if (!(error instanceof PubSubError)) throw error;
    } finally {
      this.#host.detach(this);
    }
  }

  /** Reads the next message; resolves done once closed. */
  next(): Promise<IteratorResult<SubscribedMessage>> {
    if (this.#bufferHead < this.#buffer.length) {
      const value = this.#buffer[this.#bufferHead++];
      if (this.#bufferHead > 1024 && this.#bufferHead * 2 > this.#buffer.length) {
        this.#buffer = this.#buffer.slice(this.#bufferHead);
        this.#bufferHead = 0;
      }
      this.#taken(value.offset);
      return Promise.resolve({ value, done: false });
    }
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter !== undefined) {
      return Promise.reject(new Error("Cannot read a subscription from two readers at once"));
    }
    return new Promise((resolve, reject) => {
      this.#waiter = resolve;
      this.#waiterReject = reject;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<SubscribedMessage> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  #taken(offset: number): void {
    if (!this.autoAck) return;
    this.#ackTarget = offset;
    this.#takenSinceAck++;
    // Ack before the peer's window fills: half of maxInFlight keeps delivery flowing.
    if (this.#takenSinceAck >= Math.max(1, Math.floor(this.maxInFlight / 2))) {
      this.#flushAck().catch(() => {});
    } else if (this.#ackTimer === undefined) {
      this.#ackTimer = setTimeout(() => {
        this.#ackTimer = undefined;
        this.#flushAck().catch(() => {});
      }, ackDelayMs);
    }
  }

  async #flushAck(): Promise<void> {
    this.#clearAckTimer();
    this.#takenSinceAck = 0;
    const offset = this.#ackTarget;
    if (offset < 0 || (offset <= this.#ackSent && !this.#reack)) return;
    this.#reack = false;
    const previous = this.#ackSent;
    this.#ackSent = offset;
    try {
      await this.#host.request({
        action: "ack",
        topic_name: this.topic,
        subscriber_id: this.subscriberId,
        offset,
      }, { retry: true });
    } catch (error) {
      // Let the next flush send it again; acks are cumulative so nothing is lost.
      if (this.#ackSent === offset) this.#ackSent = previous;
      if (offset <= previous) this.#reack = true;
      if (error instanceof ClientClosedError) return;
      throw error;
    }
  }

  #clearAckTimer(): void {
    if (this.#ackTimer !== undefined) clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
  }
}
