import assert from "node:assert/strict";
import { retainedFirstOffset, type SegmentSummary } from "../../lib/peer/retention_plan.ts";
import { decodeCommand, encodeCommand } from "../../lib/peer/topic_commands.ts";
import { TopicState } from "../../lib/peer/topic_state.ts";
import { ProtocolError } from "../../lib/wire/errors.ts";
import { validateRequest } from "../../lib/wire/requests.ts";
import {
  patchRetention,
  retentionSegmentBytes,
  validateRetention,
  validateRetentionPatch,
  withDefaults,
} from "../../lib/wire/retention.ts";

function badRequest(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error) => {
    assert.ok(error instanceof ProtocolError);
    assert.equal(error.code, "bad_request");
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("create_topic takes any subset of retention limits as positive integers", () => {
  assert.deepEqual(
    validateRequest({
      action: "create_topic",
      topic_name: "events",
      retention: { max_bytes: 1024, max_messages: 10 },
    }),
    {
      action: "create_topic",
      topic_name: "events",
      replication_factor: undefined,
      retention: { max_bytes: 1024, max_messages: 10 },
    },
  );
  assert.deepEqual(validateRetention({}), {});
  assert.deepEqual(validateRetention({ max_age_ms: 60_000 }), { max_age_ms: 60_000 });
});

Deno.test("bad retention values are refused as bad_request naming the field", () => {
  badRequest(() => validateRetention([]), /'retention' must be an object/);
  badRequest(() => validateRetention("1d"), /'retention' must be an object/);
  badRequest(() => validateRetention({ max_bytes: 0 }), /'retention.max_bytes' must be a positive/);
  badRequest(() => validateRetention({ max_bytes: -5 }), /'retention.max_bytes'/);
  badRequest(() => validateRetention({ max_messages: 1.5 }), /'retention.max_messages'/);
  badRequest(() => validateRetention({ max_age_ms: "60000" }), /'retention.max_age_ms'/);
  badRequest(() => validateRetention({ max_age_ms: 2 ** 60 }), /'retention.max_age_ms'/);
  badRequest(() => validateRetention({ max_size: 10 }), /unknown limit 'max_size'/);
  badRequest(() => validateRetention({ max_bytes: null }), /'retention.max_bytes'/);
  badRequest(
    () => validateRequest({ action: "alter_topic", topic_name: "events" }),
    /'retention' is missing/,
  );
  badRequest(
    () => validateRequest({ action: "alter_topic", topic_name: "events", retention: {} }),
    /must change at least one/,
  );
});

Deno.test("alter_topic sets limits, removes null ones and keeps the others", () => {
  const patch = validateRetentionPatch({ max_age_ms: null, max_messages: 5 });
  assert.deepEqual(patch, { max_age_ms: null, max_messages: 5 });
  assert.deepEqual(
    patchRetention({ max_age_ms: 10, max_bytes: 20 }, patch),
    { max_bytes: 20, max_messages: 5 },
  );
  assert.deepEqual(
    validateRequest({ action: "alter_topic", topic_name: "t", retention: { max_bytes: 7 } }),
    { action: "alter_topic", topic_name: "t", retention: { max_bytes: 7 } },
  );
});

Deno.test("peer defaults fill only the limits a topic leaves out", () => {
  assert.deepEqual(withDefaults({ max_bytes: 10 }, { max_bytes: 99, max_age_ms: 5 }), {
    max_age_ms: 5,
    max_bytes: 10,
  });
  assert.deepEqual(withDefaults(undefined, {}), {});
});

Deno.test("segments are a quarter of max_bytes within 64 KiB and 64 MiB", () => {
  assert.equal(retentionSegmentBytes({}), undefined);
  assert.equal(retentionSegmentBytes({ max_bytes: 4 * 1024 * 1024 }), 1024 * 1024);
  assert.equal(retentionSegmentBytes({ max_bytes: 1000 }), 64 * 1024);
  assert.equal(retentionSegmentBytes({ max_bytes: 2 ** 40 }), 64 * 1024 * 1024);
});

/**
 * A topic whose entries each hold `perEntry` messages, laid out in segments
 * of `entriesPerSegment` entries of `bytesPerEntry` bytes, written one
 * second apart per segment.
 */
function layout(segmentCount: number, entriesPerSegment: number, perEntry: number) {
  const state = new TopicState();
  const segments: SegmentSummary[] = [];
  for (let segment = 0; segment < segmentCount; segment++) {
    const firstIndex = state.appliedIndex + 1;
    for (let entry = 0; entry < entriesPerSegment; entry++) {
      const messages = Array.from({ length: perEntry }, (_, i) => `m${entry}.${i}`);
      state.apply(
        state.appliedIndex + 1,
        encodeCommand({ kind: "publish", parts: [{ messages }] }),
      );
    }
    segments.push({
      firstIndex,
      lastIndex: state.appliedIndex,
      bytes: 100 * entriesPerSegment,
      lastWriteMs: 1000 * (segment + 1),
    });
  }
  return { state, segments };
}

Deno.test("retention by messages deletes a whole segment only when enough newer messages remain", () => {
  // Four segments of 10 messages (offsets 0-9, 10-19, 20-29, 30-39).
  const { state, segments } = layout(4, 5, 2);
  const at = (maxMessages: number) =>
    retainedFirstOffset(segments, { max_messages: maxMessages }, state, 10_000);
  assert.equal(at(40), 0, "every message is still needed");
  assert.equal(at(31), 0, "dropping the first segment would leave only 30");
  assert.equal(at(30), 10, "the first segment goes, 30 remain");
  assert.equal(at(15), 20, "two segments go, the third is still partly needed");
  assert.equal(at(1), 30, "the last (active) segment always stays");
});

Deno.test("retention by bytes keeps at least max_bytes", () => {
  const { state, segments } = layout(4, 5, 2); // 500 bytes per segment
  const at = (maxBytes: number) =>
    retainedFirstOffset(segments, { max_bytes: maxBytes }, state, 10_000);
  assert.equal(at(2000), 0);
  assert.equal(at(1501), 0);
  assert.equal(at(1500), 10);
  assert.equal(at(600), 20);
  assert.equal(at(1), 30);
});

Deno.test("retention by age deletes segments last written before the limit, oldest first", () => {
  const { state, segments } = layout(4, 5, 2); // last written at 1 s, 2 s, 3 s, 4 s
  const at = (nowMs: number) => retainedFirstOffset(segments, { max_age_ms: 1500 }, state, nowMs);
  assert.equal(at(2500), 0, "the first segment is 1.5 s old: not older than the limit");
  assert.equal(at(2501), 10);
  assert.equal(at(4400), 20, "the third segment is 1.4 s old");
  assert.equal(at(4600), 30);
  assert.equal(at(100_000), 30, "the active segment stays however old");
  // Any limit expires a segment: the oldest goes by age even when few messages remain.
  assert.equal(
    retainedFirstOffset(segments, { max_age_ms: 1500, max_messages: 1000 }, state, 2501),
    10,
  );
});

Deno.test("retention never moves the first offset back and skips entries without messages", () => {
  const state = new TopicState();
  state.apply(1, encodeCommand({ kind: "publish", parts: [{ messages: ["a", "b"] }] }));
  state.apply(2, encodeCommand({ kind: "ack", offsets: { u1: 1 } }));
  state.apply(3, encodeCommand({ kind: "publish", parts: [{ messages: ["c"] }] }));
  assert.equal(state.firstOffsetFrom(1), 0);
  assert.equal(state.firstOffsetFrom(2), 2, "the ack entry holds no message: the next batch's");
  assert.equal(state.firstOffsetFrom(4), 3, "past the last batch: the next offset");
  const segments: SegmentSummary[] = [
    { firstIndex: 1, lastIndex: 2, bytes: 10, lastWriteMs: 0 },
    { firstIndex: 3, lastIndex: 3, bytes: 10, lastWriteMs: 0 },
  ];
  assert.equal(retainedFirstOffset(segments, { max_messages: 1 }, state, 0), 2);
  state.apply(4, encodeCommand({ kind: "retain", firstOffset: 2 }));
  assert.equal(retainedFirstOffset(segments, { max_messages: 5 }, state, 0), 2);
});

Deno.test("a retain command round-trips and every replica applying it agrees on the first offset", () => {
  const data = encodeCommand({ kind: "retain", firstOffset: 42 });
  assert.deepEqual(decodeCommand(data), { kind: "retain", firstOffset: 42 });
  const replicas = [new TopicState(), new TopicState()];
  for (const state of replicas) {
    state.apply(1, encodeCommand({ kind: "publish", parts: [{ messages: ["a", "b", "c"] }] }));
    state.apply(2, encodeCommand({ kind: "publish", parts: [{ messages: ["d"] }] }));
    assert.deepEqual(state.apply(3, encodeCommand({ kind: "retain", firstOffset: 3 })), {
      kind: "retained",
      firstOffset: 3,
    });
    // An older decision applied later never moves it back.
    assert.deepEqual(state.apply(4, encodeCommand({ kind: "retain", firstOffset: 1 })), {
      kind: "retained",
      firstOffset: 3,
    });
    assert.equal(state.locate(2), undefined, "offset 2 is gone");
    assert.deepEqual(state.locate(3), { firstOffset: 3, index: 2 });
  }
  assert.equal(replicas[0].firstOffset, replicas[1].firstOffset);
});
