import assert from "node:assert/strict";
import { crc32c, crc32cRange } from "../../lib/storage/crc32c.ts";

const encoder = new TextEncoder();

/** Bytewise reference implementation to cross-check slicing-by-8. */
function crc32cReference(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

Deno.test("crc32c matches the standard check value for '123456789'", () => {
  assert.equal(crc32c(encoder.encode("123456789")), 0xe3069283);
});

Deno.test("crc32c matches the RFC 3720 iSCSI test vectors", () => {
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  const ascending = Uint8Array.from({ length: 32 }, (_, index) => index);
  assert.equal(crc32c(ascending), 0x46dd794e);
  const descending = Uint8Array.from({ length: 32 }, (_, index) => 31 - index);
  assert.equal(crc32c(descending), 0x113fdb5c);
});

Deno.test("crc32c agrees with a bytewise reference at every length and alignment", () => {
  const bytes = Uint8Array.from({ length: 300 }, (_, index) => (index * 131 + 7) & 0xff);
  for (let start = 0; start < 9; start++) {
    for (let end = start; end <= bytes.length; end += 7) {
      const slice = bytes.subarray(start, end);
      assert.equal(crc32c(slice), crc32cReference(slice));
    }
  }
});

Deno.test("crc32c continues a checksum across split buffers", () => {
  const bytes = encoder.encode("The quick brown fox jumps over the lazy dog");
  for (let split = 0; split <= bytes.length; split++) {
    assert.equal(crc32c(bytes.subarray(split), crc32c(bytes.subarray(0, split))), crc32c(bytes));
  }
});

Deno.test("crc32cRange checksums a range inside a larger buffer", () => {
  const bytes = encoder.encode("xx123456789xx");
  assert.equal(crc32cRange(bytes, 2, 11), 0xe3069283);
  assert.equal(crc32cRange(bytes, 4, 4), 0);
});
