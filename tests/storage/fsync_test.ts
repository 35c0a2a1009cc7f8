/**
 * `syncFileData` runs the first fsync of an event-loop turn on the calling
 * thread and the others of that turn on the thread pool, in parallel.
 *
 * @module
 */

import assert from "node:assert/strict";
import { pooledFsyncs, syncFileData } from "../../lib/storage/_fsync.ts";

const turn = () => new Promise<void>((resolve) => setTimeout(resolve, 5));

Deno.test("syncFileData runs a turn's first fsync inline and the rest of that turn on the pool", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = [0, 1, 2].map((i) =>
      Deno.openSync(`${dir}/f${i}`, { write: true, create: true })
    );
    for (const file of files) file.writeSync(new Uint8Array([1, 2, 3]));
    await turn();
    const first = syncFileData(files[0]);
    assert.equal(pooledFsyncs(), 0, "the first runs on this thread");
    const rest = [syncFileData(files[1]), syncFileData(files[2])];
    assert.equal(pooledFsyncs(), 2, "the others of the turn go to the pool");
    await Promise.all([first, ...rest]);
    assert.equal(pooledFsyncs(), 0);
    await turn();
    const next = syncFileData(files[1]);
    assert.equal(pooledFsyncs(), 0, "a new turn runs inline again");
    await next;
    for (const file of files) file.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("syncFileData rejects when the fsync fails, inline or pooled", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = Deno.openSync(`${dir}/f`, { write: true, create: true });
    file.close();
    await turn();
    await assert.rejects(syncFileData(file));
    await assert.rejects(syncFileData(file));
    assert.equal(pooledFsyncs(), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
