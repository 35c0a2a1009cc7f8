/**
 * `jsonStringBytes` and `jsonArrayBytes` (lib/client/_json_size.ts) agree
 * with `TextEncoder` of `JSON.stringify` for any string: escapes, controls,
 * non-ASCII, surrogate pairs and lone surrogates.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { jsonArrayBytes, jsonStringBytes } from "../../lib/client/_json_size.ts";

const encoder = new TextEncoder();
const exact = (value: unknown) => encoder.encode(JSON.stringify(value)).length;

/** Any UTF-16 code unit, lone surrogates and controls included, and whole graphemes. */
const anyText = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)) }),
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: fc.constantFrom('"', "\\", "\n", "\u0000", "\u001f", "\u007f", "\u2028") }),
);

Deno.test("jsonStringBytes is the UTF-8 length of JSON.stringify of any string", () => {
  fc.assert(fc.property(anyText, (text) => assert.equal(jsonStringBytes(text), exact(text))), {
    numRuns: 2000,
  });
});

Deno.test("jsonArrayBytes is the UTF-8 length of JSON.stringify of any string array", () => {
  fc.assert(
    fc.property(fc.array(anyText, { maxLength: 6 }), (texts) => {
      assert.equal(jsonArrayBytes(texts), exact(texts));
    }),
    { numRuns: 500 },
  );
});

Deno.test("jsonStringBytes counts the edge cases one by one", () => {
  for (
    const text of [
      "",
      "a",
      '"',
      "\\",
      "\b\t\n\f\r",
      "\u0001",
      "é",
      "€",
      "🎉",
      "\ud800",
      "\udc00x",
      "\ud800\ud800\udc00",
    ]
  ) {
    assert.equal(jsonStringBytes(text), exact(text), JSON.stringify(text));
  }
});
