import assert from "node:assert/strict";
import {
  cacheBytesMaxDefault,
  CorruptLogError,
  LogClosedError,
  recordBytesMax,
  RecordTooLargeError,
  segmentBytesMaxDefault,
  segmentBytesMaxMin,
  SegmentLogStore,
} from "../../lib/storage/segment_log_store.ts";
import { EntryType, type Snapshot } from "../../lib/storage/types.ts";
import {
  closedLogSegment,
  dataFor,
  makeEntries,
  normalize,
  segmentNames,
  withTempDir,
} from "./_helpers.ts";

const smallSegments = { segmentBytesMax: 1024 };

function snapshotAt(index: number, term: number): Snapshot {
  return {
    index,
    term,
    conf: { voters: [1, 2, 3], learners: [4] },
    data: new TextEncoder().encode(`state at ${index}`),
  };
}

Deno.test("SegmentLogStore round-trips appended entries through sync and reopen", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir);
    const entries = [...makeEntries(1, 50, 1, 10), ...makeEntries(51, 50, 2, 3000)];
    store.append(entries.slice(0, 30));
    store.append(entries.slice(30));
    assert.equal(store.lastIndex(), 100);
    assert.equal(store.syncedIndex(), 0);
    assert.deepEqual(normalize(store.entries(1, 101)), normalize(entries));
    const synced = store.sync();
    assert.equal(store.syncedIndex(), 0);
    await synced;
    assert.equal(store.syncedIndex(), 100);
    await store.close();

    const reopened = await SegmentLogStore.open(dir);
    assert.equal(reopened.firstIndex(), 1);
    assert.equal(reopened.lastIndex(), 100);
    assert.equal(reopened.syncedIndex(), 100);
    assert.equal(reopened.term(50), 1);
    assert.equal(reopened.term(51), 2);
    assert.equal(reopened.term(101), undefined);
    assert.deepEqual(normalize(reopened.entries(1, 101)), normalize(entries));
    await reopened.close();
  });
});

Deno.test("SegmentLogStore opens an empty directory as an empty log", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(`${dir}/replica`);
    assert.equal(store.firstIndex(), 1);
    assert.equal(store.lastIndex(), 0);
    assert.deepEqual(store.entries(1, 1), []);
    assert.deepEqual(store.hardState(), { term: 0, vote: 0, commit: 0 });
    assert.equal(store.snapshot(), undefined);
    await store.sync();
    await store.close();
  });
});

Deno.test("SegmentLogStore shares one fsync among concurrent syncs (group commit)", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir);
    store.append(makeEntries(1, 1, 1));
    await store.sync();
    const before = store.fsyncCount;
    const syncs: Promise<void>[] = [];
    for (let index = 2; index <= 101; index++) {
      store.append(makeEntries(index, 1, 1));
      syncs.push(store.sync());
    }
    await Promise.all(syncs);
    assert.equal(store.fsyncCount - before, 1);
    assert.equal(store.syncedIndex(), 101);
    await store.close();
  });
});

Deno.test("SegmentLogStore accumulates appends made during an fsync into the next one", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir);
    store.append(makeEntries(1, 1, 1));
    await store.sync();
    const before = store.fsyncCount;
    store.append(makeEntries(2, 1, 1));
    const first = store.sync();
    // Let the first flush start, then append while it is running.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const later: Promise<void>[] = [];
    for (let index = 3; index <= 52; index++) {
      store.append(makeEntries(index, 1, 1));
      later.push(store.sync());
    }
    await first;
    assert.ok(store.syncedIndex() >= 2);
    await Promise.all(later);
    assert.equal(store.syncedIndex(), 52);
    assert.ok(store.fsyncCount - before <= 2, `fsyncs: ${store.fsyncCount - before}`);
    await store.close();
  });
});

Deno.test("SegmentLogStore resolves sync at once when nothing is pending", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir);
    await store.sync();
    assert.equal(store.fsyncCount, 0);
    await store.close();
  });
});

Deno.test("SegmentLogStore truncates an unsynced conflicting suffix", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir);
    store.append(makeEntries(1, 10, 1));
    store.append(makeEntries(6, 3, 2));
    assert.equal(store.lastIndex(), 8);
    await store.sync();
    await store.close();
    const reopened = await SegmentLogStore.open(dir);
    assert.equal(reopened.lastIndex(), 8);
    assert.deepEqual(
      normalize(reopened.entries(1, 9)),
      normalize([...makeEntries(1, 5, 1), ...makeEntries(6, 3, 2)]),
    );
    await reopened.close();
  });
});

Deno.test("SegmentLogStore truncates a synced conflicting suffix", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, { cacheBytesMax: 0 });
    store.append(makeEntries(1, 10, 1));
    await store.sync();
    store.append(makeEntries(4, 2, 2));
    assert.equal(store.syncedIndex(), 3);
    assert.equal(store.lastIndex(), 5);
    const expected = [...makeEntries(1, 3, 1), ...makeEntries(4, 2, 2)];
    assert.deepEqual(normalize(store.entries(1, 6)), normalize(expected));
    await store.sync();
    assert.equal(store.syncedIndex(), 5);
    assert.deepEqual(normalize(store.entries(1, 6)), normalize(expected));
    await store.close();
    const reopened = await SegmentLogStore.open(dir);
    assert.equal(reopened.lastIndex(), 5);
    assert.deepEqual(normalize(reopened.entries(1, 6)), normalize(expected));
    await reopened.close();
  });
});

Deno.test("SegmentLogStore truncates across segments and deletes later ones", async () => {
  for (const syncFirst of [true, false]) {
    await withTempDir(async (dir) => {
      const store = await SegmentLogStore.open(dir, { ...smallSegments, cacheBytesMax: 0 });
      store.append(makeEntries(1, 100, 1));
      if (syncFirst) await store.sync();
      const segmentsBefore = store.segmentCount;
      store.append(makeEntries(15, 3, 2));
      assert.ok(store.segmentCount < segmentsBefore);
      await store.sync();
      const expected = [...makeEntries(1, 14, 1), ...makeEntries(15, 3, 2)];
      assert.deepEqual(normalize(store.entries(1, 18)), normalize(expected));
      assert.equal(segmentNames(dir).length, store.segmentCount);
      await store.close();
      const reopened = await SegmentLogStore.open(dir, smallSegments);
      assert.equal(reopened.lastIndex(), 17);
      assert.deepEqual(normalize(reopened.entries(1, 18)), normalize(expected));
      await reopened.close();
    });
  }
});

Deno.test("SegmentLogStore truncates while a sync is in flight", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, { ...smallSegments, cacheBytesMax: 0 });
    store.append(makeEntries(1, 40, 1));
    const first = store.sync();
    store.append(makeEntries(20, 5, 2));
    const second = store.sync();
    await Promise.all([first, second]);
    assert.equal(store.syncedIndex(), 24);
    const expected = [...makeEntries(1, 19, 1), ...makeEntries(20, 5, 2)];
    assert.deepEqual(normalize(store.entries(1, 25)), normalize(expected));
    await store.close();
    const reopened = await SegmentLogStore.open(dir);
    assert.deepEqual(normalize(reopened.entries(1, 25)), normalize(expected));
    await reopened.close();
  });
});

Deno.test("SegmentLogStore truncates a torn final record at every byte offset on open", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(`${dir}/original`);
    store.append(makeEntries(1, 5, 1, 40));
    await store.sync();
    await store.close();
    const [name] = segmentNames(`${dir}/original`);
    const bytes = await Deno.readFile(`${dir}/original/${name}`);
    const recordBytes = 24 + 1 + 40;
    const lastStart = bytes.length - recordBytes;
    for (let cut = lastStart; cut < bytes.length; cut++) {
      const replica = `${dir}/cut${cut}`;
      await Deno.mkdir(replica);
      await Deno.writeFile(`${replica}/${name}`, bytes.subarray(0, cut));
      const reopened = await SegmentLogStore.open(replica);
      assert.equal(reopened.lastIndex(), 4, `cut at ${cut}`);
      assert.deepEqual(normalize(reopened.entries(1, 5)), normalize(makeEntries(1, 4, 1, 40)));
      assert.equal((await Deno.stat(`${replica}/${name}`)).size, lastStart);
      reopened.append(makeEntries(5, 1, 2, 40));
      await reopened.sync();
      await reopened.close();
      const again = await SegmentLogStore.open(replica);
      assert.equal(again.term(5), 2);
      await again.close();
    }
  });
});

Deno.test("SegmentLogStore truncates a zero-filled or garbage tail on open", async () => {
  await withTempDir(async (dir) => {
    const path = await closedLogSegment(dir, 5);
    const name = path.slice(dir.length + 1);
    const file = await Deno.open(`${dir}/${name}`, { append: true });
    await file.write(new Uint8Array(4096));
    await file.write(new Uint8Array([0, 0, 1, 0, 9, 9, 9]));
    file.close();
    const reopened = await SegmentLogStore.open(dir);
    assert.equal(reopened.lastIndex(), 5);
    await reopened.close();
  });
});

Deno.test("SegmentLogStore reports a corrupted CRC before the last record as CorruptLogError", async () => {
  await withTempDir(async (dir) => {
    const path = await closedLogSegment(dir, 10);
    const name = path.slice(dir.length + 1);
    const bytes = await Deno.readFile(`${dir}/${name}`);
    const recordBytes = 24 + 1 + 100;
    bytes[4 * recordBytes + 30] ^= 0x01;
    await Deno.writeFile(`${dir}/${name}`, bytes);
    await assert.rejects(SegmentLogStore.open(dir), (error: unknown) => {
      assert.ok(error instanceof CorruptLogError);
      assert.equal(error.name, "CorruptLogError");
      assert.equal(error.offset, 4 * recordBytes);
      assert.match(
        error.message,
        new RegExp(`${name}' at offset ${4 * recordBytes}: crc mismatch`),
      );
      return true;
    });
  });
});

Deno.test("SegmentLogStore reports a corrupted length field followed by valid records", async () => {
  await withTempDir(async (dir) => {
    const path = await closedLogSegment(dir, 10);
    const name = path.slice(dir.length + 1);
    const bytes = await Deno.readFile(`${dir}/${name}`);
    bytes[3 * 125] = 0x7f; // Length becomes huge: it would run past the end of the file.
    await Deno.writeFile(`${dir}/${name}`, bytes);
    await assert.rejects(SegmentLogStore.open(dir), CorruptLogError);
  });
});

Deno.test("SegmentLogStore reports a damaged tail of a non-last segment", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, smallSegments);
    store.append(makeEntries(1, 30, 1));
    await store.sync();
    await store.close();
    const [first] = segmentNames(dir);
    const bytes = await Deno.readFile(`${dir}/${first}`);
    await Deno.writeFile(`${dir}/${first}`, bytes.subarray(0, bytes.length - 3));
    await assert.rejects(SegmentLogStore.open(dir, smallSegments), CorruptLogError);
  });
});

Deno.test("SegmentLogStore reports a missing middle segment", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, smallSegments);
    store.append(makeEntries(1, 40, 1));
    await store.sync();
    await store.close();
    const names = segmentNames(dir);
    assert.ok(names.length >= 3);
    await Deno.remove(`${dir}/${names[1]}`);
    await assert.rejects(SegmentLogStore.open(dir, smallSegments), CorruptLogError);
  });
});

Deno.test("SegmentLogStore rolls segments and reads across them from disk", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, { ...smallSegments, cacheBytesMax: 0 });
    const entries = makeEntries(1, 100, 1);
    for (let index = 0; index < 100; index += 10) store.append(entries.slice(index, index + 10));
    await store.sync();
    // Eight 125-byte records fit under 1024 bytes.
    assert.equal(store.segmentCount, 13);
    const names = segmentNames(dir);
    assert.equal(names[0], "00000000000000000001.log");
    assert.equal(names[1], "00000000000000000009.log");
    for (const name of names.slice(0, -1)) {
      assert.equal((await Deno.stat(`${dir}/${name}`)).size, 1000);
    }
    assert.equal(store.cachedBytes, 0);
    assert.deepEqual(normalize(store.entries(1, 101)), normalize(entries));
    assert.deepEqual(normalize(store.entries(7, 19)), normalize(entries.slice(6, 18)));
    await store.close();
    const reopened = await SegmentLogStore.open(dir, smallSegments);
    assert.deepEqual(normalize(reopened.entries(5, 101)), normalize(entries.slice(4)));
    await reopened.close();
  });
});

Deno.test("SegmentLogStore stops reading once maxBytes would be exceeded", async () => {
  await withTempDir(async (dir) => {
    for (const cacheBytesMax of [0, cacheBytesMaxDefault]) {
      const store = await SegmentLogStore.open(`${dir}/${cacheBytesMax}`, { cacheBytesMax });
      store.append(makeEntries(1, 20, 1));
      await store.sync();
      assert.equal(store.entries(1, 21, 250).length, 2);
      assert.equal(store.entries(1, 21, 200).length, 2);
      assert.equal(store.entries(1, 21, 199).length, 1);
      assert.equal(store.entries(3, 21, 0).length, 1);
      assert.equal(store.entries(1, 21).length, 20);
      assert.throws(() => store.entries(0, 5), RangeError);
      assert.throws(() => store.entries(1, 22), RangeError);
      await store.close();
    }
  });
});

Deno.test("SegmentLogStore keeps the entry cache within cacheBytesMax once entries are synced", async () => {
  await withTempDir(async (dir) => {
    const cacheBytesMax = 10 * 1024;
    const store = await SegmentLogStore.open(dir, { cacheBytesMax });
    store.append(makeEntries(1, 100, 1, 1000));
    // Unsynced entries stay cached: the disk cannot serve them yet.
    assert.ok(store.cachedBytes > cacheBytesMax);
    assert.equal(store.entries(1, 101).length, 100);
    await store.sync();
    assert.ok(store.cachedBytes <= cacheBytesMax);
    assert.ok(store.cachedBytes > 0);
    assert.deepEqual(normalize(store.entries(1, 101)), normalize(makeEntries(1, 100, 1, 1000)));
    await store.close();
  });
});

Deno.test("SegmentLogStore compacts whole segments below a snapshot and keeps it across reopen", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, { ...smallSegments, cacheBytesMax: 0 });
    store.append(makeEntries(1, 60, 1));
    store.append(makeEntries(61, 40, 2));
    await store.sync();
    const filesBefore = segmentNames(dir).length;
    await store.compact(snapshotAt(50, 1));
    // The segment holding entry 50 starts at 49: it is kept whole.
    assert.equal(segmentNames(dir)[0], "00000000000000000049.log");
    assert.equal(store.firstIndex(), 49);
    assert.equal(store.lastIndex(), 100);
    assert.equal(store.term(50), 1);
    assert.equal(store.term(49), 1);
    assert.equal(store.term(48), undefined);
    assert.throws(() => store.entries(48, 60), RangeError);
    assert.ok(segmentNames(dir).length < filesBefore);
    await store.close();
    const reopened = await SegmentLogStore.open(dir, smallSegments);
    assert.equal(reopened.firstIndex(), 49);
    assert.equal(reopened.lastIndex(), 100);
    assert.deepEqual(reopened.snapshot(), snapshotAt(50, 1));
    assert.deepEqual(
      normalize(reopened.entries(49, 101)),
      normalize([...makeEntries(49, 12, 1), ...makeEntries(61, 40, 2)]),
    );
    await reopened.close();
  });
});

Deno.test("SegmentLogStore compacts the whole log and keeps appending after it", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, smallSegments);
    store.append(makeEntries(1, 30, 1));
    await store.sync();
    await store.compact(snapshotAt(30, 1));
    // Only the active segment is left, kept whole although the snapshot covers it.
    assert.equal(segmentNames(dir).length, 1);
    const active = Number(segmentNames(dir)[0].slice(0, 20));
    assert.equal(store.firstIndex(), active);
    assert.equal(store.lastIndex(), 30);
    assert.deepEqual(store.entries(31, 31), []);
    store.append(makeEntries(31, 5, 2));
    await store.sync();
    await store.close();
    const reopened = await SegmentLogStore.open(dir, smallSegments);
    assert.equal(reopened.firstIndex(), active);
    assert.deepEqual(normalize(reopened.entries(31, 36)), normalize(makeEntries(31, 5, 2)));
    await reopened.close();
  });
});

Deno.test("SegmentLogStore replaces its log by an applied snapshot across reopen", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, smallSegments);
    store.append(makeEntries(1, 40, 1));
    await store.sync();
    await store.applySnapshot(snapshotAt(100, 3));
    assert.equal(store.firstIndex(), 101);
    assert.equal(store.lastIndex(), 100);
    assert.equal(store.syncedIndex(), 100);
    assert.equal(store.term(100), 3);
    assert.deepEqual(segmentNames(dir), []);
    store.append(makeEntries(101, 10, 3));
    await store.sync();
    await store.close();
    const reopened = await SegmentLogStore.open(dir, smallSegments);
    assert.equal(reopened.firstIndex(), 101);
    assert.equal(reopened.lastIndex(), 110);
    assert.deepEqual(reopened.snapshot(), snapshotAt(100, 3));
    assert.deepEqual(normalize(reopened.entries(101, 111)), normalize(makeEntries(101, 10, 3)));
    await reopened.close();
  });
});

Deno.test("SegmentLogStore applies a snapshot over unsynced entries and a pending sync", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, smallSegments);
    store.append(makeEntries(1, 40, 1));
    const pending = store.sync();
    store.append(makeEntries(41, 5, 1));
    const applied = store.applySnapshot(snapshotAt(8, 1));
    store.append(makeEntries(9, 3, 2));
    await Promise.all([pending, applied, store.sync()]);
    assert.equal(store.lastIndex(), 11);
    await store.close();
    const reopened = await SegmentLogStore.open(dir, smallSegments);
    assert.equal(reopened.firstIndex(), 9);
    assert.deepEqual(normalize(reopened.entries(9, 12)), normalize(makeEntries(9, 3, 2)));
    await reopened.close();
  });
});

Deno.test("SegmentLogStore discards stale segments left by a crash inside applySnapshot", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, smallSegments);
    store.append(makeEntries(1, 40, 1));
    await store.sync();
    await store.close();
    const saved = new Map(
      segmentNames(dir).map((name) => [name, Deno.readFileSync(`${dir}/${name}`)]),
    );
    const applying = await SegmentLogStore.open(dir, smallSegments);
    await applying.applySnapshot(snapshotAt(20, 5));
    await applying.close();
    // Simulate the crash: the snapshot is durable but the deletions are not.
    for (const [name, bytes] of saved) Deno.writeFileSync(`${dir}/${name}`, bytes);
    const reopened = await SegmentLogStore.open(dir, smallSegments);
    assert.equal(reopened.firstIndex(), 21);
    assert.equal(reopened.lastIndex(), 20);
    assert.deepEqual(segmentNames(dir), []);
    await reopened.close();
  });
});

Deno.test("SegmentLogStore persists the hard state and skips the fsync for commit-only changes", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir);
    store.setHardState({ term: 3, vote: 2, commit: 0 });
    await store.sync();
    const before = store.fsyncCount;
    store.setHardState({ term: 3, vote: 2, commit: 7 });
    assert.deepEqual(store.hardState(), { term: 3, vote: 2, commit: 7 });
    await store.sync();
    assert.equal(store.fsyncCount, before);
    store.append(makeEntries(1, 9, 4));
    store.setHardState({ term: 4, vote: 0, commit: 9 });
    await store.sync();
    await store.close();
    const reopened = await SegmentLogStore.open(dir);
    assert.deepEqual(reopened.hardState(), { term: 4, vote: 0, commit: 9 });
    await reopened.close();
  });
});

Deno.test("SegmentLogStore writes a new replica's bootstrap of term 1 as one segment and no hard-state file", async () => {
  await withTempDir(async (dir) => {
    const directory = `${dir}/topics/events.1`;
    const store = await SegmentLogStore.open(directory);
    store.append(makeEntries(1, 1, 1));
    store.setHardState({ term: 1, vote: 2, commit: 1 });
    await store.sync();
    // The segment's fdatasync, the directory's fsync and its parent's (the
    // store created the directory); no temp file, rename or hard-state fsyncs.
    assert.equal(store.fsyncCount, 3);
    await store.close();
    const names = [...Deno.readDirSync(directory)].map((entry) => entry.name);
    assert.deepEqual(names, ["00000000000000000001.log"]);
    const reopened = await SegmentLogStore.open(directory);
    // The term and the bootstrap's commit come back from the log; the vote nobody asks for does not.
    assert.deepEqual(reopened.hardState(), { term: 1, vote: 0, commit: 1 });
    assert.equal(reopened.lastIndex(), 1);
    reopened.setHardState({ term: 2, vote: 3, commit: 1 });
    await reopened.sync();
    await reopened.close();
    const again = await SegmentLogStore.open(directory);
    assert.deepEqual(again.hardState(), { term: 2, vote: 3, commit: 1 });
    await again.close();
  });
});

Deno.test("SegmentLogStore writes a commit index that passes a conf change, and no other commit-only change", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir);
    store.append(makeEntries(1, 6, 2).map((entry) => ({ ...entry, type: EntryType.Normal })));
    store.setHardState({ term: 2, vote: 1, commit: 0 });
    await store.sync();
    const before = store.fsyncCount;
    store.setHardState({ term: 2, vote: 1, commit: 3 });
    await store.sync();
    assert.equal(store.fsyncCount, before, "a commit past normal entries is a hint");
    store.append([{ term: 2, index: 7, type: EntryType.ConfChange, data: new Uint8Array([1]) }]);
    await store.sync();
    store.setHardState({ term: 2, vote: 1, commit: 7 });
    await store.sync();
    assert.ok(store.fsyncCount > before + 1, "the commit of a conf change is written");
    await store.close();
    const reopened = await SegmentLogStore.open(dir);
    assert.deepEqual(reopened.hardState(), { term: 2, vote: 1, commit: 7 });
    await reopened.close();
  });
});

Deno.test("SegmentLogStore makes a new directory's first hard state durable with its parent entry", async () => {
  await withTempDir(async (dir) => {
    const directory = `${dir}/replica`;
    const store = await SegmentLogStore.open(directory);
    store.setHardState({ term: 3, vote: 1, commit: 0 });
    await store.sync();
    // The temp file's fdatasync, the directory's fsync, then the parent's.
    assert.equal(store.fsyncCount, 3);
    store.append(makeEntries(1, 2, 3));
    await store.sync();
    // No second parent fsync: the segment's fdatasync and the directory's.
    assert.equal(store.fsyncCount, 5);
    await store.close();
    const reopened = await SegmentLogStore.open(directory);
    assert.deepEqual(reopened.hardState(), { term: 3, vote: 1, commit: 0 });
    assert.equal(reopened.lastIndex(), 2);
    await reopened.close();
  });
});

Deno.test("SegmentLogStore rejects an entry over recordBytesMax without changing the log", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir);
    const huge = {
      term: 1,
      index: 2,
      type: EntryType.Normal,
      data: new Uint8Array(recordBytesMax),
    };
    assert.throws(() => store.append([...makeEntries(1, 1, 1), huge]), RecordTooLargeError);
    assert.equal(store.lastIndex(), 0);
    const largest = { ...huge, index: 1, data: new Uint8Array(recordBytesMax - 25) };
    store.append([largest]);
    await store.sync();
    assert.equal(store.entries(1, 2)[0].data.length, recordBytesMax - 25);
    await store.close();
  });
});

Deno.test("SegmentLogStore validates segmentBytesMax and cacheBytesMax", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      SegmentLogStore.open(dir, { segmentBytesMax: segmentBytesMaxMin - 1 }),
      /'segmentBytesMax' must be an integer between 1024 and 4294967295: current value is 1023/,
    );
    await assert.rejects(SegmentLogStore.open(dir, { segmentBytesMax: 2 ** 32 }), RangeError);
    await assert.rejects(SegmentLogStore.open(dir, { cacheBytesMax: -1 }), RangeError);
    assert.equal(segmentBytesMaxDefault, 64 * 1024 * 1024);
    assert.equal(cacheBytesMaxDefault, 32 * 1024 * 1024);
  });
});

Deno.test("SegmentLogStore puts a record larger than segmentBytesMax alone in its segment", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, smallSegments);
    store.append(makeEntries(1, 1, 1, 10));
    store.append(makeEntries(2, 1, 1, 5000));
    store.append(makeEntries(3, 1, 1, 10));
    await store.sync();
    assert.deepEqual(segmentNames(dir), [
      "00000000000000000001.log",
      "00000000000000000002.log",
      "00000000000000000003.log",
    ]);
    await store.close();
  });
});

Deno.test("SegmentLogStore refuses use after close", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir);
    store.append(makeEntries(1, 3, 1));
    await store.close();
    assert.throws(() => store.append(makeEntries(4, 1, 1)), LogClosedError);
    assert.throws(() => store.entries(1, 2), LogClosedError);
    await assert.rejects(store.sync(), LogClosedError);
  });
});

Deno.test("SegmentLogStore checks stored data against the CRC when reading from disk", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, { cacheBytesMax: 0 });
    store.append(makeEntries(1, 3, 1));
    await store.sync();
    const [name] = segmentNames(dir);
    const file = await Deno.open(`${dir}/${name}`, { read: true, write: true });
    await file.seek(125 + 50, Deno.SeekMode.Start);
    await file.write(new Uint8Array([0xff ^ dataFor(2, 1, 100)[25]]));
    file.close();
    assert.throws(() => store.entries(1, 4), CorruptLogError);
    assert.equal(store.entries(1, 2).length, 1);
    await store.close();
  });
});

Deno.test("SegmentLogStore removes temporary files left by an interrupted atomic write", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/hardstate.tmp`, new Uint8Array(7));
    const store = await SegmentLogStore.open(dir);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
    await store.close();
  });
});
