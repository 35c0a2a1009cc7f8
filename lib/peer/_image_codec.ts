/**
 * A small binary writer and reader for state machine images (snapshots):
 * little-endian numbers, length-prefixed UTF-8 strings and typed columns.
 * The store that keeps an image checks its CRC; the reader still refuses a
 * truncated or overlong image with a RangeError instead of reading garbage.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Appends values to a growing buffer.
 *
 * @example
 * ```ts
 * import { ImageWriter } from "./_image_codec.ts";
 * const writer = new ImageWriter();
 * writer.uint32(7);
 * writer.string("events");
 * const bytes = writer.finish();
 * ```
 */
export class ImageWriter {
  #buffer = new Uint8Array(256);
  #view = new DataView(this.#buffer.buffer);
  #length = 0;

  uint8(value: number): void {
    this.#reserve(1);
    this.#view.setUint8(this.#length, value);
    this.#length += 1;
  }

  uint32(value: number): void {
    this.#reserve(4);
    this.#view.setUint32(this.#length, value, true);
    this.#length += 4;
  }

  /** Any safe integer or double (offsets and indices go past 2^32). */
  float64(value: number): void {
    this.#reserve(8);
    this.#view.setFloat64(this.#length, value, true);
    this.#length += 8;
  }

  string(value: string): void {
    const bytes = encoder.encode(value);
    this.uint32(bytes.length);
    this.#reserve(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /** The bytes written so far (a copy sized exactly). */
  finish(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }

  #reserve(bytes: number): void {
    if (this.#length + bytes <= this.#buffer.length) return;
    let capacity = this.#buffer.length * 2;
    while (capacity < this.#length + bytes) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
    this.#view = new DataView(grown.buffer);
  }
}

/**
 * Reads what an `ImageWriter` wrote, in the same order.
 *
 * @example
 * ```ts
 * import { ImageReader, ImageWriter } from "./_image_codec.ts";
 * const writer = new ImageWriter();
 * writer.string("events");
 * new ImageReader(writer.finish()).string(); // "events"
 * ```
 */
export class ImageReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  uint8(): number {
    this.#need(1);
    return this.#view.getUint8(this.#offset++);
  }

  uint32(): number {
    this.#need(4);
    const value = this.#view.getUint32(this.#offset, true);
    this.#offset += 4;
    return value;
  }

  float64(): number {
    this.#need(8);
    const value = this.#view.getFloat64(this.#offset, true);
    this.#offset += 8;
    return value;
  }

  string(): string {
    const length = this.uint32();
    this.#need(length);
    const value = decoder.decode(this.#bytes.subarray(this.#offset, this.#offset + length));
    this.#offset += length;
    return value;
  }

  /** Throws unless every byte was read (an image never carries trailing bytes). */
  end(): void {
    if (this.#offset !== this.#bytes.length) {
      throw new RangeError(
        `Cannot read the state image as ${this.#bytes.length - this.#offset} bytes follow its end`,
      );
    }
  }

  #need(bytes: number): void {
    if (this.#offset + bytes > this.#bytes.length) {
      throw new RangeError(`Cannot read the state image as it ends at byte ${this.#bytes.length}`);
    }
  }
}
