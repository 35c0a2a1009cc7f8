/**
 * `EntryCache` against a plain array of entries: any sequence of appends,
 * evictions, truncations and clears leaves the same entries readable, with
 * the same bytes, and the newest ones as the very objects appended.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { EntryCache, recentEntriesMax } from "../../lib/storage/_entry_cache.ts";
import { type Entry, EntryType } from "../../lib/storage/types.ts";

type Step =
  | { kind: "push"; count: number; bytes: number }
  | { kind: "evict"; count: number }
  | { kind: "truncate"; back: number }
  | { kind: "clear" };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("push" as const),
      count: fc.integer({ min: 1, max: 200 }),
      // Mostly small, now and then larger than a chunk (1 KiB at first, up to 1 MiB).
      bytes: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 300 }) }, {
        weight: 1,
        arbitrary: fc.integer({ min: 10_000, max: 40_000 }),
      }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("evict" as const), count: fc.nat(150) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("truncate" as const), back: fc.nat(150) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("clear" as const) }) },
);

function entryAt(index: number, bytes: number): Entry {
  const data = new Uint8Array(bytes);
  for (let at = 0; at < bytes; at++) data[at] = (index * 31 + at) & 0xff;
  return {
    index,
    term: 1 + Math.floor(index / 50),
    type: index % 7 === 0 ? EntryType.ConfChange : EntryType.Normal,
    data,
  };
}

Deno.test("EntryCache holds what a plain array of entries holds, through any steps", () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
      const cache = new EntryCache(1);
      let model: Entry[] = [];
      let first = 1;
      // How many of the newest entries are surely still the objects appended.
      let recent = 0;
      for (const next of steps) {
        if (next.kind === "push") {
          for (let n = 0; n < next.count; n++) {
            const entry = entryAt(first + model.length, next.bytes);
            cache.push(entry);
            model.push(entry);
          }
          recent = Math.min(recentEntriesMax, recent + next.count);
        } else if (next.kind === "evict") {
          for (let n = 0; n < next.count && model.length > 0; n++) {
            cache.evictFirst();
            model.shift();
            first++;
          }
          recent = Math.min(recent, model.length);
        } else if (next.kind === "truncate") {
          const index = Math.max(1, first + model.length - next.back);
          cache.truncateFrom(index);
          recent = Math.max(0, recent - Math.max(0, first + model.length - index));
          if (index <= first) {
            model = [];
            first = index;
          } else model = model.slice(0, index - first);
        } else {
          first += model.length;
          model = [];
          recent = 0;
          cache.clear(first);
        }
        assert.equal(cache.firstIndex, first);
        assert.equal(cache.count, model.length);
        assert.equal(cache.dataBytes, model.reduce((sum, entry) => sum + entry.data.length, 0));
      }
      assert.equal(cache.get(first - 1), undefined);
      assert.equal(cache.get(first + model.length), undefined);
      model.forEach((expected, position) => {
        const got = cache.get(expected.index)!;
        assert.equal(got.index, expected.index);
        assert.equal(got.term, expected.term);
        assert.equal(got.type, expected.type);
        assert.deepEqual(got.data, expected.data);
        assert.equal(cache.typeOf(expected.index), expected.type);
        // The newest ones are the objects appended; older ones are copies.
        if (position >= model.length - recent) assert.equal(got, expected);
        if (position < model.length - recentEntriesMax) assert.notEqual(got.data, expected.data);
      });
      if (model.length > 0) assert.equal(cache.firstDataBytes, model[0].data.length);
    }),
    { numRuns: 300 },
  );
});

Deno.test("EntryCache keeps appending after a truncation into its packed entries", () => {
  const cache = new EntryCache(1);
  for (let index = 1; index <= 500; index++) cache.push(entryAt(index, 100));
  cache.truncateFrom(200);
  for (let index = 200; index <= 400; index++) cache.push(entryAt(index, 120));
  for (let index = 1; index <= 400; index++) {
    assert.deepEqual(cache.get(index)!.data, entryAt(index, index < 200 ? 100 : 120).data);
  }
});

Deno.test("EntryCache refuses an entry that does not follow its last one", () => {
  const cache = new EntryCache(5);
  cache.push(entryAt(5, 1));
  assert.throws(() => cache.push(entryAt(7, 1)), /Cannot cache entry 7 after entry 5/);
});
