/**
 * Entries as a run of segment records (`[length][crc32c][term][index]
 * [payload]`), the form retained entries travel in during a snapshot
 * transfer: every entry carries its own CRC, so a damaged chunk is refused
 * instead of installed.
 *
 * @module
 */

import { checkRecord, decodeRecord, encodeRecord, recordSize } from "./_record.ts";
import type { Entry } from "./types.ts";

/**
 * Encodes `entries` as consecutive records.
 *
 * @example
 * ```ts
 * import { decodeEntryRecords, encodeEntryRecords } from "./entry_records.ts";
 * const bytes = encodeEntryRecords([{ term: 1, index: 1, type: 0, data: new Uint8Array([7]) }]);
 * decodeEntryRecords(bytes, 1)[0].data; // Uint8Array [7]
 * ```
 */
export function encodeEntryRecords(entries: readonly Entry[]): Uint8Array {
  let bytes = 0;
  for (const entry of entries) bytes += recordSize(entry);
  const buffer = new Uint8Array(bytes);
  let offset = 0;
  for (const entry of entries) {
    encodeRecord(buffer, offset, entry);
    offset += recordSize(entry);
  }
  return buffer;
}

/**
 * Decodes records written by `encodeEntryRecords`, which must hold the
 * entries from `firstIndex` on, consecutively. Throws RangeError naming the
 * first damaged record.
 *
 * @example
 * ```ts
 * import { decodeEntryRecords } from "./entry_records.ts";
 * decodeEntryRecords(new Uint8Array(), 5); // []
 * ```
 */
export function decodeEntryRecords(bytes: Uint8Array, firstIndex: number): Entry[] {
  const entries: Entry[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const index = firstIndex + entries.length;
    const problem = checkRecord(bytes, offset, bytes.length, index);
    if (problem !== undefined) {
      throw new RangeError(`Cannot decode entry ${index} at byte ${offset}: ${problem}`);
    }
    const entry = decodeRecord(bytes, offset);
    entries.push(entry);
    offset += recordSize(entry);
  }
  return entries;
}
