/**
 * Texts decoded lately, looked up by their bytes. The short strings of hot
 * frames repeat from one frame to the next (a Raft frame's incarnation and
 * group ids, a publish's topic and producer id), and comparing bytes costs
 * less than a decode, which is a call into the runtime: after each wakeup
 * of a busy peer such a call cost several µs (CPU profile of a leader, one
 * publish at a time).
 *
 * @module
 */

import { holdsAt } from "../bytes.ts";

/** One decoded text and the bytes it came from. */
interface RecentText {
  bytes: Uint8Array;
  value: string;
}

/**
 * A small cache of decoded texts; the oldest entry goes first.
 *
 * @example
 * ```ts
 * import { RecentTexts } from "./recent_texts.ts";
 *
 * const texts = new RecentTexts(16, new TextDecoder("utf-8", { fatal: true }));
 * const bytes = new TextEncoder().encode("xxorders");
 * console.log(texts.decode(bytes, 2, 6)); // "orders", decoded
 * console.log(texts.decode(bytes, 2, 6)); // "orders", from the cache
 * ```
 */
export class RecentTexts {
  readonly #entries: RecentText[] = [];
  readonly #capacity: number;
  readonly #decoder: TextDecoder;
  readonly #bytesMax: number;
  #next = 0;

  /** Keeps up to `capacity` texts of at most `bytesMax` bytes each, decoded by `decoder`. */
  constructor(capacity: number, decoder: TextDecoder, bytesMax = Number.POSITIVE_INFINITY) {
    this.#capacity = capacity;
    this.#decoder = decoder;
    this.#bytesMax = bytesMax;
  }

  /**
   * The text in `source[at, at + length)`, looked up without a view or an
   * iterator; throws what the decoder throws (invalid UTF-8 with `fatal`).
   */
  decode(source: Uint8Array, at: number, length: number): string {
    const entries = this.#entries;
    for (let slot = 0; slot < entries.length; slot++) {
      const entry = entries[slot];
      if (entry.bytes.length === length && holdsAt(source, at, at + length, entry.bytes)) {
        return entry.value;
      }
    }
    const value = this.#decoder.decode(source.subarray(at, at + length));
    if (length > this.#bytesMax) return value;
    const entry = { bytes: source.slice(at, at + length), value };
    if (entries.length < this.#capacity) entries.push(entry);
    else entries[this.#next] = entry;
    this.#next = (this.#next + 1) % this.#capacity;
    return value;
  }
}
