/**
 * A topic replicated by a Raft group: this peer's replica of it. Leader-side
 * operations (publish, linearizable reads, acks) are served only while this
 * replica leads; committed reads for subscriptions are served by any replica
 * from its own applied log, which a failover never truncates.
 *
 * @module
 */

import type { Entry, LogStore } from "../storage/types.ts";
import { ProtocolError } from "../wire/errors.ts";
import { OffsetWaiters } from "../peer/offset_waiters.ts";
import { AckBuffer } from "../peer/ack_buffer.ts";
import type { Producer, PublishResult, ReadResult, Topic } from "../peer/topic.ts";
import {
  encodeCommand,
  placeholderTexts,
  PublishEntryBuilder,
  type PublishPart,
  type TopicCommand,
} from "../peer/topic_commands.ts";
import { TopicReader } from "../peer/topic_reader.ts";
import { type ApplyResult, TopicState } from "../peer/topic_state.ts";
import type { GroupStateMachine, ReplicaGroup } from "./replica_group.ts";

/** Message bytes gathered into one entry before it is proposed without waiting. */
export const batchBytesMax = 512 * 1024;

/**
 * The topic state machine as a Raft group's state machine.
 *
 * @example
 * ```ts
 * const machine = new TopicMachine(store);
 * const group = new ReplicaGroup({ ..., stateMachine: machine });
 * ```
 */
export class TopicMachine implements GroupStateMachine {
  readonly state = new TopicState();
  readonly waiters = new OffsetWaiters();
  readonly reader: TopicReader;
  /** Called after a `retain` entry applied: the replica compacts below the new first offset. */
  onRetained: (() => void) | undefined;
  /**
   * Set by the retention loop for a topic with limits: `notify` runs each
   * time another `bytes` of published entries applied, so a fast topic is
   * looked at once per segment written rather than only once a second.
   */
  #retentionWatch: { bytes: number; notify(): void } | undefined;
  #bytesSinceRetention = 0;

  constructor(store: LogStore) {
    this.reader = new TopicReader(store, this.state);
  }

  /**
   * The command `data` was encoded from, kept until its entry applies: the
   * leader applies its own proposals without decoding them again. Keyed by
   * the very bytes proposed (the log hands the same object back) and
   * dropped once applied; entries read back from disk, and every
   * follower's, are decoded as usual.
   */
  readonly #decoded = new WeakMap<Uint8Array, TopicCommand>();
  /**
   * Remembered commands whose message texts are not known (placeholders:
   * the messages went into the entry as the requests' bytes, see
   * `RaftTopic.publishBytesTo`): the state machine needs only how many
   * there are, and readers decode the entry when they first read it.
   */
  readonly #textsUnknown = new WeakSet<Uint8Array>();

  /**
   * See `#decoded`: `command` must be what `data` decodes to, except that
   * with `textsKnown` false its message texts are placeholders (each part
   * holds as many messages as its decoded part).
   */
  rememberDecoded(data: Uint8Array, command: TopicCommand, textsKnown = true): void {
    this.#decoded.set(data, command);
    if (!textsKnown) this.#textsUnknown.add(data);
  }

  apply(entry: Entry): ApplyResult {
    const decoded = this.#decoded.get(entry.data);
    let textsKnown: boolean;
    if (decoded !== undefined) {
      this.#decoded.delete(entry.data);
      textsKnown = !this.#textsUnknown.delete(entry.data);
    } else {
      // Without a subscriber waiting at the tail (a follower, nearly always)
      // nobody reads the texts here: only the counts are decoded.
      textsKnown = this.waiters.size > 0;
    }
    const result = decoded === undefined
      ? this.state.apply(entry.index, entry.data, textsKnown)
      : this.state.applyDecoded(entry.index, decoded);
    if (result.kind === "published" && result.messages.length > 0) {
      // Subscribers waiting at the tail read this entry next: they skip
      // decoding it again. Without any (a follower, nearly always), the
      // texts are not kept: 256 batches of them were still alive at every
      // scavenge, some 300 bytes per publish that each one copied.
      if (this.waiters.size > 0) {
        if (textsKnown) this.reader.remember(entry.index, result.messages);
        this.waiters.notify(this.state.nextOffset);
      }
      this.#bytesSinceRetention += entry.data.length;
      const watch = this.#retentionWatch;
      if (watch !== undefined && this.#bytesSinceRetention >= watch.bytes) {
        this.#bytesSinceRetention = 0;
        watch.notify();
      }
    } else if (result.kind === "retained") {
      this.onRetained?.();
    }
    return result;
  }

  /** See `#retentionWatch`; undefined stops watching (the topic has no limits). */
  watchRetention(watch: { bytes: number; notify(): void } | undefined): void {
    this.#retentionWatch = watch;
  }

  applyConfChange(entry: Entry): void {
    this.state.skip(entry.index);
  }

  /** The topic state at the last applied index, as a snapshot image. */
  snapshot(): Uint8Array {
    return this.state.snapshot();
  }

  /**
   * Replaces the state by a snapshot image taken at `index`: decoded
   * batches are forgotten, and readers parked at the old end wake up to
   * read on from the new one.
   */
  restore(data: Uint8Array, index: number): void {
    this.state.restore(data, index);
    this.reader.reset();
    this.waiters.notify(this.state.nextOffset);
  }

  /** The entry holding the first retained message: compaction keeps it and all later ones. */
  firstNeededIndex(): number {
    return this.state.firstNeededIndex();
  }
}

/**
 * Who hears where a publish landed: a promise's resolvers, or (the fast
 * path) the connection's answer to it, without a promise in between.
 */
export interface PublishReceiver {
  resolve(result: PublishResult): void;
  reject(error: Error): void;
}

/** How long a graceful close waits for its last ack entry to commit. */
export const closeAckWriteMs = 2000;

/**
 * One replica of a replicated topic.
 *
 * @example
 * ```ts
 * const topic = new RaftTopic("events", group, machine);
 * if (group.isLeader) await topic.publish(["hi"]);
 * ```
 */
export class RaftTopic implements Topic {
  readonly name: string;
  readonly group: ReplicaGroup;
  readonly #machine: TopicMachine;
  readonly #reader: TopicReader;
  /** Publishes waiting to be proposed together as one entry. */
  #batch: PublishReceiver[] = [];
  #batchBytes = 0;
  /** The entry of `#batch`, encoded as its publishes arrive; undefined while none is open. */
  #entry: PublishEntryBuilder | undefined;
  /**
   * The parts of `#batch`, for the leader to apply without decoding its
   * entry; a part that came as bytes holds a placeholder for its message
   * (`#textsKnown` is then false, see `TopicMachine.rememberDecoded`).
   */
  #parts: PublishPart[] = [];
  #textsKnown = true;
  readonly #acks: AckBuffer;
  /** The last ack entry proposed, until it settles: a graceful close waits for it. */
  #ackWrite: Promise<void> | undefined;
  #closed = false;

  constructor(name: string, group: ReplicaGroup, machine: TopicMachine) {
    this.name = name;
    this.group = group;
    this.#machine = machine;
    this.#reader = machine.reader;
    this.#acks = new AckBuffer(machine.state.subscribers, (offsets) => this.#writeAcks(offsets), {
      timers: group.scheduler,
    });
    // Every replica deletes the segments a committed `retain` let go, at once.
    machine.onRetained = () => group.requestCompaction();
  }

  get state(): TopicState {
    return this.#machine.state;
  }

  /** The topic's state machine (the retention loop watches what it applies). */
  get machine(): TopicMachine {
    return this.#machine;
  }

  /**
   * Publishes are proposed together as one entry (write coalescing); each
   * caller still gets its own offsets. When nothing is in flight the batch
   * is proposed at the end of this turn (a microtask: the publishes of one
   * socket read share it), so a lone publish waits for no other task; under
   * load (a round or proposals in flight) it gathers until a later task, as
   * the proposal would wait for the current round anyway.
   */
  publish(messages: string[], producer?: Producer): Promise<PublishResult> {
    this.requireLeader();
    const part: PublishPart = producer === undefined
      ? { messages }
      : { messages, producerId: producer.producerId, sequence: producer.sequence };
    this.#openEntry().addPart(part);
    this.#parts.push(part);
    let bytes = 0;
    for (const message of messages) bytes += message.length;
    const resolvers = Promise.withResolvers<PublishResult>();
    this.#enqueue(bytes, resolvers);
    return resolvers.promise;
  }

  /**
   * `publish` of one message given as the bytes `source[start..end)` of
   * its JSON string body as `JSON.stringify` writes it (a client's
   * request as `scanPublish` read it): they are copied into the entry as
   * they are, now, so `source` may be reused once this returns.
   */
  publishBytes(
    source: Uint8Array,
    start: number,
    end: number,
    producer?: Producer,
  ): Promise<PublishResult> {
    const resolvers = Promise.withResolvers<PublishResult>();
    this.publishBytesTo(resolvers, source, start, end, producer);
    return resolvers.promise;
  }

  /**
   * `publishBytes` telling `receiver` instead of returning a promise (the
   * connection's fast path). `receiver` hears nothing before this returns;
   * it throws, as `publish` does, when this replica may not publish.
   */
  publishBytesTo(
    receiver: PublishReceiver,
    source: Uint8Array,
    start: number,
    end: number,
    producer?: Producer,
  ): void {
    this.requireLeader();
    this.#openEntry().addMessageBytes(source, start, end, producer);
    this.#addUnknownPart(1, producer);
    this.#enqueue(end - start, receiver);
  }

  /**
   * `publishBytesTo` of a batch of `count` messages given as the bytes
   * `source[start..end)` of their JSON array as `JSON.stringify` writes
   * it (a client's `publish_batch` as `scanPublish` read it): one part, as
   * `publish` of those messages makes, copied into the entry now.
   */
  publishArrayBytesTo(
    receiver: PublishReceiver,
    source: Uint8Array,
    start: number,
    end: number,
    count: number,
    producer?: Producer,
  ): void {
    this.requireLeader();
    this.#openEntry().addMessagesBytes(source, start, end, producer);
    this.#addUnknownPart(count, producer);
    this.#enqueue(end - start, receiver);
  }

  /** Remembers a part of `count` messages whose texts are not known (see `#parts`). */
  #addUnknownPart(count: number, producer: Producer | undefined): void {
    const messages = placeholderTexts(count);
    this.#parts.push(
      producer === undefined
        ? { messages }
        : { messages, producerId: producer.producerId, sequence: producer.sequence },
    );
    this.#textsKnown = false;
  }

  #openEntry(): PublishEntryBuilder {
    if (this.#entry === undefined) this.#entry = new PublishEntryBuilder();
    return this.#entry;
  }

  /** Adds the publish just added to the entry to this batch, and proposes the batch when due. */
  #enqueue(bytes: number, receiver: PublishReceiver): void {
    this.#batch.push(receiver);
    this.#batchBytes += bytes;
    if (this.#batchBytes >= batchBytesMax) this.#proposeBatch();
    else if (this.#batch.length === 1) this.#proposeSoon();
  }

  #proposeSoon(): void {
    if (this.group.busy) this.group.scheduler.defer(() => this.#proposeBatch());
    else queueMicrotask(() => this.#proposeBatch());
  }

  #proposeBatch(): void {
    const batch = this.#batch;
    if (batch.length === 0) return;
    const data = this.#entry!.finish();
    const command: TopicCommand = { kind: "publish", parts: this.#parts };
    this.#machine.rememberDecoded(data, command, this.#textsKnown);
    this.#batch = [];
    this.#batchBytes = 0;
    this.#entry = undefined;
    this.#parts = [];
    this.#textsKnown = true;
    let proposed: Promise<unknown>;
    try {
      proposed = this.group.propose(data);
    } catch (error) {
      // Later, not now: a receiver hears nothing while its publish call runs.
      queueMicrotask(() => {
        for (const item of batch) item.reject(error as Error);
      });
      return;
    }
    proposed.then((result) => {
      const applied = result as ApplyResult;
      if (applied.kind !== "published" || applied.parts.length !== batch.length) {
        throw new Error(`A publish batch applied as ${applied.kind}`);
      }
      // The state machine's verdict on each part: every replica reached the same one.
      batch.forEach((item, position) => {
        const part = applied.parts[position];
        if ("rejected" in part) item.reject(new ProtocolError(part.rejected, part.reason));
        else item.resolve(part);
      });
    }).catch((error) => {
      for (const item of batch) item.reject(error);
    });
  }

  async read(fromOffset: number, max: number): Promise<ReadResult> {
    // A sole voter whose disk failed still holds every committed entry.
    if (this.group.soleVoterDown) return this.readCommitted(fromOffset, max);
    await this.group.readBarrier();
    return this.#reader.read(fromOffset, max, this.#machine.state.nextOffset);
  }

  readCommitted(fromOffset: number, max: number): Promise<ReadResult> {
    if (this.#closed) {
      // This replica was dropped (moved away or deleted): its readers must go elsewhere.
      return Promise.reject(
        new ProtocolError("topic_not_found", `This replica of '${this.name}' is closed`),
      );
    }
    return Promise.resolve(this.#reader.read(fromOffset, max, this.#machine.state.nextOffset));
  }

  async bounds(): Promise<{ firstOffset: number; nextOffset: number }> {
    if (this.group.soleVoterDown) return this.localBounds();
    await this.group.readBarrier();
    return {
      firstOffset: this.#machine.state.firstOffset,
      nextOffset: this.#machine.state.nextOffset,
    };
  }

  /** Committed bounds of this replica, without a leader round trip. */
  localBounds(): { firstOffset: number; nextOffset: number } {
    return {
      firstOffset: this.#machine.state.firstOffset,
      nextOffset: this.#machine.state.nextOffset,
    };
  }

  /** Bytes of this replica's log files (for `describe_topic`). */
  bytes(): number {
    let bytes = 0;
    for (const segment of this.group.store.segments()) bytes += segment.bytes;
    return bytes;
  }

  ack(subscriber: string, offset: number): void {
    this.#acks.ack(subscriber, offset);
  }

  subscriberPosition(subscriber: string): number | undefined {
    return this.#acks.position(subscriber);
  }

  waitForOffset(offset: number, signal: AbortSignal): Promise<void> {
    const end = this.#closed ? Infinity : this.#machine.state.nextOffset;
    return this.#machine.waiters.wait(offset, end, signal);
  }

  #writeAcks(offsets: Record<string, number>): void {
    if (this.#closed) return;
    // Runs from a timer: a replica that lost leadership or whose disk failed
    // refuses the proposal, and a dropped ack only means a redelivery.
    try {
      const written = this.group.propose(encodeCommand({ kind: "ack", offsets })).then(
        () => {},
        () => {},
      );
      this.#ackWrite = written;
      written.then(() => {
        if (this.#ackWrite === written) this.#ackWrite = undefined;
      });
    } catch {
      // Refused synchronously (not the leader, overloaded, storage down): dropped.
    }
  }

  /**
   * Stops timers and wakes parked readers; the group is closed by its host,
   * once this resolves. A leader first writes the acks it buffered, and
   * resolves when that entry (or one still in flight) is committed, or after
   * `closeAckWriteMs`: a graceful stop keeps the acks it answered, so
   * durable subscribers resume after them instead of being sent them again.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.group.isLeader) this.#acks.flush();
    else this.#acks.cancel();
    this.#closed = true;
    this.#machine.waiters.wakeAll();
    const written = this.#ackWrite;
    if (written === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const cancel = this.group.scheduler.schedule(closeAckWriteMs, resolve);
      written.then(() => {
        cancel();
        resolve();
      });
    });
  }

  /** Throws unless this replica currently leads the topic. */
  requireLeader(): void {
    if (!this.group.isLeader) {
      // A replica whose disk failed, and is still retrying it, says why it cannot lead.
      const failure = this.group.storageFailure;
      if (failure !== undefined) throw failure;
      throw new ProtocolError("unavailable", `This replica of '${this.name}' is not the leader`);
    }
  }
}
