import { deepStrictEqual, equal, throws } from "node:assert/strict";
import fc from "fast-check";
import { RaftLog } from "../../lib/raft/raft_log.ts";
import { RaftInvariantError } from "../../lib/raft/errors.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { type Entry, EntryType } from "../../lib/storage/types.ts";

function entry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array([index & 0xff]) };
}

/** Hands the unstable tail to the store as a shell would, and reports it durable. */
function persist(log: RaftLog, store: MemoryLogStore): void {
  const unstable = log.unstableEntries().slice();
  if (unstable.length === 0) return;
  store.append(unstable);
  store.syncNow();
  const last = unstable[unstable.length - 1];
  log.stableTo(last.index, last.term);
}

Deno.test("RaftLog reads the same terms whether entries are unstable or persisted", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          back: fc.nat(4),
          count: fc.integer({ min: 1, max: 4 }),
          persist: fc.boolean(),
        }),
        {
          maxLength: 25,
        },
      ),
      (steps) => {
        const store = new MemoryLogStore();
        const log = new RaftLog(store);
        const model: number[] = [];
        let term = 0;
        for (const step of steps) {
          term++;
          const first = Math.max(log.committed + 1, log.lastIndex() + 1 - step.back);
          const entries = Array.from({ length: step.count }, (_, i) => entry(first + i, term));
          log.append(entries);
          model.length = first - 1;
          for (const appended of entries) model.push(appended.term);
          if (step.persist) persist(log, store);
          equal(log.lastIndex(), model.length);
          deepStrictEqual(Array.from({ length: model.length }, (_, i) => log.term(i + 1)), model);
        }
        persist(log, store);
        deepStrictEqual(Array.from({ length: model.length }, (_, i) => store.term(i + 1)), model);
      },
    ),
  );
});

Deno.test("RaftLog refuses to overwrite a committed entry", () => {
  const log = new RaftLog(new MemoryLogStore());
  log.append([entry(1, 1), entry(2, 1)]);
  log.commitTo(2);
  throws(() => log.append([entry(2, 2)]), RaftInvariantError);
});

Deno.test("RaftLog finds the conflict hint by term to skip a whole term per round trip", () => {
  const log = new RaftLog(new MemoryLogStore());
  log.append([entry(1, 1), entry(2, 1), entry(3, 4), entry(4, 4), entry(5, 4)]);
  equal(log.findConflictByTerm(5, 2), 2);
  equal(log.findConflictByTerm(5, 4), 5);
  equal(log.findConflictByTerm(9, 4), 5);
});

Deno.test("RaftLog slices at most maxBytes across stored and unstable entries", () => {
  const store = new MemoryLogStore();
  const log = new RaftLog(store);
  log.append([entry(1, 1), entry(2, 1)]);
  persist(log, store);
  log.append([entry(3, 1), entry(4, 1)]);
  equal(log.slice(1, 5)?.length, 4);
  equal(log.slice(1, 5, 3)?.length, 3);
  equal(log.slice(1, 5, 0)?.length, 1);
});

Deno.test("RaftLog over a store holding entries at and below its snapshot starts applied at the snapshot and serves the retained entries", async () => {
  const store = new MemoryLogStore({ segmentEntries: 5 });
  store.append(Array.from({ length: 14 }, (_, offset) => entry(offset + 1, offset < 8 ? 1 : 2)));
  store.setHardState({ term: 2, vote: 1, commit: 14 });
  store.syncNow();
  await store.compact({
    index: 12,
    term: 2,
    conf: { voters: [1], learners: [] },
    data: new Uint8Array(),
  }, 7);
  equal(store.firstIndex(), 6);
  const log = new RaftLog(store);
  equal(log.applied, 12);
  equal(log.committed, 14);
  equal(log.firstIndex(), 6);
  equal(log.term(6), 1);
  equal(log.term(12), 2);
  equal(log.term(5), undefined);
  deepStrictEqual(log.slice(6, 15)!.map((item) => item.index), [6, 7, 8, 9, 10, 11, 12, 13, 14]);
  // Below the first held entry only a snapshot helps.
  equal(log.slice(5, 15), undefined);
  // Appending after the committed entries keeps the retained ones.
  log.append([entry(15, 3)]);
  persist(log, store);
  equal(log.lastIndex(), 15);
  equal(store.firstIndex(), 6);
});
