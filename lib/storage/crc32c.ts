/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI,
 * ext4, Kafka and RocksDB.
 *
 * Written by hand rather than imported: it is 60 lines, it runs on every
 * record the log writes and reads (the hot path), and the npm packages that
 * are fast rely on native addons while the pure-JS ones are unmaintained or
 * byte-at-a-time. Slicing-by-8 processes eight bytes per step with eight
 * 256-entry tables, which is several times faster than the bytewise loop.
 *
 * @module
 */

const polynomialReversed = 0x82f63b78;

/** Eight 256-entry tables laid out back to back: table t at [t * 256, t * 256 + 256). */
const tables: Uint32Array = buildTables();

function buildTables(): Uint32Array {
  const result = new Uint32Array(8 * 256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 1 ? (crc >>> 1) ^ polynomialReversed : crc >>> 1;
    }
    result[byte] = crc >>> 0;
  }
  for (let table = 1; table < 8; table++) {
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
 * Computes the CRC-32C of `bytes[start, end)` without allocating a view,
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
  const length = end;
  const end8 = start + ((end - start) & ~7);
  while (position < end8) {
    const low = state ^
      (bytes[position] | (bytes[position + 1] << 8) | (bytes[position + 2] << 16) |
        (bytes[position + 3] << 24));
    state = tables[7 * 256 + (low & 0xff)] ^
      tables[6 * 256 + ((low >>> 8) & 0xff)] ^
      tables[5 * 256 + ((low >>> 16) & 0xff)] ^
      tables[4 * 256 + (low >>> 24)] ^
      tables[3 * 256 + bytes[position + 4]] ^
      tables[2 * 256 + bytes[position + 5]] ^
      tables[256 + bytes[position + 6]] ^
      tables[bytes[position + 7]];
    position += 8;
  }
  while (position < length) {
    state = (state >>> 8) ^ tables[(state ^ bytes[position]) & 0xff];
    position++;
  }
  return ~state >>> 0;
}
