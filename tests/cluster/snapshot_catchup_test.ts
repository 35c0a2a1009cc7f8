/**
 * Snapshot catch-up between real peers: a follower that was down while its
 * leader's retention deleted the segments it would have needed is caught up
 * by a snapshot transfer (the image plus only the retained entries), and
 * ends with exactly the leader's messages at the same offsets for the
 * retained range.
 */

import assert from "node:assert/strict";
import type { PubSubClient } from "../../lib/client/client.ts";
import { TopicReader } from "../../lib/peer/topic_reader.ts";
import { TopicState } from "../../lib/peer/topic_state.ts";
import { SegmentLogStore } from "../../lib/storage/segment_log_store.ts";
import { EntryType } from "../../lib/storage/types.ts";
import type { OffsetMessage } from "../../lib/wire/responses.ts";
import {
  startCluster,
  type TestCluster,
  waitFor,
  waitForFullReplication,
} from "../_helpers/cluster_process.ts";

async function replicaDir(cluster: TestCluster, id: number, topic: string): Promise<string> {
  const topics = `${cluster.root}/${id}/topics`;
  for await (const entry of Deno.readDir(topics)) {
    if (entry.isDirectory && entry.name.startsWith(`${topic}.`)) return `${topics}/${entry.name}`;
  }
  throw new Error(`Peer ${id} holds no replica of '${topic}'`);
}

/**
 * What a stopped replica serves: its state restored from its snapshot,
 * the entries after it applied, and the messages of its retained range.
 */
async function retainedMessages(
  directory: string,
): Promise<{ firstIndex: number; snapshotIndex: number; messages: OffsetMessage[] }> {
  const store = await SegmentLogStore.open(directory);
  try {
    const state = new TopicState();
    const snapshot = store.snapshot();
    if (snapshot !== undefined) state.restore(snapshot.data, snapshot.index);
    for (const entry of store.entries(state.appliedIndex + 1, store.lastIndex() + 1)) {
      if (entry.type === EntryType.ConfChange) state.skip(entry.index);
      else state.apply(entry.index, entry.data);
    }
    const reader = new TopicReader(store, state);
    return {
      firstIndex: store.firstIndex(),
      snapshotIndex: snapshot?.index ?? 0,
      messages: reader.read(state.firstOffset, Number.MAX_SAFE_INTEGER, state.nextOffset).messages,
    };
  } finally {
    await store.close();
  }
}

async function describe(client: PubSubClient, topic: string): Promise<Record<string, unknown>> {
  return await client.request({ action: "describe_topic", topic_name: topic }, {
    retry: true,
  }) as Record<string, unknown>;
}

async function publish(client: PubSubClient, topic: string, batches: number, tag: string) {
  for (let batch = 0; batch < batches; batch++) {
    await client.publishBatch(
      topic,
      Array.from({ length: 10 }, (_, n) => `${tag}-${batch}-${n}-${"x".repeat(150)}`),
    );
  }
}

Deno.test("a follower down while its leader's retention deleted segments catches up by snapshot and ends identical for the retained range", async () => {
  const cluster = await startCluster(3, {
    args: () => ["--snapshot-entries", "50"],
    metrics: true,
  });
  let client = await cluster.client();
  try {
    await client.createTopic("events", {
      retention: { max_messages: 300, segment_bytes: 4096 },
    });
    await waitFor("3 in-sync replicas", async () => {
      const info = await client.describeTopic("events");
      return info.inSync.length === 3 && info.leader !== undefined;
    }, 30_000);
    await publish(client, "events", 20, "before");
    const leader = (await client.describeTopic("events")).leader!;
    const down = [1, 2, 3].find((id) => id !== leader)!;
    await client.close();
    await cluster.peer(down).stop();
    client = await cluster.client();
    // Far more than retention keeps: the leader deletes the segments the
    // stopped follower would need next (it held 200 messages).
    await publish(client, "events", 120, "while-down");
    await waitFor("retention past the stopped follower's log", async () => {
      const answer = await describe(client, "events");
      return (answer.first_offset as number) > 600;
    }, 30_000);
    const leaderDir = await replicaDir(cluster, leader, "events");
    await waitFor("the leader deleted its old segments", () => {
      const first = [...Deno.readDirSync(leaderDir)].map((entry) => entry.name)
        .filter((name) => name.endsWith(".log")).sort()[0];
      return first !== undefined && Number(first.slice(0, 20)) > 40;
    }, 30_000);

    // The follower's log ends before the leader's first held entry: appends
    // cannot catch it up, only a snapshot can.
    const downDir = await replicaDir(cluster, down, "events");
    const stale = await SegmentLogStore.open(downDir);
    const downLast = stale.lastIndex();
    await stale.close();
    const leaderFirst = Number(
      [...Deno.readDirSync(leaderDir)].map((entry) => entry.name)
        .filter((name) => name.endsWith(".log")).sort()[0].slice(0, 20),
    );
    assert.ok(
      leaderFirst > downLast + 1,
      `leader holds from ${leaderFirst}, follower to ${downLast}`,
    );
    await cluster.start(down);
    await waitFor(`peer ${down} back in sync`, async () => {
      const info = await client.describeTopic("events");
      return info.inSync.includes(down);
    }, 30_000);
    await publish(client, "events", 2, "after");
    const nextOffset = (await describe(client, "events")).next_offset as number;
    await client.close();
    // in_sync may list a follower still missing the last publish: wait until
    // every replica holds the whole log before stopping them.
    await waitForFullReplication(cluster, "events");
    await cluster.stopAll();

    const leaderView = await retainedMessages(leaderDir);
    const followerView = await retainedMessages(downDir);
    assert.ok(followerView.snapshotIndex > 0);
    // Never the whole history: the follower holds no entry the leader had deleted.
    assert.ok(followerView.firstIndex >= leaderFirst, `follower from ${followerView.firstIndex}`);
    assert.equal(leaderView.messages.at(-1)?.offset, nextOffset - 1);
    const from = Math.max(leaderView.messages[0].offset, followerView.messages[0].offset);
    const range = (view: { messages: OffsetMessage[] }) =>
      view.messages.filter((item) => item.offset >= from);
    assert.ok(range(leaderView).length >= 300, `${range(leaderView).length} messages compared`);
    assert.deepEqual(range(followerView), range(leaderView));
  } finally {
    await client.close().catch(() => {});
    await cluster.dispose();
  }
});
