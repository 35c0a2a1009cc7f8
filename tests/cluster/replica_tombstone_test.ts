import { deepEqual, equal, rejects } from "node:assert/strict";
import { openReplicaLog, recoveringFileName } from "../../lib/cluster/replica_repair.ts";
import { removeRetiredLog, retireReplicaLog } from "../../lib/cluster/replica_tombstone.ts";
import { SegmentLogStore } from "../../lib/storage/segment_log_store.ts";
import { EntryType } from "../../lib/storage/types.ts";

async function withDataDir(body: (dataDir: string) => Promise<void>): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "replica_tombstone_test_" });
  try {
    await body(dataDir);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

/** A replica log of three entries of term 4 that voted for node 2 in term 6. */
async function writeLog(directory: string): Promise<void> {
  const store = await SegmentLogStore.open(directory);
  store.append([1, 2, 3].map((index) => ({
    term: 4,
    index,
    type: EntryType.Normal,
    data: new Uint8Array(10).fill(index),
  })));
  store.setHardState({ term: 6, vote: 2, commit: 3 });
  await store.sync();
  await store.close();
}

async function names(directory: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(directory)) found.push(entry.name);
  return found.sort();
}

const openOptions = (dataDir: string) => ({ quarantineDir: `${dataDir}/quarantine`, label: "x.1" });

Deno.test("A retired replica log reopens empty and recovering at the retired term", async () => {
  await withDataDir(async (dataDir) => {
    const directory = `${dataDir}/topics/events.1`;
    await writeLog(directory);
    await retireReplicaLog(directory, 6);
    deepEqual(await names(`${dataDir}/topics`), ["events.1"]);
    deepEqual(await names(directory), [recoveringFileName]);
    const opened = await openReplicaLog(directory, openOptions(dataDir));
    equal(opened.recoveringTerm, 6);
    equal(opened.quarantined, undefined);
    equal(opened.store.lastIndex(), 0);
    deepEqual(opened.store.hardState(), { term: 0, vote: 0, commit: 0 });
    await opened.store.close();
  });
});

Deno.test("A retirement cut by a crash after the old log moved aside still leaves the tombstone", async () => {
  await withDataDir(async (dataDir) => {
    const directory = `${dataDir}/topics/events.1`;
    await writeLog(directory);
    // The state between the two renames: the flagged rebuild is ready, the old log moved aside.
    await Deno.mkdir(`${directory}.rebuild`);
    await Deno.writeTextFile(`${directory}.rebuild/${recoveringFileName}`, "6\n");
    await Deno.rename(directory, `${directory}.retired`);
    await removeRetiredLog(directory);
    const opened = await openReplicaLog(directory, openOptions(dataDir));
    equal(opened.recoveringTerm, 6);
    equal(opened.store.lastIndex(), 0);
    await opened.store.close();
    deepEqual(await names(`${dataDir}/topics`), ["events.1"]);
  });
});

Deno.test("A retirement cut by a crash before the old log moved keeps the old log and its vote", async () => {
  await withDataDir(async (dataDir) => {
    const directory = `${dataDir}/topics/events.1`;
    await writeLog(directory);
    await Deno.mkdir(`${directory}.rebuild`);
    await Deno.writeTextFile(`${directory}.rebuild/${recoveringFileName}`, "6\n");
    const opened = await openReplicaLog(directory, openOptions(dataDir));
    equal(opened.recoveringTerm, undefined);
    equal(opened.store.lastIndex(), 3);
    deepEqual(opened.store.hardState(), { term: 6, vote: 2, commit: 3 });
    await opened.store.close();
    deepEqual(await names(`${dataDir}/topics`), ["events.1"]);
  });
});

Deno.test("retireReplicaLog of a log already gone leaves the tombstone; a bad term is refused", async () => {
  await withDataDir(async (dataDir) => {
    await Deno.mkdir(`${dataDir}/topics`);
    const directory = `${dataDir}/topics/events.2`;
    await retireReplicaLog(directory, 3);
    deepEqual(await names(directory), [recoveringFileName]);
    await rejects(retireReplicaLog(directory, -1), /'term' must be a non-negative integer/);
  });
});
