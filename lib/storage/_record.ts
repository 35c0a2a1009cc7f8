/**
 * Segment record codec (private). Two formats share one size (a 24-byte
 * header, then the payload: one entry-type byte and the entry data), both
 * big-endian with a CRC-32C over everything after the CRC field:
 *
 * - v1 (the first format, and the one entry runs travel in):
 *   `[length u32][crc32c u32][term u64][index u64][payload]`. `length`
 *   counts the payload bytes and is below 2^24, so its first byte is 0.
 * - v2 (segments written since preallocation):
 *   `[0x80 u8][length u24][crc32c u32][durable u32][term u48][index u48][payload]`.
 *   `durable` is the segment offset up to which the segment's records were
 *   durable (an fdatasync had completed) when the record was staged: at
 *   open, a damaged record below it is corruption, not a torn write (see
 *   `scanRecords`). Terms and indices stay below 2^48.
 *
 * A zero byte where a record starts is a v1 length byte, so a zero-filled
 * (preallocated) region reads as a record of length 0: invalid, the end of
 * the log.
 *
 * @module
 */

import { readUint32, writeUint32 } from "../bytes.ts";
import { crc32cRange } from "./crc32c.ts";
import type { Entry } from "./types.ts";
import { EntryType } from "./types.ts";

/** Bytes before the payload: length, crc, term, index. */
export const recordHeaderBytes = 24;

/** Largest record (header + payload) the log writes or accepts when scanning. */
export const recordBytesMax = 16 * 1024 * 1024;

const twoPower32 = 4294967296;
/** First byte of a v2 record (v1 records start with the length's zero high byte). */
const formatV2Marker = 0x80;
/** Largest term or index a v2 record holds (48 bits). */
export const recordNumberMax = 2 ** 48 - 1;

/** Size on disk of the record for `entry`. */
export function recordSize(entry: Entry): number {
  return recordHeaderBytes + 1 + entry.data.length;
}

/** Writes the record for `entry` at `offset` (capacity checked by the caller). */
export function encodeRecord(target: Uint8Array, offset: number, entry: Entry): void {
  const payloadLength = 1 + entry.data.length;
  writeUint32(target, offset, payloadLength);
  writeUint64(target, offset + 8, entry.term);
  writeUint64(target, offset + 16, entry.index);
  target[offset + 24] = entry.type;
  target.set(entry.data, offset + 25);
  const end = offset + recordHeaderBytes + payloadLength;
  writeUint32(target, offset + 4, crc32cRange(target, offset + 8, end));
}

/**
 * Writes the v2 record for `entry` at `offset` (capacity checked by the
 * caller), stamped with `durableBytes`, the offset of the segment up to
 * which records were durable when this one was staged (at most `offset`).
 */
export function encodeSegmentRecord(
  target: Uint8Array,
  offset: number,
  entry: Entry,
  durableBytes: number,
): void {
  const payloadLength = 1 + entry.data.length;
  writeUint32(target, offset, payloadLength);
  target[offset] = formatV2Marker;
  writeUint32(target, offset + 8, durableBytes);
  writeUint48(target, offset + 12, entry.term);
  writeUint48(target, offset + 18, entry.index);
  target[offset + 24] = entry.type;
  target.set(entry.data, offset + 25);
  const end = offset + recordHeaderBytes + payloadLength;
  writeUint32(target, offset + 4, crc32cRange(target, offset + 8, end));
}

/** Whether the record at `offset` is in the v2 format (by its first byte only). */
export function isSegmentRecord(bytes: Uint8Array, offset: number): boolean {
  return bytes[offset] === formatV2Marker;
}

/** The durable-offset stamp of the (checked) record at `offset`; Infinity for a v1 record. */
export function recordDurableBytes(bytes: Uint8Array, offset: number): number {
  return isSegmentRecord(bytes, offset) ? readUint32(bytes, offset + 8) : Infinity;
}

/** The term of the (checked) record at `offset`. */
export function recordTerm(bytes: Uint8Array, offset: number): number {
  return isSegmentRecord(bytes, offset)
    ? readUint48(bytes, offset + 12)
    : readUint64(bytes, offset + 8);
}

/** The index field of the record at `offset` (either format). */
function recordIndex(bytes: Uint8Array, offset: number): number {
  return isSegmentRecord(bytes, offset)
    ? readUint48(bytes, offset + 18)
    : readUint64(bytes, offset + 16);
}

/** Size of the (checked) record at `offset`: header plus payload. */
export function recordSizeAt(bytes: Uint8Array, offset: number): number {
  return recordHeaderBytes + payloadLengthAt(bytes, offset);
}

/** The payload length of the record at `offset`, or -1 for an unknown first byte. */
function payloadLengthAt(bytes: Uint8Array, offset: number): number {
  const first = bytes[offset];
  if (first !== 0 && first !== formatV2Marker) return -1;
  return readUint32(bytes, offset) & 0xffffff;
}

/** Why a record at some offset cannot be read; `undefined` means it is valid. */
export type RecordProblem = string | undefined;

/**
 * Checks the record at `offset` of `bytes[0, end)` against the expected index.
 * Returns a reason when it is incomplete, has an impossible length, a wrong
 * CRC, an unknown entry type or another index.
 */
export function checkRecord(
  bytes: Uint8Array,
  offset: number,
  end: number,
  expectedIndex: number,
): RecordProblem {
  if (end - offset < recordHeaderBytes) return "incomplete record header";
  const payloadLength = payloadLengthAt(bytes, offset);
  if (payloadLength < 1 || recordHeaderBytes + payloadLength > recordBytesMax) {
    return `record length ${readUint32(bytes, offset)} out of range`;
  }
  const recordEnd = offset + recordHeaderBytes + payloadLength;
  if (recordEnd > end) return "incomplete record payload";
  if (crc32cRange(bytes, offset + 8, recordEnd) !== readUint32(bytes, offset + 4)) {
    return "crc mismatch";
  }
  const index = recordIndex(bytes, offset);
  if (index !== expectedIndex) return `record index ${index} where ${expectedIndex} was expected`;
  const type = bytes[offset + 24];
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) {
    return `unknown entry type ${type}`;
  }
  return undefined;
}

/** Decodes the (already checked) record at `offset`; `data` is a view, not a copy. */
export function decodeRecord(bytes: Uint8Array, offset: number): Entry {
  const payloadLength = payloadLengthAt(bytes, offset);
  return {
    term: recordTerm(bytes, offset),
    index: recordIndex(bytes, offset),
    type: bytes[offset + 24] as EntryType,
    data: bytes.subarray(offset + 25, offset + recordHeaderBytes + payloadLength),
  };
}

/** Outcome of scanning one segment file's bytes. */
export interface ScanResult {
  /** Bytes of valid records from the start of the segment. */
  validBytes: number;
  /** Number of valid records. */
  count: number;
  /** Set when a bad record stopped the scan before the end of the bytes. */
  problem?: {
    offset: number;
    reason: string;
    /**
     * True when a valid record after the bad one proves that the bad one
     * was durable: corruption, not a torn write (see `scanRecords`).
     */
    followedByValidRecord: boolean;
    /** True when every byte from the bad record on is zero (preallocated space). */
    zeroTail: boolean;
  };
}

/**
 * How a bad record is told from a torn write:
 *
 * - "exact": the file holds only what was written, in order (a v1 file,
 *   a sealed or cleanly closed segment, any segment before the last): any
 *   valid record after a bad one means damage;
 * - "stamped": the last segment, preallocated, where data written after
 *   the last completed fdatasync may be on disk in any page order: a valid
 *   record after a bad one at X proves damage only if it says that X was
 *   durable before it was written (its durable stamp is past X, or it is a
 *   v1 record, which carries no stamp).
 */
export type ScanMode = "exact" | "stamped";

/**
 * Scans the records of a segment whose first index is `firstIndex`, calling
 * `visit` for each valid one, and stops at the first bad record.
 */
export function scanRecords(
  bytes: Uint8Array,
  firstIndex: number,
  visit: (term: number, offset: number, size: number) => void,
  mode: ScanMode = "exact",
): ScanResult {
  let offset = 0;
  let index = firstIndex;
  while (offset < bytes.length) {
    const reason = checkRecord(bytes, offset, bytes.length, index);
    if (reason !== undefined) {
      const zeroTail = isZeroFrom(bytes, offset);
      const followedByValidRecord = !zeroTail &&
        findValidRecordAfter(bytes, offset, index, mode === "exact" ? -1 : offset);
      return {
        validBytes: offset,
        count: index - firstIndex,
        problem: { offset, reason, followedByValidRecord, zeroTail },
      };
    }
    const size = recordSizeAt(bytes, offset);
    visit(recordTerm(bytes, offset), offset, size);
    offset += size;
    index++;
  }
  return { validBytes: offset, count: index - firstIndex };
}

/** Whether `bytes[offset...]` are all zero (word at a time where aligned). */
export function isZeroFrom(bytes: Uint8Array, offset: number): boolean {
  let position = offset;
  const alignedStart = Math.min(
    bytes.length,
    Math.ceil((bytes.byteOffset + position) / 4) * 4 - bytes.byteOffset,
  );
  for (; position < alignedStart; position++) if (bytes[position] !== 0) return false;
  const words = (bytes.length - position) >>> 2;
  const view = new Uint32Array(bytes.buffer, bytes.byteOffset + position, words);
  for (let word = 0; word < words; word++) if (view[word] !== 0) return false;
  for (position += words * 4; position < bytes.length; position++) {
    if (bytes[position] !== 0) return false;
  }
  return true;
}

/**
 * Looks for a valid record starting after the bad one at `badOffset` whose
 * durable stamp is above `durableAbove` (-1: any valid record). A torn
 * write leaves only garbage, zeros or unstamped-for-it records after the
 * last good record; a valid record further on that saw the bad one's bytes
 * durable means data that was once durable is damaged (for example a
 * flipped bit in a length field), which must not be silently truncated.
 * Runs only on the error path, so a byte-by-byte search is affordable.
 */
function findValidRecordAfter(
  bytes: Uint8Array,
  badOffset: number,
  badIndex: number,
  durableAbove: number,
): boolean {
  const indexLimit = badIndex + bytes.length;
  for (let offset = badOffset + 1; offset + recordHeaderBytes < bytes.length; offset++) {
    const first = bytes[offset];
    if (first !== 0 && first !== formatV2Marker) continue;
    const index = recordIndex(bytes, offset);
    if (index < badIndex || index > indexLimit) continue;
    if (checkRecord(bytes, offset, bytes.length, index) !== undefined) continue;
    if (recordDurableBytes(bytes, offset) > durableAbove) return true;
  }
  return false;
}

/** Writes a non-negative safe integer as u64. */
export function writeUint64(target: Uint8Array, offset: number, value: number): void {
  writeUint32(target, offset, Math.floor(value / twoPower32));
  writeUint32(target, offset + 4, value >>> 0);
}

/** Writes a non-negative integer below 2^48 as u48. */
function writeUint48(target: Uint8Array, offset: number, value: number): void {
  const high = Math.floor(value / twoPower32);
  target[offset] = high >>> 8;
  target[offset + 1] = high;
  writeUint32(target, offset + 2, value >>> 0);
}

function readUint48(source: Uint8Array, offset: number): number {
  return ((source[offset] << 8) | source[offset + 1]) * twoPower32 + readUint32(source, offset + 2);
}

/** Reads a u64; values above 2^53 lose precision, which no valid record holds. */
export function readUint64(source: Uint8Array, offset: number): number {
  return readUint32(source, offset) * twoPower32 + readUint32(source, offset + 4);
}
