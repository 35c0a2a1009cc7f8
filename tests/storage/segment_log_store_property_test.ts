import assert from "node:assert/strict";
import fc from "fast-check";
import { SegmentLogStore } from "../../lib/storage/segment_log_store.ts";
import type { Entry, Snapshot } from "../../lib/storage/types.ts";
import { makeEntries, normalize } from "./_helpers.ts";

type Command =
  | { kind: "append"; at: number; count: number; bytes: number; newTerm: boolean }
  | { kind: "sync" }
  | { kind: "reopen" }
  | { kind: "crash" }
  | { kind: "compact"; at: number; keep: number }
  | { kind: "applySnapshot"; ahead: number; retained: number };

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
  { weight: 2, arbitrary: fc.constant({ kind: "crash" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("compact" as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      keep: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("applySnapshot" as const),
      ahead: fc.integer({ min: 0, max: 5 }),
      retained: fc.integer({ min: 0, max: 30 }),
    }),
  },
);

/**
 * The obviously correct model: an optional snapshot and the entries held
 * from `first` on (which may start at or below the snapshot's index).
 */
interface Model {
  snapshot: Snapshot | undefined;
  first: number;
  entries: Entry[];
}

function snapshotIndex(model: Model): number {
  return model.snapshot?.index ?? 0;
}

function lastIndex(model: Model): number {
  return Math.max(snapshotIndex(model), model.first + model.entries.length - 1);
}

function termAt(model: Model, index: number): number {
  const held = model.entries[index - model.first];
  if (held !== undefined) return held.term;
  if (index === snapshotIndex(model)) return model.snapshot?.term ?? 0;
  throw new Error(`model holds no entry ${index}`);
}

function copy(model: Model): Model {
  return { snapshot: model.snapshot, first: model.first, entries: [...model.entries] };
}

function snapshotOf(index: number, term: number): Snapshot {
  return { index, term, conf: { voters: [1], learners: [] }, data: new Uint8Array([index & 0xff]) };
}

function check(store: SegmentLogStore, model: Model): void {
  assert.equal(store.firstIndex(), model.first);
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

/**
 * The files of `source` as a killed process leaves them (preallocated
 * padding and all, nothing trimmed), copied into a new directory.
 */
async function crashCopy(source: string): Promise<string> {
  const target = await Deno.makeTempDir({ prefix: "segment_log_store_property_" });
  for (const entry of Deno.readDirSync(source)) {
    if (entry.isFile) Deno.copyFileSync(`${source}/${entry.name}`, `${target}/${entry.name}`);
  }
  return target;
}

async function run(
  commands: Command[],
  options: { segmentBytesMax: number; cacheBytesMax: number },
) {
  let dir = await Deno.makeTempDir({ prefix: "segment_log_store_property_" });
  let store = await SegmentLogStore.open(dir, options);
  let model: Model = { snapshot: undefined, first: 1, entries: [] };
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
          model.entries = [...model.entries.slice(0, index - model.first), ...entries];
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
        case "crash": {
          // Every command awaits its flush: the copy holds exactly the synced state.
          const crashed = await crashCopy(dir);
          await store.close();
          await Deno.remove(dir, { recursive: true });
          dir = crashed;
          store = await SegmentLogStore.open(dir, options);
          model = copy(durable);
          break;
        }
        case "compact": {
          const low = snapshotIndex(model);
          const index = low + Math.floor(command.at * (store.syncedIndex() - low + 1) * 0.999);
          if (index === 0) break;
          if (index < model.first - 1) break;
          const snapshot = snapshotOf(index, termAt(model, index));
          const keepFrom = model.first + Math.floor(command.keep * (index + 2 - model.first));
          await store.compact(snapshot, keepFrom);
          // Whole segments only: anything from the first kept one on stays.
          const kept = store.firstIndex();
          assert.ok(kept >= model.first && kept <= Math.min(keepFrom, index + 1), `kept ${kept}`);
          model.entries = model.entries.slice(kept - model.first);
          model.first = kept;
          model.snapshot = snapshot;
          durable = copy(model);
          break;
        }
        case "applySnapshot": {
          const snapshot = snapshotOf(Math.max(1, lastIndex(model) + command.ahead), ++termMax);
          const count = Math.min(command.retained, snapshot.index);
          const retained = makeEntries(snapshot.index - count + 1, count, snapshot.term, 50);
          await store.applySnapshot(snapshot, retained);
          model = { snapshot, first: snapshot.index - count + 1, entries: retained };
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

Deno.test("SegmentLogStore matches a simple model under random append, truncate, sync, compact, reopen and crash", async () => {
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
