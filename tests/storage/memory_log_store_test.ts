import { deepStrictEqual, equal, throws } from "node:assert/strict";
import fc from "fast-check";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { type Entry, EntryType } from "../../lib/storage/types.ts";

function entry(index: number, term: number, text = `e${index}`): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(text) };
}

Deno.test("MemoryLogStore loses appends and hard state not covered by a sync on crash", () => {
  const store = new MemoryLogStore();
  store.append([entry(1, 2), entry(2, 2)]);
  store.setHardState({ term: 2, vote: 1, commit: 1 });
  store.syncNow();
  store.append([entry(3, 2)]);
  store.setHardState({ term: 3, vote: 2, commit: 2 });
  equal(store.syncedIndex(), 2);
  store.crash();
  equal(store.lastIndex(), 2);
  deepStrictEqual(store.hardState(), { term: 2, vote: 1, commit: 1 });
});

Deno.test("MemoryLogStore skips a bootstrap hard state of term 1 and gives it back as term 1 with no vote", () => {
  const store = new MemoryLogStore();
  store.append([entry(1, 1)]);
  store.setHardState({ term: 1, vote: 2, commit: 1 });
  store.syncNow();
  store.crash();
  equal(store.lastIndex(), 1);
  deepStrictEqual(store.hardState(), { term: 1, vote: 0, commit: 1 });
  // A commit past normal entries of term 1 is a hint, as in any term: not written.
  store.append([entry(2, 1)]);
  store.setHardState({ term: 1, vote: 2, commit: 2 });
  store.syncNow();
  store.crash();
  deepStrictEqual(store.hardState(), { term: 1, vote: 0, commit: 1 });
  // A commit past a conf change is written (a replica must not apply an older membership again).
  store.append([{ ...entry(3, 1), type: EntryType.ConfChange }]);
  store.setHardState({ term: 1, vote: 2, commit: 3 });
  store.syncNow();
  store.crash();
  deepStrictEqual(store.hardState(), { term: 1, vote: 2, commit: 3 });
  // A later term is written as ever.
  store.setHardState({ term: 2, vote: 3, commit: 1 });
  store.syncNow();
  store.crash();
  deepStrictEqual(store.hardState(), { term: 2, vote: 3, commit: 1 });
});

Deno.test("MemoryLogStore restores durable entries overwritten by an unsynced truncation", () => {
  const store = new MemoryLogStore();
  store.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
  store.syncNow();
  store.append([entry(2, 2, "new")]);
  equal(store.lastIndex(), 2);
  equal(store.term(2), 2);
  equal(store.syncedIndex(), 1);
  store.crash();
  equal(store.lastIndex(), 3);
  equal(store.term(2), 1);
  equal(store.term(3), 1);
});

Deno.test("MemoryLogStore compaction keeps the snapshot and the entries after it", async () => {
  const store = new MemoryLogStore();
  store.append([entry(1, 1), entry(2, 1), entry(3, 2)]);
  store.syncNow();
  await store.compact({
    index: 2,
    term: 1,
    conf: { voters: [1], learners: [] },
    data: new Uint8Array(),
  });
  equal(store.firstIndex(), 3);
  equal(store.term(2), 1);
  equal(store.term(1), undefined);
  throws(() => store.entries(2, 4), RangeError);
  store.crash();
  equal(store.firstIndex(), 3);
  equal(store.lastIndex(), 3);
});

Deno.test("MemoryLogStore refuses to compact beyond the synced index", async () => {
  const store = new MemoryLogStore();
  store.append([entry(1, 1)]);
  let error: unknown;
  try {
    await store.compact({
      index: 1,
      term: 1,
      conf: { voters: [1], learners: [] },
      data: new Uint8Array(),
    });
  } catch (caught) {
    error = caught;
  }
  equal(error instanceof RangeError, true);
});

Deno.test("MemoryLogStore entries stop at maxBytes but return at least one entry", () => {
  const store = new MemoryLogStore();
  store.append([entry(1, 1, "aaaa"), entry(2, 1, "bbbb"), entry(3, 1, "cccc")]);
  equal(store.entries(1, 4, 1).length, 1);
  equal(store.entries(1, 4, 8).length, 2);
  equal(store.entries(1, 4).length, 3);
});

Deno.test("MemoryLogStore after a crash holds exactly the state of its last sync", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          truncateBy: fc.nat(3),
          count: fc.integer({ min: 1, max: 3 }),
          sync: fc.boolean(),
        }),
        {
          maxLength: 20,
        },
      ),
      (steps) => {
        const store = new MemoryLogStore();
        let durable: number[] = [];
        let term = 1;
        for (const step of steps) {
          const first = Math.max(1, store.lastIndex() + 1 - step.truncateBy);
          term++;
          store.append(Array.from({ length: step.count }, (_, i) => entry(first + i, term)));
          if (step.sync) {
            store.syncNow();
            durable = Array.from({ length: store.lastIndex() }, (_, i) => store.term(i + 1)!);
          }
        }
        store.crash();
        deepStrictEqual(
          Array.from({ length: store.lastIndex() }, (_, i) => store.term(i + 1)),
          durable,
        );
      },
    ),
  );
});
