/**
 * A leader applies its own publish proposals from the command it encoded
 * (`TopicMachine.rememberDecoded`) instead of decoding the entry again; a
 * follower decodes the bytes (only the counts while no subscriber waits).
 * Both must reach the same state and answers, or the replicas would diverge.
 *
 * @module
 */

import { deepEqual, equal } from "node:assert/strict";
import fc from "fast-check";
import { TopicMachine } from "../../lib/cluster/raft_topic.ts";
import {
  encodeCommand,
  type PublishPart,
  type TopicCommand,
} from "../../lib/peer/topic_commands.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { EntryType } from "../../lib/storage/types.ts";

const part: fc.Arbitrary<PublishPart> = fc.record({
  messages: fc.array(fc.string({ unit: "grapheme" }), { minLength: 0, maxLength: 4 }),
  producer: fc.option(
    fc.record({ producerId: fc.constantFrom("p1", "p2"), sequence: fc.nat(6) }),
    { nil: undefined },
  ),
}).map(({ messages, producer }) => ({ messages, ...producer }));

Deno.test("A leader applying its decoded proposals reaches the state a follower reaches by decoding them", () => {
  fc.assert(
    fc.property(fc.array(fc.array(part, { minLength: 1, maxLength: 3 }), { maxLength: 12 }), (
      batches,
    ) => {
      const leader = new TopicMachine(new MemoryLogStore());
      const follower = new TopicMachine(new MemoryLogStore());
      batches.forEach((parts, position) => {
        const command: TopicCommand = { kind: "publish", parts };
        const data = encodeCommand(command);
        leader.rememberDecoded(data, command);
        const entry = { index: position + 1, term: 1, type: EntryType.Normal, data };
        const led = leader.apply(entry);
        // A follower with no subscriber waiting decodes the counts, not the texts.
        const texts = led.kind === "published" ? { messages: led.messages.map(() => "") } : {};
        deepEqual({ ...led, ...texts }, follower.apply({ ...entry, data: data.slice() }));
      });
      deepEqual(leader.snapshot(), follower.snapshot());
      equal(leader.state.nextOffset, follower.state.nextOffset);
    }),
    { numRuns: 200 },
  );
});

Deno.test("A remembered command is used once: applying the same bytes again after a restore decodes them", () => {
  const machine = new TopicMachine(new MemoryLogStore());
  const command: TopicCommand = { kind: "publish", parts: [{ messages: ["a", "b"] }] };
  const data = encodeCommand(command);
  machine.rememberDecoded(data, command);
  const image = machine.snapshot();
  machine.apply({ index: 1, term: 1, type: EntryType.Normal, data });
  machine.restore(image, 0);
  // The command object is mutated now: a second apply must not see it. (It
  // decodes the entry's two messages; with no subscriber waiting, as counts.)
  command.parts[0].messages.push("not in the entry");
  const again = machine.apply({ index: 1, term: 1, type: EntryType.Normal, data });
  deepEqual(again.kind === "published" ? again.messages : [], ["", ""]);
  equal(machine.state.nextOffset, 2);
});

Deno.test("An encoded command owns a buffer of its exact size, so the log cache holds no hidden slack", () => {
  for (const message of ["ascii", "ü€😀", "x".repeat(300_000)]) {
    const data = encodeCommand({ kind: "publish", parts: [{ messages: [message] }] });
    equal(data.byteOffset, 0);
    equal(data.buffer.byteLength, data.byteLength);
  }
});
