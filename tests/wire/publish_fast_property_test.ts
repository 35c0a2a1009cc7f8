/**
 * The fast `publish` and `publish_batch` decoder (lib/wire/publish_fast.ts)
 * against the general one: whenever it returns a request, `decodeRequest`
 * returns an equal one; it takes the shapes clients send; it takes a
 * message exactly when its bytes are valid UTF-8 without escapes and
 * control characters; and the fast answer texts are the ones the general
 * answer path writes.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { answerJson } from "../../lib/wire/frame.ts";
import { decodePublish, scanPublish } from "../../lib/wire/publish_fast.ts";
import { decodeRequest } from "../../lib/wire/requests.ts";
import { batchPublishedAnswerJson, publishedAnswerJson } from "../../lib/wire/responses.ts";

const encoder = new TextEncoder();
const numRuns = 2000;

/** What `decodeRequest` makes of `payload`: the request, or "refused". */
function general(payload: Uint8Array): unknown {
  try {
    return decodeRequest(payload);
  } catch {
    return "refused";
  }
}

/** Strings that reach every branch: ASCII, escapes, control characters, BOMs, astral, lone surrogates. */
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 10 }),
  fc.string({ unit: "binary", maxLength: 10 }),
  fc.constantFrom("", "\uFEFF", "\uFEFFx", 'a"b', "a\\b", "\n", "\u0000", "\uD800", ".", ".."),
);
const topic = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/),
  fc.constantFrom(".", "..", "", "a".repeat(249), "a".repeat(250), "é", "a b"),
  text,
);
const integerish = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.constantFrom(
    0,
    -0,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 1,
    9007199254740993,
    1e16,
    1e21,
    1.5,
    -1.5,
    1e-7,
  ),
  fc.double(),
);
const value = fc.oneof(
  text,
  integerish,
  fc.constantFrom(null, true, false, [], {}, ["x"], { a: 1 }),
);
const keys = [
  "action",
  "topic_name",
  "message",
  "messages",
  "producer_id",
  "sequence",
  "id",
  "other",
];

/** Mostly `good`, sometimes any value. */
function mostly<T>(good: fc.Arbitrary<T>): fc.Arbitrary<T | unknown> {
  return fc.oneof({ arbitrary: good, weight: 8 }, { arbitrary: value, weight: 1 });
}

/** Objects shaped like publishes: mostly valid ones, some slightly off. */
const publishLike = fc.record({
  action: mostly(fc.oneof(
    { arbitrary: fc.constantFrom("publish", "publish_batch"), weight: 10 },
    { arbitrary: fc.constantFrom("Publish", "publish_batches", "ping"), weight: 1 },
  )),
  topic_name: mostly(topic),
  message: mostly(text),
  messages: mostly(fc.oneof(
    fc.array(text, { maxLength: 5 }),
    fc.array(text, { minLength: 1, maxLength: 3 }),
    fc.array(value, { maxLength: 3 }),
  )),
  producer_id: mostly(text),
  sequence: mostly(integerish),
  id: mostly(fc.oneof(fc.integer(), text, integerish)),
  other: value,
}, { requiredKeys: ["action", "topic_name"] }).chain((record) => {
  const present = keys.filter((key) => key in record);
  // A batch's messages are under `messages`, a publish's under `message`.
  const required = ["action", "topic_name", record.action === "publish" ? "message" : "messages"];
  return fc.tuple(
    fc.shuffledSubarray(present, { minLength: Math.min(3, present.length) }),
    fc.boolean(),
    fc.boolean(),
  ).map(([order, withRequired, withoutExtra]) => {
    const shuffled: Record<string, unknown> = {};
    const chosen = withRequired
      ? [...new Set([...required, ...order])].filter((key) => key in record)
      : order;
    for (const key of chosen) {
      if (withoutExtra && key === "other") continue;
      shuffled[key] = (record as Record<string, unknown>)[key];
    }
    return shuffled;
  });
});

/** The request of `fields` (plus producer id, sequence and id when drawn) with its keys shuffled. */
function inAnyKeyOrder(
  { producer, id, ...fields }:
    & { producer?: [string, number]; id?: number | string }
    & Record<
      string,
      unknown
    >,
): fc.Arbitrary<Record<string, unknown>> {
  const all: Record<string, unknown> = { ...fields };
  if (producer !== undefined) [all.producer_id, all.sequence] = producer;
  if (id !== undefined) all.id = id;
  return fc.shuffledSubarray(Object.keys(all), { minLength: Object.keys(all).length }).map(
    (order) => Object.fromEntries(order.map((key) => [key, all[key]])),
  );
}

/** Publishes as clients send them (the fast path takes most), in any key order. */
const clientPublish = fc.record({
  action: fc.constant("publish"),
  topic_name: fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/),
  message: fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: "grapheme", maxLength: 20 })),
  producer: fc.option(fc.tuple(text, fc.nat({ max: Number.MAX_SAFE_INTEGER })), { nil: undefined }),
  id: fc.option(fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), { nil: undefined }),
}).chain(inAnyKeyOrder);

/** Batches as clients send them (`PubSubClient` coalescing), in any key order. */
const clientBatch = fc.record({
  action: fc.constant("publish_batch"),
  topic_name: fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/),
  messages: fc.array(
    fc.oneof(fc.string({ maxLength: 50 }), fc.string({ unit: "grapheme", maxLength: 10 })),
    { minLength: 1, maxLength: 20 },
  ),
  producer: fc.option(fc.tuple(text, fc.nat({ max: Number.MAX_SAFE_INTEGER })), { nil: undefined }),
  id: fc.option(fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), { nil: undefined }),
}).chain(inAnyKeyOrder);

/** A payload: the JSON of a publish-like object, sometimes with its bytes edited. */
const payload = fc.oneof(
  clientPublish.map((object) => encoder.encode(JSON.stringify(object))),
  clientBatch.map((object) => encoder.encode(JSON.stringify(object))),
  fc.tuple(clientBatch.map((object) => encoder.encode(JSON.stringify(object))), fc.nat()).map(
    ([bytes, at]) => {
      // A byte of a batch changed to one of the array's punctuation or a UTF-8 lead byte.
      const edited = bytes.slice();
      edited[at % edited.length] = [0x5b, 0x5d, 0x2c, 0x22, 0x20, 0xc3, 0xe2, 0xf0][at % 8];
      return edited;
    },
  ),
  publishLike.map((object) => encoder.encode(JSON.stringify(object))),
  fc.tuple(
    publishLike.map((object) => encoder.encode(JSON.stringify(object))),
    fc.nat(),
    fc.integer({ min: 0, max: 255 }),
  ).map(([bytes, at, byte]) => {
    const edited = bytes.slice();
    if (edited.length > 0) edited[at % edited.length] = byte;
    return edited;
  }),
  publishLike.map((object) => encoder.encode(JSON.stringify(object, null, 1))),
  fc.constant(encoder.encode('{"action":"publish","topic_name":"t","message":"a","message":"b"}')),
  fc.constantFrom(
    '{"action":"publish_batch","topic_name":"t","messages":[]}',
    '{"action":"publish_batch","topic_name":"t","messages":["a",]}',
    '{"action":"publish_batch","topic_name":"t","messages":["a"],"message":"b"}',
    '{"action":"publish","topic_name":"t","messages":["a"],"message":"b"}',
    '{"action":"publish_batch","topic_name":"t","messages":"a"}',
    '{"action":"publish_batch","topic_name":"t","messages":["a",1]}',
    '{"action":"publish_batch","topic_name":"t","messages":["a"]]}',
  ).map((json) => encoder.encode(json)),
);

Deno.test("decodePublish returns what decodeRequest returns, or declines", () => {
  let taken = 0;
  let batches = 0;
  fc.assert(
    fc.property(payload, (bytes) => {
      const fast = decodePublish(bytes);
      if (fast === undefined) return;
      taken++;
      if (fast.action === "publish_batch") batches++;
      assert.deepStrictEqual(fast, general(bytes));
    }),
    { numRuns },
  );
  // The property says something only if the fast path ran often, for both actions.
  assert.ok(taken >= numRuns / 10, `the fast path took only ${taken} of ${numRuns} payloads`);
  assert.ok(batches >= numRuns / 20, `the fast path took only ${batches} batches`);
});

/** Message bodies spelled by hand: escapes of every kind, some JSON.stringify writes, some not. */
const spelledBody = fc.array(
  fc.oneof(
    fc.constantFrom("a", "é", "🎉", '\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"),
    fc.constantFrom("\\ud800", "\\ud83d\\ude00", "\\u0041", "\\x", "\\"),
    fc.tuple(fc.constantFrom("0", "1", "2", "7"), fc.constantFrom(..."0123456789abcdefABCDEF")).map(
      (
        [high, low],
      ) => `\\u00${high}${low}`,
    ),
  ),
  { maxLength: 6 },
).map((pieces) => pieces.join(""));

Deno.test("a message the fast path takes is spelled as JSON.stringify spells it", () => {
  let taken = 0;
  fc.assert(
    fc.property(fc.array(spelledBody, { minLength: 1, maxLength: 3 }), fc.boolean(), (
      bodies,
      batch,
    ) => {
      const json = batch
        ? `{"action":"publish_batch","topic_name":"t","messages":[${
          bodies.map((body) => `"${body}"`).join(",")
        }]}`
        : `{"action":"publish","topic_name":"t","message":"${bodies[0]}"}`;
      const bytes = encoder.encode(json);
      const scanned = scanPublish(bytes);
      if (scanned === undefined) return;
      taken++;
      const fast = decodePublish(bytes)!;
      assert.deepStrictEqual(fast, general(bytes));
      // What goes into the entry as it came must be what encodeCommand would write.
      const spelled = new TextDecoder().decode(
        bytes.subarray(scanned.messageStart, scanned.messageEnd),
      );
      const written = fast.action === "publish_batch"
        ? JSON.stringify(fast.messages)
        : JSON.stringify(fast.message).slice(1, -1);
      assert.equal(spelled, written);
    }),
    { numRuns },
  );
  assert.ok(taken >= numRuns / 10, `the fast path took only ${taken} of ${numRuns} payloads`);
});

Deno.test("decodePublish takes the publishes clients send", () => {
  const cases: Record<string, unknown>[] = [
    { action: "publish", topic_name: "events", message: "x".repeat(100) },
    { action: "publish", topic_name: "a.b-c_D9", message: "", id: 7 },
    { action: "publish", topic_name: "t", message: "héllo \uFEFF 🎉", id: "r-1" },
    { action: "publish", topic_name: "t", message: '{"a":"b\\c"}\n\t\r\b\f\u0000\u001f\u007f' },
    {
      action: "publish",
      topic_name: "t",
      message: "m",
      producer_id: 'p"1\n',
      sequence: 3,
      id: 'r"\u0001',
    },
    { action: "publish", topic_name: "t", message: "m", producer_id: "p", sequence: 0, id: -3 },
    {
      id: 12,
      sequence: 9007199254740991,
      producer_id: "é",
      message: "m",
      topic_name: "t",
      action: "publish",
    },
    { action: "publish_batch", topic_name: "t", messages: ["x".repeat(100), "", "ü 🎉 \uFEFF"] },
    {
      action: "publish_batch",
      topic_name: "t",
      messages: ["a", "b"],
      producer_id: "p-1",
      sequence: 41,
      id: 9,
    },
    { action: "publish_batch", topic_name: "t", messages: Array(10_000).fill("m") },
    {
      action: "publish_batch",
      topic_name: "t",
      messages: ['{"event":"click"}', "line\nline", "\\"],
    },
  ];
  for (const request of cases) {
    const bytes = encoder.encode(JSON.stringify(request));
    const fast = decodePublish(bytes);
    assert.notEqual(fast, undefined, JSON.stringify(request));
    assert.deepStrictEqual(fast, decodeRequest(bytes));
  }
});

/** Strings without lone surrogates (which `JSON.stringify` writes as escapes the fast path declines). */
const wellFormed = fc.oneof(
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((code) => String.fromCharCode(code)) }),
).filter((text) => text.isWellFormed());

Deno.test("decodePublish takes every well-formed message as JSON.stringify writes it", () => {
  fc.assert(
    fc.property(fc.array(wellFormed, { minLength: 1, maxLength: 5 }), fc.boolean(), (
      messages,
      batch,
    ) => {
      const request = batch
        ? { action: "publish_batch", topic_name: "t", messages }
        : { action: "publish", topic_name: "t", message: messages[0] };
      const bytes = encoder.encode(JSON.stringify(request));
      const fast = decodePublish(bytes);
      assert.notEqual(fast, undefined, JSON.stringify(request));
      assert.deepStrictEqual(fast, request);
      assert.deepStrictEqual(fast, decodeRequest(bytes));
    }),
    { numRuns },
  );
});

Deno.test("decodePublish declines what it does not read itself", () => {
  const declined = [
    // Escapes JSON.stringify does not write: the text would go into the entry spelled otherwise.
    '{"action":"publish","topic_name":"t","message":"a\\/b"}',
    '{"action":"publish","topic_name":"t","message":"\\u0041"}',
    '{"action":"publish","topic_name":"t","message":"\\u000a"}',
    '{"action":"publish","topic_name":"t","message":"\\u001F"}',
    '{"action":"publish","topic_name":"t","message":"\\ud800"}',
    '{"action":"publish","topic_name":"t","message":"\\ud83d\\ude00"}',
    '{"action":"publish","topic_name":"t","message":"\\u00"}',
    '{"action":"publish","topic_name":"t","message":"\\x"}',
    '{"action":"publish","topic_name":"t","message":"m\\"}',
    '{"action":"publish","topic_name":"t","message":"a\tb"}',
    '{"action":"publish", "topic_name":"t","message":"m"}',
    '{"action":"publish","topic_name":"t","message":"m","extra":1}',
    '{"action":"publish","topic_name":"t","message":"m","sequence":1}',
    '{"action":"publish","topic_name":"..","message":"m"}',
    '{"action":"publish","topic_name":"t","message":"m","id":1.5}',
    '{"action":"publish_batch","topic_name":"t","messages":["m"], "id":1}',
    '{"action":"publish_batch","topic_name":"t","messages":[ "m"]}',
    '{"action":"publish_batch","topic_name":"t","messages":["a\\u0020b"]}',
    '{"action":"publish_batch","topic_name":"t","message":"m"}',
    '{"action":"publish","topic_name":"t","messages":["m"]}',
    `{"action":"publish_batch","topic_name":"t","messages":${
      JSON.stringify(Array(10_001).fill("m"))
    }}`,
    '{"action":"publish","topic_name":"t","message":"m"',
  ];
  for (const json of declined) assert.equal(decodePublish(encoder.encode(json)), undefined, json);
  // Invalid UTF-8 inside the message: the general decoder refuses it.
  const bytes = encoder.encode('{"action":"publish","topic_name":"t","message":"ab"}');
  bytes[bytes.length - 3] = 0xff;
  assert.equal(decodePublish(bytes), undefined);
  assert.equal(general(bytes), "refused");
});

Deno.test("publishedAnswerJson is the answer object's JSON with the id appended", () => {
  fc.assert(
    fc.property(
      fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/),
      fc.nat({ max: Number.MAX_SAFE_INTEGER }),
      fc.option(fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), text), {
        nil: undefined,
      }),
      (topic, offset, id) => {
        assert.equal(
          publishedAnswerJson(topic, offset, id),
          answerJson({ status: "message_published", topic, offset }, id),
        );
      },
    ),
    { numRuns },
  );
});

Deno.test("batchPublishedAnswerJson is the batch answer object's JSON with the id appended", () => {
  fc.assert(
    fc.property(
      fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/),
      fc.nat({ max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: 1, max: 10_000 }),
      fc.option(fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), text), {
        nil: undefined,
      }),
      (topic, first_offset, count, id) => {
        assert.equal(
          batchPublishedAnswerJson(topic, first_offset, count, id),
          answerJson({ status: "messages_published", topic, first_offset, count }, id),
        );
      },
    ),
    { numRuns },
  );
});

/** Valid UTF-8 per the WHATWG decoder (what `decodeRequest` uses). */
function validUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

Deno.test("decodePublish takes a message or batch exactly when its bytes are valid UTF-8", () => {
  // Bytes without quotes, backslashes and control characters, mostly from UTF-8's edges:
  // a lead byte and 0-3 bytes at the bounds of the continuation ranges.
  const leadByte = fc.constantFrom(
    ...[0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed],
    ...[0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff],
  );
  const followByte = fc.constantFrom(0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2);
  const sequence = fc.tuple(leadByte, fc.array(followByte, { maxLength: 3 })).map((
    [lead, follow],
  ) => [lead, ...follow]);
  const encodedText = fc.string({ unit: "binary", maxLength: 6 }).map((text) => [
    ...encoder.encode(
      [...text].map((char) => char < " " || char === '"' || char === "\\" ? "x" : char).join(""),
    ),
  ]);
  const messageBytes = fc.array(fc.oneof(sequence, encodedText), { maxLength: 4 }).map((pieces) =>
    new Uint8Array(pieces.flat())
  );
  fc.assert(
    fc.property(messageBytes, fc.boolean(), (message, batch) => {
      const head = encoder.encode(
        batch
          ? '{"action":"publish_batch","topic_name":"t","messages":["a","'
          : '{"action":"publish","topic_name":"t","message":"',
      );
      const tail = encoder.encode(batch ? '"]}' : '"}');
      const payload = new Uint8Array([...head, ...message, ...tail]);
      const fast = decodePublish(payload);
      assert.equal(fast !== undefined, validUtf8(message));
      if (fast !== undefined) assert.deepStrictEqual(fast, general(payload));
      else assert.equal(general(payload), "refused");
    }),
    { numRuns: 10_000 },
  );
});

Deno.test("decodePublish finds a raw control character, quote, backslash or non-ASCII byte at any position", () => {
  const plain = fc.string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).filter((code) => code !== 0x22 && code !== 0x5c)
      .map((code) => String.fromCharCode(code)),
    maxLength: 40,
  });
  const odd = fc.oneof(
    fc.integer({ min: 0, max: 0x1f }).map((code) => [code]),
    fc.constant([0x22]),
    fc.constant([0x5c, 0x6e]),
    fc.constant([0xc3, 0xa9]),
    fc.constant([0xff]),
  );
  fc.assert(
    fc.property(plain, odd, plain, fc.nat({ max: 3 }), (before, bytes, after, pad) => {
      const head = encoder.encode(
        `{"action":"publish","topic_name":"${"t".repeat(pad + 1)}","message":"${before}`,
      );
      const tail = encoder.encode(`${after}"}`);
      const payload = new Uint8Array(head.length + bytes.length + tail.length);
      payload.set(head);
      payload.set(bytes, head.length);
      payload.set(tail, head.length + bytes.length);
      const fast = decodePublish(payload);
      const expected = general(payload);
      if (bytes[0] < 0x20 || bytes[0] === 0xff) assert.equal(expected, "refused");
      if (fast !== undefined) assert.deepStrictEqual(fast, expected);
      if (bytes[0] === 0xc3) {
        assert.deepStrictEqual(fast, expected);
        assert.equal((fast as { message?: string } | undefined)?.message, `${before}é${after}`);
      }
    }),
    { numRuns: 1000 },
  );
});
