import assert from "node:assert/strict";
import { encodeCommand } from "../../lib/peer/topic_commands.ts";
import { producerSequencesMax, producersMax, TopicState } from "../../lib/peer/topic_state.ts";

function publish(state: TopicState, messages: string[], producerId?: string, sequence?: number) {
  return state.apply(
    state.appliedIndex + 1,
    encodeCommand({ kind: "publish", parts: [{ messages, producerId, sequence }] }),
  );
}

Deno.test("TopicState assigns dense offsets across batches and locates each one", () => {
  const state = new TopicState();
  publish(state, ["a", "b"]);
  state.apply(2, encodeCommand({ kind: "ack", offsets: { u1: 0 } }));
  publish(state, ["c"]);
  assert.equal(state.nextOffset, 3);
  assert.deepEqual(state.locate(0), { firstOffset: 0, index: 1 });
  assert.deepEqual(state.locate(1), { firstOffset: 0, index: 1 });
  assert.deepEqual(state.locate(2), { firstOffset: 2, index: 3 });
  assert.equal(state.locate(3), undefined);
  assert.equal(state.subscribers.get("u1"), 0);
});

Deno.test("TopicState answers a retried sequence with its own offsets, even after later ones", () => {
  const state = new TopicState();
  publish(state, ["zero"], "p", 0);
  publish(state, ["one"], "p", 1);
  assert.deepEqual(publish(state, ["zero"], "p", 0), {
    kind: "published",
    parts: [{ firstOffset: 0, count: 1, duplicate: true }],
    messages: [],
  });
  assert.equal(state.nextOffset, 2);
});

Deno.test("TopicState refuses a sequence after a gap and stores nothing of it", () => {
  const state = new TopicState();
  publish(state, ["zero"], "p", 0);
  const result = publish(state, ["two"], "p", 2);
  assert.equal(result.kind, "published");
  assert.deepEqual(result.kind === "published" && result.messages, []);
  const part = result.kind === "published" ? result.parts[0] : undefined;
  assert.ok(part !== undefined && "rejected" in part);
  assert.equal(part.rejected, "out_of_order_sequence");
  assert.match(part.reason, /Sequence 2 of producer 'p' skips ahead of its last stored sequence 0/);
  assert.equal(state.nextOffset, 1);
  // The missing sequence is still new, and the refused one follows it.
  assert.equal(publish(state, ["one"], "p", 1).kind, "published");
  assert.equal(state.checkSequence("p", 2).kind, "new");
  assert.equal(state.nextOffset, 2);
});

Deno.test("TopicState refuses a sequence older than its window instead of calling it stored", () => {
  const state = new TopicState();
  const last = producerSequencesMax + 100;
  for (let sequence = 0; sequence <= last; sequence++) {
    publish(state, [`m${sequence}`], "p", sequence);
  }
  const before = state.nextOffset;
  const oldest = last - producerSequencesMax + 1;
  assert.deepEqual(state.checkSequence("p", oldest), {
    kind: "duplicate",
    result: { firstOffset: oldest, count: 1, duplicate: true },
  });
  for (const sequence of [oldest - 1, 0]) {
    const verdict = state.checkSequence("p", sequence);
    assert.equal(verdict.kind, "out_of_order");
    assert.match(
      verdict.kind === "out_of_order" ? verdict.reason : "",
      /older than the 1024 sequences this topic remembers/,
    );
    const result = publish(state, ["again"], "p", sequence);
    assert.ok(result.kind === "published" && "rejected" in result.parts[0]);
  }
  assert.equal(state.nextOffset, before);
});

Deno.test("TopicState takes any first sequence of a producer it does not know, then checks the rest", () => {
  const state = new TopicState();
  assert.equal(state.checkSequence("new", 0).kind, "new");
  assert.equal(state.checkSequence("seed-era", 1).kind, "new");
  publish(state, ["m"], "late", 5);
  assert.equal(state.checkSequence("late", 5).kind, "duplicate");
  assert.equal(state.checkSequence("late", 6).kind, "new");
  const verdict = state.checkSequence("late", 8);
  assert.equal(verdict.kind, "out_of_order");
  assert.equal(state.checkSequence("late", 4).kind, "out_of_order");
  // Without a producer there is nothing to check.
  assert.equal(state.checkSequence(undefined, undefined).kind, "new");
});

Deno.test("TopicState answers every retry inside the window with the original offsets of batches", () => {
  const state = new TopicState();
  const firstOffsets: number[] = [];
  for (let sequence = 0; sequence < 3 * producerSequencesMax; sequence++) {
    firstOffsets.push(state.nextOffset);
    publish(state, Array.from({ length: (sequence % 3) + 1 }, () => "m"), "p", sequence);
    // Every sequence still in the window (a ring that wrapped) maps to its own batch.
    for (const back of [0, 1, 7, producerSequencesMax - 1]) {
      const retried = sequence - back;
      if (retried < 0) continue;
      assert.deepEqual(state.checkSequence("p", retried), {
        kind: "duplicate",
        result: { firstOffset: firstOffsets[retried], count: (retried % 3) + 1, duplicate: true },
      });
    }
  }
});

Deno.test("TopicState forgets the least recently stored producer beyond producersMax", () => {
  const state = new TopicState();
  for (let producer = 0; producer <= producersMax; producer++) {
    publish(state, ["m"], `p${producer}`, 0);
  }
  // The first producer was forgotten: a retry of its sequence 0 is no longer
  // recognised (it would be stored again: the documented limit), while the
  // newest still is.
  assert.equal(state.checkSequence("p0", 0).kind, "new");
  assert.equal(state.checkSequence(`p${producersMax}`, 0).kind, "duplicate");
  assert.equal(state.checkSequence(`p${producersMax}`, 1).kind, "new");
});

Deno.test("TopicState refuses to apply entries out of order", () => {
  const state = new TopicState();
  assert.throws(() =>
    state.apply(2, encodeCommand({ kind: "publish", parts: [{ messages: ["x"] }] }))
  );
});

Deno.test("TopicState stores the new parts of a coalesced entry and leaves out a retried one", () => {
  const state = new TopicState();
  publish(state, ["first"], "p", 0);
  const result = state.apply(
    2,
    encodeCommand({
      kind: "publish",
      parts: [
        { messages: ["a", "b"], producerId: "q", sequence: 0 },
        { messages: ["first"], producerId: "p", sequence: 0 },
        { messages: ["late"], producerId: "p", sequence: 9 },
        { messages: ["c"] },
      ],
    }),
  );
  assert.deepEqual(result, {
    kind: "published",
    parts: [
      { firstOffset: 1, count: 2, duplicate: false },
      { firstOffset: 0, count: 1, duplicate: true },
      {
        rejected: "out_of_order_sequence",
        reason:
          "Sequence 9 of producer 'p' skips ahead of its last stored sequence 0, so it was not stored",
      },
      { firstOffset: 3, count: 1, duplicate: false },
    ],
    messages: ["a", "b", "c"],
  });
  assert.deepEqual(state.skippedParts(2), [1, 2]);
  assert.deepEqual(state.locate(3), { firstOffset: 1, index: 2 });
});
