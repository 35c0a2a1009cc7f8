import assert from "node:assert/strict";
import {
  isStorageFull,
  LogFailedError,
  SegmentLogStore,
  storageError,
  StorageFullError,
} from "../../lib/storage/segment_log_store.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { makeEntries, normalize, segmentNames } from "./_helpers.ts";
import { mountTmpfs, tmpfsUnavailable } from "./_tmpfs.ts";

const tmpfsProblem = await tmpfsUnavailable();
if (tmpfsProblem !== undefined) console.warn(`Ignoring the tmpfs storage tests: ${tmpfsProblem}`);

Deno.test("storageError maps ENOSPC and EDQUOT to StorageFullError and other I/O errors to LogFailedError", () => {
  const full = storageError(
    Object.assign(new Error("No space left on device"), { code: "ENOSPC" }),
    "/d",
  );
  assert.ok(full instanceof StorageFullError);
  assert.equal(full.message, "Cannot write the log in '/d' as the disk is full");
  const quota = storageError(
    Object.assign(new Error("Disk quota exceeded"), { code: "EDQUOT" }),
    "/d",
  );
  assert.ok(quota instanceof StorageFullError);
  const broken = storageError(
    Object.assign(new Error("Input/output error"), { code: "EIO" }),
    "/d",
  );
  assert.ok(broken instanceof LogFailedError);
  assert.match(broken.message, /^Cannot write the log in '\/d' as a disk operation failed: EIO: /);
  assert.equal(isStorageFull(broken), false);
  assert.equal(isStorageFull(full), true);
});

Deno.test("MemoryLogStore fails a sync on demand and recovers to its durable state", async () => {
  const store = new MemoryLogStore();
  store.append(makeEntries(1, 3, 1));
  await store.sync();
  store.append(makeEntries(4, 2, 1));
  store.failNextSync(new StorageFullError("memory"));
  await assert.rejects(store.sync(), StorageFullError);
  assert.throws(() => store.append(makeEntries(6, 1, 1)), StorageFullError);
  await store.recover();
  assert.equal(store.lastIndex(), 3);
  store.append(makeEntries(4, 1, 2));
  await store.sync();
  assert.equal(store.syncedIndex(), 4);
});

Deno.test({
  name:
    "SegmentLogStore on a full disk refuses writes with StorageFullError, keeps serving reads, and rolls back to the last sync once space is freed",
  ignore: tmpfsProblem !== undefined,
  async fn() {
    const tmpfs = await mountTmpfs(1024 * 1024);
    try {
      const dir = `${tmpfs.path}/log`;
      const store = await SegmentLogStore.open(dir, { segmentBytesMax: 64 * 1024 });
      const durable = makeEntries(1, 100, 1, 1000);
      store.append(durable);
      await store.sync();
      const filler = await tmpfs.fill();
      // Room for part of the next batch only: the flush fails half-way.
      await Deno.truncate(filler, (await Deno.stat(filler)).size - 40 * 1024);
      store.append(makeEntries(101, 200, 1, 1000));
      const failure = await store.sync().then(() => undefined, (error) => error);
      assert.ok(failure instanceof StorageFullError, `expected StorageFullError, got ${failure}`);
      assert.equal(failure.directory, dir);
      assert.equal(store.failure, failure);
      assert.equal(store.syncedIndex(), 100);
      // Everything synced is still readable; writes are refused.
      assert.deepEqual(normalize(store.entries(1, 101)), normalize(durable));
      assert.throws(() => store.append(makeEntries(301, 1, 1)), StorageFullError);
      await assert.rejects(store.sync(), StorageFullError);
      // Still full: the probe fails and the store stays failed.
      await assert.rejects(store.recover(), StorageFullError);
      assert.ok(store.failure instanceof StorageFullError);

      await Deno.remove(filler);
      await store.recover();
      assert.equal(store.failure, undefined);
      assert.equal(store.lastIndex(), 100);
      assert.deepEqual(normalize(store.entries(1, 101)), normalize(durable));
      // The files hold exactly the synced records: nothing of the failed flush survives.
      let bytes = 0;
      for (const name of segmentNames(dir)) bytes += (await Deno.stat(`${dir}/${name}`)).size;
      assert.equal(bytes, durable.reduce((sum, entry) => sum + 25 + entry.data.length, 0));
      const next = makeEntries(101, 50, 2, 1000);
      store.append(next);
      await store.sync();
      await store.close();
      const reopened = await SegmentLogStore.open(dir, { segmentBytesMax: 64 * 1024 });
      assert.equal(reopened.lastIndex(), 150);
      assert.deepEqual(
        normalize(reopened.entries(1, 151)),
        normalize([...durable, ...next]),
      );
      await reopened.close();
    } finally {
      await tmpfs.unmount();
    }
  },
});

Deno.test({
  name: "SegmentLogStore recovery drops a segment created by the failed flush and caps the commit",
  ignore: tmpfsProblem !== undefined,
  async fn() {
    const tmpfs = await mountTmpfs(1024 * 1024);
    try {
      const dir = `${tmpfs.path}/log`;
      const store = await SegmentLogStore.open(dir, { segmentBytesMax: 16 * 1024 });
      store.append(makeEntries(1, 10, 1, 1000));
      store.setHardState({ term: 1, vote: 1, commit: 10 });
      await store.sync();
      const segmentsBefore = segmentNames(dir);
      const filler = await tmpfs.fill();
      await Deno.truncate(filler, (await Deno.stat(filler)).size - 24 * 1024);
      // A new term with a commit beyond what will be durable, and entries
      // that roll over into new segments.
      store.setHardState({ term: 2, vote: 2, commit: 60 });
      store.append(makeEntries(11, 50, 2, 1000));
      await assert.rejects(store.sync(), StorageFullError);
      await Deno.remove(filler);
      await store.recover();
      assert.equal(store.lastIndex(), 10);
      assert.deepEqual(segmentNames(dir), segmentsBefore);
      // The hard state file may or may not have been replaced before the
      // failure; either way its commit never exceeds the log.
      assert.ok(store.hardState().commit <= store.lastIndex());
      assert.deepEqual(normalize(store.entries(1, 11)), normalize(makeEntries(1, 10, 1, 1000)));
      await store.close();
    } finally {
      await tmpfs.unmount();
    }
  },
});
