/**
 * The entries a `SegmentLogStore` keeps in memory: the newest few as the
 * very objects appended, older ones as bytes packed into shared chunks.
 *
 * Why not every entry as its object: a cached entry is three objects on the
 * JavaScript heap (the entry, its `Uint8Array`, the `ArrayBuffer` behind
 * it), and with a cache of 32 MiB every entry a topic appends is still held
 * when the next scavenge runs. Each scavenge then copies them all, and the
 * next promotes them to the old generation, whose major collections they
 * drive once evicted. One publish at a time on 3 local peers, a follower's
 * scavenges copied some 630 KB each (about 500 bytes per publish) and took
 * 1.5 ms, with `--single-threaded-gc` 2.6-3.8 ms; with a cache too small to
 * hold entries until a scavenge (16 KiB), `bench:ab` measured p99 -39 and
 * -76 µs, but pipelined throughput fell from 215k to 87k msgs/s as committed
 * entries had to be read back from disk. Packed, an entry older than the
 * newest `recentEntriesMax` costs no heap object at all: its bytes sit in a
 * chunk of up to `chunkBytesMax`, its term, type, chunk and place in typed
 * arrays.
 *
 * The newest entries stay as objects: a leader applies its own proposals
 * by recognizing the very bytes it proposed (`TopicMachine.rememberDecoded`),
 * and they are the ones read most (replication, apply). An entry read from
 * the packed part is a new object with a copy of its bytes, so no caller
 * ever holds a view into a chunk that is reused.
 *
 * Written by hand: this is the storage core, and no library packs entries
 * this way.
 *
 * @module
 */

import type { Entry, EntryType } from "./types.ts";

/** Entries at the newest end kept as the objects appended. */
export const recentEntriesMax = 64;
/**
 * The first chunk's size (a topic with few entries wastes little); each next
 * one doubles, up to `chunkBytesMax`.
 */
const chunkBytesMin = 1024;
/** Largest chunk, except one made for a single larger entry. */
const chunkBytesMax = 1024 * 1024;
/** Slots of the packed part's typed arrays at first. */
const slotsMin = 64;

/**
 * Entries `[firstIndex, lastIndex]`, consecutive. Appends go at the end,
 * evictions take the front, a truncation cuts the end.
 *
 * @example
 * ```ts
 * import { EntryCache } from "./_entry_cache.ts";
 * import { EntryType } from "./types.ts";
 *
 * const cache = new EntryCache(1);
 * cache.push({ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array([42]) });
 * cache.get(1)?.data; // Uint8Array [42]
 * ```
 */
export class EntryCache {
  /** Index of the oldest entry held (`lastIndex + 1` when empty). */
  #firstIndex: number;
  /** Bytes of data held, over both parts. */
  #dataBytes = 0;

  // Packed part: entries [#firstIndex, #firstIndex + #packedCount), slot
  // (#slotHead + k) % capacity for the k-th. Their bytes lie in #chunks, in
  // index order: a chunk's entries are consecutive, and chunks are dropped
  // from the front once every entry in them is evicted.
  #packedCount = 0;
  #slotHead = 0;
  #terms = new Float64Array(0);
  #types = new Uint8Array(0);
  #chunkOf = new Float64Array(0);
  #starts = new Uint32Array(0);
  #lengths = new Uint32Array(0);
  /** Chunks in order; `#chunks[0]` is numbered `#firstChunk`. */
  #chunks: Uint8Array[] = [];
  #firstChunk = 0;
  /** Bytes used in the last chunk. */
  #chunkUsed = 0;

  // Recent part: the `#recentCount` entries after the packed ones, the k-th
  // at `#recent[(#recentHead + k) % #recent.length]` (a ring that grows up
  // to `recentEntriesMax + 1` slots: a quiet topic keeps a small one).
  #recent: (Entry | undefined)[] = [];
  #recentHead = 0;
  #recentCount = 0;

  constructor(firstIndex: number) {
    this.#firstIndex = firstIndex;
  }

  /** Index of the oldest entry held; `lastIndex + 1` when none is. */
  get firstIndex(): number {
    return this.#firstIndex;
  }

  /** Entries held. */
  get count(): number {
    return this.#packedCount + this.#recentCount;
  }

  /** Bytes of entry data held. */
  get dataBytes(): number {
    return this.#dataBytes;
  }

  /** Data bytes of the oldest entry held (none: 0). */
  get firstDataBytes(): number {
    if (this.#packedCount > 0) return this.#lengths[this.#slotHead];
    return this.#recentCount > 0 ? this.#recent[this.#recentHead]!.data.length : 0;
  }

  /**
   * Adds `entry`, whose index must follow the last one held. It is kept as
   * it is; the oldest object kept is packed once more than
   * `recentEntriesMax` are.
   */
  push(entry: Entry): void {
    if (entry.index !== this.#firstIndex + this.count) {
      throw new RangeError(
        `Cannot cache entry ${entry.index} after entry ${this.#firstIndex + this.count - 1}`,
      );
    }
    if (this.#recentCount === this.#recent.length) this.#growRecent();
    this.#recent[(this.#recentHead + this.#recentCount++) % this.#recent.length] = entry;
    this.#dataBytes += entry.data.length;
    if (this.#recentCount > recentEntriesMax) this.#pack(this.#takeOldestRecent());
  }

  /** The entry at `index`, or undefined when it is not held. */
  get(index: number): Entry | undefined {
    const position = index - this.#firstIndex;
    if (position < 0 || position >= this.count) return undefined;
    if (position >= this.#packedCount) {
      return this.#recentAt(position - this.#packedCount);
    }
    const slot = this.#slot(position);
    const chunk = this.#chunks[this.#chunkOf[slot] - this.#firstChunk];
    const start = this.#starts[slot];
    return {
      index,
      term: this.#terms[slot],
      type: this.#types[slot] as EntryType,
      data: chunk.slice(start, start + this.#lengths[slot]),
    };
  }

  /** The type of the entry at `index` (no copy), or undefined when it is not held. */
  typeOf(index: number): EntryType | undefined {
    const position = index - this.#firstIndex;
    if (position < 0 || position >= this.count) return undefined;
    if (position >= this.#packedCount) {
      return this.#recentAt(position - this.#packedCount).type;
    }
    return this.#types[this.#slot(position)] as EntryType;
  }

  /** Drops the oldest entry held. */
  evictFirst(): void {
    if (this.count === 0) return;
    this.#dataBytes -= this.firstDataBytes;
    this.#firstIndex++;
    if (this.#packedCount === 0) {
      this.#takeOldestRecent();
      return;
    }
    this.#slotHead = (this.#slotHead + 1) % this.#terms.length;
    this.#packedCount--;
    if (this.#packedCount === 0) {
      this.#dropChunks(this.#chunks.length);
      return;
    }
    // Chunks before the oldest entry's hold nothing any more.
    this.#dropChunks(this.#chunkOf[this.#slotHead] - this.#firstChunk);
  }

  /** Drops every entry from `index` on (the log was cut there). */
  truncateFrom(index: number): void {
    if (index <= this.#firstIndex) {
      this.clear(index);
      return;
    }
    const keep = index - this.#firstIndex;
    if (keep >= this.count) return;
    const recentKeep = keep - this.#packedCount;
    if (recentKeep >= 0) {
      this.#dropRecentFrom(recentKeep);
      return;
    }
    this.#dropRecentFrom(0);
    for (let position = keep; position < this.#packedCount; position++) {
      this.#dataBytes -= this.#lengths[this.#slot(position)];
    }
    this.#packedCount = keep;
    // The next packed entry goes right after the last one kept.
    const last = this.#slot(keep - 1);
    this.#dropChunksAfter(this.#chunkOf[last]);
    this.#chunkUsed = this.#starts[last] + this.#lengths[last];
  }

  /** Drops everything; the next entry pushed has index `firstIndex`. */
  clear(firstIndex: number): void {
    this.#firstIndex = firstIndex;
    this.#dataBytes = 0;
    this.#packedCount = 0;
    this.#slotHead = 0;
    this.#dropChunks(this.#chunks.length);
    this.#recent = [];
    this.#recentHead = 0;
    this.#recentCount = 0;
  }

  #slot(position: number): number {
    return (this.#slotHead + position) % this.#terms.length;
  }

  #pack(entry: Entry): void {
    const length = entry.data.length;
    let chunk = this.#chunks.at(-1);
    if (chunk === undefined || this.#chunkUsed + length > chunk.length) {
      const previous = chunk?.length ?? chunkBytesMin / 2;
      chunk = new Uint8Array(Math.max(length, Math.min(chunkBytesMax, previous * 2)));
      this.#chunks.push(chunk);
      this.#chunkUsed = 0;
    }
    if (this.#packedCount === this.#terms.length) this.#growSlots();
    const slot = this.#slot(this.#packedCount);
    chunk.set(entry.data, this.#chunkUsed);
    this.#terms[slot] = entry.term;
    this.#types[slot] = entry.type;
    this.#chunkOf[slot] = this.#firstChunk + this.#chunks.length - 1;
    this.#starts[slot] = this.#chunkUsed;
    this.#lengths[slot] = length;
    this.#chunkUsed += length;
    this.#packedCount++;
  }

  /** Doubles the packed part's slots, oldest first from slot 0. */
  #growSlots(): void {
    const capacity = Math.max(slotsMin, this.#terms.length * 2);
    const terms = new Float64Array(capacity);
    const types = new Uint8Array(capacity);
    const chunkOf = new Float64Array(capacity);
    const starts = new Uint32Array(capacity);
    const lengths = new Uint32Array(capacity);
    for (let position = 0; position < this.#packedCount; position++) {
      const slot = this.#slot(position);
      terms[position] = this.#terms[slot];
      types[position] = this.#types[slot];
      chunkOf[position] = this.#chunkOf[slot];
      starts[position] = this.#starts[slot];
      lengths[position] = this.#lengths[slot];
    }
    this.#terms = terms;
    this.#types = types;
    this.#chunkOf = chunkOf;
    this.#starts = starts;
    this.#lengths = lengths;
    this.#slotHead = 0;
  }

  /** Drops the first `count` chunks. */
  #dropChunks(count: number): void {
    if (count <= 0) return;
    if (count >= this.#chunks.length) {
      this.#firstChunk += this.#chunks.length;
      this.#chunks = [];
      this.#chunkUsed = 0;
      return;
    }
    this.#chunks.splice(0, count);
    this.#firstChunk += count;
  }

  /** Drops the chunks numbered after `chunk`. */
  #dropChunksAfter(chunk: number): void {
    this.#chunks.length = chunk - this.#firstChunk + 1;
  }

  /** The k-th entry of the recent part. */
  #recentAt(k: number): Entry {
    return this.#recent[(this.#recentHead + k) % this.#recent.length]!;
  }

  /** Removes the recent part's oldest entry and returns it (the caller accounts its bytes). */
  #takeOldestRecent(): Entry {
    const oldest = this.#recent[this.#recentHead]!;
    this.#recent[this.#recentHead] = undefined;
    this.#recentHead = (this.#recentHead + 1) % this.#recent.length;
    this.#recentCount--;
    return oldest;
  }

  /** Drops the recent part's entries from its k-th on. */
  #dropRecentFrom(k: number): void {
    for (let position = k; position < this.#recentCount; position++) {
      const slot = (this.#recentHead + position) % this.#recent.length;
      this.#dataBytes -= this.#recent[slot]!.data.length;
      this.#recent[slot] = undefined;
    }
    this.#recentCount = k;
  }

  /** Doubles the recent ring (up to `recentEntriesMax + 1` slots), oldest first from slot 0. */
  #growRecent(): void {
    const capacity = Math.min(recentEntriesMax + 1, Math.max(4, this.#recent.length * 2));
    const grown: (Entry | undefined)[] = new Array(capacity).fill(undefined);
    for (let k = 0; k < this.#recentCount; k++) grown[k] = this.#recentAt(k);
    this.#recent = grown;
    this.#recentHead = 0;
  }
}
