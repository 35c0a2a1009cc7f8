import assert from "node:assert/strict";
import { RecentTexts } from "../../lib/wire/recent_texts.ts";

const encoder = new TextEncoder();
const strict = new TextDecoder("utf-8", { fatal: true });

Deno.test("RecentTexts decodes the bytes asked for, from the cache when they repeat", () => {
  const texts = new RecentTexts(2, strict);
  const frame = encoder.encode("..t:orders..t:orders");
  assert.equal(texts.decode(frame, 2, 8), "t:orders");
  assert.equal(texts.decode(frame, 12, 8), "t:orders");
  // Same length, different bytes: not mistaken for the cached text.
  assert.equal(texts.decode(encoder.encode("t:ordert"), 0, 8), "t:ordert");
  assert.equal(texts.decode(encoder.encode("ü"), 0, 2), "ü");
});

Deno.test("RecentTexts keeps its capacity, the oldest going first, and no text over bytesMax", () => {
  let decodes = 0;
  const counting = {
    decode: (bytes: Uint8Array) => {
      decodes++;
      return strict.decode(bytes);
    },
  } as TextDecoder;
  const texts = new RecentTexts(2, counting, 4);
  for (const text of ["a", "b", "a", "b"]) texts.decode(encoder.encode(text), 0, 1);
  assert.equal(decodes, 2, "a and b were kept");
  texts.decode(encoder.encode("c"), 0, 1); // takes a's slot
  texts.decode(encoder.encode("b"), 0, 1);
  assert.equal(decodes, 3);
  texts.decode(encoder.encode("a"), 0, 1);
  assert.equal(decodes, 4, "a was the oldest and left");
  texts.decode(encoder.encode("longer"), 0, 6);
  texts.decode(encoder.encode("longer"), 0, 6);
  assert.equal(decodes, 6, "a text over bytesMax is decoded each time");
});

Deno.test("RecentTexts throws what its decoder throws, and caches nothing then", () => {
  const texts = new RecentTexts(4, strict);
  const invalid = new Uint8Array([0xff, 0xfe]);
  assert.throws(() => texts.decode(invalid, 0, 2), TypeError);
  assert.throws(() => texts.decode(invalid, 0, 2), TypeError);
});
