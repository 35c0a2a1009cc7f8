import assert from "node:assert/strict";
import fc from "fast-check";
import {
  batchPublishedAnswerJson,
  decodePublishedAnswer,
  publishedAnswerJson,
} from "../../lib/wire/responses.ts";

const encoder = new TextEncoder();

function decoded(text: string): Record<string, unknown> | undefined {
  // Inside a larger buffer, as a connection's read buffer holds it.
  const bytes = encoder.encode(`xx${text}yy`);
  return decodePublishedAnswer(bytes, 2, bytes.length - 2);
}

Deno.test("decodePublishedAnswer reads every answer the builders write, as JSON.parse does", () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 40, unit: "grapheme" }),
      fc.nat({ max: Number.MAX_SAFE_INTEGER }),
      fc.nat({ max: 1_000_000 }),
      fc.option(fc.nat({ max: 2 ** 40 }), { nil: undefined }),
      (topic, offset, count, id) => {
        for (
          const text of [
            publishedAnswerJson(topic, offset, id),
            batchPublishedAnswerJson(topic, offset, count, id),
          ]
        ) {
          const fast = decoded(text);
          const escaped = JSON.stringify(topic).slice(1, -1) !== topic;
          // Digits past 15 and escaped topics are left to JSON.parse.
          if (escaped || String(offset).length > 15) assert.equal(fast, undefined);
          else assert.deepStrictEqual(fast, JSON.parse(text));
        }
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("decodePublishedAnswer keeps the key order JSON.parse gives", () => {
  const text = publishedAnswerJson("events", 41, 7);
  assert.deepEqual(Object.keys(decoded(text)!), Object.keys(JSON.parse(text)));
  const batch = batchPublishedAnswerJson("events", 41, 3, 7);
  assert.deepEqual(Object.keys(decoded(batch)!), Object.keys(JSON.parse(batch)));
});

Deno.test("decodePublishedAnswer leaves every other text to JSON.parse", () => {
  for (
    const text of [
      '{"status":"message_published","topic":"a","offset":1,"id":"x"}', // a string id
      '{"status":"message_published","topic":"a","offset":01,"id":1}', // a leading zero
      '{"status":"message_published","topic":"a","offset":-1}',
      '{"status":"message_published","topic":"a","offset":1.5}',
      '{"status":"message_published","topic":"a","offset":1} ',
      '{"status":"message_published","topic":"a","offset":1,"id":2,"x":3}',
      '{"status":"message_published","topic":"a\\"b","offset":1}', // an escape
      '{"status":"message_published","topic":"","offset":1}',
      '{"status":"message_published","topic":"a","offset":}',
      '{"status":"message_published","topic":"a","offset":1',
      '{"status":"message_published","topic":"a"',
      '{"status":"messages_published","topic":"a","first_offset":1}', // no count
      '{"status":"topic_created","topic":"a"}',
      '{"event":"message","topic":"a","subscriber_id":"s","offset":1,"message":"m"}',
      '{"status":"error","error":"x"}',
      "[]",
      "",
    ]
  ) {
    assert.equal(decoded(text), undefined, text);
  }
  // Invalid UTF-8 in the topic: JSON.parse's path reports it as before.
  const bytes = new Uint8Array([
    ...encoder.encode('{"status":"message_published","topic":"'),
    0xff,
    ...encoder.encode('","offset":1}'),
  ]);
  assert.equal(decodePublishedAnswer(bytes, 0, bytes.length), undefined);
});

Deno.test("decodePublishedAnswer reads non-ASCII topic names", () => {
  const text = publishedAnswerJson("zäh-€-😀", 5, 1);
  assert.deepStrictEqual(decoded(text), JSON.parse(text));
});
