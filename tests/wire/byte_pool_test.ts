import assert from "node:assert/strict";
import { allocBytes, carvedBytesMax, chunkBytes, dataViewOf } from "../../lib/wire/byte_pool.ts";

Deno.test("allocBytes hands out zeroed, disjoint, 8-byte-aligned arrays of the asked length", () => {
  const arrays = [1, 7, 8, 100, 13, carvedBytesMax].map((length) => allocBytes(length));
  for (const bytes of arrays) {
    assert.ok(bytes.every((byte) => byte === 0), "a fresh array is zero-filled");
    assert.equal(bytes.byteOffset % 8, 0, "every array starts on an 8-byte boundary");
  }
  assert.deepEqual(arrays.map((bytes) => bytes.length), [1, 7, 8, 100, 13, carvedBytesMax]);
  // Writing every byte of every array changes no other array: no two overlap.
  arrays.forEach((bytes, index) => bytes.fill(index + 1));
  arrays.forEach((bytes, index) => assert.ok(bytes.every((byte) => byte === index + 1)));
});

Deno.test("allocBytes never hands out memory twice, across chunk boundaries", () => {
  const seen: Uint8Array[] = [];
  // Well past one chunk, so at least one new chunk starts on the way.
  for (let bytes = 0; bytes < 3 * chunkBytes; bytes += 1000) {
    const array = allocBytes(1000);
    array.fill(0xab);
    seen.push(array);
  }
  const buffers = new Set(seen.map((array) => array.buffer));
  assert.ok(buffers.size >= 3, `${buffers.size} chunks were used`);
  for (const array of seen) assert.ok(array.every((byte) => byte === 0xab));
  const fresh = allocBytes(1000);
  assert.ok(fresh.every((byte) => byte === 0), "a later array is still zeroed");
});

Deno.test("arrays over carvedBytesMax get a buffer of their own", () => {
  const large = allocBytes(carvedBytesMax + 1);
  assert.equal(large.byteOffset, 0);
  assert.equal(large.buffer.byteLength, carvedBytesMax + 1);
});

Deno.test("dataViewOf reads and writes a carved array at its byteOffset", () => {
  const bytes = allocBytes(8);
  const view = dataViewOf(bytes);
  view.setUint32(bytes.byteOffset, 0x01020304);
  view.setUint32(bytes.byteOffset + 4, 0xa0b0c0d0);
  assert.deepEqual([...bytes], [1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0]);
  const own = new Uint8Array(4);
  dataViewOf(own).setUint16(2, 0xbeef);
  assert.deepEqual([...own], [0, 0, 0xbe, 0xef]);
});
