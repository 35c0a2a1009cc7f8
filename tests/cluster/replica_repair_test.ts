import { deepEqual, equal, match, ok } from "node:assert/strict";
import {
  clearRecovering,
  closedLogsFileName,
  openReplicaLog,
  quarantinedReplicasMax,
  recoveringFileName,
  takeClosedLogs,
  writeClosedLogs,
} from "../../lib/cluster/replica_repair.ts";
import { SegmentLogStore } from "../../lib/storage/segment_log_store.ts";
import { EntryType } from "../../lib/storage/types.ts";

const recordBytes = 24 + 1 + 100;

async function withDataDir(body: (dataDir: string) => Promise<void>): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "replica_repair_test_" });
  try {
    await body(dataDir);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

/** A replica log of `count` entries of 100 bytes in term 4, voted for 2, commit `commit`. */
async function writeLog(directory: string, count: number, commit = 0): Promise<void> {
  const store = await SegmentLogStore.open(directory);
  store.append(Array.from({ length: count }, (_, offset) => ({
    term: 4,
    index: offset + 1,
    type: EntryType.Normal,
    data: new Uint8Array(100).fill(offset),
  })));
  store.setHardState({ term: 4, vote: 2, commit });
  await store.sync();
  await store.close();
}

async function segmentPath(directory: string): Promise<string> {
  for await (const entry of Deno.readDir(directory)) {
    if (entry.name.endsWith(".log")) return `${directory}/${entry.name}`;
  }
  throw new Error(`No segment in ${directory}`);
}

async function names(directory: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(directory)) found.push(entry.name);
  return found.sort();
}

function options(dataDir: string, extra: { closedIndex?: number } = {}) {
  let clock = 1_000;
  return {
    quarantineDir: `${dataDir}/quarantine`,
    label: "events.3",
    now: () => clock++,
    ...extra,
  };
}

Deno.test("openReplicaLog opens a healthy log as it is", async () => {
  await withDataDir(async (dataDir) => {
    const directory = `${dataDir}/topics/events.3`;
    await writeLog(directory, 10, 6);
    const opened = await openReplicaLog(directory, options(dataDir, { closedIndex: 10 }));
    equal(opened.store.lastIndex(), 10);
    equal(opened.recoveringTerm, undefined);
    equal(opened.quarantined, undefined);
    await opened.store.close();
  });
});

Deno.test("openReplicaLog quarantines a log with a CRC mismatch in the middle and rebuilds it empty, recovering after its term", async () => {
  await withDataDir(async (dataDir) => {
    const directory = `${dataDir}/topics/events.3`;
    await writeLog(directory, 10);
    const segment = await segmentPath(directory);
    const bytes = await Deno.readFile(segment);
    bytes[4 * recordBytes + 30] ^= 0x01;
    await Deno.writeFile(segment, bytes);

    const opened = await openReplicaLog(directory, options(dataDir));
    equal(opened.store.lastIndex(), 0);
    equal(opened.recoveringTerm, 4);
    equal(opened.quarantined?.path, `${dataDir}/quarantine/events.3.1000`);
    match(opened.quarantined!.reason, /crc mismatch followed by valid records/);
    deepEqual(await names(`${dataDir}/quarantine`), ["events.3.1000"]);
    ok((await names(opened.quarantined!.path)).includes("hardstate"), "kept for inspection");
    deepEqual(await names(directory), [recoveringFileName]);
    await opened.store.close();

    // The flag survives a restart, until it is cleared.
    const again = await openReplicaLog(directory, options(dataDir));
    equal(again.recoveringTerm, 4);
    equal(again.quarantined, undefined);
    await again.store.close();
    await clearRecovering(directory);
    const cleared = await openReplicaLog(directory, options(dataDir));
    equal(cleared.recoveringTerm, undefined);
    await cleared.store.close();
  });
});

Deno.test("openReplicaLog quarantines a log that ends before the index durable at the last clean stop", async () => {
  await withDataDir(async (dataDir) => {
    const directory = `${dataDir}/topics/events.3`;
    await writeLog(directory, 10);
    const segment = await segmentPath(directory);
    const { size } = await Deno.stat(segment);
    await Deno.truncate(segment, Math.floor(size / 2));

    const opened = await openReplicaLog(directory, options(dataDir, { closedIndex: 10 }));
    equal(opened.store.lastIndex(), 0);
    equal(opened.recoveringTerm, 4);
    match(opened.quarantined!.reason, /ends at index 5 although index 10 was durable/);
    await opened.store.close();
  });
});

Deno.test("openReplicaLog without a clean-stop record takes a cut tail for a torn one", async () => {
  await withDataDir(async (dataDir) => {
    const directory = `${dataDir}/topics/events.3`;
    await writeLog(directory, 10);
    const segment = await segmentPath(directory);
    await Deno.truncate(segment, 9 * recordBytes + 10);
    const opened = await openReplicaLog(directory, options(dataDir));
    equal(opened.store.lastIndex(), 9);
    equal(opened.quarantined, undefined);
    await opened.store.close();
  });
});

Deno.test("openReplicaLog quarantines a metadata log wiped while the peer was stopped", async () => {
  await withDataDir(async (dataDir) => {
    const directory = `${dataDir}/meta`;
    await writeLog(directory, 10, 8);
    await Deno.remove(directory, { recursive: true });
    const opened = await openReplicaLog(directory, {
      ...options(dataDir, { closedIndex: 10 }),
      label: "meta",
    });
    equal(opened.recoveringTerm, 0, "no hard state survived: nothing can be ruled out");
    match(opened.quarantined!.reason, /ends at index 0 although index 10 was durable/);
    match(opened.quarantined!.path, /quarantine\/meta\.1000$/);
    await opened.store.close();
  });
});

Deno.test("openReplicaLog finishes a rebuild a crash interrupted, or drops a half-built one", async () => {
  await withDataDir(async (dataDir) => {
    const directory = `${dataDir}/topics/events.3`;
    // The damaged replica already left; the rebuilt one with its flag waits.
    await Deno.mkdir(`${directory}.rebuild`, { recursive: true });
    await Deno.writeTextFile(`${directory}.rebuild/${recoveringFileName}`, "6\n");
    const opened = await openReplicaLog(directory, options(dataDir));
    equal(opened.recoveringTerm, 6);
    await opened.store.close();
    deepEqual(await names(`${dataDir}/topics`), ["events.3"]);

    // The damaged replica is still in place: the half-built one goes.
    await clearRecovering(directory);
    await Deno.mkdir(`${directory}.rebuild`, { recursive: true });
    const reopened = await openReplicaLog(directory, options(dataDir));
    equal(reopened.recoveringTerm, undefined);
    await reopened.store.close();
    deepEqual(await names(`${dataDir}/topics`), ["events.3"]);
  });
});

Deno.test("openReplicaLog keeps at most quarantinedReplicasMax quarantined replicas, the newest", async () => {
  await withDataDir(async (dataDir) => {
    const directory = `${dataDir}/topics/events.3`;
    let clock = 5_000;
    for (let round = 0; round < quarantinedReplicasMax + 3; round++) {
      await writeLog(directory, 3, 3);
      await Deno.truncate(await segmentPath(directory), recordBytes);
      const opened = await openReplicaLog(directory, {
        quarantineDir: `${dataDir}/quarantine`,
        label: "events.3",
        closedIndex: 3,
        now: () => clock++,
      });
      ok(opened.quarantined !== undefined);
      await opened.store.close();
      await Deno.remove(directory, { recursive: true });
    }
    const kept = await names(`${dataDir}/quarantine`);
    equal(kept.length, quarantinedReplicasMax);
    equal(kept[0], `events.3.${5_000 + 3}`);
  });
});

Deno.test("The clean-shutdown record is read once and deleted", async () => {
  await withDataDir(async (dataDir) => {
    await writeClosedLogs(dataDir, new Map([["meta", 12], ["topics/events.3", 40]]));
    const logs = await takeClosedLogs(dataDir);
    deepEqual([...logs], [["meta", 12], ["topics/events.3", 40]]);
    deepEqual(await names(dataDir), []);
    equal((await takeClosedLogs(dataDir)).size, 0);
    await Deno.writeTextFile(`${dataDir}/${closedLogsFileName}`, "{not json");
    equal((await takeClosedLogs(dataDir)).size, 0);
  });
});
