/**
 * Forwarding from a peer that does not lead the topic: pipelined plain
 * publishes relayed in batches still get one answer each, in request order,
 * with dense offsets in that order. Real peer processes, a raw client.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startCluster, waitForLeader } from "../_helpers/cluster_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";
import { encodeFrame } from "../../lib/wire/frame.ts";

Deno.test("pipelined publishes on a peer that does not lead the topic are answered in order with dense offsets", async () => {
  const cluster = await startCluster(3);
  const client = await cluster.client();
  try {
    await client.createTopic("relayed");
    const leader = await waitForLeader(client, "relayed");
    const edge = cluster.peers.find((peer) => peer.id !== leader)!;
    const raw = await RawClient.connect(edge.port);
    try {
      const count = 600;
      const frames = Array.from({ length: count }, (_, index) =>
        encodeFrame({
          action: "publish",
          topic_name: "relayed",
          message: `m${index}`,
          ...(index % 3 === 0 ? { id: index } : {}),
        }));
      // Two bursts: the second arrives while the first is still being relayed.
      await raw.sendBytes(new Uint8Array(frames.slice(0, 400).flatMap((frame) => [...frame])));
      await raw.sendBytes(new Uint8Array(frames.slice(400).flatMap((frame) => [...frame])));
      for (let index = 0; index < count; index++) {
        const answer = await raw.next() as Record<string, unknown>;
        const expected: Record<string, unknown> = {
          status: "message_published",
          topic: "relayed",
          offset: index,
        };
        if (index % 3 === 0) expected.id = index;
        assert.deepEqual(answer, expected);
      }
      const stored = await client.fetchMessages("relayed");
      assert.deepEqual(stored, Array.from({ length: count }, (_, index) => `m${index}`));
    } finally {
      await raw.close();
    }
  } finally {
    await client.close();
    await cluster.dispose();
  }
});
