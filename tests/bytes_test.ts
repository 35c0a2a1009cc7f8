import assert from "node:assert/strict";
import fc from "fast-check";
import { holdsAt, readUint32, writeUint32 } from "../lib/bytes.ts";

Deno.test("writeUint32 and readUint32 round-trip big-endian, as a DataView does", () => {
  fc.assert(
    fc.property(fc.nat({ max: 2 ** 32 - 1 }), fc.nat({ max: 8 }), (value, offset) => {
      const bytes = new Uint8Array(12);
      writeUint32(bytes, offset, value);
      assert.equal(readUint32(bytes, offset), value);
      assert.equal(new DataView(bytes.buffer).getUint32(offset), value);
    }),
  );
  // A view at an offset into a larger buffer.
  const view = new Uint8Array(16).subarray(5, 9);
  writeUint32(view, 0, 0xa0b0c0d0);
  assert.deepEqual([...view], [0xa0, 0xb0, 0xc0, 0xd0]);
});

Deno.test("holdsAt compares only inside [at, end)", () => {
  const source = new Uint8Array([9, 1, 2, 3, 4]);
  assert.equal(holdsAt(source, 1, 5, new Uint8Array([1, 2])), true);
  assert.equal(holdsAt(source, 1, 5, new Uint8Array([1, 3])), false);
  assert.equal(holdsAt(source, 1, 2, new Uint8Array([1, 2])), false, "past end");
  assert.equal(holdsAt(source, 4, 5, new Uint8Array([4, 0])), false, "past the source");
  assert.equal(holdsAt(source, 2, 2, new Uint8Array(0)), true);
});
