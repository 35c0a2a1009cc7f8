/**
 * The deterministic state machine of one topic: it applies log entries in
 * index order and knows which log index holds which offset, the durable
 * subscriber positions and the idempotent-producer table. A single peer and a
 * Raft replica apply exactly the same entries, so they agree on every offset.
 *
 * @module
 */

import assert from "node:assert/strict";
import { decodeCommand, type TopicCommand } from "./topic_commands.ts";

/** Most producers remembered per topic; the oldest is forgotten beyond it. */
export const producersMax = 10_000;
/** Most durable subscribers per topic. */
export const subscribersMax = 10_000;

/** Where one client publish landed. */
export interface PartResult {
  firstOffset: number;
  count: number;
  /** True when it was a retry of a publish stored earlier (and nothing was added). */
  duplicate: boolean;
}

/** What applying one entry did. */
export type ApplyResult =
  | {
    kind: "published";
    /** One result per part, in the order of the command's parts. */
    parts: PartResult[];
    /** The messages the entry added, in offset order (duplicates left out). */
    messages: string[];
  }
  | { kind: "acked" }
  | { kind: "noop" };

/** Sequences remembered per producer: retries of any of them are recognised. */
export const producerSequencesMax = 64;

/** Where one stored sequence of a producer landed. */
interface StoredBatch {
  firstOffset: number;
  count: number;
}

/** A growable pair of columns mapping a batch's first offset to its log index. */
class BatchIndex {
  #offsets = new Float64Array(1024);
  #indices = new Float64Array(1024);
  #length = 0;
  #start = 0;

  get length(): number {
    return this.#length - this.#start;
  }

  push(firstOffset: number, index: number): void {
    if (this.#length === this.#offsets.length) this.#grow();
    this.#offsets[this.#length] = firstOffset;
    this.#indices[this.#length] = index;
    this.#length++;
  }

  /** The batch holding `offset`: its first offset and log index. */
  find(offset: number): { firstOffset: number; index: number } | undefined {
    let low = this.#start;
    let high = this.#length - 1;
    if (high < low || offset < this.#offsets[low]) return undefined;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if (this.#offsets[middle] <= offset) low = middle;
      else high = middle - 1;
    }
    return { firstOffset: this.#offsets[low], index: this.#indices[low] };
  }

  /** Forgets batches that start before `offset` and lie wholly before it. */
  dropBefore(offset: number): void {
    while (this.#start + 1 < this.#length && this.#offsets[this.#start + 1] <= offset) {
      this.#start++;
    }
  }

  #grow(): void {
    const live = this.#length - this.#start;
    const capacity = Math.max(1024, live * 2);
    const offsets = new Float64Array(capacity);
    const indices = new Float64Array(capacity);
    offsets.set(this.#offsets.subarray(this.#start, this.#length));
    indices.set(this.#indices.subarray(this.#start, this.#length));
    this.#offsets = offsets;
    this.#indices = indices;
    this.#length = live;
    this.#start = 0;
  }
}

/**
 * Topic state machine.
 *
 * @example
 * ```ts
 * const state = new TopicState();
 * state.apply(1, encodeCommand({ kind: "publish", parts: [{ messages: ["a", "b"] }] }));
 * state.nextOffset; // 2
 * ```
 */
export class TopicState {
  /** Offset of the oldest message still retained. */
  firstOffset = 0;
  /** Offset the next published message gets. */
  nextOffset = 0;
  /** Index of the last entry applied. */
  appliedIndex = 0;
  readonly subscribers = new Map<string, number>();
  /** Per producer, its recent sequences in the order stored. */
  readonly #producers = new Map<
    string,
    { batches: Map<number, StoredBatch>; forgottenMax: number }
  >();
  readonly #batches = new BatchIndex();
  /**
   * Entries holding a retried (duplicate) part next to new ones: reading them
   * back must leave those parts out. Rare, so a map; rebuilt by replay.
   */
  readonly #skippedParts = new Map<number, number[]>();

  /** Applies the entry at `index` (which must follow the last applied one). */
  apply(index: number, data: Uint8Array): ApplyResult {
    assert(
      index === this.appliedIndex + 1,
      `apply out of order: ${index} after ${this.appliedIndex}`,
    );
    this.appliedIndex = index;
    const command = decodeCommand(data);
    if (command === undefined) return { kind: "noop" };
    return this.applyCommand(index, command);
  }

  /** Advances past an entry that is not a topic command (a Raft membership change). */
  skip(index: number): void {
    assert(
      index === this.appliedIndex + 1,
      `skip out of order: ${index} after ${this.appliedIndex}`,
    );
    this.appliedIndex = index;
  }

  /** Applies an already decoded command (the caller advanced `appliedIndex`). */
  applyCommand(index: number, command: TopicCommand): ApplyResult {
    if (command.kind === "ack") {
      for (const [subscriber, offset] of Object.entries(command.offsets)) {
        this.#setSubscriber(subscriber, offset);
      }
      return { kind: "acked" };
    }
    const parts: PartResult[] = [];
    const skipped: number[] = [];
    const messages: string[] = [];
    command.parts.forEach((part, position) => {
      const duplicate = this.duplicateOf(part.producerId, part.sequence);
      if (duplicate) {
        parts.push(duplicate);
        skipped.push(position);
        return;
      }
      const firstOffset = this.nextOffset;
      const count = part.messages.length;
      if (messages.length === 0 && count > 0) this.#batches.push(firstOffset, index);
      for (const message of part.messages) messages.push(message);
      this.nextOffset += count;
      if (part.producerId !== undefined) {
        this.#rememberProducer(part.producerId, part.sequence!, { firstOffset, count });
      }
      parts.push({ firstOffset, count, duplicate: false });
    });
    if (skipped.length > 0 && messages.length > 0) this.#skippedParts.set(index, skipped);
    return { kind: "published", parts, messages };
  }

  /** Positions of the parts of entry `index` that were duplicates (not stored). */
  skippedParts(index: number): readonly number[] | undefined {
    return this.#skippedParts.get(index);
  }

  /**
   * The earlier result of a retried publish, or undefined when it is new. A
   * producer's recent sequences are remembered, so a retry of an older one
   * (its answer was lost while later ones succeeded) gets its own offsets,
   * and a sequence that failed and is retried after later ones is stored.
   * A sequence older than everything remembered cannot be told apart from a
   * duplicate, so it is answered as one: stored at most once.
   */
  duplicateOf(
    producerId: string | undefined,
    sequence: number | undefined,
  ): PartResult | undefined {
    if (producerId === undefined || sequence === undefined) return undefined;
    const known = this.#producers.get(producerId);
    if (known === undefined) return undefined;
    const stored = known.batches.get(sequence);
    if (stored !== undefined) return { ...stored, duplicate: true };
    if (sequence <= known.forgottenMax) return { firstOffset: -1, count: 0, duplicate: true };
    return undefined;
  }

  /** The log index of the batch holding `offset` and that batch's first offset. */
  locate(offset: number): { firstOffset: number; index: number } | undefined {
    if (offset < this.firstOffset || offset >= this.nextOffset) return undefined;
    return this.#batches.find(offset);
  }

  /** Retention: offsets below `offset` are no longer served. */
  retainFrom(offset: number): void {
    assert(offset <= this.nextOffset);
    if (offset <= this.firstOffset) return;
    this.firstOffset = offset;
    this.#batches.dropBefore(offset);
  }

  #setSubscriber(subscriber: string, offset: number): void {
    if (!this.subscribers.has(subscriber) && this.subscribers.size >= subscribersMax) {
      // Forget the oldest registration: its owner resumes as a new subscriber.
      const oldest = this.subscribers.keys().next().value!;
      this.subscribers.delete(oldest);
    }
    const previous = this.subscribers.get(subscriber) ?? -1;
    this.subscribers.set(subscriber, Math.max(previous, offset));
  }

  #rememberProducer(producerId: string, sequence: number, batch: StoredBatch): void {
    let known = this.#producers.get(producerId);
    if (known === undefined) {
      if (this.#producers.size >= producersMax) {
        this.#producers.delete(this.#producers.keys().next().value!);
      }
      known = { batches: new Map(), forgottenMax: -1 };
    }
    // Re-inserting keeps the map in least-recently-used order for eviction.
    this.#producers.delete(producerId);
    this.#producers.set(producerId, known);
    known.batches.set(sequence, batch);
    if (known.batches.size > producerSequencesMax) {
      const forgotten = known.batches.keys().next().value!;
      known.batches.delete(forgotten);
      known.forgottenMax = Math.max(known.forgottenMax, forgotten);
    }
  }
}
