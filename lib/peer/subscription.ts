/**
 * Delivery of one subscription: reads committed messages from the topic and
 * pushes them as `message` events, keeping at most `maxInFlight` of them
 * unacknowledged, and parks at the tail until the committed end moves.
 *
 * @module
 */

import { delay, type Scheduler, systemScheduler } from "../cluster/runtime.ts";
import { ProtocolError } from "../wire/errors.ts";
import { encodeFrame } from "../wire/frame.ts";
import type { FrameWriter } from "./frame_writer.ts";
import type { SubscribeFrom } from "../wire/requests.ts";
import type { MessageEvent } from "../wire/responses.ts";
import type { MessageSource, Topic } from "./topic.ts";

/** How long reads may keep failing before the subscription gives up. */
export const readFailureMsMax = 10_000;
/** Pause between retries of a failed read. */
const readRetryMs = 100;

/** Most messages read from the topic per delivery step. */
export const deliveryBatchMax = 1000;

/**
 * A running subscription.
 *
 * @example
 * ```ts
 * const pump = new SubscriptionPump(topic, "u1", 0, 1000, writer);
 * pump.start();
 * pump.ack(41);
 * pump.stop();
 * ```
 */
export class SubscriptionPump {
  readonly topic: MessageSource;
  readonly subscriberId: string;
  readonly #maxInFlight: number;
  readonly #writer: FrameWriter;
  readonly #controller = new AbortController();
  /** Next offset to push. */
  #next: number;
  /** Last offset the client acknowledged. */
  #acked: number;
  #ackWaiter: (() => void) | undefined;
  /** Offsets retention deleted before they were pushed, not yet reported to the client. */
  #skipped = 0;
  /** Time of the read retries (`readFailureMsMax`, `readRetryMs`). */
  readonly #scheduler: Scheduler;

  /**
   * `options.scheduler` times the retries of failed reads (default: the
   * wall clock and the host's timers; the whole-cluster simulator passes
   * its virtual clock).
   */
  constructor(
    topic: MessageSource,
    subscriberId: string,
    startOffset: number,
    maxInFlight: number,
    writer: FrameWriter,
    options: { scheduler?: Scheduler } = {},
  ) {
    this.topic = topic;
    this.subscriberId = subscriberId;
    this.#next = startOffset;
    this.#acked = startOffset - 1;
    this.#maxInFlight = maxInFlight;
    this.#writer = writer;
    this.#scheduler = options.scheduler ?? systemScheduler;
  }

  /** Offset of the next message this subscription will push. */
  get nextOffset(): number {
    return this.#next;
  }

  /** Starts pushing; failures end the subscription quietly (the client resubscribes). */
  /**
   * Starts pushing. A read that fails for a moment (a failover, the leader
   * of a streamed topic moving) is retried; one that keeps failing ends the
   * subscription through `onFailure`, which closes the connection so the
   * client resubscribes elsewhere and resumes after its last ack.
   */
  start(onFailure: () => void = () => {}): void {
    this.#runRetrying().catch(() => {
      if (this.stopped) return;
      this.stop();
      onFailure();
    });
  }

  async #runRetrying(): Promise<void> {
    let failingSince: number | undefined;
    while (!this.stopped && !this.#writer.failed) {
      try {
        await this.#run();
        return;
      } catch (error) {
        const transient = error instanceof ProtocolError && error.code === "unavailable";
        const now = this.#scheduler.now();
        failingSince ??= now;
        if (!transient || now - failingSince > readFailureMsMax) throw error;
        await delay(this.#scheduler, readRetryMs, this.#controller.signal);
      }
    }
  }

  /** Records a cumulative ack and lets delivery continue. */
  ack(offset: number): void {
    if (offset <= this.#acked) return;
    this.#acked = Math.min(offset, this.#next - 1);
    this.#ackWaiter?.();
  }

  stop(): void {
    this.#controller.abort();
    this.#ackWaiter?.();
  }

  get stopped(): boolean {
    return this.#controller.signal.aborted;
  }

  async #run(): Promise<void> {
    const signal = this.#controller.signal;
    while (!signal.aborted && !this.#writer.failed) {
      const window = this.#maxInFlight - (this.#next - this.#acked - 1);
      if (window <= 0) {
        await new Promise<void>((resolve) => this.#ackWaiter = resolve);
        this.#ackWaiter = undefined;
        continue;
      }
      await this.topic.waitForOffset(this.#next, signal);
      if (signal.aborted) break;
      await this.#deliver(Math.min(window, deliveryBatchMax));
    }
  }

  async #deliver(max: number): Promise<void> {
    const { messages, nextOffset } = await this.topic.readCommitted(this.#next, max);
    if (this.stopped) return;
    // Retention may have deleted offsets from #next on: the read starts at
    // the first retained one. They count as skipped (the client is told on
    // the next message), not as in flight, so delivery keeps moving.
    const first = messages.length > 0 ? messages[0].offset : nextOffset;
    if (first > this.#next) {
      this.#skipped += first - this.#next;
      this.#acked = Math.max(this.#acked, first - 1);
    }
    for (const { offset, message } of messages) {
      const event: MessageEvent = {
        event: "message",
        topic: this.topic.name,
        subscriber_id: this.subscriberId,
        offset,
        message,
      };
      if (this.#skipped > 0) {
        event.skipped = this.#skipped;
        this.#skipped = 0;
      }
      this.#writer.write(encodeFrame(event));
    }
    this.#next = Math.max(this.#next, nextOffset);
    await this.#writer.drain();
  }
}

/**
 * Where a subscription starts, decided on the topic's leader: an explicit
 * offset wins; a known subscriber resumes right after its last ack; a new one
 * starts at `from` (default latest). A new subscriber is registered at once,
 * so reconnecting before its first ack resumes here instead of at 'latest'.
 */
export async function subscriptionStart(
  topic: Topic,
  subscriberId: string,
  from: SubscribeFrom | undefined,
): Promise<number> {
  const { firstOffset, nextOffset } = await topic.bounds();
  const position = topic.subscriberPosition(subscriberId);
  // A start below the first retained offset stays as asked: the
  // subscription then reports the offsets it skipped on its first message.
  let start: number;
  if (typeof from === "number") start = from;
  else if (position !== undefined) start = position + 1;
  else start = from === "earliest" ? firstOffset : nextOffset;
  if (position === undefined) topic.ack(subscriberId, start - 1);
  return start;
}
