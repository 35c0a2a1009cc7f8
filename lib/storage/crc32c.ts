/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI,
 * ext4, Kafka and RocksDB.
 *
 * Written by hand rather than imported: it is 60 lines, it runs on every
 * record the log writes and reads (the hot path), and the npm packages that
 * are fast rely on native addons while the pure-JS ones are unmaintained or
 * byte-at-a-time. Slicing-by-16 processes sixteen bytes per step, read as
 * four 32-bit words, with sixteen 256-entry tables: about twice as fast as
 * slicing-by-8 with byte reads (0.23 against 0.45 ms for 512 KiB), which
 * matters for large messages, checksummed when written and when read.
 *
 * @module
 */

const polynomialReversed = 0x82f63b78;

/** Tables of slicing-by-N. */
const tableCount = 16;
/** Below this many bytes the word loop's view costs more than it saves. */
const wordLoopBytesMin = 64;
/** Whether 32-bit words read from memory are little-endian (the word loop assumes it). */
const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Sixteen 256-entry tables laid out back to back: table t at [t * 256, t * 256 + 256). */
const tables: Uint32Array = buildTables();

function buildTables(): Uint32Array {
  const result = new Uint32Array(tableCount * 256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 1 ? (crc >>> 1) ^ polynomialReversed : crc >>> 1;
    }
    result[byte] = crc >>> 0;
  }
  for (let table = 1; table < tableCount; table++) {
    for (let byte = 0; byte < 256; byte++) {
      const previous = result[(table - 1) * 256 + byte];
      result[table * 256 + byte] = (previous >>> 8) ^ result[previous & 0xff];
    }
  }
  return result;
}

/**
 * Computes the CRC-32C of `bytes`. Pass the CRC of the preceding bytes as
 * `crc` to continue a checksum over several buffers.
 *
 * @example
 * ```ts
 * import { crc32c } from "./crc32c.ts";
 * const bytes = new TextEncoder().encode("123456789");
 * crc32c(bytes); // 0xe3069283
 * crc32c(bytes.subarray(5), crc32c(bytes.subarray(0, 5))); // 0xe3069283
 * ```
 */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  return crc32cRange(bytes, 0, bytes.length, crc);
}

/**
 * Computes the CRC-32C of `bytes[start, end)` without copying the bytes,
 * for callers that checksum many records inside one buffer.
 *
 * @example
 * ```ts
 * import { crc32cRange } from "./crc32c.ts";
 * const bytes = new TextEncoder().encode("xx123456789xx");
 * crc32cRange(bytes, 2, 11); // 0xe3069283
 * ```
 */
export function crc32cRange(bytes: Uint8Array, start: number, end: number, crc = 0): number {
  let state = ~crc;
  let position = start;
  if (littleEndian && end - start >= wordLoopBytesMin) {
    // Bytewise up to a 4-byte boundary, then 16 bytes per step as 4 words.
    while (((bytes.byteOffset + position) & 3) !== 0) {
      state = (state >>> 8) ^ tables[(state ^ bytes[position]) & 0xff];
      position++;
    }
    const words = wordsOf(bytes.buffer);
    const steps = (end - position) >>> 4;
    const first = (bytes.byteOffset + position) >>> 2;
    for (let step = 0, word = first; step < steps; step++, word += 4) {
      state = sliceWords(state ^ words[word], words[word + 1], words[word + 2], words[word + 3]);
    }
    position += steps * 16;
  }
  while (position < end) {
    state = (state >>> 8) ^ tables[(state ^ bytes[position]) & 0xff];
    position++;
  }
  return ~state >>> 0;
}

/** Buffers up to this size keep their word view for the next call (a staging buffer's records). */
const wordViewBufferBytesMax = 64 * 1024;
let viewedBuffer: ArrayBufferLike | undefined;
let viewedWords: Uint32Array = new Uint32Array(0);

/**
 * The whole of `buffer` as 32-bit words. The last small buffer's view is
 * kept, so checksumming record after record of one staging buffer costs no
 * view object each (garbage per append); a large one gets a fresh view and
 * is not kept alive.
 */
function wordsOf(buffer: ArrayBufferLike): Uint32Array {
  if (buffer === viewedBuffer) return viewedWords;
  const words = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  if (buffer.byteLength <= wordViewBufferBytesMax) {
    viewedBuffer = buffer;
    viewedWords = words;
  }
  return words;
}

/** One slicing-by-16 step: the next 16 bytes as little-endian words, the first XORed with the state. */
function sliceWords(first: number, second: number, third: number, fourth: number): number {
  return tables[15 * 256 + (first & 0xff)] ^ tables[14 * 256 + ((first >>> 8) & 0xff)] ^
    tables[13 * 256 + ((first >>> 16) & 0xff)] ^ tables[12 * 256 + (first >>> 24)] ^
    tables[11 * 256 + (second & 0xff)] ^ tables[10 * 256 + ((second >>> 8) & 0xff)] ^
    tables[9 * 256 + ((second >>> 16) & 0xff)] ^ tables[8 * 256 + (second >>> 24)] ^
    tables[7 * 256 + (third & 0xff)] ^ tables[6 * 256 + ((third >>> 8) & 0xff)] ^
    tables[5 * 256 + ((third >>> 16) & 0xff)] ^ tables[4 * 256 + (third >>> 24)] ^
    tables[3 * 256 + (fourth & 0xff)] ^ tables[2 * 256 + ((fourth >>> 8) & 0xff)] ^
    tables[256 + ((fourth >>> 16) & 0xff)] ^ tables[fourth >>> 24];
}
