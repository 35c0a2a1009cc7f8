/**
 * Delivery of one subscription: reads committed messages from the topic and
 * pushes them as `message` events, keeping at most `maxInFlight` of them
 * unacknowledged, and parks at the tail until the committed end moves.
 *
 * @module
 */

import { encodeFrame } from "../wire/frame.ts";
import type { FrameWriter } from "./frame_writer.ts";
import type { Topic } from "./topic.ts";

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
  readonly topic: Topic;
  readonly subscriberId: string;
  readonly #maxInFlight: number;
  readonly #writer: FrameWriter;
  readonly #controller = new AbortController();
  /** Next offset to push. */
  #next: number;
  /** Last offset the client acknowledged. */
  #acked: number;
  #ackWaiter: (() => void) | undefined;

  constructor(
    topic: Topic,
    subscriberId: string,
    startOffset: number,
    maxInFlight: number,
    writer: FrameWriter,
  ) {
    this.topic = topic;
    this.subscriberId = subscriberId;
    this.#next = startOffset;
    this.#acked = startOffset - 1;
    this.#maxInFlight = maxInFlight;
    this.#writer = writer;
  }

  /** Offset of the next message this subscription will push. */
  get nextOffset(): number {
    return this.#next;
  }

  /** Starts pushing; failures end the subscription quietly (the client resubscribes). */
  start(): void {
    this.#run().catch(() => this.stop());
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
      if (this.#next >= this.topic.bounds().nextOffset) {
        await this.topic.waitForOffset(this.#next, signal);
        continue;
      }
      await this.#deliver(Math.min(window, deliveryBatchMax));
    }
  }

  async #deliver(max: number): Promise<void> {
    const { messages, nextOffset } = await this.topic.read(this.#next, max);
    if (this.stopped) return;
    for (const { offset, message } of messages) {
      this.#writer.write(encodeFrame({
        event: "message",
        topic: this.topic.name,
        subscriber_id: this.subscriberId,
        offset,
        message,
      }));
    }
    // Retention may have removed offsets: skipping them keeps delivery moving.
    if (nextOffset > this.#next && this.#acked < nextOffset - 1 && messages.length === 0) {
      this.#acked = nextOffset - 1;
    }
    this.#next = Math.max(this.#next, nextOffset);
    await this.#writer.drain();
  }
}
