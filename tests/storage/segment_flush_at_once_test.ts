/**
 * The flush at once of `SegmentLogStore.sync()`: records staged for the
 * active segment, with no job queued or running, are written during the
 * call and covered by one turn-end fdatasync; syncs of the same turn join
 * it, later jobs wait for it, and what it acknowledged survives a crash
 * copy, a reopen, eviction of its pooled handle and a disk that fills up.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  openSegmentFiles,
  SegmentLogStore,
  setOpenSegmentFilesMax,
  StorageFullError,
} from "../../lib/storage/segment_log_store.ts";
import { openFilesMaxDefault } from "../../lib/storage/_file_pool.ts";
import { pooledFsyncs } from "../../lib/storage/_fsync.ts";
import { EntryType } from "../../lib/storage/types.ts";
import { makeEntries, normalize, segmentNames, withTempDir } from "./_helpers.ts";
import { mountTmpfs, tmpfsUnavailable } from "./_tmpfs.ts";
import { Prng } from "../../lib/sim/prng.ts";

const tmpfsProblem = await tmpfsUnavailable();

/** Copies the files of an open replica directory, as a crash would leave them. */
function crashCopy(source: string, target: string): void {
  Deno.mkdirSync(target);
  for (const entry of Deno.readDirSync(source)) {
    if (entry.isFile) Deno.copyFileSync(`${source}/${entry.name}`, `${target}/${entry.name}`);
  }
}

/** Resolves after the current event-loop turn has ended (and its fsyncs started). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("SegmentLogStore writes one append at a time with one fdatasync per sync, and a crash copy holds every acknowledged one", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(`${dir}/live`);
    store.append(makeEntries(1, 1, 1, 150));
    await store.sync();
    const entries = makeEntries(2, 300, 1, 150);
    let fsyncs = 0;
    let atOnce = 0;
    for (const entry of entries) {
      store.append([entry]);
      const before = store.fsyncCount;
      const synced = store.sync();
      // Written at once, its fsync asked for before sync() returns (a queued flush counts later).
      if (store.fsyncCount - before === 1) atOnce++;
      assert.ok(store.syncedIndex() < entry.index, "not durable before its fsync");
      await synced;
      fsyncs += store.fsyncCount - before;
      assert.equal(store.syncedIndex(), entry.index);
    }
    // Only the syncs behind an extension job (one per chunk) take the general flush.
    assert.ok(atOnce >= 290, `flushes at once: ${atOnce}`);
    // One fdatasync per sync, plus the extension jobs ahead of the records.
    assert.ok(fsyncs >= 300 && fsyncs <= 310, `fsyncs: ${fsyncs}`);
    crashCopy(`${dir}/live`, `${dir}/crashed`);
    const crashed = await SegmentLogStore.open(`${dir}/crashed`);
    assert.equal(crashed.lastIndex(), 301);
    assert.deepEqual(normalize(crashed.entries(2, 302)), normalize(entries));
    await crashed.close();
    await store.close();
    const reopened = await SegmentLogStore.open(`${dir}/live`);
    assert.deepEqual(normalize(reopened.entries(1, 302)), normalize(makeEntries(1, 301, 1, 150)));
    await reopened.close();
  });
});

Deno.test("SegmentLogStore joins the syncs of one turn into one fdatasync and gives a sync after it started its own", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir);
    store.append(makeEntries(1, 1, 1));
    await store.sync();
    let before = store.fsyncCount;
    const sameTurn: Promise<void>[] = [];
    for (let index = 2; index <= 11; index++) {
      store.append(makeEntries(index, 1, 1));
      sameTurn.push(store.sync());
    }
    assert.ok(sameTurn.every((synced) => synced === sameTurn[0]), "one flush answers them all");
    await Promise.all(sameTurn);
    assert.equal(store.fsyncCount - before, 1);
    assert.equal(store.syncedIndex(), 11);

    before = store.fsyncCount;
    store.append(makeEntries(12, 1, 1));
    const first = store.sync();
    await nextTurn();
    store.append(makeEntries(13, 1, 1));
    const second = store.sync();
    assert.notEqual(first, second);
    await Promise.all([first, second]);
    assert.equal(store.fsyncCount - before, 2);
    assert.equal(store.syncedIndex(), 13);
    await store.close();
  });
});

Deno.test("SegmentLogStore does not join a flush at once whose fsync runs on the pool already", async () => {
  await withTempDir(async (dir) => {
    const [left, right] = await Promise.all([
      SegmentLogStore.open(`${dir}/left`),
      SegmentLogStore.open(`${dir}/right`),
    ]);
    for (const store of [left, right]) {
      store.append(makeEntries(1, 1, 1));
      await store.sync();
    }
    const before = left.fsyncCount;
    left.append(makeEntries(2, 1, 1));
    right.append(makeEntries(2, 1, 1));
    // Two fsyncs in one batch go to the pool. Asked for with `soon`, the
    // batch starts in a microtask, and the next one (below) sees them
    // running: no poll of the event loop comes between, in which a fast
    // disk could finish them (waiting for an Immediate instead failed once
    // in a full CI run: nothing ran on the pool by then).
    const first = left.sync({ soon: true });
    const other = right.sync({ soon: true });
    await Promise.resolve();
    assert.ok(pooledFsyncs() > 0, "the fsyncs run on the pool");
    left.append(makeEntries(3, 1, 1));
    const second = left.sync();
    assert.notEqual(second, first, "a record written now may miss the running fsync");
    await Promise.all([first, second, other]);
    assert.equal(left.fsyncCount - before, 2);
    assert.equal(left.syncedIndex(), 3);
    await Promise.all([left.close(), right.close()]);
  });
});

Deno.test("SegmentLogStore runs a job queued behind a flush at once after it, in order", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir, { segmentBytesMax: 4096 });
    store.append(makeEntries(1, 60, 1, 100));
    await store.sync();
    const order: string[] = [];
    store.append(makeEntries(61, 1, 1, 100));
    const atOnce = store.sync().then(() => order.push("flush at once"));
    // Compaction deletes whole segments: a job of its own, which must wait.
    const compacted = store.compact({
      index: 60,
      term: 1,
      conf: { voters: [1], learners: [] },
      data: new Uint8Array([1]),
    })
      .then(() => order.push("compaction"));
    await Promise.all([atOnce, compacted]);
    assert.deepEqual(order, ["flush at once", "compaction"]);
    assert.notEqual(segmentNames(dir)[0], "00000000000000000001.log");
    await store.close();
    const reopened = await SegmentLogStore.open(dir, { segmentBytesMax: 4096 });
    assert.equal(reopened.lastIndex(), 61);
    assert.equal(reopened.snapshot()?.index, 60);
    assert.deepEqual(normalize(reopened.entries(61, 62)), normalize(makeEntries(61, 1, 1, 100)));
    await reopened.close();
  });
});

Deno.test("SegmentLogStore keeps flushing at once when the pool closes its active handle", async () => {
  await withTempDir(async (dir) => {
    setOpenSegmentFilesMax(2);
    try {
      const stores = await Promise.all(
        [0, 1, 2, 3].map((replica) => SegmentLogStore.open(`${dir}/r${replica}`)),
      );
      for (let index = 1; index <= 40; index++) {
        for (const store of stores) {
          // Small records: 40 stay below the first chunk's quarter mark, so no
          // extension job ahead pins a handle over the limit meanwhile.
          store.append(makeEntries(index, 1, 1, 16));
          await store.sync();
        }
        assert.ok(openSegmentFiles() <= 2, `open files: ${openSegmentFiles()}`);
      }
      for (const store of stores) await store.close();
      for (let replica = 0; replica < 4; replica++) {
        const reopened = await SegmentLogStore.open(`${dir}/r${replica}`);
        assert.deepEqual(normalize(reopened.entries(1, 41)), normalize(makeEntries(1, 40, 1, 16)));
        await reopened.close();
      }
    } finally {
      setOpenSegmentFilesMax(openFilesMaxDefault);
    }
  });
});

Deno.test("SegmentLogStore writes a conf change's commit through the general flush, not at once", async () => {
  await withTempDir(async (dir) => {
    const store = await SegmentLogStore.open(dir);
    store.append([{ term: 1, index: 1, type: EntryType.ConfChange, data: new Uint8Array([1]) }]);
    store.append([{ term: 1, index: 2, type: EntryType.ConfChange, data: new Uint8Array([2]) }]);
    await store.sync();
    store.append([{ term: 1, index: 3, type: EntryType.Normal, data: new Uint8Array([3]) }]);
    // Commit passes the conf change at 2: the hard state file is written too.
    store.setHardState({ term: 1, vote: 0, commit: 3 });
    await store.sync();
    await store.close();
    const reopened = await SegmentLogStore.open(dir);
    assert.equal(reopened.hardState().commit, 3);
    assert.equal(reopened.lastIndex(), 3);
    await reopened.close();
  });
});

Deno.test({
  name:
    "SegmentLogStore appending one at a time onto a disk that fills up rejects with StorageFullError and keeps every acknowledged entry",
  ignore: tmpfsProblem !== undefined,
  async fn() {
    const tmpfs = await mountTmpfs(1024 * 1024);
    try {
      const dir = `${tmpfs.path}/log`;
      const store = await SegmentLogStore.open(dir);
      store.append(makeEntries(1, 1, 1, 1000));
      await store.sync();
      const filler = await tmpfs.fill();
      await Deno.truncate(filler, (await Deno.stat(filler)).size - 64 * 1024);
      let acknowledged = 1;
      let failure: unknown;
      for (let index = 2; index <= 2000 && failure === undefined; index++) {
        store.append(makeEntries(index, 1, 1, 1000));
        await store.sync().then(() => acknowledged = index, (error) => failure = error);
      }
      assert.ok(failure instanceof StorageFullError, `expected StorageFullError, got ${failure}`);
      assert.ok(acknowledged > 1, "some appends fit in the preallocated space");
      await Deno.remove(filler);
      await store.recover();
      assert.ok(store.lastIndex() >= acknowledged);
      const expected = normalize(makeEntries(1, acknowledged, 1, 1000));
      assert.deepEqual(normalize(store.entries(1, acknowledged + 1)), expected);
      await store.close();
      const reopened = await SegmentLogStore.open(dir);
      assert.deepEqual(normalize(reopened.entries(1, acknowledged + 1)), expected);
      await reopened.close();
    } finally {
      await tmpfs.unmount();
    }
  },
});

/** One replica of the random test below: its store, its model and its pending syncs. */
interface Replica {
  path: string;
  store: SegmentLogStore;
  model: ReturnType<typeof makeEntries>;
  term: number;
  syncs: Promise<void>[];
  /** Crash copies taken as a sync resolved, with what the store called synced then. */
  copies: { path: string; synced: ReturnType<typeof makeEntries> }[];
}

function randomStep(replica: Replica, next: () => number): void {
  const choice = next();
  const { store } = replica;
  if (choice < 0.6 || replica.model.length === 0) {
    const entries = makeEntries(
      replica.model.length + 1,
      1 + Math.floor(next() * 3),
      replica.term,
      20 + Math.floor(next() * 600),
    );
    store.append(entries);
    replica.model = [...replica.model, ...entries];
  } else if (choice < 0.68) {
    const at = Math.max(1, replica.model.length - Math.floor(next() * 8));
    const entries = makeEntries(at, 1, ++replica.term, 20 + Math.floor(next() * 300));
    store.append(entries);
    replica.model = [...replica.model.slice(0, at - 1), ...entries];
  } else {
    const copyNow = replica.copies.length < 6 && next() < 0.1;
    replica.syncs.push(
      store.sync().then(() => {
        if (!copyNow) return;
        // Taken the moment the sync resolves: the files must hold what it made durable.
        const path = `${replica.path}.copy${replica.copies.length}`;
        crashCopy(replica.path, path);
        replica.copies.push({ path, synced: replica.model.slice(0, store.syncedIndex()) });
      }),
    );
  }
}

Deno.test("SegmentLogStore keeps every record when flushes at once overlap appends, truncations and pooled fsyncs across turns", async () => {
  await withTempDir(async (dir) => {
    for (const seed of [11, 12, 13]) {
      const prng = new Prng(seed); // deterministic: a failure reproduces
      const next = () => prng.next();
      const options = { segmentBytesMax: 24 * 1024, cacheBytesMax: 0 };
      const replicas: Replica[] = [];
      for (const name of ["a", "b"]) {
        const path = `${dir}/${seed}${name}`;
        replicas.push({
          path,
          store: await SegmentLogStore.open(path, options),
          model: [],
          term: 1,
          syncs: [],
          copies: [],
        });
      }
      for (let step = 0; step < 800; step++) {
        randomStep(replicas[Math.floor(next() * 2)], next);
        const pause = next();
        // Two stores' fsyncs of one turn run on the pool: the next turn finds them running.
        if (pause < 0.15) await new Promise((resolve) => setImmediate(resolve));
        else if (pause < 0.2) await nextTurn();
      }
      for (const replica of replicas) {
        await Promise.all([...replica.syncs, replica.store.sync()]);
        const { store, model } = replica;
        assert.deepEqual(
          normalize(store.entries(1, model.length + 1)),
          normalize(model),
          replica.path,
        );
        await store.close();
        const reopened = await SegmentLogStore.open(replica.path, options);
        assert.deepEqual(
          normalize(reopened.entries(1, model.length + 1)),
          normalize(model),
          replica.path,
        );
        await reopened.close();
        for (const copy of replica.copies) {
          const crashed = await SegmentLogStore.open(copy.path, options);
          assert.ok(crashed.lastIndex() >= copy.synced.length, copy.path);
          assert.deepEqual(
            normalize(crashed.entries(1, copy.synced.length + 1)),
            normalize(copy.synced),
            copy.path,
          );
          await crashed.close();
        }
      }
    }
  });
});

Deno.test("SegmentLogStores that flush large records in turns share one staging buffer, and each reads back exactly what it appended", async () => {
  await withTempDir(async (dir) => {
    // Records of 512 KiB stage in a 1 MiB buffer that an idle store gives back
    // to the process and the next store takes: what one store staged must
    // never show up in the other's records, in memory or on disk.
    const stores = [
      await SegmentLogStore.open(`${dir}/a`),
      await SegmentLogStore.open(`${dir}/b`),
    ];
    const appended: ReturnType<typeof makeEntries>[] = [[], []];
    for (let index = 1; index <= 6; index++) {
      for (const [position, store] of stores.entries()) {
        const [entry] = makeEntries(index, 1, 1, 512 * 1024);
        entry.data.fill(position === 0 ? 0x61 : 0x62, 0, 16);
        store.append([entry]);
        await store.sync();
        appended[position].push(entry);
      }
    }
    for (const [position, store] of stores.entries()) {
      assert.deepStrictEqual(normalize(store.entries(1, 7)), normalize(appended[position]));
      await store.close();
    }
    for (const [position, name] of ["a", "b"].entries()) {
      const reopened = await SegmentLogStore.open(`${dir}/${name}`);
      assert.deepStrictEqual(normalize(reopened.entries(1, 7)), normalize(appended[position]));
      await reopened.close();
    }
  });
});
