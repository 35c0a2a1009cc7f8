/**
 * Order is kept per topic, not per connection: a request for a topic without
 * a leader does not hold back a request for another topic pipelined behind
 * it on the same connection. Real peer processes; the leaderless topic has
 * two replicas, its leader is frozen (SIGSTOP), and the request reaches the
 * other one.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startCluster, waitFor } from "../_helpers/cluster_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";
import { encodeFrame } from "../../lib/wire/frame.ts";

Deno.test("a topic without a leader does not delay another topic's publish on the same connection", async () => {
  // Replicas stay where they are for the whole test: nothing is moved off the stopped peer.
  const cluster = await startCluster(3, { args: () => ["--dead-after", "60000"] });
  const client = await cluster.client();
  let frozen: number | undefined;
  try {
    const placed = async (topic: string, replicationFactor: number) => {
      await client.createTopic(topic, { replicationFactor });
      return await waitFor(`a leader of '${topic}'`, async () => {
        const { leader, replicas } = await client.describeTopic(topic);
        return leader === null ? undefined : { leader, replicas };
      });
    };
    // 'stuck' lives on two peers; freezing its leader leaves the other (the edge) without one.
    const stuck = await placed("stuck", 2);
    const edge = cluster.peer(stuck.replicas.find((id) => id !== stuck.leader)!);
    let other = "other0";
    for (let index = 1; (await placed(other, 1)).leader === stuck.leader; index++) {
      other = `other${index}`;
    }
    // Frozen, not killed: its links stay up, so the edge waits for a leader instead of failing fast.
    frozen = cluster.peer(stuck.leader).pid;
    Deno.kill(frozen, "SIGSTOP");
    // Past the edge's election timeout (at most 2 s): it no longer knows a leader.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const raw = await RawClient.connect(edge.port);
    const watcher = await RawClient.connect(edge.port);
    try {
      await raw.sendBytes(
        new Uint8Array([
          ...encodeFrame({ action: "publish", topic_name: "stuck", message: "waits", id: 1 }),
          ...encodeFrame({ action: "publish", topic_name: other, message: "passes", id: 2 }),
        ]),
      );
      // The second publish is stored while the first still waits for a leader...
      await waitFor(`the publish to '${other}'`, async () => {
        await watcher.sendBytes(encodeFrame({ action: "fetch_messages", topic_name: other }));
        const stored = await watcher.next() as string[];
        return stored.includes("passes");
      }, 10_000);
      // ...so no answer has come yet: the first one is still being routed.
      await assert.rejects(raw.next(0), /Timed out waiting for a frame/);
      const [first, second] = [await raw.next(), await raw.next()] as Record<string, unknown>[];
      // Answers keep request order on the connection.
      assert.equal(first.id, 1);
      assert.equal(first.status, "unavailable", JSON.stringify(first));
      assert.equal(second.id, 2);
      assert.equal(second.status, "message_published");
    } finally {
      await raw.close();
      await watcher.close();
    }
  } finally {
    if (frozen !== undefined) Deno.kill(frozen, "SIGCONT");
    await client.close();
    await cluster.dispose();
  }
});
