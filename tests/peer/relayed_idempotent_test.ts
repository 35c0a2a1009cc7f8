/**
 * Idempotent publishes on a peer that does not lead the topic travel to the
 * leader together (`publish_parts`, each with its own producer sequence),
 * and still get the answers a direct publish gets, in request order: new
 * offsets, a retry's original offset, out-of-order refusals; interleaved
 * with plain publishes, the topic keeps the request order. Real peer
 * processes, a raw client.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startCluster, waitForLeader } from "../_helpers/cluster_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";
import { encodeFrame } from "../../lib/wire/frame.ts";

Deno.test("pipelined idempotent publishes relayed by a non-leader are answered in order like direct ones", async () => {
  const cluster = await startCluster(3);
  const client = await cluster.client();
  try {
    await client.createTopic("relayed-idem");
    const leader = await waitForLeader(client, "relayed-idem");
    const edge = cluster.peers.find((peer) => peer.id !== leader)!;
    const raw = await RawClient.connect(edge.port);
    try {
      // Producer p: 0..99 then a retry of 5 and a gap (200); producer q: 0..49;
      // every fifth request a plain publish in between.
      const requests: Record<string, unknown>[] = [];
      const expected: Record<string, unknown>[] = [];
      const stored: string[] = [];
      const publish = (message: string, producer?: [string, number]) => {
        const id = requests.length;
        requests.push({
          action: "publish",
          topic_name: "relayed-idem",
          message,
          id,
          ...(producer ? { producer_id: producer[0], sequence: producer[1] } : {}),
        });
        return id;
      };
      const published = (id: number) => {
        expected[id] = {
          status: "message_published",
          topic: "relayed-idem",
          offset: stored.length,
          id,
        };
        stored.push(requests[id].message as string);
      };
      for (let index = 0; index < 100; index++) {
        published(publish(`p${index}`, ["p", index]));
        if (index < 50) published(publish(`q${index}`, ["q", index]));
        if (index % 5 === 0) published(publish(`plain${index}`));
      }
      const retry = publish("p5", ["p", 5]);
      const pOffset = stored.indexOf("p5");
      expected[retry] = {
        status: "message_published",
        topic: "relayed-idem",
        offset: pOffset,
        id: retry,
      };
      const gap = publish("p200", ["p", 200]);
      expected[gap] = { status: "out_of_order_sequence", id: gap };
      const bytes = requests.flatMap((request) => [...encodeFrame(request)]);
      await raw.sendBytes(new Uint8Array(bytes));
      for (let index = 0; index < requests.length; index++) {
        const answer = await raw.next() as Record<string, unknown>;
        if (index === gap) {
          assert.equal(answer.status, "out_of_order_sequence");
          assert.equal(answer.id, gap);
          assert.equal(typeof answer.error, "string");
          continue;
        }
        assert.deepEqual(answer, expected[index]);
      }
      assert.deepEqual(await client.fetchMessages("relayed-idem"), stored);
    } finally {
      await raw.close();
    }
  } finally {
    await client.close();
    await cluster.dispose();
  }
});

Deno.test("a client's own publish_parts is refused: only peers relay it", async () => {
  const cluster = await startCluster(1);
  try {
    const raw = await RawClient.connect(cluster.peers[0].port);
    try {
      const answer = await raw.request({
        action: "publish_parts",
        topic_name: "anything",
        parts: [{ message: "m", producer_id: "p", sequence: 0 }],
      }) as Record<string, unknown>;
      assert.equal(answer.status, "bad_request");
      assert.equal(answer.error, "Action 'publish_parts' is only relayed by peers.");
    } finally {
      await raw.close();
    }
  } finally {
    await cluster.dispose();
  }
});
