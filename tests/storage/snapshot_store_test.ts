/**
 * Snapshots and compaction in both stores: compaction deletes whole
 * segments below `keepFrom` only, `firstIndex()` is the first entry still
 * held (possibly at or below the snapshot), and a snapshot installed with
 * the leader's retained entries replaces the log as one unit, whatever step
 * a crash interrupts. Also the process-wide resources of `SegmentLogStore`:
 * pooled file descriptors, the incremental byte counter and idle memory.
 */

import assert from "node:assert/strict";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import {
  type InstallStep,
  openSegmentFiles,
  SegmentLogStore,
  setOpenSegmentFilesMax,
  storedBytesTotal,
} from "../../lib/storage/segment_log_store.ts";
import type { LogStore, Snapshot } from "../../lib/storage/types.ts";
import {
  makeEntries,
  normalize,
  segmentNames,
  segmentRecordBytes,
  withTempDir,
} from "./_helpers.ts";

const smallSegments = { segmentBytesMax: 1024 };

function snapshotAt(index: number, term: number): Snapshot {
  return {
    index,
    term,
    conf: { voters: [1, 2, 3], learners: [] },
    data: new TextEncoder().encode(`state at ${index}`),
  };
}

/** The (index, term) pairs a store holds, and its snapshot's index. */
function describe(store: LogStore): { first: number; last: number; snapshot: number } {
  return {
    first: store.firstIndex(),
    last: store.lastIndex(),
    snapshot: store.snapshot()?.index ?? 0,
  };
}

Deno.test("SegmentLogStore compaction keeps every whole segment holding an entry at or above keepFrom", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, { ...smallSegments, cacheBytesMax: 0 });
    store.append(makeEntries(1, 100, 1));
    await store.sync();
    const before = store.segments();
    assert.ok(before.length > 5);
    // keepFrom 30 lies inside some segment: that one and all later ones stay.
    await store.compact(snapshotAt(90, 1), 30);
    const holding30 = before.find((segment) =>
      segment.firstIndex <= 30 && segment.lastIndex >= 30
    )!;
    assert.equal(store.firstIndex(), holding30.firstIndex);
    assert.deepEqual(
      store.segments().map((segment) => segment.firstIndex),
      before.filter((segment) => segment.lastIndex >= 30).map((segment) => segment.firstIndex),
    );
    assert.deepEqual(
      normalize(store.entries(holding30.firstIndex, 101)),
      normalize(makeEntries(holding30.firstIndex, 101 - holding30.firstIndex, 1)),
    );
    assert.equal(store.term(holding30.firstIndex - 1), undefined);
    assert.equal(store.term(90), 1);
    await store.close();
    const reopened = await SegmentLogStore.open(dir, smallSegments);
    assert.equal(reopened.firstIndex(), holding30.firstIndex);
    assert.equal(reopened.snapshot()?.index, 90);
    assert.equal(reopened.lastIndex(), 100);
    await reopened.close();
  });
});

Deno.test("SegmentLogStore compaction never deletes entries after the snapshot, whatever keepFrom says", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, smallSegments);
    store.append(makeEntries(1, 100, 1));
    await store.sync();
    await store.compact(snapshotAt(40, 1), 1_000);
    assert.ok(store.firstIndex() <= 41);
    assert.deepEqual(normalize(store.entries(41, 101)), normalize(makeEntries(41, 60, 1)));
    await store.close();
  });
});

Deno.test("MemoryLogStore compaction drops whole modelled segments below keepFrom only", async () => {
  const store = new MemoryLogStore({ segmentEntries: 10 });
  store.append(makeEntries(1, 45, 1));
  store.syncNow();
  await store.compact(snapshotAt(40, 1), 25);
  assert.equal(store.firstIndex(), 21);
  assert.deepEqual(
    store.segments().map((segment) => [segment.firstIndex, segment.lastIndex]),
    [[21, 30], [31, 40], [41, 45]],
  );
  await store.compact(snapshotAt(42, 1));
  assert.equal(store.firstIndex(), 41);
  assert.equal(store.term(41), 1);
  assert.equal(store.term(42), 1);
  store.crash();
  assert.deepEqual(describe(store), { first: 41, last: 45, snapshot: 42 });
});

Deno.test("SegmentLogStore installs a snapshot with retained entries and keeps them across reopen", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, smallSegments);
    store.append(makeEntries(1, 20, 1));
    store.setHardState({ term: 3, vote: 2, commit: 20 });
    await store.sync();
    const retained = makeEntries(150, 51, 3);
    await store.applySnapshot(snapshotAt(200, 3), retained);
    assert.deepEqual(describe(store), { first: 150, last: 200, snapshot: 200 });
    assert.equal(store.syncedIndex(), 200);
    assert.deepEqual(normalize(store.entries(150, 201)), normalize(retained));
    assert.ok(segmentNames(dir).length > 1, "retained entries span several segments");
    assert.equal(segmentNames(dir)[0], "00000000000000000150.log");
    store.append(makeEntries(201, 5, 3));
    await store.sync();
    await store.close();
    const reopened = await SegmentLogStore.open(dir, smallSegments);
    assert.deepEqual(describe(reopened), { first: 150, last: 205, snapshot: 200 });
    assert.deepEqual(reopened.hardState().term, 3);
    assert.deepEqual(reopened.hardState().vote, 2);
    assert.deepEqual(
      normalize(reopened.entries(150, 206)),
      normalize([...retained, ...makeEntries(201, 5, 3)]),
    );
    await reopened.close();
  });
});

Deno.test("applySnapshot refuses retained entries that do not end at the snapshot", async () => {
  const memory = new MemoryLogStore();
  await assert.rejects(
    async () => await memory.applySnapshot(snapshotAt(10, 2), makeEntries(5, 5, 2)),
    RangeError,
  );
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir);
    await assert.rejects(
      async () => await store.applySnapshot(snapshotAt(10, 2), makeEntries(5, 6, 1)),
      RangeError,
    );
    await store.close();
  });
});

for (const step of ["staged", "committed", "replaced"] as const) {
  Deno.test(`SegmentLogStore crashed at install step '${step}' reopens with the old log or the whole new one`, async () => {
    await withTempDir(async (dir) => {
      let crashAt: InstallStep | undefined = step;
      const onInstallStep = (reached: InstallStep) => {
        if (reached === crashAt) throw new Error(`crash at ${reached}`);
      };
      const store = await SegmentLogStore.open(dir, { ...smallSegments, onInstallStep });
      const old = makeEntries(1, 60, 1);
      store.append(old);
      await store.sync();
      const retained = makeEntries(90, 31, 2);
      await assert.rejects(store.applySnapshot(snapshotAt(120, 2), retained));
      // The process dies here: the failed store is abandoned, the directory reopened.
      await store.close();
      crashAt = undefined;
      const reopened = await SegmentLogStore.open(dir, smallSegments);
      const names = [...Deno.readDirSync(dir)].map((entry) => entry.name);
      assert.ok(!names.some((name) => name.endsWith(".install")), names.join(" "));
      if (step === "staged") {
        assert.deepEqual(describe(reopened), { first: 1, last: 60, snapshot: 0 });
        assert.deepEqual(normalize(reopened.entries(1, 61)), normalize(old));
      } else {
        assert.deepEqual(describe(reopened), { first: 90, last: 120, snapshot: 120 });
        assert.deepEqual(normalize(reopened.entries(90, 121)), normalize(retained));
      }
      await reopened.close();
    });
  });
}

Deno.test("SegmentLogStore recovers a store whose install failed after its commit point", async () => {
  await withTempDir(async (dir) => {
    let crash = true;
    const store = await SegmentLogStore.open(dir, {
      ...smallSegments,
      onInstallStep: (step) => {
        if (crash && step === "committed") throw new Error("disk failed");
      },
    });
    store.append(makeEntries(1, 30, 1));
    await store.sync();
    const retained = makeEntries(40, 11, 2);
    await assert.rejects(store.applySnapshot(snapshotAt(50, 2), retained));
    crash = false;
    await store.recover();
    assert.deepEqual(describe(store), { first: 40, last: 50, snapshot: 50 });
    assert.deepEqual(normalize(store.entries(40, 51)), normalize(retained));
    await store.close();
  });
});

Deno.test("MemoryLogStore installs a snapshot with retained entries atomically and durably", async () => {
  const store = new MemoryLogStore();
  store.append(makeEntries(1, 10, 1));
  store.syncNow();
  store.append(makeEntries(11, 5, 1));
  store.setHardState({ term: 2, vote: 1, commit: 10 });
  // A crash before the install leaves the old durable log.
  const before = new MemoryLogStore();
  before.append(makeEntries(1, 10, 1));
  before.syncNow();
  before.append(makeEntries(11, 5, 1));
  before.crash();
  assert.deepEqual(describe(before), { first: 1, last: 10, snapshot: 0 });
  // After it, the whole new log and the hard state survive a crash.
  const retained = makeEntries(18, 3, 2);
  await store.applySnapshot(snapshotAt(20, 2), retained);
  store.crash();
  assert.deepEqual(describe(store), { first: 18, last: 20, snapshot: 20 });
  assert.deepEqual(normalize(store.entries(18, 21)), normalize(retained));
  assert.equal(store.hardState().term, 2);
});

Deno.test("SegmentLogStore.segments reports each segment's range, bytes and last write", async () => {
  await withTempDir(async (dir) => {
    const started = Date.now();
    const store = await SegmentLogStore.open(dir, smallSegments);
    store.append(makeEntries(1, 30, 1));
    await store.sync();
    const segments = store.segments();
    assert.equal(segments[0].firstIndex, 1);
    assert.equal(segments.at(-1)!.lastIndex, 30);
    for (let position = 1; position < segments.length; position++) {
      assert.equal(segments[position].firstIndex, segments[position - 1].lastIndex + 1);
    }
    assert.equal(
      segments.reduce((sum, segment) => sum + segment.bytes, 0),
      segmentRecordBytes(dir),
    );
    assert.ok(segments.every((segment) => segment.lastWriteMs >= started - 1000));
    await store.close();
  });
});

Deno.test("storedBytesTotal follows appends, truncations, compactions and closes without a disk walk", async () => {
  await withTempDir(async (dir) => {
    const base = storedBytesTotal();
    const store = await SegmentLogStore.open(dir, smallSegments);
    store.append(makeEntries(1, 40, 1));
    await store.sync();
    // Records only: the active segment's zero padding is not stored data.
    const diskBytes = () => segmentRecordBytes(dir);
    assert.equal(storedBytesTotal() - base, diskBytes());
    store.append(makeEntries(35, 3, 2));
    await store.sync();
    assert.equal(storedBytesTotal() - base, diskBytes());
    await store.compact(snapshotAt(30, 1));
    assert.equal(storedBytesTotal() - base, diskBytes());
    await store.applySnapshot(snapshotAt(60, 3), makeEntries(55, 6, 3));
    assert.equal(storedBytesTotal() - base, diskBytes());
    await store.close();
    assert.equal(storedBytesTotal(), base);
    // Closed cleanly: every file holds its records and nothing else.
    const fileBytes = segmentNames(dir).reduce(
      (sum, name) => sum + Deno.statSync(`${dir}/${name}`).size,
      0,
    );
    assert.equal(fileBytes, diskBytes());
    const reopened = await SegmentLogStore.open(dir, smallSegments);
    assert.equal(storedBytesTotal() - base, diskBytes());
    await reopened.close();
  });
});

/**
 * Descriptors of this process open on files under `dir`. Only those: with
 * `deno test --parallel`, other test modules run in this process too, and
 * open and close their own descriptors meanwhile.
 */
function openDescriptors(dir: string): number {
  let count = 0;
  for (const { name } of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${name}`).startsWith(`${dir}/`)) count++;
    } catch { /* closed meanwhile */ }
  }
  return count;
}

Deno.test("SegmentLogStore keeps open descriptors bounded by the shared pool across 2,000 stores", async () => {
  await withTempDir(async (dir) => {
    setOpenSegmentFilesMax(64);
    const before = openDescriptors(dir);
    const stores: SegmentLogStore[] = [];
    try {
      for (let number = 0; number < 2_000; number++) {
        const store = await SegmentLogStore.open(`${dir}/${number}`);
        store.append(makeEntries(1, 2, 1, 20));
        await store.sync();
        stores.push(store);
      }
      assert.ok(openSegmentFiles() <= 64, `${openSegmentFiles()} pooled files`);
      assert.ok(
        openDescriptors(dir) - before <= 64 + 8,
        `${openDescriptors(dir) - before} new fds`,
      );
      // Every store still reads from disk (handles reopen on demand) and appends.
      for (const store of stores) {
        assert.equal(store.entries(1, 2, 1)[0].index, 1);
        store.append(makeEntries(3, 1, 1, 20));
      }
      await Promise.all(stores.map((store) => store.sync()));
      assert.ok(openDescriptors(dir) - before <= 64 + 8);
      for (const store of stores.slice(0, 100)) {
        assert.deepEqual(normalize(store.entries(1, 4)), normalize(makeEntries(1, 3, 1, 20)));
      }
    } finally {
      await Promise.all(stores.map((store) => store.close()));
      setOpenSegmentFilesMax(256);
    }
    assert.equal(openDescriptors(dir), before);
  });
});

Deno.test("An idle SegmentLogStore holds no staging buffer and no preallocated index arrays", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, { cacheBytesMax: 0 });
    assert.equal(store.bufferBytes, 0);
    store.append(makeEntries(1, 3, 1, 20));
    // A lone small append gets a small buffer (no 64 KiB of garbage per flush).
    assert.ok(store.bufferBytes > 0, "a writing store stages its records");
    assert.ok(store.bufferBytes <= 4096, `${store.bufferBytes} bytes staged for 3 small records`);
    await store.sync();
    // Once idle it keeps no staging buffer and no preallocated index arrays.
    assert.ok(store.bufferBytes < 256, `${store.bufferBytes} bytes of buffers when idle`);
    await store.close();
  });
});
