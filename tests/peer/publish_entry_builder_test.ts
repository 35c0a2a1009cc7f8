/**
 * `PublishEntryBuilder` (lib/peer/topic_commands.ts) builds exactly the
 * bytes `encodeCommand` encodes for the same parts, whether a part comes as
 * strings or as the request's message bytes; and a one-voter topic fed
 * through `publishBytes`, `publishArrayBytesTo` and `publish` alike stores
 * what `publish` alone would store.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeCommand,
  decodeCommandCounts,
  encodeCommand,
  PublishEntryBuilder,
  type PublishPart,
} from "../../lib/peer/topic_commands.ts";
import { TopicMachine } from "../../lib/cluster/raft_topic.ts";
import { TopicState } from "../../lib/peer/topic_state.ts";
import type { PublishResult } from "../../lib/peer/topic.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { EntryType } from "../../lib/storage/types.ts";
import { oneVoterTopic } from "./_one_voter_topic.ts";

const encoder = new TextEncoder();

/**
 * Messages `scanPublish` hands over as bytes (as `JSON.stringify` spells
 * them): any text without lone surrogates, quotes, backslashes and control
 * characters included.
 */
const plainBody = fc.string({
  unit: fc.oneof(
    fc.integer({ min: 0, max: 0x7f }).map((code) => String.fromCharCode(code)),
    fc.constantFrom("é", "\uFEFF", "\u2028", "🎉", "\uFFFF", "\u{10FFFF}"),
  ),
  maxLength: 300,
});
const producer = fc.option(
  fc.record({
    producerId: fc.string({ minLength: 1, maxLength: 5 }),
    sequence: fc.oneof(fc.nat(), fc.maxSafeNat()),
  }),
  { nil: undefined },
);

/** A part as strings, or as bytes (one message's body, or a batch's array, inside other bytes). */
type Given =
  | { kind: "part"; part: PublishPart }
  | { kind: "bytes"; message: string; producer?: { producerId: string; sequence: number } }
  | { kind: "array"; messages: string[]; producer?: { producerId: string; sequence: number } };

const given: fc.Arbitrary<Given> = fc.oneof(
  fc.record({
    messages: fc.array(fc.oneof(fc.string(), fc.string({ unit: "grapheme" })), { maxLength: 4 }),
    producer,
  }).map(({ messages, producer }): Given => ({ kind: "part", part: { messages, ...producer } })),
  fc.record({ message: plainBody, producer }).map((item): Given => ({ kind: "bytes", ...item })),
  fc.record({ messages: fc.array(plainBody, { minLength: 1, maxLength: 5 }), producer }).map((
    item,
  ): Given => ({ kind: "array", ...item })),
);

function partOf(item: Given): PublishPart {
  if (item.kind === "part") return item.part;
  return { messages: item.kind === "bytes" ? [item.message] : item.messages, ...item.producer };
}

/** Adds `item` to `builder` as `RaftTopic` does: bytes from inside a request's bytes. */
function addTo(builder: PublishEntryBuilder, item: Given): void {
  if (item.kind === "part") {
    builder.addPart(item.part);
  } else if (item.kind === "bytes") {
    const source = encoder.encode(`{"message":${JSON.stringify(item.message)}}`);
    builder.addMessageBytes(source, 12, source.length - 2, item.producer);
  } else {
    const source = encoder.encode(`{"messages":${JSON.stringify(item.messages)}}`);
    builder.addMessagesBytes(source, 12, source.length - 1, item.producer);
  }
}

Deno.test("PublishEntryBuilder builds what encodeCommand encodes", () => {
  fc.assert(
    fc.property(fc.array(given, { minLength: 1, maxLength: 40 }), (items) => {
      const builder = new PublishEntryBuilder();
      for (const item of items) addTo(builder, item);
      const parts = items.map(partOf);
      const data = builder.finish();
      assert.deepStrictEqual(data, encodeCommand({ kind: "publish", parts }));
      assert.equal(data.byteOffset, 0);
      assert.equal(data.buffer.byteLength, data.byteLength);
      const decoded = decodeCommand(data);
      assert.equal(decoded?.kind, "publish");
    }),
    { numRuns: 300 },
  );
});

/** `command` with every message text replaced by an empty placeholder. */
function withoutTexts(command: ReturnType<typeof decodeCommand>) {
  if (command?.kind !== "publish") return command;
  return {
    kind: "publish",
    parts: command.parts.map((part) => ({ ...part, messages: part.messages.map(() => "") })),
  };
}

Deno.test("decodeCommandCounts decodes what decodeCommand does, with placeholder texts", () => {
  fc.assert(
    fc.property(fc.array(given, { maxLength: 12 }), (items) => {
      const builder = new PublishEntryBuilder();
      for (const item of items) addTo(builder, item);
      const data = items.length === 0
        ? encodeCommand({ kind: "publish", parts: [] })
        : builder.finish();
      assert.deepStrictEqual(decodeCommandCounts(data), withoutTexts(decodeCommand(data)));
    }),
    { numRuns: 500 },
  );
  // Other commands, and data of another shape, are decoded in full.
  const ack = encodeCommand({ kind: "ack", offsets: { reader: 4 } });
  assert.deepStrictEqual(decodeCommandCounts(ack), decodeCommand(ack));
  const spaced = encoder.encode('\u0001[ [["a"],null,null]]');
  spaced[0] = 1;
  assert.deepStrictEqual(decodeCommandCounts(spaced), decodeCommand(spaced));
  assert.equal(decodeCommandCounts(new Uint8Array()), undefined);
});

Deno.test("a topic state applied without texts reaches the state applied with them", () => {
  fc.assert(
    fc.property(fc.array(fc.array(given, { minLength: 1, maxLength: 4 }), { maxLength: 10 }), (
      entries,
    ) => {
      const [texts, counts] = [new TopicState(), new TopicState()];
      entries.forEach((items, position) => {
        const builder = new PublishEntryBuilder();
        for (const item of items) addTo(builder, item);
        const data = builder.finish();
        const withTexts = texts.apply(position + 1, data);
        const withCounts = counts.apply(position + 1, data, false);
        assert.deepStrictEqual(
          { ...withCounts, messages: withCounts.kind === "published" ? withCounts.messages : [] },
          {
            ...withTexts,
            messages: withTexts.kind === "published" ? withTexts.messages.map(() => "") : [],
          },
        );
      });
      assert.deepStrictEqual(counts.snapshot(), texts.snapshot());
    }),
    { numRuns: 200 },
  );
});

Deno.test("PublishEntryBuilder grows past its first buffer", () => {
  const builder = new PublishEntryBuilder();
  const message = "y".repeat(70_000);
  const source = encoder.encode(message);
  builder.addMessageBytes(source, 0, source.length);
  builder.addPart({ messages: [message] });
  const parts = [{ messages: [message] }, { messages: [message] }];
  assert.deepStrictEqual(builder.finish(), encodeCommand({ kind: "publish", parts }));
});

Deno.test("PublishEntryBuilder hands a large part's buffer out as the data, not a copy of it", () => {
  const message = "z".repeat(512 * 1024);
  const source = encoder.encode(`{"message":${JSON.stringify(message)}}`);
  const producer = { producerId: crypto.randomUUID(), sequence: 41 };
  const builder = new PublishEntryBuilder();
  builder.addMessageBytes(source, 12, source.length - 2, producer);
  const data = builder.finish();
  const expected = encodeCommand({
    kind: "publish",
    parts: [{ messages: [message], ...producer }],
  });
  assert.deepStrictEqual(data, expected);
  // Its own buffer, a few bytes longer than the data (a copy would be exactly as long).
  const slack = data.buffer.byteLength - data.byteLength;
  assert.ok(slack > 0 && slack <= 4096, `${slack} bytes of slack`);
  assert.equal(data.byteOffset, 0);
  // Handed out, the buffer is not pooled: the next entries leave it as it is.
  for (let round = 0; round < 3; round++) {
    const next = new PublishEntryBuilder();
    next.addMessageBytes(source, 12, source.length - 2);
    next.addPart({ messages: ["small"] });
    next.finish();
  }
  assert.deepStrictEqual(data, expected);
});

Deno.test("a topic fed through publishBytes and publish stores what publish alone stores", async () => {
  const { topic, close } = await oneVoterTopic("bytes", new MemoryLogStore());
  try {
    const source = encoder.encode('"first" "third"');
    const results = await Promise.all([
      topic.publishBytes(source, 1, 6),
      topic.publish(["second", "ü"]),
      topic.publishBytes(source, 9, 14, { producerId: "p", sequence: 0 }),
      topic.publishBytes(source, 9, 14, { producerId: "p", sequence: 0 }),
    ]);
    assert.deepStrictEqual(results.map((result) => result.firstOffset), [0, 1, 3, 3]);
    assert.deepStrictEqual(results.map((result) => result.duplicate), [false, false, false, true]);
    const read = await topic.read(0, 10);
    assert.deepStrictEqual(read.messages.map((item) => item.message), [
      "first",
      "second",
      "ü",
      "third",
    ]);
  } finally {
    await close();
  }
});

Deno.test("a topic fed through publishArrayBytesTo stores a batch as publish does, once per producer sequence", async () => {
  const { topic, close } = await oneVoterTopic("array-bytes", new MemoryLogStore());
  try {
    const source = encoder.encode('{"messages":["a","é 🎉","c"]}');
    const start = 12;
    const end = source.length - 1;
    const publishArray = (producer?: { producerId: string; sequence: number }) => {
      const { promise, resolve, reject } = Promise.withResolvers<PublishResult>();
      topic.publishArrayBytesTo({ resolve, reject }, source, start, end, 3, producer);
      return promise;
    };
    const results = await Promise.all([
      publishArray(),
      topic.publish(["between"]),
      publishArray({ producerId: "p", sequence: 0 }),
      publishArray({ producerId: "p", sequence: 0 }),
    ]);
    assert.deepStrictEqual(
      results.map(({ firstOffset, count, duplicate }) => [firstOffset, count, duplicate]),
      [[0, 3, false], [3, 1, false], [4, 3, false], [4, 3, true]],
    );
    const read = await topic.read(0, 10);
    assert.deepStrictEqual(
      read.messages.map((item) => item.message),
      ["a", "é 🎉", "c", "between", "a", "é 🎉", "c"],
    );
  } finally {
    await close();
  }
});

Deno.test("a leader applying commands with placeholder texts reaches a decoding follower's state", () => {
  const repeated = fc.oneof(
    given,
    fc.constantFrom<Given>(
      { kind: "bytes", message: "dup", producer: { producerId: "p", sequence: 0 } },
      { kind: "bytes", message: "gap", producer: { producerId: "p", sequence: 5 } },
    ),
  );
  fc.assert(
    fc.property(fc.array(fc.array(repeated, { minLength: 1, maxLength: 5 }), { maxLength: 10 }), (
      batches,
    ) => {
      const leader = new TopicMachine(new MemoryLogStore());
      const follower = new TopicMachine(new MemoryLogStore());
      batches.forEach((items, position) => {
        // As RaftTopic builds it: bytes parts carry a placeholder per message.
        const builder = new PublishEntryBuilder();
        const parts: PublishPart[] = items.map((item) => {
          addTo(builder, item);
          if (item.kind === "part") return item.part;
          const count = item.kind === "bytes" ? 1 : item.messages.length;
          return { messages: new Array<string>(count).fill(""), ...item.producer };
        });
        const data = builder.finish();
        const textsKnown = items.every((item) => item.kind === "part");
        leader.rememberDecoded(data, { kind: "publish", parts }, textsKnown);
        const entry = { index: position + 1, term: 1, type: EntryType.Normal, data };
        const led = leader.apply(entry);
        const followed = follower.apply({ ...entry, data: data.slice() });
        assert.equal(led.kind, followed.kind);
        if (led.kind === "published" && followed.kind === "published") {
          assert.deepStrictEqual(led.parts, followed.parts);
          assert.equal(led.messages.length, followed.messages.length);
          // A follower with no subscriber waiting decodes no texts either.
          assert.ok(followed.messages.every((message) => message === ""));
        }
      });
      assert.deepStrictEqual(leader.snapshot(), follower.snapshot());
    }),
    { numRuns: 200 },
  );
});
