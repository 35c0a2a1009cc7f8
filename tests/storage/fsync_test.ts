/**
 * `syncFileData` waits for the end of the event-loop turn, then runs a lone
 * fsync on the event loop's thread and several on the thread pool, in
 * parallel.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  fsyncTurnsStarted,
  inlineFsyncMsMax,
  nextFsyncAverageMs,
  pooledFsyncs,
  requestFileSync,
  runsLoneInline,
  syncFileData,
} from "../../lib/storage/_fsync.ts";

async function withFiles(count: number, body: (files: Deno.FsFile[]) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const files = Array.from(
    { length: count },
    (_, i) => Deno.openSync(`${dir}/f${i}`, { write: true, create: true }),
  );
  try {
    for (const file of files) file.writeSync(new Uint8Array([1, 2, 3]));
    await body(files);
  } finally {
    for (const file of files) {
      try {
        file.close();
      } catch { /* closed by the test */ }
    }
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("syncFileData runs a turn's lone fsync on the event loop's thread, after the turn's microtasks", async () => {
  await withFiles(1, async ([file]) => {
    const order: string[] = [];
    const synced = syncFileData(file).then(() => order.push("synced"));
    queueMicrotask(() => order.push("microtask"));
    assert.equal(pooledFsyncs(), 0);
    await synced;
    assert.deepEqual(order, ["microtask", "synced"]);
    assert.equal(pooledFsyncs(), 0, "it never went to the pool");
  });
});

Deno.test("syncFileData runs the fsyncs of one turn on the pool in parallel", async () => {
  await withFiles(3, async (files) => {
    const synced = files.map((file) => syncFileData(file));
    assert.equal(pooledFsyncs(), 0, "nothing runs before the turn ends");
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(pooledFsyncs(), 3);
    await Promise.all(synced);
    assert.equal(pooledFsyncs(), 0);
  });
});

Deno.test("syncFileData rejects when the fsync fails, inline or pooled", async () => {
  await withFiles(2, async (files) => {
    for (const file of files) file.close();
    await assert.rejects(syncFileData(files[0]));
    await assert.rejects(Promise.all(files.map((file) => syncFileData(file))));
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(pooledFsyncs(), 0);
  });
});

Deno.test("requestFileSync takes one request object again and again, one fsync per turn each", async () => {
  await withFiles(1, async ([file]) => {
    const errors: unknown[] = [];
    let wake: (() => void) | undefined;
    const request = {
      file,
      fsynced(error?: unknown) {
        errors.push(error);
        wake?.();
      },
    };
    for (let round = 0; round < 3; round++) {
      const turn = fsyncTurnsStarted();
      const done = new Promise<void>((resolve) => wake = resolve);
      requestFileSync(request);
      assert.equal(fsyncTurnsStarted(), turn, "nothing starts before the turn ends");
      await done;
      assert.equal(fsyncTurnsStarted(), turn + 1);
    }
    assert.deepEqual(errors, [undefined, undefined, undefined]);
  });
});

Deno.test("a lone request marked soon runs ahead of the turn's deferred tasks", async () => {
  await withFiles(1, async ([file]) => {
    const order: string[] = [];
    setImmediate(() => order.push("deferred task"));
    queueMicrotask(() => order.push("microtask"));
    requestFileSync({
      file,
      soon: true,
      fsynced: (error) => {
        assert.equal(error, undefined);
        order.push("synced");
      },
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, ["microtask", "synced", "deferred task"]);
  });
});

Deno.test("a request marked soon still batches with those made in the microtasks queued before it", async () => {
  await withFiles(2, async ([soonFile, otherFile]) => {
    const synced: string[] = [];
    const all = Promise.withResolvers<void>();
    const fsynced = (name: string) => (error?: unknown) => {
      assert.equal(error, undefined);
      synced.push(name);
      if (synced.length === 2) all.resolve();
    };
    // Another replica's drive, queued before: its request joins the batch.
    queueMicrotask(() => requestFileSync({ file: otherFile, fsynced: fsynced("other") }));
    const turns = fsyncTurnsStarted();
    requestFileSync({ file: soonFile, soon: true, fsynced: fsynced("soon") });
    await all.promise;
    assert.equal(fsyncTurnsStarted(), turns + 1, "one batch for both");
    assert.deepEqual(synced.toSorted(), ["other", "soon"]);
  });
});

Deno.test("a leader's lone write marked soon runs inline while fsyncs are fast, on the pool while they are slow", async () => {
  await withFiles(1, async ([file]) => {
    const fsynced = () => {};
    assert.equal(runsLoneInline({ file, fsynced }, 50), true, "an ordinary request: inline");
    assert.equal(runsLoneInline({ file, onPool: true, fsynced }, 0.1), false, "not soon: the pool");
    assert.equal(runsLoneInline({ file, onPool: true, soon: true, fsynced }, 0.1), true);
    assert.equal(
      runsLoneInline({ file, onPool: true, soon: true, fsynced }, inlineFsyncMsMax),
      false,
      "fsyncs as slow as the limit: the pool",
    );
    // Live, it completes whichever way the disk's speed sends it.
    const done = Promise.withResolvers<unknown>();
    requestFileSync({ file, onPool: true, soon: true, fsynced: done.resolve });
    assert.equal(await done.promise, undefined);
  });
});

Deno.test("the fsync average: one slow fsync among fast ones moves it a little, a very slow one past the limit", () => {
  let average = 0;
  for (let i = 0; i < 50; i++) average = nextFsyncAverageMs(average, 0.15);
  assert.ok(Math.abs(average - 0.15) < 0.001, `settles on a steady disk's time (${average})`);
  assert.ok(nextFsyncAverageMs(average, 1) < inlineFsyncMsMax, "one fsync of 1 ms: still inline");
  assert.ok(nextFsyncAverageMs(0, 2.4) >= inlineFsyncMsMax, "one of 2.4 ms: the pool at once");
  for (let i = 0; i < 50; i++) average = nextFsyncAverageMs(average, 0.6);
  assert.ok(average >= inlineFsyncMsMax, "a disk whose fsyncs take 0.6 ms: the pool");
  for (let i = 0; i < 50; i++) average = nextFsyncAverageMs(average, 0.15);
  assert.ok(average < inlineFsyncMsMax, "fast again: inline again");
});
