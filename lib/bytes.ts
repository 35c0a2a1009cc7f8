/**
 * Byte helpers every codec in the project shares: big-endian 32-bit fields
 * (frame length headers, Raft frame heads, segment records, metadata files)
 * and comparing a run of bytes with known ones, written once here, without
 * a `DataView` (one more object per call, and a view of a carved array
 * needs its byte offset).
 *
 * @module
 */

/**
 * Writes `value` (0 to 2^32 - 1) big-endian at `offset`.
 *
 * @example
 * ```ts
 * import { writeUint32 } from "./bytes.ts";
 * const bytes = new Uint8Array(4);
 * writeUint32(bytes, 0, 258); // [0, 0, 1, 2]
 * ```
 */
export function writeUint32(target: Uint8Array, offset: number, value: number): void {
  target[offset] = value >>> 24;
  target[offset + 1] = value >>> 16;
  target[offset + 2] = value >>> 8;
  target[offset + 3] = value;
}

/**
 * The big-endian unsigned 32-bit value at `offset`.
 *
 * @example
 * ```ts
 * import { readUint32 } from "./bytes.ts";
 * readUint32(new Uint8Array([0, 0, 1, 2]), 0); // 258
 * ```
 */
export function readUint32(source: Uint8Array, offset: number): number {
  return (
    ((source[offset] << 24) | (source[offset + 1] << 16) | (source[offset + 2] << 8) |
      source[offset + 3]) >>> 0
  );
}

/**
 * Whether `source[at, end)` starts with all of `known` (it may go on after
 * it). Compared from the end: the texts looked up this way (group ids,
 * topic names) often share their first bytes.
 *
 * @example
 * ```ts
 * import { holdsAt } from "./bytes.ts";
 * holdsAt(new Uint8Array([9, 1, 2, 3]), 1, 4, new Uint8Array([1, 2])); // true
 * ```
 */
export function holdsAt(source: Uint8Array, at: number, end: number, known: Uint8Array): boolean {
  if (end - at < known.length) return false;
  for (let offset = known.length - 1; offset >= 0; offset--) {
    if (known[offset] !== source[at + offset]) return false;
  }
  return true;
}
