import assert from "node:assert/strict";
import { encodeCommand } from "../../lib/peer/topic_commands.ts";
import { TopicReader } from "../../lib/peer/topic_reader.ts";
import { TopicState } from "../../lib/peer/topic_state.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { EntryType } from "../../lib/storage/types.ts";

Deno.test("TopicReader reads coalesced entries back in offset order, without their retried parts", () => {
  const store = new MemoryLogStore();
  const state = new TopicState();
  const commands = [
    encodeCommand({ kind: "publish", parts: [{ messages: ["a"], producerId: "p", sequence: 0 }] }),
    encodeCommand({ kind: "ack", offsets: { u1: 0 } }),
    encodeCommand({
      kind: "publish",
      parts: [
        { messages: ["b", "c"] },
        { messages: ["a"], producerId: "p", sequence: 0 },
        { messages: ["d"], producerId: "p", sequence: 1 },
      ],
    }),
  ];
  commands.forEach((data, position) => {
    store.append([{ term: 1, index: position + 1, type: EntryType.Normal, data }]);
    state.apply(position + 1, data);
  });
  // A fresh reader has nothing cached: it decodes every entry from the log.
  const reader = new TopicReader(store, state);
  assert.deepEqual(reader.read(0, 100, state.nextOffset), {
    messages: ["a", "b", "c", "d"].map((message, offset) => ({ offset, message })),
    nextOffset: 4,
  });
  assert.deepEqual(reader.read(2, 1, state.nextOffset).messages, [{ offset: 2, message: "c" }]);
  assert.deepEqual(reader.read(4, 10, state.nextOffset), { messages: [], nextOffset: 4 });
});
