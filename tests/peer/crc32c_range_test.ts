/**
 * The CRC-32C of every record (lib/storage/crc32c.ts) reads 16 bytes per
 * step as 32-bit words once the range is long enough: it must agree with a
 * bytewise reference for any buffer offset, range start and end, and seed.
 * (It lives here, next to the other publish-path tests of this work;
 * tests/storage/crc32c_test.ts holds the check values.)
 *
 * @module
 */

import { equal } from "node:assert/strict";
import fc from "fast-check";
import { crc32cRange } from "../../lib/storage/crc32c.ts";

function reference(bytes: Uint8Array, crc: number): number {
  let state = ~crc;
  for (const byte of bytes) {
    state ^= byte;
    for (let bit = 0; bit < 8; bit++) state = state & 1 ? (state >>> 1) ^ 0x82f63b78 : state >>> 1;
  }
  return ~state >>> 0;
}

Deno.test("crc32cRange agrees with a bytewise reference for any offset, range and seed", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 600 }),
      fc.nat(7),
      fc.nat(),
      fc.nat(),
      fc.integer({ min: 0, max: 0xffffffff }),
      (bytes, offset, from, to, seed) => {
        const backing = new Uint8Array(bytes.length + offset);
        backing.set(bytes, offset);
        const view = backing.subarray(offset);
        const start = bytes.length === 0 ? 0 : from % (bytes.length + 1);
        const end = start + (to % (bytes.length - start + 1));
        equal(crc32cRange(view, start, end, seed), reference(view.subarray(start, end), seed));
      },
    ),
    { numRuns: 400 },
  );
});
