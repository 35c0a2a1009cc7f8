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
