/**
 * Tests of the preallocated active segment: zero padding ahead of the
 * records, trimming when a segment is sealed or the store closes, and the
 * open rules that tell a torn write after a crash from damage to durable
 * records (the durable stamp of v2 records), on real files. A "crash" is a
 * copy of the replica directory taken while the store is open: the files
 * as a killed process leaves them, padding and all.
 */

import assert from "node:assert/strict";
import {
  CorruptLogError,
  preallocationBytesMax,
  preallocationBytesMin,
  SegmentLogStore,
} from "../../lib/storage/segment_log_store.ts";
import { encodeEntryRecords } from "../../lib/storage/entry_records.ts";
import { closedLogSegment, makeEntries, normalize, segmentNames, withTempDir } from "./_helpers.ts";
import { Prng } from "../../lib/sim/prng.ts";

const pageBytes = 4096;
/** Size of the record of an entry of 100 data bytes. */
const recordBytes = 24 + 1 + 100;

/** Copies the files of `source` into a new directory `target`, as they are now. */
function crashCopy(source: string, target: string): void {
  Deno.mkdirSync(target);
  for (const entry of Deno.readDirSync(source)) {
    if (entry.isFile) Deno.copyFileSync(`${source}/${entry.name}`, `${target}/${entry.name}`);
  }
}

function fileSize(path: string): number {
  return Deno.statSync(path).size;
}

function allZero(bytes: Uint8Array): boolean {
  return bytes.every((byte) => byte === 0);
}

/** A replica with entries 1-5 synced, then 6-10 synced by a second flush; crashed into `crashed`. */
async function twoFlushes(dir: string): Promise<{ crashed: string; segment: string }> {
  const store = await SegmentLogStore.open(`${dir}/live`);
  store.append(makeEntries(1, 5, 1));
  await store.sync();
  store.append(makeEntries(6, 5, 1));
  await store.sync();
  crashCopy(`${dir}/live`, `${dir}/crashed`);
  await store.close();
  const [name] = segmentNames(`${dir}/crashed`);
  return { crashed: `${dir}/crashed`, segment: `${dir}/crashed/${name}` };
}

Deno.test("SegmentLogStore preallocates the active segment with zeros and trims it at a clean close", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir);
    store.append(makeEntries(1, 10, 1));
    await store.sync();
    const [name] = segmentNames(dir);
    const path = `${dir}/${name}`;
    assert.equal(fileSize(path), preallocationBytesMin);
    const bytes = Deno.readFileSync(path);
    assert.equal(bytes[0], 0x80, "a v2 record");
    assert.ok(allZero(bytes.subarray(10 * recordBytes)), "padding is zeros");
    // The chunk doubles with the file, up to preallocationBytesMax, always in whole pages.
    const sizes: number[] = [];
    for (let index = 11; index <= 5000; index += 100) {
      store.append(makeEntries(index, 100, 1));
      await store.sync();
      sizes.push(fileSize(path));
    }
    assert.ok(sizes.every((size) => size % pageBytes === 0));
    assert.ok(sizes.every((size, position) => position === 0 || size >= sizes[position - 1]));
    const steps = sizes.slice(1).map((size, position) => size - sizes[position]).filter(Boolean);
    assert.ok(steps.length > 0 && steps.every((step) => step <= preallocationBytesMax), `${steps}`);
    assert.ok(fileSize(path) - 5010 * recordBytes >= preallocationBytesMax / 4);
    await store.close();
    assert.equal(fileSize(path), 5010 * recordBytes);
    const reopened = await SegmentLogStore.open(dir);
    assert.equal(reopened.lastIndex(), 5010);
    await reopened.close();
  });
});

Deno.test("SegmentLogStore trims a sealed segment to its records and keeps only the active one padded", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, { segmentBytesMax: 1024, cacheBytesMax: 0 });
    store.append(makeEntries(1, 30, 1));
    await store.sync();
    const names = segmentNames(dir);
    assert.equal(names.length, 4);
    for (const name of names.slice(0, -1)) {
      assert.equal(fileSize(`${dir}/${name}`), 8 * recordBytes);
    }
    // The active segment is padded up to segmentBytesMax rounded to a page, no further.
    assert.equal(fileSize(`${dir}/${names[3]}`), pageBytes);
    assert.deepEqual(normalize(store.entries(1, 31)), normalize(makeEntries(1, 30, 1)));
    crashCopy(dir, `${dir}.crashed`);
    await store.close();
    assert.equal(fileSize(`${dir}/${names[3]}`), 6 * recordBytes);
    try {
      const crashed = await SegmentLogStore.open(`${dir}.crashed`, { segmentBytesMax: 1024 });
      assert.equal(crashed.lastIndex(), 30);
      await crashed.close();
    } finally {
      await Deno.remove(`${dir}.crashed`, { recursive: true });
    }
  });
});

Deno.test("SegmentLogStore keeps the zero padding of a crashed segment and appends over it", async () => {
  await withTempDir(async (dir) => {
    const { crashed, segment } = await twoFlushes(dir);
    const padded = fileSize(segment);
    assert.equal(padded % pageBytes, 0);
    const store = await SegmentLogStore.open(crashed);
    assert.equal(store.lastIndex(), 10);
    assert.equal(fileSize(segment), padded, "padding kept, not truncated");
    store.append(makeEntries(11, 5, 2));
    await store.sync();
    crashCopy(crashed, `${dir}/again`);
    await store.close();
    const again = await SegmentLogStore.open(`${dir}/again`);
    assert.deepEqual(
      normalize(again.entries(1, 16)),
      normalize([...makeEntries(1, 10, 1), ...makeEntries(11, 5, 2)]),
    );
    await again.close();
  });
});

Deno.test("SegmentLogStore cuts a hole in the unsynced region followed by valid records, without reporting it", async () => {
  await withTempDir(async (dir) => {
    for (const holeAt of [5, 7]) {
      const { crashed, segment } = await twoFlushes(`${dir}`);
      // Entries 6-10 went out in one flush after 1-5 were durable: after a
      // crash during it, any of their pages may be missing (zeros) while a
      // later one is on disk. Their stamps say only 1-5 were durable.
      const bytes = Deno.readFileSync(segment);
      bytes.fill(0, holeAt * recordBytes, (holeAt + 1) * recordBytes);
      Deno.writeFileSync(segment, bytes);
      const store = await SegmentLogStore.open(crashed);
      assert.equal(store.lastIndex(), holeAt, `hole at entry ${holeAt + 1}`);
      // Cut for good: no record of the torn flush can reappear behind new ones.
      assert.equal(fileSize(segment), holeAt * recordBytes);
      store.append(makeEntries(holeAt + 1, 1, 2));
      await store.sync();
      await store.close();
      const reopened = await SegmentLogStore.open(crashed);
      assert.equal(reopened.lastIndex(), holeAt + 1);
      assert.deepEqual(
        normalize(reopened.entries(1, holeAt + 2)),
        normalize([...makeEntries(1, holeAt, 1), ...makeEntries(holeAt + 1, 1, 2)]),
      );
      await reopened.close();
      await Deno.remove(`${dir}/live`, { recursive: true });
      await Deno.remove(crashed, { recursive: true });
    }
  });
});

Deno.test("SegmentLogStore reports damage to a durable record that a later flush's records vouch for", async () => {
  await withTempDir(async (dir) => {
    const { crashed, segment } = await twoFlushes(dir);
    const original = Deno.readFileSync(segment);
    for (const damage of ["flip", "zeros"] as const) {
      const bytes = new Uint8Array(original);
      if (damage === "flip") bytes[2 * recordBytes + 40] ^= 0x10;
      else bytes.fill(0, 2 * recordBytes, 3 * recordBytes);
      Deno.writeFileSync(segment, bytes);
      await assert.rejects(SegmentLogStore.open(crashed), (error: unknown) => {
        assert.ok(error instanceof CorruptLogError, `${damage}: ${error}`);
        assert.equal(error.offset, 2 * recordBytes);
        assert.match(error.message, /followed by valid records/);
        return true;
      });
    }
  });
});

Deno.test("SegmentLogStore reports damage anywhere in a cleanly closed segment, even within one flush", async () => {
  await withTempDir(async (dir) => {
    const path = await closedLogSegment(dir, 10);
    const name = path.slice(dir.length + 1);
    const bytes = Deno.readFileSync(`${dir}/${name}`);
    assert.equal(bytes.length, 10 * recordBytes, "trimmed at close");
    bytes.fill(0, 3 * recordBytes, 4 * recordBytes);
    Deno.writeFileSync(`${dir}/${name}`, bytes);
    await assert.rejects(SegmentLogStore.open(dir), /followed by valid records/);
  });
});

Deno.test("SegmentLogStore keeps synced records across a crash after truncating a padded segment, and cuts a torn write after it", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(`${dir}/live`, { cacheBytesMax: 0 });
    store.append(makeEntries(1, 10, 1));
    await store.sync();
    store.append(makeEntries(6, 2, 2));
    await store.sync();
    crashCopy(`${dir}/live`, `${dir}/crashed`);
    await store.close();
    const expected = [...makeEntries(1, 5, 1), ...makeEntries(6, 2, 2)];
    crashCopy(`${dir}/crashed`, `${dir}/torn`);
    const reopened = await SegmentLogStore.open(`${dir}/crashed`);
    assert.equal(reopened.lastIndex(), 7, "no record of the removed suffix came back");
    assert.deepEqual(normalize(reopened.entries(1, 8)), normalize(expected));
    await reopened.close();
    // The records written after the truncation vouch only for what was
    // durable below it: a hole in their flush is a torn write, not damage.
    const [name] = segmentNames(`${dir}/torn`);
    const bytes = Deno.readFileSync(`${dir}/torn/${name}`);
    bytes.fill(0, 5 * recordBytes, 6 * recordBytes);
    Deno.writeFileSync(`${dir}/torn/${name}`, bytes);
    const torn = await SegmentLogStore.open(`${dir}/torn`);
    assert.equal(torn.lastIndex(), 5);
    await torn.close();
  });
});

Deno.test("SegmentLogStore reads a segment of the first format and continues in a new segment", async () => {
  await withTempDir(async (dir) => {
    // The first format is the one entry runs still travel in.
    const legacy = encodeEntryRecords(makeEntries(1, 10, 1));
    const legacyName = "00000000000000000001.log";
    Deno.writeFileSync(`${dir}/${legacyName}`, legacy);
    const store = await SegmentLogStore.open(dir, { cacheBytesMax: 0 });
    assert.equal(store.lastIndex(), 10);
    assert.deepEqual(normalize(store.entries(1, 11)), normalize(makeEntries(1, 10, 1)));
    store.append(makeEntries(11, 5, 2));
    await store.sync();
    await store.close();
    assert.deepEqual(segmentNames(dir), [legacyName, "00000000000000000011.log"]);
    assert.deepEqual(Deno.readFileSync(`${dir}/${legacyName}`), legacy, "never rewritten");
    assert.equal(Deno.readFileSync(`${dir}/00000000000000000011.log`)[0], 0x80);
    const reopened = await SegmentLogStore.open(dir, { cacheBytesMax: 0 });
    assert.deepEqual(
      normalize(reopened.entries(1, 16)),
      normalize([...makeEntries(1, 10, 1), ...makeEntries(11, 5, 2)]),
    );
    // A conflicting append reaching back into it truncates it and moves on.
    reopened.append(makeEntries(8, 2, 3));
    await reopened.sync();
    await reopened.close();
    const truncated = await SegmentLogStore.open(dir, { cacheBytesMax: 0 });
    assert.deepEqual(
      normalize(truncated.entries(1, 10)),
      normalize([...makeEntries(1, 7, 1), ...makeEntries(8, 2, 3)]),
    );
    await truncated.close();
  });
});

Deno.test("SegmentLogStore keeps the first format's open rules: a torn tail is cut, earlier damage reported", async () => {
  await withTempDir(async (dir) => {
    const legacy = encodeEntryRecords(makeEntries(1, 10, 1));
    const name = "00000000000000000001.log";
    Deno.mkdirSync(`${dir}/torn`);
    Deno.writeFileSync(`${dir}/torn/${name}`, legacy.subarray(0, 9 * recordBytes + 30));
    const torn = await SegmentLogStore.open(`${dir}/torn`);
    assert.equal(torn.lastIndex(), 9);
    await torn.close();
    assert.equal(fileSize(`${dir}/torn/${name}`), 9 * recordBytes);

    Deno.mkdirSync(`${dir}/damaged`);
    const damaged = new Uint8Array(legacy);
    damaged[4 * recordBytes + 30] ^= 0x01;
    Deno.writeFileSync(`${dir}/damaged/${name}`, damaged);
    await assert.rejects(SegmentLogStore.open(`${dir}/damaged`), CorruptLogError);
  });
});

Deno.test("SegmentLogStore stamps records after a truncation made during a flush with what remains durable", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(`${dir}/live`);
    store.append(makeEntries(1, 10, 1));
    await store.sync();
    store.append(makeEntries(11, 2, 1));
    const inFlight = store.sync();
    // Let the flush start; its fdatasync waits for the end of the event-loop turn.
    for (let turn = 0; turn < 10; turn++) await Promise.resolve();
    assert.equal(store.syncedIndex(), 10, "the flush is still running");
    store.append(makeEntries(6, 2, 2));
    await inFlight;
    store.append(makeEntries(8, 1, 2));
    await store.sync();
    crashCopy(`${dir}/live`, `${dir}/crashed`);
    await store.close();
    const [name] = segmentNames(`${dir}/crashed`);
    const bytes = Deno.readFileSync(`${dir}/crashed/${name}`);
    bytes.fill(0, 5 * recordBytes, 6 * recordBytes);
    Deno.writeFileSync(`${dir}/crashed/${name}`, bytes);
    const torn = await SegmentLogStore.open(`${dir}/crashed`);
    assert.equal(torn.lastIndex(), 5);
    await torn.close();
  });
});

Deno.test("SegmentLogStore extends the active segment ahead in a job of its own, after the sync that came near its end", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(`${dir}/live`);
    store.append(makeEntries(1, 1, 1));
    await store.sync();
    const [name] = segmentNames(`${dir}/live`);
    const path = `${dir}/live/${name}`;
    assert.equal(fileSize(path), preallocationBytesMin);
    const before = store.fsyncCount;
    // 25 records: within a quarter chunk of the first page's end, still inside it.
    store.append(makeEntries(2, 24, 1));
    await store.sync();
    assert.equal(store.fsyncCount - before, 1, "the sync waited for its records' fdatasync only");
    store.append(makeEntries(26, 1, 1));
    await store.sync();
    assert.equal(store.fsyncCount - before, 3, "the extension's fdatasync, then the next flush's");
    assert.equal(fileSize(path), 2 * preallocationBytesMin);
    // Past the space: the flush extends inline, within its own fdatasync.
    store.append(makeEntries(27, 76, 1));
    await store.sync();
    assert.equal(store.fsyncCount - before, 4);
    assert.ok(fileSize(path) >= 102 * recordBytes + preallocationBytesMin / 2);
    assert.ok(allZero(Deno.readFileSync(path).subarray(102 * recordBytes)));
    crashCopy(`${dir}/live`, `${dir}/crashed`);
    await store.close();
    const crashed = await SegmentLogStore.open(`${dir}/crashed`);
    assert.deepEqual(normalize(crashed.entries(1, 103)), normalize(makeEntries(1, 102, 1)));
    await crashed.close();
  });
});

Deno.test("SegmentLogStore keeps every record through pipelined syncs, truncations and extensions ahead", async () => {
  await withTempDir(async (dir) => {
    for (const seed of [1, 2, 3]) {
      const prng = new Prng(seed); // deterministic: a failure reproduces
      const next = () => prng.next();
      const options = { segmentBytesMax: 48 * 1024, cacheBytesMax: 0 };
      const store = await SegmentLogStore.open(`${dir}/${seed}`, options);
      let model: ReturnType<typeof makeEntries> = [];
      let term = 1;
      const syncs: Promise<void>[] = [];
      for (let step = 0; step < 1500; step++) {
        const choice = next();
        if (choice < 0.75 || model.length === 0) {
          const entries = makeEntries(
            model.length + 1,
            1 + Math.floor(next() * 5),
            term,
            40 + Math.floor(next() * 700),
          );
          store.append(entries);
          model = [...model, ...entries];
        } else if (choice < 0.8) {
          const at = Math.max(1, model.length - Math.floor(next() * 20));
          const entries = makeEntries(
            at,
            1 + Math.floor(next() * 3),
            ++term,
            40 + Math.floor(next() * 300),
          );
          store.append(entries);
          model = [...model.slice(0, at - 1), ...entries];
        } else {
          syncs.push(store.sync());
          if (next() < 0.3) await Promise.all(syncs.splice(0));
        }
      }
      await Promise.all([...syncs, store.sync()]);
      assert.deepEqual(
        normalize(store.entries(1, model.length + 1)),
        normalize(model),
        `seed ${seed}`,
      );
      crashCopy(`${dir}/${seed}`, `${dir}/${seed}.crashed`);
      await store.close();
      for (const copy of [`${dir}/${seed}`, `${dir}/${seed}.crashed`]) {
        const reopened = await SegmentLogStore.open(copy, options);
        assert.deepEqual(
          normalize(reopened.entries(1, model.length + 1)),
          normalize(model),
          `${copy}`,
        );
        await reopened.close();
      }
    }
  });
});
