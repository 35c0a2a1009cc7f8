import assert from "node:assert/strict";
import fc from "fast-check";
import { SegmentLogStore } from "../../lib/storage/segment_log_store.ts";
import type { Entry, Snapshot } from "../../lib/storage/types.ts";
import { makeEntries, normalize } from "./_helpers.ts";

type Command =
  | { kind: "append"; at: number; count: number; bytes: number; newTerm: boolean }
  | { kind: "sync" }
  | { kind: "reopen" }
  | { kind: "compact"; at: number }
  | { kind: "applySnapshot"; ahead: number };

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      count: fc.integer({ min: 1, max: 12 }),
      bytes: fc.integer({ min: 0, max: 400 }),
      newTerm: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ kind: "sync" as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: "reopen" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("compact" as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("applySnapshot" as const),
      ahead: fc.integer({ min: 0, max: 5 }),
    }),
  },
);

/** The obviously correct model: an array of entries after an optional snapshot. */
interface Model {
  snapshot: Snapshot | undefined;
  entries: Entry[];
}

function snapshotIndex(model: Model): number {
  return model.snapshot?.index ?? 0;
}

function lastIndex(model: Model): number {
  return snapshotIndex(model) + model.entries.length;
}

function termAt(model: Model, index: number): number {
  if (index === snapshotIndex(model)) return model.snapshot?.term ?? 0;
  return model.entries[index - snapshotIndex(model) - 1].term;
}

function copy(model: Model): Model {
  return { snapshot: model.snapshot, entries: [...model.entries] };
}

function snapshotOf(index: number, term: number): Snapshot {
  return { index, term, conf: { voters: [1], learners: [] }, data: new Uint8Array([index & 0xff]) };
}

function check(store: SegmentLogStore, model: Model): void {
  assert.equal(store.firstIndex(), snapshotIndex(model) + 1);
  assert.equal(store.lastIndex(), lastIndex(model));
  assert.equal(
    store.term(lastIndex(model)),
    lastIndex(model) === 0 ? undefined : termAt(model, lastIndex(model)),
  );
  assert.deepEqual(
    normalize(store.entries(store.firstIndex(), store.lastIndex() + 1)),
    normalize(model.entries),
  );
}

async function run(
  commands: Command[],
  options: { segmentBytesMax: number; cacheBytesMax: number },
) {
  const dir = await Deno.makeTempDir({ prefix: "segment_log_store_property_" });
  let store = await SegmentLogStore.open(dir, options);
  let model: Model = { snapshot: undefined, entries: [] };
  let durable: Model = copy(model);
  let termMax = 1;
  try {
    for (const command of commands) {
      switch (command.kind) {
        case "append": {
          const first = snapshotIndex(model) + 1;
          const index = first + Math.floor(command.at * (lastIndex(model) - first + 2) * 0.999);
          const term = index <= lastIndex(model) || command.newTerm ? ++termMax : termMax;
          const entries = makeEntries(index, command.count, term, command.bytes);
          store.append(entries);
          model.entries = [...model.entries.slice(0, index - first), ...entries];
          break;
        }
        case "sync":
          await store.sync();
          assert.equal(store.syncedIndex(), lastIndex(model));
          durable = copy(model);
          break;
        case "reopen":
          await store.close();
          store = await SegmentLogStore.open(dir, options);
          model = copy(durable);
          break;
        case "compact": {
          const low = snapshotIndex(model);
          const index = low + Math.floor(command.at * (store.syncedIndex() - low + 1) * 0.999);
          if (index === 0) break;
          const snapshot = snapshotOf(index, termAt(model, index));
          await store.compact(snapshot);
          model.entries = model.entries.slice(index - snapshotIndex(model));
          model.snapshot = snapshot;
          durable = copy(model);
          break;
        }
        case "applySnapshot": {
          const snapshot = snapshotOf(Math.max(1, lastIndex(model) + command.ahead), ++termMax);
          await store.applySnapshot(snapshot);
          model = { snapshot, entries: [] };
          durable = copy(model);
          break;
        }
      }
      check(store, model);
    }
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("SegmentLogStore matches a simple model under random append, truncate, sync, compact and reopen", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(commandArbitrary, { minLength: 1, maxLength: 40 }),
      fc.constantFrom(1024, 4096, 1 << 20),
      fc.constantFrom(0, 2000, 1 << 20),
      async (commands, segmentBytesMax, cacheBytesMax) => {
        await run(commands, { segmentBytesMax, cacheBytesMax });
      },
    ),
    { numRuns: 300 },
  );
});
