/**
 * `encodeAnswerFrame` appends the request id to an answer's JSON instead of
 * copying the answer: its bytes must be exactly those of
 * `encodeFrame({ ...answer, id })`, which clients have always received.
 *
 * @module
 */

import { deepEqual } from "node:assert/strict";
import fc from "fast-check";
import {
  concatFrames,
  encodeAnswerFrame,
  encodeFrame,
  encodeFrames,
} from "../../lib/wire/frame.ts";

const id = fc.oneof(fc.integer(), fc.string());

Deno.test("encodeAnswerFrame encodes the same bytes as the answer with its id spread in", () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.jsonValue()), id, (answer, requestId) => {
      deepEqual(encodeAnswerFrame(answer, requestId), encodeFrame({ ...answer, id: requestId }));
    }),
    { numRuns: 500 },
  );
});

Deno.test("encodeAnswerFrame keeps an answer's own id position, arrays and id-less answers as they are", () => {
  const withOwnId = { status: "ok", id: 1, node: 2 };
  deepEqual(encodeAnswerFrame(withOwnId, 9), encodeFrame({ ...withOwnId, id: 9 }));
  deepEqual(encodeAnswerFrame(["a", "b"], 9), encodeFrame(["a", "b"]));
  deepEqual(encodeAnswerFrame({ status: "ok" }, undefined), encodeFrame({ status: "ok" }));
  deepEqual(encodeAnswerFrame({}, "x"), encodeFrame({ id: "x" }));
});

Deno.test("encodeFrames encodes JSON texts and encoded frames into the bytes of their frames in order", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.jsonValue(), fc.boolean()), { minLength: 1, maxLength: 8 }),
      (items) => {
        const frames = items.map(([value, asText]) =>
          asText ? JSON.stringify(value) : encodeFrame(value)
        );
        const expected = concatFrames(items.map(([value]) => encodeFrame(value)));
        deepEqual(encodeFrames(frames), expected);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("encodeFrames gives the same bytes for runs of ASCII and other texts, into a scratch buffer or not", () => {
  const text = fc.oneof(
    fc.string(),
    fc.string({ unit: "grapheme" }),
    fc.string({ unit: "binary" }),
  );
  const value = fc.oneof(text, fc.integer(), fc.record({ status: text, offset: fc.nat() }));
  fc.assert(
    fc.property(
      fc.array(fc.tuple(value, fc.boolean()), { minLength: 1, maxLength: 12 }),
      fc.nat({ max: 600 }),
      (items, scratchBytes) => {
        const frames = items.map(([item, asText]) =>
          asText ? JSON.stringify(item) : encodeFrame(item)
        );
        const expected = concatFrames(items.map(([item]) => encodeFrame(item)));
        deepEqual(encodeFrames(frames), expected);
        const scratch = new Uint8Array(scratchBytes).fill(0xee);
        deepEqual(encodeFrames(frames, scratch), expected);
      },
    ),
    { numRuns: 500 },
  );
});
