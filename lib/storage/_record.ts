/**
 * Segment record codec (private). A record is
 * `[length u32][crc32c u32][term u64][index u64][payload]`, big-endian, where
 * `length` counts the payload bytes, the payload is one entry-type byte
 * followed by the entry data, and the CRC covers term, index and payload.
 *
 * @module
 */

import { crc32cRange } from "./crc32c.ts";
import type { Entry } from "./types.ts";
import { EntryType } from "./types.ts";

/** Bytes before the payload: length, crc, term, index. */
export const recordHeaderBytes = 24;

/** Largest record (header + payload) the log writes or accepts when scanning. */
export const recordBytesMax = 16 * 1024 * 1024;

const twoPower32 = 4294967296;

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
  const payloadLength = readUint32(bytes, offset);
  if (payloadLength < 1 || recordHeaderBytes + payloadLength > recordBytesMax) {
    return `record length ${payloadLength} out of range`;
  }
  const recordEnd = offset + recordHeaderBytes + payloadLength;
  if (recordEnd > end) return "incomplete record payload";
  if (crc32cRange(bytes, offset + 8, recordEnd) !== readUint32(bytes, offset + 4)) {
    return "crc mismatch";
  }
  const index = readUint64(bytes, offset + 16);
  if (index !== expectedIndex) return `record index ${index} where ${expectedIndex} was expected`;
  const type = bytes[offset + 24];
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) {
    return `unknown entry type ${type}`;
  }
  return undefined;
}

/** Decodes the (already checked) record at `offset`; `data` is a view, not a copy. */
export function decodeRecord(bytes: Uint8Array, offset: number): Entry {
  const payloadLength = readUint32(bytes, offset);
  return {
    term: readUint64(bytes, offset + 8),
    index: readUint64(bytes, offset + 16),
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
    /** True when a valid record follows the bad one: corruption, not a torn tail. */
    followedByValidRecord: boolean;
  };
}

/**
 * Scans the records of a segment whose first index is `firstIndex`, calling
 * `visit` for each valid one, and stops at the first bad record.
 */
export function scanRecords(
  bytes: Uint8Array,
  firstIndex: number,
  visit: (term: number, offset: number, size: number) => void,
): ScanResult {
  let offset = 0;
  let index = firstIndex;
  while (offset < bytes.length) {
    const reason = checkRecord(bytes, offset, bytes.length, index);
    if (reason !== undefined) {
      const followedByValidRecord = findValidRecordAfter(bytes, offset, index);
      return {
        validBytes: offset,
        count: index - firstIndex,
        problem: { offset, reason, followedByValidRecord },
      };
    }
    const size = recordHeaderBytes + readUint32(bytes, offset);
    visit(readUint64(bytes, offset + 8), offset, size);
    offset += size;
    index++;
  }
  return { validBytes: offset, count: index - firstIndex };
}

/**
 * Looks for any valid record starting after the bad one at `badOffset`. A torn
 * write leaves only garbage or zeros after the last good record; a valid
 * record further on means data that was once durable is damaged (for example
 * a flipped bit in a length field), which must not be silently truncated.
 * Runs only on the error path, so a byte-by-byte search is affordable.
 */
function findValidRecordAfter(bytes: Uint8Array, badOffset: number, badIndex: number): boolean {
  const indexLimit = badIndex + bytes.length;
  for (let offset = badOffset + 1; offset + recordHeaderBytes < bytes.length; offset++) {
    const index = readUint64(bytes, offset + 16);
    if (index < badIndex || index > indexLimit) continue;
    if (checkRecord(bytes, offset, bytes.length, index) === undefined) return true;
  }
  return false;
}

export function writeUint32(target: Uint8Array, offset: number, value: number): void {
  target[offset] = value >>> 24;
  target[offset + 1] = value >>> 16;
  target[offset + 2] = value >>> 8;
  target[offset + 3] = value;
}

export function readUint32(source: Uint8Array, offset: number): number {
  return (
    ((source[offset] << 24) | (source[offset + 1] << 16) | (source[offset + 2] << 8) |
      source[offset + 3]) >>> 0
  );
}

/** Writes a non-negative safe integer as u64. */
export function writeUint64(target: Uint8Array, offset: number, value: number): void {
  writeUint32(target, offset, Math.floor(value / twoPower32));
  writeUint32(target, offset + 4, value >>> 0);
}

/** Reads a u64; values above 2^53 lose precision, which no valid record holds. */
export function readUint64(source: Uint8Array, offset: number): number {
  return readUint32(source, offset) * twoPower32 + readUint32(source, offset + 4);
}
