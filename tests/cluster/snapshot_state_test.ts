/**
 * Snapshot images of the state machines: a `TopicState` or `MetaState`
 * restored from `snapshot()` taken at any point of a random history gives
 * the same answers as the original, both right away and after the rest of
 * the history is applied to both.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { MetaState } from "../../lib/cluster/meta_state.ts";
import { TopicMachine } from "../../lib/cluster/raft_topic.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { EntryType } from "../../lib/storage/types.ts";
import { encodeCommand, type TopicCommand } from "../../lib/peer/topic_commands.ts";
import { TopicState } from "../../lib/peer/topic_state.ts";

type Step =
  | { kind: "publish"; parts: { producer?: number; sequence?: number; count: number }[] }
  | { kind: "ack"; subscriber: number; offset: number }
  | { kind: "retain"; fraction: number }
  | { kind: "conf" };

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("publish" as const),
      parts: fc.array(
        fc.record({
          producer: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
          // Near each producer's next sequence: new ones, retries and gaps.
          sequence: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }),
          count: fc.integer({ min: 0, max: 4 }),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("ack" as const),
      subscriber: fc.integer({ min: 0, max: 4 }),
      offset: fc.integer({ min: 0, max: 60 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("retain" as const),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "conf" as const }) },
);

function commandOf(step: Step, state: TopicState): TopicCommand | undefined {
  switch (step.kind) {
    case "publish":
      return {
        kind: "publish",
        parts: step.parts.map((part) => ({
          messages: Array.from({ length: part.count }, (_, n) => `m${state.appliedIndex}.${n}`),
          ...(part.producer === undefined || part.sequence === undefined
            ? {}
            : { producerId: `p${part.producer}`, sequence: part.sequence }),
        })),
      };
    case "ack":
      return { kind: "ack", offsets: { [`s${step.subscriber}`]: step.offset } };
    case "retain": {
      const span = state.nextOffset - state.firstOffset;
      return { kind: "retain", firstOffset: state.firstOffset + Math.floor(step.fraction * span) };
    }
    case "conf":
      return undefined;
  }
}

/** Applies one step to a machine whose state is `machine.state`; returns what it answered. */
function applyStep(machine: TopicMachine, step: Step): unknown {
  const state = machine.state;
  const index = state.appliedIndex + 1;
  const command = commandOf(step, state);
  if (command === undefined) {
    machine.applyConfChange({ index, term: 1, type: EntryType.ConfChange, data: new Uint8Array() });
    return "conf";
  }
  return machine.apply({ index, term: 1, type: EntryType.Normal, data: encodeCommand(command) });
}

/** Everything a reader, a producer or a subscriber could ask the state. */
function answers(state: TopicState): unknown {
  const located: unknown[] = [];
  for (let offset = Math.max(0, state.firstOffset - 1); offset <= state.nextOffset; offset++) {
    located.push(state.locate(offset));
  }
  const verdicts: unknown[] = [];
  for (let producer = 0; producer < 4; producer++) {
    for (let sequence = 0; sequence < 14; sequence++) {
      verdicts.push(state.checkSequence(`p${producer}`, sequence));
    }
  }
  const skipped: unknown[] = [];
  const firstNeeded = state.firstNeededIndex();
  for (let index = firstNeeded; index <= state.appliedIndex; index++) {
    skipped.push(state.skippedParts(index));
  }
  return {
    firstOffset: state.firstOffset,
    nextOffset: state.nextOffset,
    appliedIndex: state.appliedIndex,
    subscribers: [...state.subscribers],
    firstNeeded,
    located,
    verdicts,
    skipped,
  };
}

Deno.test("TopicState restored from its snapshot answers like the original, now and after more entries", () => {
  fc.assert(
    fc.property(
      fc.array(stepArbitrary, { maxLength: 60 }),
      fc.array(stepArbitrary, { maxLength: 30 }),
      (before, after) => {
        const original = new TopicMachine(new MemoryLogStore());
        for (const step of before) applyStep(original, step);
        const image = original.snapshot();
        const restored = new TopicMachine(new MemoryLogStore());
        // Restoring over existing state replaces all of it.
        applyStep(restored, { kind: "ack", subscriber: 9, offset: 3 });
        restored.restore(image, original.state.appliedIndex);
        assert.deepEqual(answers(restored.state), answers(original.state));
        for (const step of after) {
          assert.deepEqual(applyStep(restored, step), applyStep(original, step));
        }
        assert.deepEqual(answers(restored.state), answers(original.state));
        assert.deepEqual(restored.snapshot(), original.snapshot());
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("TopicState keeps the subscriber map object across a restore (ack buffers hold it)", () => {
  const machine = new TopicMachine(new MemoryLogStore());
  const subscribers = machine.state.subscribers;
  const source = new TopicMachine(new MemoryLogStore());
  applyStep(source, { kind: "ack", subscriber: 1, offset: 5 });
  machine.restore(source.snapshot(), 1);
  assert.equal(machine.state.subscribers, subscribers);
  assert.equal(subscribers.get("s1"), 5);
});

Deno.test("TopicState refuses a damaged or foreign image and keeps its state", () => {
  const machine = new TopicMachine(new MemoryLogStore());
  applyStep(machine, { kind: "publish", parts: [{ count: 3 }] });
  const image = machine.snapshot();
  const other = new TopicMachine(new MemoryLogStore());
  assert.throws(() => other.restore(image.subarray(0, image.length - 3), 1), RangeError);
  assert.throws(() => other.restore(new Uint8Array([9, ...image.subarray(1)]), 1), RangeError);
  assert.equal(other.state.nextOffset, 0);
});

Deno.test("MetaState restored from its snapshot holds the same members and topics and keeps numbering epochs", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 4 })), {
        maxLength: 40,
      }),
      (operations) => {
        const original = new MetaState();
        let index = 0;
        const apply = (meta: MetaState, op: number, id: number, at: number) => {
          const commands = [
            { op: "add_member", id, address: `127.0.0.1:${5000 + id}` },
            { op: "remove_member", id },
            { op: "create_topic", name: `t${id}`, replicas: [id], replicationFactor: 1 },
            { op: "delete_topic", name: `t${id}` },
            { op: "set_replicas", name: `t${id}`, replicas: [id, 1] },
          ];
          if (op === 5) {
            meta.applyConfChange({
              index: at,
              term: 1,
              type: EntryType.ConfChange,
              data: new Uint8Array(),
            });
            return "conf";
          }
          return meta.apply({
            index: at,
            term: 1,
            type: EntryType.Normal,
            data: new TextEncoder().encode(JSON.stringify(commands[op])),
          });
        };
        const split = Math.floor(operations.length / 2);
        for (const [op, id] of operations.slice(0, split)) apply(original, op, id, ++index);
        const restored = new MetaState();
        let notified = 0;
        restored.onChange(() => notified++);
        restored.restore(original.snapshot(), index);
        assert.equal(notified, 1);
        assert.equal(restored.firstNeededIndex(), original.firstNeededIndex());
        for (const [op, id] of operations.slice(split)) {
          index++;
          assert.deepEqual(apply(restored, op, id, index), apply(original, op, id, index));
        }
        assert.deepEqual([...restored.members], [...original.members]);
        assert.deepEqual([...restored.topics], [...original.topics]);
        assert.deepEqual(restored.snapshot(), original.snapshot());
      },
    ),
    { numRuns: 200 },
  );
});
