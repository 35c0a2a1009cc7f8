/**
 * Property test of the open rule for a preallocated segment after a crash
 * during a flush: the flush's writes may reach the disk in any order, one
 * 512-byte sector at a time, and the file may keep its old size. Whatever
 * mix of old and new sectors the crash leaves, opening must neither report
 * damage nor lose a record that an earlier flush made durable, and must
 * read back a prefix of what was appended.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { SegmentLogStore } from "../../lib/storage/segment_log_store.ts";
import type { Entry } from "../../lib/storage/types.ts";
import { makeEntries, normalize, segmentNames } from "./_helpers.ts";

const sectorBytes = 512;

/** Waits until the store's disk queue is idle: a hard-state write queues behind any job. */
async function settle(store: SegmentLogStore, term: number): Promise<void> {
  store.setHardState({ term, vote: 1, commit: 0 });
  await store.sync();
}

/** Sector by sector, `after` where `takeNew` says so and `before` elsewhere (zeros past its end). */
function tornImage(
  before: Uint8Array,
  after: Uint8Array,
  takeNew: boolean[],
  keepOldSize: boolean,
): Uint8Array {
  const image = new Uint8Array(keepOldSize ? before.length : after.length);
  for (let start = 0; start < image.length; start += sectorBytes) {
    const sector = start / sectorBytes;
    const source = takeNew[sector % takeNew.length] ? after : before;
    const end = Math.min(image.length, start + sectorBytes);
    image.set(source.subarray(start, Math.min(end, source.length)), start);
  }
  return image;
}

/** One run: the batches appended with a flush each, and the last flush torn on disk. */
interface TornRun {
  dir: string;
  /** The segment file of the crashed copy, holding the torn image. */
  segment: string;
  appended: Entry[];
  /** Records of every flush but the last, durable before it began. */
  durable: number;
  /** Bytes of the records durable before the flush before the last one began. */
  vouchedBytes: number;
}

async function tornRun(
  dir: string,
  batches: { count: number; bytes: number }[],
  takeNew: boolean[],
  keepOldSize: boolean,
): Promise<TornRun> {
  const store = await SegmentLogStore.open(`${dir}/live`);
  const appended: Entry[] = [];
  let before = new Uint8Array(0);
  let durable = 0;
  let vouchedBytes = 0;
  let recordBytes = 0;
  for (const [position, batch] of batches.entries()) {
    const last = position === batches.length - 1;
    if (position === batches.length - 2) vouchedBytes = recordBytes;
    if (last) {
      durable = appended.length;
      const [name] = segmentNames(`${dir}/live`);
      before = Deno.readFileSync(`${dir}/live/${name}`);
    }
    const entries = makeEntries(appended.length + 1, batch.count, 1, batch.bytes);
    store.append(entries);
    appended.push(...entries);
    recordBytes += entries.reduce((sum, entry) => sum + 25 + entry.data.length, 0);
    await store.sync();
    if (!last) await settle(store, 2 + position);
  }
  const [name] = segmentNames(`${dir}/live`);
  const after = Deno.readFileSync(`${dir}/live/${name}`);
  await store.close();
  Deno.mkdirSync(`${dir}/crashed`);
  Deno.copyFileSync(`${dir}/live/hardstate`, `${dir}/crashed/hardstate`);
  const segment = `${dir}/crashed/${name}`;
  Deno.writeFileSync(segment, tornImage(before, after, takeNew, keepOldSize));
  return { dir, segment, appended, durable, vouchedBytes };
}

const batchesArbitrary = (minLength: number) =>
  fc.array(
    fc.record({ count: fc.integer({ min: 1, max: 8 }), bytes: fc.integer({ min: 0, max: 900 }) }),
    { minLength, maxLength: 10 },
  );

Deno.test("SegmentLogStore opens any sector mix of a torn last flush without a report and without losing a durable record", async () => {
  const root = await Deno.makeTempDir({ prefix: "segment_torn_write_test_" });
  let count = 0;
  try {
    await fc.assert(
      fc.asyncProperty(
        batchesArbitrary(2),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 64 }),
        fc.boolean(),
        async (batches, takeNew, keepOldSize) => {
          const run = await tornRun(`${root}/${count++}`, batches, takeNew, keepOldSize);
          const reopened = await SegmentLogStore.open(`${run.dir}/crashed`);
          const lastIndex = reopened.lastIndex();
          assert.ok(
            lastIndex >= run.durable,
            `lost durable records: ${lastIndex} < ${run.durable}`,
          );
          assert.deepEqual(
            normalize(reopened.entries(1, lastIndex + 1)),
            normalize(run.appended.slice(0, lastIndex)),
          );
          await reopened.close();
          await Deno.remove(run.dir, { recursive: true });
        },
      ),
      { numRuns: 150 },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("SegmentLogStore reports damage to a record that a later durable flush vouches for, however the last flush tore", async () => {
  const root = await Deno.makeTempDir({ prefix: "segment_torn_write_test_" });
  let count = 0;
  try {
    await fc.assert(
      fc.asyncProperty(
        batchesArbitrary(3),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 64 }),
        fc.boolean(),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (batches, takeNew, keepOldSize, where) => {
          const run = await tornRun(`${root}/${count++}`, batches, takeNew, keepOldSize);
          // A byte of the records below `vouchedBytes`: the flush before the
          // last one, durable and intact, was stamped with their end.
          const bytes = Deno.readFileSync(run.segment);
          bytes[Math.floor(where * run.vouchedBytes * 0.9999)] ^= 0x40;
          Deno.writeFileSync(run.segment, bytes);
          await assert.rejects(
            SegmentLogStore.open(`${run.dir}/crashed`),
            /followed by valid records/,
          );
          await Deno.remove(run.dir, { recursive: true });
        },
      ),
      { numRuns: 150 },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
