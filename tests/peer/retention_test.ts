import assert from "node:assert/strict";
import { waitFor } from "../_helpers/cluster_process.ts";
import { startPeer } from "../_helpers/peer_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";
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

// ---- A standalone peer, end to end (real process, real files) ----------------

/** Bytes of every file in `directory` (a replica's segment files, snapshot and hard state). */
export async function directoryBytes(directory: string): Promise<number> {
  let bytes = 0;
  for await (const entry of Deno.readDir(directory)) {
    if (entry.isFile) bytes += (await Deno.stat(`${directory}/${entry.name}`)).size;
  }
  return bytes;
}

/** Segment files in `directory`. */
async function segmentFiles(directory: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(directory)) {
    if (entry.name.endsWith(".log")) names.push(entry.name);
  }
  return names.sort();
}

type Answer = Record<string, unknown>;

async function describe(client: RawClient, topic: string): Promise<Answer> {
  return await client.request({ action: "describe_topic", topic_name: topic }) as Answer;
}

Deno.test("a standalone peer deletes whole expired segments and reads below retention from the first retained offset", async (t) => {
  const peer = await startPeer({ args: ["--standalone"] });
  const client = await RawClient.connect(peer.port);
  const directory = `${peer.dataDir}/topics/events`;
  const message = "x".repeat(200);
  try {
    await t.step("bad retention values are refused before anything is created", async () => {
      for (
        const retention of [{ max_messages: 0 }, { max_bytes: "1k" }, { keep: 1 }, [], {
          segment_bytes: 100,
        }]
      ) {
        const answer = await client.request({
          action: "create_topic",
          topic_name: "events",
          retention,
        }) as Answer;
        assert.equal(answer.status, "bad_request", JSON.stringify(retention));
        assert.match(String(answer.error), /retention/);
      }
      assert.deepEqual(await client.request({ action: "fetch_topics" }), []);
    });

    await t.step("retention by messages keeps at least max_messages", async () => {
      assert.deepEqual(
        await client.request({
          action: "create_topic",
          topic_name: "events",
          retention: { max_messages: 100, segment_bytes: 4096 },
        }),
        { status: "topic_created", topic: "events" },
      );
      // A durable subscriber registered at offset 0 that reads nothing yet.
      const subscriber = await RawClient.connect(peer.port);
      assert.equal(
        (await subscriber.request({
          action: "subscribe",
          topic_name: "events",
          subscriber_id: "s1",
          from: "earliest",
        }) as Answer).status,
        "subscribed",
      );
      await subscriber.close();
      for (let batch = 0; batch < 30; batch++) {
        const answer = await client.request({
          action: "publish_batch",
          topic_name: "events",
          messages: Array(10).fill(message),
        }) as Answer;
        assert.equal(answer.status, "messages_published");
      }
      await client.close();
    });
    const reader = await RawClient.connect(peer.port);
    try {
      // A pass during the publishes may have deleted less: wait for the final decision.
      const described = await waitFor("retention to delete old segments", async () => {
        const answer = await describe(reader, "events");
        return 300 - (answer.first_offset as number) < 200 ? answer : undefined;
      });
      await t.step("describe_topic shows what is retained and the retention in force", () => {
        assert.equal(described.next_offset, 300);
        const kept = (described.next_offset as number) - (described.first_offset as number);
        assert.ok(kept >= 100, `kept ${kept} messages, fewer than max_messages 100`);
        assert.ok(kept < 200, `kept ${kept} messages: old segments were not deleted`);
        assert.equal(described.messages, kept);
        assert.deepEqual(described.retention, { max_messages: 100, segment_bytes: 4096 });
        assert.equal(typeof described.bytes, "number");
      });
      await t.step("only whole segments were deleted, from the oldest", async () => {
        const files = await segmentFiles(directory);
        assert.ok(files.length >= 2);
        assert.notEqual(files[0], "00000000000000000001.log", "the first segment is gone");
        const bytes = await directoryBytes(directory);
        assert.ok(bytes < 300 * 200, `the topic's files hold ${bytes} bytes`);
      });
      // Retention may still move on (its final decision can come after the
      // answer above), never back: each answer below names where it is now.
      let first = described.first_offset as number;
      await t.step(
        "fetch below retention starts at the first retained offset and says so",
        async () => {
          const answer = await reader.request({
            action: "fetch",
            topic_name: "events",
            from_offset: 0,
            max: 5,
          }) as Answer;
          assert.ok((answer.first_offset as number) >= first, JSON.stringify(answer));
          first = answer.first_offset as number;
          assert.ok(
            300 - first >= 100,
            `kept ${300 - first} messages, fewer than max_messages 100`,
          );
          assert.deepEqual(
            (answer.messages as { offset: number }[]).map((item) => item.offset),
            [first, first + 1, first + 2, first + 3, first + 4],
          );
          const inside = await reader.request({
            action: "fetch",
            topic_name: "events",
            from_offset: first + 1,
            max: 1,
          }) as Answer;
          // first_offset only when something was skipped (retention moved on meanwhile).
          const start = (inside.messages as { offset: number }[])[0].offset;
          if (start === first + 1) assert.equal(inside.first_offset, undefined, "nothing skipped");
          else {
            assert.ok(start > first + 1, JSON.stringify(inside));
            assert.equal(inside.first_offset, start, JSON.stringify(inside));
          }
        },
      );
      await t.step(
        "a durable subscriber below retention resumes at the first offset and is told the skip",
        async () => {
          assert.equal(
            (await reader.request({
              action: "subscribe",
              topic_name: "events",
              subscriber_id: "s1",
            }) as Answer).status,
            "subscribed",
          );
          const pushed = await reader.next() as Answer;
          assert.ok((pushed.offset as number) >= first, JSON.stringify(pushed));
          assert.ok(300 - (pushed.offset as number) >= 100, JSON.stringify(pushed));
          // s1 was registered at offset 0 and never acknowledged anything.
          assert.equal(pushed.skipped, pushed.offset);
          const second = await reader.next() as Answer;
          assert.equal(second.offset, (pushed.offset as number) + 1);
          assert.equal(second.skipped, undefined);
        },
      );
    } finally {
      await reader.close();
    }
    await t.step(
      "alter_topic changes the retention, which survives a restart with the snapshot",
      async () => {
        const admin = await RawClient.connect(peer.port);
        const altered = await admin.request({
          action: "alter_topic",
          topic_name: "events",
          retention: { max_messages: null, max_bytes: 1_000_000 },
        });
        assert.deepEqual(altered, {
          status: "topic_altered",
          topic: "events",
          retention: { max_bytes: 1_000_000, segment_bytes: 4096 },
        });
        const before = await describe(admin, "events");
        await admin.close();
        await peer.stop();
        const again = await startPeer({
          args: ["--standalone"],
          dataDir: peer.dataDir,
          port: peer.port,
        });
        const after = await RawClient.connect(again.port);
        try {
          const described = await describe(after, "events");
          assert.deepEqual(described.retention, { max_bytes: 1_000_000, segment_bytes: 4096 });
          assert.equal(described.first_offset, before.first_offset);
          assert.equal(described.next_offset, 300);
          const answer = await after.request({
            action: "fetch",
            topic_name: "events",
            from_offset: 299,
            max: 1,
          }) as Answer;
          assert.deepEqual(answer.messages, [{ offset: 299, message }]);
          assert.equal(
            (await after.request({
              action: "alter_topic",
              topic_name: "nope",
              retention: { max_bytes: 1 },
            }) as Answer).status,
            "topic_not_found",
          );
        } finally {
          await after.close();
          await again.stop();
        }
      },
    );
  } finally {
    await client.close();
    await peer.stop();
  }
});

Deno.test("a live subscription that retention overtakes goes on at the first retained offset and says what it skipped", async () => {
  const peer = await startPeer({ args: ["--standalone"] });
  const client = await RawClient.connect(peer.port);
  const subscriber = await RawClient.connect(peer.port);
  try {
    await client.request({
      action: "create_topic",
      topic_name: "live",
      retention: { max_messages: 50, segment_bytes: 4096 },
    });
    assert.equal(
      (await subscriber.request({
        action: "subscribe",
        topic_name: "live",
        subscriber_id: "slow",
        from: "earliest",
        max_in_flight: 5,
      }) as Answer).status,
      "subscribed",
    );
    for (let batch = 0; batch < 20; batch++) {
      await client.request({
        action: "publish_batch",
        topic_name: "live",
        messages: Array(10).fill("z".repeat(200)),
      });
    }
    // The window of 5 is full: nothing more is pushed until an ack.
    for (let offset = 0; offset < 5; offset++) {
      assert.equal((await subscriber.next() as Answer).offset, offset);
    }
    const first = await waitFor("retention to pass the subscriber", async () => {
      const answer = await describe(client, "live");
      return (answer.first_offset as number) > 5 ? answer.first_offset as number : undefined;
    });
    await subscriber.send({ action: "ack", topic_name: "live", subscriber_id: "slow", offset: 4 });
    // The ack's answer and the pushes it lets through may arrive in either order.
    const frames: Answer[] = [];
    const pushed = () => frames.filter((frame) => frame.event === "message");
    while (pushed().length < 2 || !frames.some((frame) => frame.status !== undefined)) {
      frames.push(await subscriber.next() as Answer);
    }
    assert.deepEqual(
      frames.filter((frame) => frame.status !== undefined).map((frame) => frame.status),
      [
        "acked",
      ],
    );
    const [next, after] = pushed();
    assert.ok((next.offset as number) >= first);
    assert.equal(next.skipped, (next.offset as number) - 5);
    assert.equal(after.offset, (next.offset as number) + 1);
    assert.equal(after.skipped, undefined);
  } finally {
    await subscriber.close();
    await client.close();
    await peer.stop();
  }
});
