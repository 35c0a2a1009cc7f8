/**
 * A topic stored on this peer alone: its log is the topic, committed means
 * fsynced. Concurrent publishes share one fsync (group commit in the store),
 * and acks are coalesced by an `AckBuffer`.
 *
 * Retention (`enforceRetention`, run by the broker) appends a `retain`
 * command like a replica of a cluster topic applies it, then compacts the
 * log: whole segments below the entry holding the first retained offset go.
 *
 * A failed write (a full disk, an I/O error) fails every publish not yet
 * durable, and the topic restarts itself from its durable log once the disk
 * takes writes again (see `StorageRecovery`); reads go on meanwhile.
 *
 * @module
 */

import assert from "node:assert/strict";
import { isStorageFailure, StorageRecovery } from "../storage/storage_failure.ts";
import { EntryType, type LogStore } from "../storage/types.ts";
import { ProtocolError } from "../wire/errors.ts";
import { AckBuffer } from "./ack_buffer.ts";
import { OffsetWaiters } from "./offset_waiters.ts";
import type { Retention } from "../wire/retention.ts";
import { retainedFirstOffset } from "./retention_plan.ts";
import { encodeCommand } from "./topic_commands.ts";
import { TopicReader } from "./topic_reader.ts";
import { TopicState } from "./topic_state.ts";
import type { Producer, PublishResult, ReadResult, Topic } from "./topic.ts";

/** Options of {@linkcode LocalTopic.open}. */
export interface LocalTopicOptions {
  /** First delay before restarting from the durable log after a failed write. Default 250 ms. */
  restartDelayMsMin?: number;
  /** Longest delay between such restarts. Default 1000 ms. */
  restartDelayMsMax?: number;
}

/**
 * A single-replica topic over a `LogStore`.
 *
 * @example
 * ```ts
 * const topic = LocalTopic.open("events", store);
 * const { firstOffset } = await topic.publish(["hi"]);
 * ```
 */
export class LocalTopic implements Topic {
  readonly name: string;
  readonly #store: LogStore;
  /** The applied state: durable entries and the appended ones not yet synced. */
  #state = new TopicState();
  #reader: TopicReader;
  readonly #waiters = new OffsetWaiters();
  /** Committed end: offsets below it are durable and readable. */
  #committedEnd = 0;
  /** Appended but not yet synced: entry index and the offset end it brings. */
  #pending: { index: number; end: number }[] = [];
  #acks: AckBuffer;
  readonly #recovery: StorageRecovery;
  #closed = false;

  private constructor(name: string, store: LogStore, options: LocalTopicOptions) {
    this.name = name;
    this.#store = store;
    this.#reader = new TopicReader(store, this.#state);
    this.#acks = this.#ackBuffer();
    this.#recovery = new StorageRecovery({
      subject: `topic '${name}'`,
      restart: () => this.#restart(),
      delayMsMin: options.restartDelayMsMin,
      delayMsMax: options.restartDelayMsMax,
    });
  }

  /** Opens a topic over `store`, replaying every entry it holds. */
  static open(name: string, store: LogStore, options: LocalTopicOptions = {}): LocalTopic {
    const topic = new LocalTopic(name, store, options);
    replay(store, topic.#state);
    topic.#committedEnd = topic.#state.nextOffset;
    return topic;
  }

  #ackBuffer(): AckBuffer {
    return new AckBuffer(this.#state.subscribers, (offsets) => this.#writeAcks(offsets));
  }

  async publish(messages: string[], producer?: Producer): Promise<PublishResult> {
    this.#checkWritable();
    const verdict = this.#state.checkSequence(producer?.producerId, producer?.sequence);
    if (verdict.kind === "out_of_order") {
      throw new ProtocolError("out_of_order_sequence", verdict.reason);
    }
    if (verdict.kind === "duplicate") {
      const { firstOffset, count } = verdict.result;
      // The earlier copy may still wait for its fsync: answer once it is durable.
      if (firstOffset + count > this.#committedEnd) await this.#sync();
      assert(firstOffset + count <= this.#committedEnd, "a synced duplicate is not committed");
      return verdict.result;
    }
    const data = encodeCommand({ kind: "publish", parts: [{ messages, ...producer }] });
    const index = this.#append(data);
    const result = this.#state.apply(index, data);
    if (result.kind !== "published") throw new Error("publish applied as " + result.kind);
    const part = result.parts[0];
    assert(!("rejected" in part), "a checked publish was refused when applied");
    this.#reader.remember(index, result.messages);
    this.#pending.push({ index, end: this.#state.nextOffset });
    await this.#sync();
    return part;
  }

  #append(data: Uint8Array): number {
    const index = this.#store.lastIndex() + 1;
    try {
      this.#store.append([{ term: 1, index, type: EntryType.Normal, data }]);
    } catch (error) {
      throw this.#failed(error);
    }
    return index;
  }

  async #sync(): Promise<void> {
    try {
      await this.#store.sync();
    } catch (error) {
      throw this.#failed(error);
    }
    this.#recovery.succeeded();
    const synced = this.#store.syncedIndex();
    let advanced = false;
    while (this.#pending.length > 0 && this.#pending[0].index <= synced) {
      this.#committedEnd = this.#pending.shift()!.end;
      advanced = true;
    }
    if (advanced) this.#waiters.notify(this.#committedEnd);
  }

  /**
   * A write failed: every entry not yet synced is lost (its publishers get
   * the returned error), and the topic is down until `#restart()` rebuilds
   * it from the durable log. Reads keep serving the committed offsets.
   */
  #failed(error: unknown): ProtocolError {
    if (this.#closed) {
      return new ProtocolError("topic_not_found", `Topic '${this.name}' was closed`, {
        cause: error,
      });
    }
    if (!isStorageFailure(error)) throw error;
    this.#pending = [];
    return this.#recovery.fail(error);
  }

  /**
   * Restarts from the durable log, as after a crash: the store drops what
   * was never synced (never acknowledged either) and the state is replayed
   * from what remains. Everything committed is still there, so readers see
   * no offset go back.
   */
  async #restart(): Promise<void> {
    await this.#store.recover();
    if (this.#closed) return;
    const state = new TopicState();
    replay(this.#store, state);
    assert(
      state.nextOffset >= this.#committedEnd,
      `restart of '${this.name}' lost committed offsets ${state.nextOffset}..${this.#committedEnd}`,
    );
    // Buffered acks are dropped: a subscriber's position only ever lags, so
    // the worst outcome is a redelivery (at-least-once).
    this.#acks.cancel();
    this.#state = state;
    this.#reader = new TopicReader(this.#store, state);
    this.#acks = this.#ackBuffer();
    this.#pending = [];
    this.#committedEnd = state.nextOffset;
    this.#waiters.notify(this.#committedEnd);
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

  /** Bytes of the topic's log (its segment files). */
  bytes(): number {
    let bytes = 0;
    for (const segment of this.#store.segments()) bytes += segment.bytes;
    return bytes;
  }

  /**
   * Deletes the whole segments `retention` expired at `nowMs` (see
   * `retainedFirstOffset`): a durable `retain` entry moves the first
   * offset, then the log is compacted below it. Does nothing while the disk
   * refuses writes; a failure leaves the topic to recover as after a failed
   * publish.
   */
  async enforceRetention(retention: Retention, nowMs: number): Promise<void> {
    if (this.#closed || this.#recovery.down) return;
    const committed = {
      firstOffset: this.#state.firstOffset,
      nextOffset: this.#committedEnd,
      firstOffsetFrom: (index: number) => this.#state.firstOffsetFrom(index),
    };
    const first = retainedFirstOffset(this.#store.segments(), retention, committed, nowMs);
    if (first <= this.#state.firstOffset) return;
    const data = encodeCommand({ kind: "retain", firstOffset: first });
    try {
      this.#state.apply(this.#append(data), data);
      await this.#sync();
      await this.#compact();
    } catch {
      // The failure is logged and recovered by StorageRecovery; the next pass retries.
    }
  }

  /**
   * Records a snapshot of the state at the last durable entry and deletes
   * the whole segments below the entry holding the first retained offset.
   */
  async #compact(): Promise<void> {
    const index = this.#state.appliedIndex;
    // A publish appended meanwhile is not durable yet: the next pass compacts.
    if (this.#closed || this.#store.syncedIndex() < index) return;
    const snapshot = {
      index,
      term: this.#store.term(index) ?? 1,
      conf: { voters: [1], learners: [] },
      data: this.#state.snapshot(),
    };
    try {
      await this.#store.compact(snapshot, this.#state.firstNeededIndex());
    } catch (error) {
      throw this.#failed(error);
    }
  }

  #writeAcks(offsets: Record<string, number>): void {
    // While the disk refuses writes, acks wait in memory no longer: losing
    // one only means a redelivery.
    if (this.#closed || this.#recovery.down) return;
    const data = encodeCommand({ kind: "ack", offsets });
    let index: number;
    try {
      index = this.#append(data);
    } catch {
      return;
    }
    this.#state.apply(index, data);
    // Losing an ack only means redelivery (at-least-once), so nobody waits for it.
    this.#sync().catch(() => {});
  }

  /** Writes pending acks and closes the store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#acks.flush();
    this.#closed = true;
    this.#recovery.close();
    this.#waiters.wakeAll();
    await this.#store.sync().catch(() => {});
    await this.#store.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ProtocolError("topic_not_found", `Topic '${this.name}' was closed`);
  }

  #checkWritable(): void {
    this.#checkOpen();
    if (this.#recovery.down) throw this.#recovery.failure!;
  }
}

/**
 * Restores `state` from the store's snapshot (retention compacted the log)
 * and applies every entry after it, in bounded steps.
 */
function replay(store: LogStore, state: TopicState): void {
  const snapshot = store.snapshot();
  let first = store.firstIndex();
  if (snapshot !== undefined) {
    state.restore(snapshot.data, snapshot.index);
    first = snapshot.index + 1;
  }
  const last = store.lastIndex();
  const stepEntries = 4096;
  for (let low = first; low <= last; low += stepEntries) {
    const high = Math.min(last + 1, low + stepEntries);
    for (const entry of store.entries(low, high)) state.apply(entry.index, entry.data);
  }
}
