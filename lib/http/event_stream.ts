/**
 * One subscription served as Server-Sent Events: the same delivery as a TCP
 * subscription (a `SubscriptionPump` over the broker's committed messages,
 * with its in-flight window), written as `text/event-stream`, one event per
 * message with the message's offset as the event id, so that a browser's
 * `EventSource` resumes after a reconnect (`Last-Event-ID`).
 *
 * A durable stream (with a subscriber id) acknowledges either what it wrote
 * to the stream (`auto`, coalesced every {@linkcode durableAckDelayMs}) or
 * only what the client acknowledges with `POST .../ack` (`manual`).
 *
 * @module
 */

import type { Broker } from "../peer/broker.ts";
import { FrameWriter } from "../peer/frame_writer.ts";
import { Session } from "../peer/session.ts";
import { SubscriptionPump } from "../peer/subscription.ts";
import type { MessageSource } from "../peer/topic.ts";
import { FrameDecoder, peerFrameBytesMax } from "../wire/frame.ts";
import type { SubscribeFrom } from "../wire/requests.ts";

/** How often an idle stream sends a comment line, so proxies and clients see it alive. */
export const keepaliveMsDefault = 15_000;
/** The reconnection delay a stream asks `EventSource` for (the `retry:` field). */
export const reconnectDelayMs = 1000;
/** How long acknowledgements written on an `auto` stream wait to be stored as one. */
export const durableAckDelayMs = 200;
/** Chunks queued towards the HTTP response before delivery waits for the client. */
export const queuedChunksMax = 16;

/** Who acknowledges a durable stream's messages. */
export type AckMode = "auto" | "manual";

/** Options of {@linkcode EventStream.open}. */
export interface EventStreamOptions {
  broker: Broker;
  topic: string;
  /** Durable subscriber id; without one the stream is anonymous and stores nothing. */
  subscriberId?: string;
  /** Where to start (default latest; a known subscriber resumes after its last ack). */
  from?: SubscribeFrom;
  /** Most written but unacknowledged messages (the subscription's `max_in_flight`). */
  maxInFlight: number;
  /** Default `auto`; `manual` needs a subscriber id. */
  ack?: AckMode;
  /** Default {@linkcode keepaliveMsDefault}. */
  keepaliveMs?: number;
  /** Called once when the stream ends (client gone, source gone, or `close()`). */
  onClose?: () => void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A running event stream; `body` is the response body.
 *
 * @example
 * ```ts
 * const stream = await EventStream.open({ broker, topic: "events", maxInFlight: 1000 });
 * return new Response(stream.body, { headers: { "content-type": "text/event-stream" } });
 * ```
 */
export class EventStream {
  readonly topic: string;
  readonly subscriberId: string | undefined;
  /** The offset of the first message this stream delivers. */
  readonly startOffset: number;
  readonly body: ReadableStream<Uint8Array>;
  readonly #options: EventStreamOptions;
  readonly #pump: SubscriptionPump;
  readonly #decoder = new FrameDecoder({ frameBytesMax: peerFrameBytesMax });
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #roomWaiter: (() => void) | undefined;
  #keepalive: ReturnType<typeof setInterval>;
  #ackTimer: ReturnType<typeof setTimeout> | undefined;
  /** Highest offset written to the stream that the cluster has not been told of. */
  #pendingAck = -1;
  #storedAck = -1;
  #closed = false;

  private constructor(options: EventStreamOptions, source: MessageSource, startOffset: number) {
    this.#options = options;
    this.topic = options.topic;
    this.subscriberId = options.subscriberId;
    this.startOffset = startOffset;
    this.body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => this.#wakeWriter(),
      cancel: () => this.close(),
    }, new CountQueuingStrategy({ highWaterMark: queuedChunksMax }));
    const writer = new FrameWriter({ write: (bytes) => this.#writeFrames(bytes) });
    this.#pump = new SubscriptionPump(
      source,
      options.subscriberId ?? "",
      startOffset,
      options.maxInFlight,
      writer,
    );
    this.#enqueue(this.#prelude());
    this.#keepalive = setInterval(() => {
      if ((this.#controller.desiredSize ?? 0) > 0) this.#enqueue(": keepalive\n\n");
    }, options.keepaliveMs ?? keepaliveMsDefault);
    this.#pump.start(() => this.close());
  }

  /**
   * Resolves where the stream starts and starts it. Throws ProtocolError
   * (topic_not_found, unavailable, ...) before anything is written, so the
   * caller can still answer with an error status.
   */
  static async open(options: EventStreamOptions): Promise<EventStream> {
    const source = await options.broker.source(options.topic);
    const startOffset = options.subscriberId === undefined
      ? await anonymousStart(options.broker, options.topic, options.from)
      : await options.broker.subscribeStart(options.topic, options.subscriberId, options.from);
    return new EventStream(options, source, startOffset);
  }

  /** True once the stream ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** A cumulative acknowledgement (`POST .../ack`): opens the in-flight window. */
  acknowledge(offset: number): void {
    this.#pump.ack(offset);
  }

  /** Ends the stream; an `auto` stream first stores what it wrote. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pump.stop();
    clearInterval(this.#keepalive);
    clearTimeout(this.#ackTimer);
    this.#storeAck();
    try {
      this.#controller.close();
    } catch {
      // The client cancelled the body already.
    }
    this.#wakeWriter();
    this.#options.onClose?.();
  }

  #prelude(): string {
    const subscribed: Record<string, unknown> = { status: "subscribed", topic: this.topic };
    if (this.subscriberId !== undefined) subscribed.subscriber_id = this.subscriberId;
    subscribed.from_offset = this.startOffset;
    return `retry: ${reconnectDelayMs}\nevent: subscribed\ndata: ${JSON.stringify(subscribed)}\n\n`;
  }

  /** The pump's frames, rewritten as events; resolves once the client has room for more. */
  async #writeFrames(bytes: Uint8Array): Promise<number> {
    if (this.#closed) throw new Error("The event stream is closed");
    let text = "";
    let lastOffset = -1;
    for (const event of this.#decoder.push(bytes)) {
      if (event.kind !== "frame") continue;
      const pushed = JSON.parse(decoder.decode(event.payload));
      const data: Record<string, unknown> = { topic: pushed.topic, offset: pushed.offset };
      if (this.subscriberId !== undefined) data.subscriber_id = this.subscriberId;
      data.message = pushed.message;
      // Offsets retention deleted before they were delivered (see MessageEvent.skipped).
      if (pushed.skipped !== undefined) data.skipped = pushed.skipped;
      text += `id: ${pushed.offset}\ndata: ${JSON.stringify(data)}\n\n`;
      lastOffset = pushed.offset;
    }
    if (text !== "") this.#enqueue(text);
    if (lastOffset >= 0 && this.#options.ack !== "manual") {
      // Written to the stream counts as delivered: the window opens at once,
      // the cluster learns of it (durable streams) a moment later.
      this.#pump.ack(lastOffset);
      if (this.subscriberId !== undefined) this.#scheduleAck(lastOffset);
    }
    while (!this.#closed && (this.#controller.desiredSize ?? 0) <= 0) {
      await new Promise<void>((resolve) => this.#roomWaiter = resolve);
    }
    if (this.#closed) throw new Error("The event stream is closed");
    return bytes.length;
  }

  #enqueue(text: string): void {
    try {
      this.#controller.enqueue(encoder.encode(text));
    } catch {
      this.close();
    }
  }

  #wakeWriter(): void {
    const waiter = this.#roomWaiter;
    this.#roomWaiter = undefined;
    waiter?.();
  }

  #scheduleAck(offset: number): void {
    this.#pendingAck = Math.max(this.#pendingAck, offset);
    this.#ackTimer ??= setTimeout(() => {
      this.#ackTimer = undefined;
      this.#storeAck();
    }, durableAckDelayMs);
  }

  /** Stores the written offset as the subscriber's ack (best effort: the next one covers it). */
  #storeAck(): void {
    const offset = this.#pendingAck;
    if (this.subscriberId === undefined || offset <= this.#storedAck) return;
    this.#storedAck = offset;
    // Permission was checked when the stream opened; a session without access control stores it.
    new Session({ broker: this.#options.broker }).handle({
      action: "ack",
      topic_name: this.topic,
      subscriber_id: this.subscriberId,
      offset,
    }).catch(() => {});
  }
}

/** Where an anonymous stream starts: an offset, the first retained one, or the end. */
async function anonymousStart(
  broker: Broker,
  topic: string,
  from: SubscribeFrom | undefined,
): Promise<number> {
  if (typeof from === "number") return from;
  // The first retained offset, so that the stream reports no offsets skipped.
  const described = await broker.describeTopic(topic);
  return from === "earliest" ? described.first_offset : described.next_offset;
}
