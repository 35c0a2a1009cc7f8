/**
 * A topic stored on this peer alone: its log is the topic, committed means
 * fsynced. Concurrent publishes share one fsync (group commit in the store),
 * and acks are coalesced by an `AckBuffer`.
 *
 * @module
 */

import { EntryType, type LogStore } from "../storage/types.ts";
import { ProtocolError } from "../wire/errors.ts";
import { AckBuffer } from "./ack_buffer.ts";
import { OffsetWaiters } from "./offset_waiters.ts";
import { encodeCommand } from "./topic_commands.ts";
import { TopicReader } from "./topic_reader.ts";
import { TopicState } from "./topic_state.ts";
import type { Producer, PublishResult, ReadResult, Topic } from "./topic.ts";

/**
 * A single-replica topic over a `LogStore`.
 *
 * @example
 * ```ts
 * const topic = await LocalTopic.open("events", store);
 * const { firstOffset } = await topic.publish(["hi"]);
 * ```
 */
export class LocalTopic implements Topic {
  readonly name: string;
  readonly #store: LogStore;
  readonly #state = new TopicState();
  readonly #reader: TopicReader;
  readonly #waiters = new OffsetWaiters();
  /** Committed end: offsets below it are durable and readable. */
  #committedEnd = 0;
  /** Appended but not yet synced: entry index and the offset end it brings. */
  #pending: { index: number; end: number }[] = [];
  readonly #acks: AckBuffer;
  #failure: Error | undefined;
  #closed = false;

  private constructor(name: string, store: LogStore) {
    this.name = name;
    this.#store = store;
    this.#reader = new TopicReader(store, this.#state);
    this.#acks = new AckBuffer(this.#state.subscribers, (offsets) => this.#writeAcks(offsets));
  }

  /** Opens a topic over `store`, replaying every entry it holds. */
  static open(name: string, store: LogStore): LocalTopic {
    const topic = new LocalTopic(name, store);
    topic.#replay();
    return topic;
  }

  #replay(): void {
    const last = this.#store.lastIndex();
    const stepEntries = 4096;
    for (let low = this.#store.firstIndex(); low <= last; low += stepEntries) {
      const high = Math.min(last + 1, low + stepEntries);
      for (const entry of this.#store.entries(low, high)) {
        this.#state.apply(entry.index, entry.data);
      }
    }
    this.#committedEnd = this.#state.nextOffset;
  }

  async publish(messages: string[], producer?: Producer): Promise<PublishResult> {
    this.#checkOpen();
    const duplicate = this.#state.duplicateOf(producer?.producerId, producer?.sequence);
    if (duplicate !== undefined) {
      await this.#waiters.wait(
        duplicate.firstOffset,
        this.#committedEnd,
        AbortSignal.timeout(60_000),
      );
      return duplicate;
    }
    const data = encodeCommand({ kind: "publish", parts: [{ messages, ...producer }] });
    const index = this.#append(data);
    const result = this.#state.apply(index, data);
    if (result.kind !== "published") throw new Error("publish applied as " + result.kind);
    this.#reader.remember(index, result.messages);
    this.#pending.push({ index, end: this.#state.nextOffset });
    await this.#sync();
    return result.parts[0];
  }

  #append(data: Uint8Array): number {
    const index = this.#store.lastIndex() + 1;
    this.#store.append([{ term: 1, index, type: EntryType.Normal, data }]);
    return index;
  }

  async #sync(): Promise<void> {
    try {
      await this.#store.sync();
    } catch (error) {
      // A failed fsync leaves the file's state unknown: refuse every later write.
      this.#failure = error as Error;
      throw new ProtocolError("unavailable", "The topic's storage failed to sync", {
        cause: error,
      });
    }
    const synced = this.#store.syncedIndex();
    let advanced = false;
    while (this.#pending.length > 0 && this.#pending[0].index <= synced) {
      this.#committedEnd = this.#pending.shift()!.end;
      advanced = true;
    }
    if (advanced) this.#waiters.notify(this.#committedEnd);
  }

  read(fromOffset: number, max: number): Promise<ReadResult> {
    this.#checkOpen();
    return Promise.resolve(this.#reader.read(fromOffset, max, this.#committedEnd));
  }

  /** On a single peer every committed read is also linearizable. */
  readCommitted(fromOffset: number, max: number): Promise<ReadResult> {
    return this.read(fromOffset, max);
  }

  bounds(): Promise<{ firstOffset: number; nextOffset: number }> {
    return Promise.resolve({
      firstOffset: this.#state.firstOffset,
      nextOffset: this.#committedEnd,
    });
  }

  ack(subscriber: string, offset: number): void {
    this.#checkOpen();
    this.#acks.ack(subscriber, offset);
  }

  subscriberPosition(subscriber: string): number | undefined {
    return this.#acks.position(subscriber);
  }

  waitForOffset(offset: number, signal: AbortSignal): Promise<void> {
    return this.#waiters.wait(offset, this.#closed ? Infinity : this.#committedEnd, signal);
  }

  #writeAcks(offsets: Record<string, number>): void {
    if (this.#closed || this.#failure) return;
    const data = encodeCommand({ kind: "ack", offsets });
    this.#state.apply(this.#append(data), data);
    // Losing an ack only means redelivery (at-least-once), so nobody waits for it.
    this.#sync().catch(() => {});
  }

  /** Writes pending acks and closes the store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#acks.flush();
    this.#closed = true;
    this.#waiters.wakeAll();
    await this.#store.sync().catch(() => {});
    await this.#store.close();
  }

  #checkOpen(): void {
    if (this.#failure) {
      throw new ProtocolError("unavailable", "The topic's storage failed and is read-only");
    }
    if (this.#closed) throw new ProtocolError("topic_not_found", `Topic '${this.name}' was closed`);
  }
}
