/**
 * The deterministic state machine of one topic: it applies log entries in
 * index order and knows which log index holds which offset, the durable
 * subscriber positions and the idempotent-producer table. A single peer and a
 * Raft replica apply exactly the same entries, so they agree on every offset.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ImageReader, ImageWriter } from "./_image_codec.ts";
import { decodeCommand, decodeCommandCounts, type TopicCommand } from "./topic_commands.ts";

/** Version of the snapshot image written by `TopicState.snapshot()`. */
export const topicImageVersion = 1;

/** Most producers remembered per topic; the least recently stored one is forgotten beyond it. */
export const producersMax = 10_000;
/**
 * Sequences remembered per producer (its window): a retry of any of them is
 * answered with its original offsets. It must cover every publish a client
 * may have in flight (`publishesInFlightMax` in lib/client/client.ts, which
 * asserts the relation), so that a retry never falls out of the window.
 */
export const producerSequencesMax = 1024;
/**
 * Sequences remembered per topic over all its producers (about 12 bytes
 * each): beyond it the least recently stored producers are forgotten, so one
 * topic's table stays under ~12 MiB however many producers write to it.
 */
export const topicSequencesMax = 1024 * 1024;
assert(topicSequencesMax >= producerSequencesMax, "a topic must hold one producer's whole window");
/** Most durable subscribers per topic. */
export const subscribersMax = 10_000;

/** Where one client publish landed. */
export interface PartResult {
  firstOffset: number;
  count: number;
  /** True when it was a retry of a publish stored earlier (and nothing was added). */
  duplicate: boolean;
}

/** A client publish the state machine refused: nothing of it was stored. */
export interface PartRejection {
  rejected: "out_of_order_sequence";
  /** One sentence for the client. */
  reason: string;
}

/**
 * What the producer table says about a publish's sequence: store it, answer
 * it with the offsets of the earlier copy, or refuse it (see `checkSequence`).
 */
export type SequenceVerdict =
  | { kind: "new" }
  | { kind: "duplicate"; result: PartResult }
  | { kind: "out_of_order"; reason: string };

/** What applying one entry did. */
export type ApplyResult =
  | {
    kind: "published";
    /** One outcome per part, in the order of the command's parts. */
    parts: (PartResult | PartRejection)[];
    /** The messages the entry added, in offset order (duplicates left out). */
    messages: string[];
  }
  | { kind: "acked" }
  | {
    kind: "retained";
    /** The first retained offset after the entry (it never goes back). */
    firstOffset: number;
  }
  | { kind: "noop" };

const newSequence: SequenceVerdict = { kind: "new" };

/**
 * The stored sequences of one producer: the last `length` of them, which are
 * contiguous and end at `last` (a producer's sequences are stored in order,
 * each one exactly once), and where each landed. A ring of typed columns
 * that grows by doubling up to `producerSequencesMax`, so a producer that
 * published three times costs three slots, not a whole window.
 */
class ProducerWindow {
  /** Highest sequence stored. */
  last = -1;
  #firstOffsets = new Float64Array(8);
  #counts = new Uint32Array(8);
  /** Ring slot of the oldest remembered sequence. */
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Where `sequence` landed, when it is inside the window. */
  lookup(sequence: number): PartResult | undefined {
    const age = this.last - sequence;
    if (age < 0 || age >= this.#length) return undefined;
    const slot = (this.#head + this.#length - 1 - age) % this.#firstOffsets.length;
    return { firstOffset: this.#firstOffsets[slot], count: this.#counts[slot], duplicate: true };
  }

  /**
   * Remembers `last + 1` (or, for a window that holds nothing yet, the
   * producer's first sequence, whatever it is); the oldest sequence leaves
   * once the window is full.
   */
  push(sequence: number, firstOffset: number, count: number): void {
    if (this.#length === 0) this.last = sequence - 1;
    if (sequence !== this.last + 1) {
      assert.fail(`producer sequence ${sequence} after ${this.last}`);
    }
    if (this.#length === this.#firstOffsets.length) {
      if (this.#length < producerSequencesMax) {
        this.#grow();
      } else {
        this.#head = (this.#head + 1) % this.#firstOffsets.length;
        this.#length--;
      }
    }
    const slot = (this.#head + this.#length) % this.#firstOffsets.length;
    this.#firstOffsets[slot] = firstOffset;
    this.#counts[slot] = count;
    this.#length++;
    this.last = sequence;
  }

  /** Visits the remembered sequences, oldest first (for snapshots). */
  forEach(visit: (sequence: number, firstOffset: number, count: number) => void): void {
    for (let position = 0; position < this.#length; position++) {
      const slot = (this.#head + position) % this.#firstOffsets.length;
      visit(this.last - this.#length + 1 + position, this.#firstOffsets[slot], this.#counts[slot]);
    }
  }

  #grow(): void {
    const capacity = Math.min(producerSequencesMax, this.#firstOffsets.length * 2);
    const firstOffsets = new Float64Array(capacity);
    const counts = new Uint32Array(capacity);
    for (let position = 0; position < this.#length; position++) {
      const slot = (this.#head + position) % this.#firstOffsets.length;
      firstOffsets[position] = this.#firstOffsets[slot];
      counts[position] = this.#counts[slot];
    }
    this.#firstOffsets = firstOffsets;
    this.#counts = counts;
    this.#head = 0;
  }
}

/** A growable pair of columns mapping a batch's first offset to its log index. */
class BatchIndex {
  // Small at first: with 10,000 topics, most hold a few batches (16 KiB each
  // at 1024 slots was 160 MB per peer); it doubles as batches arrive.
  #offsets = new Float64Array(8);
  #indices = new Float64Array(8);
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

  /**
   * The first offset of the first batch stored at log index `index` or
   * later; undefined when no batch is.
   */
  firstOffsetFrom(index: number): number | undefined {
    let low = this.#start;
    let high = this.#length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#indices[middle] < index) low = middle + 1;
      else high = middle;
    }
    return low < this.#length ? this.#offsets[low] : undefined;
  }

  /** Visits the batches still indexed, in offset order (for snapshots). */
  forEach(visit: (firstOffset: number, index: number) => void): void {
    for (let position = this.#start; position < this.#length; position++) {
      visit(this.#offsets[position], this.#indices[position]);
    }
  }

  /** Forgets batches that start before `offset` and lie wholly before it. */
  dropBefore(offset: number): void {
    while (this.#start + 1 < this.#length && this.#offsets[this.#start + 1] <= offset) {
      this.#start++;
    }
  }

  #grow(): void {
    const live = this.#length - this.#start;
    const capacity = Math.max(8, live * 2);
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
  /** Per producer, its window; in least recently stored order, for eviction. */
  readonly #producers = new Map<string, ProducerWindow>();
  /** The last key of `#producers` (the producer stored last), if known. */
  #newestProducer: string | undefined;
  /** Sequences remembered over all producers (bounded by `topicSequencesMax`). */
  #sequencesRemembered = 0;
  #batches = new BatchIndex();
  /**
   * Entries holding a retried (duplicate) or refused part next to new ones:
   * reading them back must leave those parts out. Rare, so a map; rebuilt by
   * replay.
   */
  readonly #skippedParts = new Map<number, number[]>();

  /**
   * Applies the entry at `index` (which must follow the last applied one).
   * Without `textsNeeded` the result's messages are empty placeholders
   * (`decodeCommandCounts`): the state is the same either way.
   */
  apply(index: number, data: Uint8Array, textsNeeded = true): ApplyResult {
    // Checked with assert.fail, not assert(): these run per entry, and
    // assert() gathers its arguments and the template is built every call.
    if (index !== this.appliedIndex + 1) {
      assert.fail(`apply out of order: ${index} after ${this.appliedIndex}`);
    }
    this.appliedIndex = index;
    const command = textsNeeded ? decodeCommand(data) : decodeCommandCounts(data);
    if (command === undefined) return { kind: "noop" };
    return this.applyCommand(index, command);
  }

  /**
   * Applies the entry at `index` from its command as decoded already (the
   * leader's own proposal): the same as `apply` of its encoded bytes.
   */
  applyDecoded(index: number, command: TopicCommand): ApplyResult {
    if (index !== this.appliedIndex + 1) {
      assert.fail(`apply out of order: ${index} after ${this.appliedIndex}`);
    }
    this.appliedIndex = index;
    return this.applyCommand(index, command);
  }

  /** Advances past an entry that is not a topic command (a Raft membership change). */
  skip(index: number): void {
    if (index !== this.appliedIndex + 1) {
      assert.fail(`skip out of order: ${index} after ${this.appliedIndex}`);
    }
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
    if (command.kind === "retain") {
      this.retainFrom(command.firstOffset);
      return { kind: "retained", firstOffset: this.firstOffset };
    }
    const parts: (PartResult | PartRejection)[] = [];
    const skipped: number[] = [];
    const messages: string[] = [];
    command.parts.forEach((part, position) => {
      const verdict = this.checkSequence(part.producerId, part.sequence);
      if (verdict.kind === "duplicate") {
        parts.push(verdict.result);
        skipped.push(position);
        return;
      }
      if (verdict.kind === "out_of_order") {
        parts.push({ rejected: "out_of_order_sequence", reason: verdict.reason });
        skipped.push(position);
        return;
      }
      const firstOffset = this.nextOffset;
      const count = part.messages.length;
      if (messages.length === 0 && count > 0) this.#batches.push(firstOffset, index);
      for (const message of part.messages) messages.push(message);
      this.nextOffset += count;
      if (part.producerId !== undefined) {
        this.#rememberProducer(part.producerId, part.sequence!, firstOffset, count);
      }
      parts.push({ firstOffset, count, duplicate: false });
    });
    if (skipped.length > 0 && messages.length > 0) this.#skippedParts.set(index, skipped);
    return { kind: "published", parts, messages };
  }

  /** Positions of the parts of entry `index` that were duplicates or refused (not stored). */
  skippedParts(index: number): readonly number[] | undefined {
    return this.#skippedParts.get(index);
  }

  /**
   * What to do with a publish of `producerId` at `sequence`. Deterministic:
   * every replica applies the same entries in the same order and reaches
   * the same verdict, which goes back to the publisher.
   *
   * - Without a producer id: always new (no deduplication asked for).
   * - Unknown producer: its first sequence may be any number (the protocol
   *   says only "+1 per publish", and seed-era clients start at 1); the
   *   topic checks every later one against it. A producer forgotten beyond
   *   `producersMax`/`topicSequencesMax` is unknown again, so a retry of
   *   its old sequences is not recognised: a documented limit.
   *   `PubSubClient` starts at 0 and sends nothing more until that first
   *   publish is answered, so its later sequences can never arrive first.
   * - Known producer: `last + 1` is new; a sequence inside the window is a
   *   duplicate answered with its original offsets; anything further ahead
   *   (a gap: an earlier sequence was never stored) or older than the window
   *   (it cannot be checked any more) is refused. A refused publish stores
   *   nothing, so the answer is never a success that stored nothing.
   */
  checkSequence(producerId: string | undefined, sequence: number | undefined): SequenceVerdict {
    if (producerId === undefined || sequence === undefined) return newSequence;
    const window = this.#producers.get(producerId);
    if (window === undefined) return newSequence;
    if (sequence === window.last + 1) return newSequence;
    if (sequence > window.last + 1) {
      return {
        kind: "out_of_order",
        reason:
          `Sequence ${sequence} of producer '${producerId}' skips ahead of its last stored sequence ${window.last}, so it was not stored`,
      };
    }
    const stored = window.lookup(sequence);
    if (stored !== undefined) return { kind: "duplicate", result: stored };
    return {
      kind: "out_of_order",
      reason:
        `Sequence ${sequence} of producer '${producerId}' is older than the ${window.length} sequences this topic remembers for it (up to ${window.last}), so it cannot be checked and was not stored`,
    };
  }

  /** The log index of the batch holding `offset` and that batch's first offset. */
  locate(offset: number): { firstOffset: number; index: number } | undefined {
    if (offset < this.firstOffset || offset >= this.nextOffset) return undefined;
    return this.#batches.find(offset);
  }

  /**
   * The first offset stored at log index `index` or later (`nextOffset`
   * when none is): dropping every entry below `index` keeps the offsets
   * from this one on. Retention turns segment boundaries into offsets with it.
   */
  firstOffsetFrom(index: number): number {
    return Math.max(this.firstOffset, this.#batches.firstOffsetFrom(index) ?? this.nextOffset);
  }

  /** Retention: offsets below `offset` are no longer served. */
  retainFrom(offset: number): void {
    if (offset > this.nextOffset) assert.fail(`offset ${offset} beyond ${this.nextOffset}`);
    if (offset <= this.firstOffset) return;
    this.firstOffset = offset;
    this.#batches.dropBefore(offset);
  }

  /**
   * The lowest log index this state still reads back: the entry holding
   * the first retained message (`appliedIndex + 1` when none is retained).
   * Compaction keeps every segment from it on.
   */
  firstNeededIndex(): number {
    if (this.firstOffset >= this.nextOffset) return this.appliedIndex + 1;
    return this.#batches.find(this.firstOffset)?.index ?? this.appliedIndex + 1;
  }

  /**
   * The whole state as a versioned binary image (the store that keeps it
   * checks its CRC): offsets, applied index, subscriber positions, producer
   * windows in eviction order, the batch index of the retained range and
   * the skipped parts of retained entries.
   */
  snapshot(): Uint8Array {
    const writer = new ImageWriter();
    writer.uint8(topicImageVersion);
    writer.float64(this.firstOffset);
    writer.float64(this.nextOffset);
    writer.float64(this.appliedIndex);
    writer.uint32(this.subscribers.size);
    for (const [subscriber, offset] of this.subscribers) {
      writer.string(subscriber);
      writer.float64(offset);
    }
    writer.uint32(this.#producers.size);
    for (const [producerId, window] of this.#producers) {
      writer.string(producerId);
      writer.float64(window.last);
      writer.uint32(window.length);
      window.forEach((_, firstOffset, count) => {
        writer.float64(firstOffset);
        writer.uint32(count);
      });
    }
    writer.uint32(this.#batches.length);
    let firstIndex = Infinity;
    this.#batches.forEach((firstOffset, index) => {
      firstIndex = Math.min(firstIndex, index);
      writer.float64(firstOffset);
      writer.float64(index);
    });
    const skipped = [...this.#skippedParts].filter(([index]) => index >= firstIndex);
    writer.uint32(skipped.length);
    for (const [index, positions] of skipped) {
      writer.float64(index);
      writer.uint32(positions.length);
      for (const position of positions) writer.uint32(position);
    }
    return writer.finish();
  }

  /**
   * Replaces the whole state by an image from `snapshot()` taken at log
   * index `index`. The subscriber map is refilled in place (acknowledgement
   * buffers hold it). Throws RangeError for an image it cannot read.
   */
  restore(data: Uint8Array, index: number): void {
    const reader = new ImageReader(data);
    const version = reader.uint8();
    if (version !== topicImageVersion) {
      throw new RangeError(`Cannot restore a topic from an image of version ${version}`);
    }
    const firstOffset = reader.float64();
    const nextOffset = reader.float64();
    const appliedIndex = reader.float64();
    assert.equal(appliedIndex, index, `topic image of index ${appliedIndex} restored at ${index}`);
    const subscribers = new Map<string, number>();
    for (let count = reader.uint32(); count > 0; count--) {
      subscribers.set(reader.string(), reader.float64());
    }
    const producers = new Map<string, ProducerWindow>();
    let sequences = 0;
    for (let count = reader.uint32(); count > 0; count--) {
      const producerId = reader.string();
      const last = reader.float64();
      const length = reader.uint32();
      const window = new ProducerWindow();
      for (let position = 0; position < length; position++) {
        window.push(last - length + 1 + position, reader.float64(), reader.uint32());
      }
      producers.set(producerId, window);
      sequences += length;
    }
    const batches = new BatchIndex();
    for (let count = reader.uint32(); count > 0; count--) {
      batches.push(reader.float64(), reader.float64());
    }
    const skippedParts = new Map<number, number[]>();
    for (let count = reader.uint32(); count > 0; count--) {
      const entryIndex = reader.float64();
      const positions: number[] = [];
      for (let length = reader.uint32(); length > 0; length--) positions.push(reader.uint32());
      skippedParts.set(entryIndex, positions);
    }
    reader.end();
    // Everything was read: only now is this state replaced, all at once.
    this.firstOffset = firstOffset;
    this.nextOffset = nextOffset;
    this.appliedIndex = appliedIndex;
    this.subscribers.clear();
    for (const [subscriber, offset] of subscribers) this.subscribers.set(subscriber, offset);
    this.#producers.clear();
    this.#newestProducer = undefined;
    for (const [producerId, window] of producers) this.#producers.set(producerId, window);
    this.#sequencesRemembered = sequences;
    this.#batches = batches;
    this.#skippedParts.clear();
    for (const [entryIndex, positions] of skippedParts) {
      this.#skippedParts.set(entryIndex, positions);
    }
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

  #rememberProducer(producerId: string, sequence: number, firstOffset: number, count: number) {
    let window = this.#producers.get(producerId);
    if (window === undefined) {
      window = new ProducerWindow();
      this.#producers.set(producerId, window);
    } else if (producerId !== this.#newestProducer) {
      // Re-inserting keeps the map in least-recently-stored order for eviction.
      // The newest stays where it is: a delete that empties a small map
      // makes V8 allocate it a new table, once per publish of a lone producer.
      this.#producers.delete(producerId);
      this.#producers.set(producerId, window);
    }
    this.#newestProducer = producerId;
    const before = window.length;
    window.push(sequence, firstOffset, count);
    this.#sequencesRemembered += window.length - before;
    while (
      this.#producers.size > producersMax || this.#sequencesRemembered > topicSequencesMax
    ) {
      const [oldestId, oldest] = this.#producers.entries().next().value!;
      assert(oldestId !== producerId, "a topic's sequence budget must hold one whole window");
      this.#producers.delete(oldestId);
      this.#sequencesRemembered -= oldest.length;
    }
  }
}
