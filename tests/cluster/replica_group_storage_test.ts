import assert from "node:assert/strict";
import type { RaftTopic } from "../../lib/cluster/raft_topic.ts";
import type { ReplicaGroup } from "../../lib/cluster/replica_group.ts";
import type { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { StorageFullError } from "../../lib/storage/segment_log_store.ts";
import { ProtocolError } from "../../lib/wire/errors.ts";
import { soloRaftTopic } from "../_helpers/solo_topic.ts";

/** A one-voter group ticked every 5 ms, over a store that can fail its next sync. */
function soloTopic(): {
  topic: RaftTopic;
  group: ReplicaGroup;
  store: MemoryLogStore;
  stop(): Promise<void>;
} {
  const { topic, group, store } = soloRaftTopic({ seed: 7 });
  const ticker = setInterval(() => group.tick(), 5);
  return {
    topic,
    group,
    store,
    async stop() {
      clearInterval(ticker);
      topic.close();
      await group.close();
    },
  };
}

async function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

Deno.test("ReplicaGroup answers storage_full after a failed sync, keeps serving applied messages, and restarts from its durable log by itself", async () => {
  const { topic, group, store, stop } = soloTopic();
  try {
    await until("a leader", () => Promise.resolve(group.isLeader || undefined));
    for (let index = 0; index < 5; index++) {
      assert.equal((await topic.publish([`m${index}`])).firstOffset, index);
    }
    store.failNextSync(new StorageFullError("/data/topics/events"));
    await assert.rejects(topic.publish(["lost"]), (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, "storage_full");
      assert.match(error.message, /disk holding topic 'events' is full/);
      return true;
    });
    assert.equal(group.isLeader, false);
    assert.equal(group.storageFailure?.code, "storage_full");
    // Reads of applied messages go on while the replica is down.
    const { messages } = await topic.readCommitted(0, 100);
    assert.deepEqual(messages.map((item) => item.message), ["m0", "m1", "m2", "m3", "m4"]);
    // The replica restarts from the durable log, leads again, and takes writes.
    const offset = await until("writes to resume", async () => {
      if (!group.isLeader) return undefined;
      return (await topic.publish(["after"])).firstOffset;
    });
    assert.equal(offset, 5, "the unsynced publish must not have taken an offset");
    assert.equal(group.storageFailure, undefined);
    const read = await topic.read(0, 100);
    assert.deepEqual(read.messages.map((item) => item.message), [
      "m0",
      "m1",
      "m2",
      "m3",
      "m4",
      "after",
    ]);
  } finally {
    await stop();
  }
});
