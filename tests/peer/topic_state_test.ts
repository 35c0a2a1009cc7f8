import assert from "node:assert/strict";
import { encodeCommand } from "../../lib/peer/topic_commands.ts";
import { producerSequencesMax, TopicState } from "../../lib/peer/topic_state.ts";

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
  publish(state, ["five"], "p", 5);
  publish(state, ["six"], "p", 6);
  assert.deepEqual(publish(state, ["five"], "p", 5), {
    kind: "published",
    parts: [{ firstOffset: 0, count: 1, duplicate: true }],
    messages: [],
  });
  assert.equal(state.nextOffset, 2);
});

Deno.test("TopicState stores a sequence that failed earlier and is retried after later ones", () => {
  const state = new TopicState();
  publish(state, ["six"], "p", 6);
  const result = publish(state, ["five"], "p", 5);
  assert.deepEqual(result, {
    kind: "published",
    parts: [{ firstOffset: 1, count: 1, duplicate: false }],
    messages: ["five"],
  });
});

Deno.test("TopicState treats a sequence older than its window as already stored", () => {
  const state = new TopicState();
  for (let sequence = 100; sequence <= 100 + producerSequencesMax; sequence++) {
    publish(state, [`m${sequence}`], "p", sequence);
  }
  const before = state.nextOffset;
  // Sequence 100 fell out of the window; it and anything older count as stored.
  assert.equal(publish(state, ["m100"], "p", 100).kind, "published");
  const result = publish(state, ["ancient"], "p", 1);
  assert.equal(result.kind === "published" && result.parts[0].duplicate, true);
  assert.equal(state.nextOffset, before);
});

Deno.test("TopicState refuses to apply entries out of order", () => {
  const state = new TopicState();
  assert.throws(() =>
    state.apply(2, encodeCommand({ kind: "publish", parts: [{ messages: ["x"] }] }))
  );
});

Deno.test("TopicState stores the new parts of a coalesced entry and leaves out a retried one", () => {
  const state = new TopicState();
  publish(state, ["first"], "p", 1);
  const result = state.apply(
    2,
    encodeCommand({
      kind: "publish",
      parts: [
        { messages: ["a", "b"], producerId: "q", sequence: 1 },
        { messages: ["first"], producerId: "p", sequence: 1 },
        { messages: ["c"] },
      ],
    }),
  );
  assert.deepEqual(result, {
    kind: "published",
    parts: [
      { firstOffset: 1, count: 2, duplicate: false },
      { firstOffset: 0, count: 1, duplicate: true },
      { firstOffset: 3, count: 1, duplicate: false },
    ],
    messages: ["a", "b", "c"],
  });
  assert.deepEqual(state.skippedParts(2), [1]);
  assert.deepEqual(state.locate(3), { firstOffset: 1, index: 2 });
});
