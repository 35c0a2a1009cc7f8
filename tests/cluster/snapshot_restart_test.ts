/**
 * Real peers that compact often (`--snapshot-entries 20`): after every peer
 * restarts, a topic's state comes back from its snapshot, not from replaying
 * the log from its start. Subscriber positions and the idempotent-producer
 * table must survive that: a durable subscriber resumes after its last
 * acknowledgement, and a retried idempotent publish is still recognised.
 * The metadata group compacts the same way: the topics survive its restore.
 */

import assert from "node:assert/strict";
import type { PubSubClient } from "../../lib/client/client.ts";
import { SegmentLogStore } from "../../lib/storage/segment_log_store.ts";
import { startCluster, waitFor, waitForLeader } from "../_helpers/cluster_process.ts";

async function allInSync(client: PubSubClient, topic: string): Promise<void> {
  await waitFor(`3 in-sync replicas of ${topic}`, async () => {
    const info = await client.describeTopic(topic);
    return info.inSync.length === 3 && info.replicas.length === 3;
  }, 30_000);
}

function publishAs(client: PubSubClient, topic: string, sequence: number) {
  return client.request({
    action: "publish",
    topic_name: topic,
    message: `p-${sequence}`,
    producer_id: "producer-1",
    sequence,
  }, { retry: true }) as Promise<{ status: string; offset: number }>;
}

/**
 * The snapshot index of the (stopped) peer's replica of `topic` (or, with
 * `metadata`, of the directory `name` under the data directory).
 */
async function snapshotIndexOf(dataDir: string, topic: string, metadata = false): Promise<number> {
  let path = `${dataDir}/${topic}`;
  if (!metadata) {
    const names = [...Deno.readDirSync(`${dataDir}/topics`)].map((entry) => entry.name);
    const directory = names.find((name) => name.startsWith(`${topic}.`));
    assert.ok(directory !== undefined, `no replica of ${topic} in ${dataDir}`);
    path = `${dataDir}/topics/${directory}`;
  }
  const store = await SegmentLogStore.open(path);
  try {
    return store.snapshot()?.index ?? 0;
  } finally {
    await store.close();
  }
}

Deno.test("peers restarted after compaction restore subscriber positions and producer sequences from their snapshots", async () => {
  const cluster = await startCluster(3, { args: () => ["--snapshot-entries", "20"] });
  let client = await cluster.client();
  try {
    await client.createTopic("events");
    await allInSync(client, "events");
    // Enough metadata entries (creations, group reports) for metadata snapshots too.
    const others = Array.from({ length: 12 }, (_, number) => `other-${number}`);
    for (const name of others) await client.createTopic(name);
    const first: { offset: number }[] = [];
    for (let sequence = 0; sequence < 40; sequence++) {
      const answer = await publishAs(client, "events", sequence);
      assert.equal(answer.status, "message_published");
      first.push(answer);
    }
    await client.ack("events", "billing", first[24].offset);
    // Enough entries after the acknowledgement for every replica to take
    // a snapshot that covers it (one every 20 applied entries).
    for (let sequence = 40; sequence < 100; sequence++) {
      assert.equal((await publishAs(client, "events", sequence)).status, "message_published");
    }
    const ackIndexBound = 45;
    // The leader buffers acks for up to ackFlushMs and writes them when it
    // stops; stopped first, with both followers still up, that entry
    // commits. (Stopped all at once, the followers may close before it, and
    // an uncommitted ack is lost: a redelivery, allowed, but not what this
    // test is about. Faster publishes made that race show up.)
    const leader = await waitForLeader(client, "events");
    await client.close();
    await cluster.peer(leader).stop();
    await cluster.stopAll();
    for (const peer of cluster.peers) {
      const index = await snapshotIndexOf(peer.dataDir, "events");
      assert.ok(index > ackIndexBound, `peer ${peer.dataDir} snapshot at ${index}`);
    }

    for (const peer of cluster.peers) {
      const index = await snapshotIndexOf(peer.dataDir, "meta", true);
      assert.ok(index >= 20, `peer ${peer.dataDir} metadata snapshot at ${index}`);
    }

    for (let id = 1; id <= 3; id++) await cluster.start(id);
    client = await cluster.client();
    await allInSync(client, "events");
    assert.deepEqual((await client.topics()).sort(), ["events", ...others].sort());
    // A retry of an old sequence (inside the producer window) is answered with
    // its original offset and stores nothing.
    const retry = await publishAs(client, "events", 7);
    assert.equal(retry.status, "message_published");
    assert.equal(retry.offset, first[7].offset);
    const next = await publishAs(client, "events", 100);
    assert.equal(next.offset, 100);
    const messages = await client.fetchMessages("events");
    assert.equal(messages.length, 101);
    assert.equal(messages[7], "p-7");
    // The durable subscriber resumes right after its acknowledged offset.
    const subscription = await client.subscribe("events", "billing", { autoAck: false });
    const iterator = subscription[Symbol.asyncIterator]();
    // Bounded: a subscriber that lost its position would wait forever.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const resumed = await Promise.race([
      iterator.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("the durable subscriber got nothing in 15 s")),
          15_000,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    assert.equal(resumed.value.offset, first[24].offset + 1);
    await iterator.return?.();
  } finally {
    await client.close().catch(() => {});
    await cluster.dispose();
  }
});
