import assert from "node:assert/strict";
import { RawClient } from "../_helpers/raw_client.ts";
import { startCluster } from "../_helpers/cluster_process.ts";

Deno.test("a topic created through one peer can be used at once through every other peer", async () => {
  const cluster = await startCluster(3);
  const [first, second, third] = cluster.peers;
  const creator = await RawClient.connect(first.port);
  const others = [await RawClient.connect(second.port), await RawClient.connect(third.port)];
  try {
    for (let round = 0; round < 10; round++) {
      const topic = `ryw-${round}`;
      const created = await creator.request({ action: "create_topic", topic_name: topic }) as {
        status: string;
      };
      assert.equal(created.status, "topic_created");
      // At once, on the other peers: no topic_not_found, whatever their metadata has applied.
      const other = others[round % 2];
      const described = await other.request({ action: "describe_topic", topic_name: topic }) as {
        status: string;
      };
      assert.equal(described.status, "topic", `describe ${topic}: ${JSON.stringify(described)}`);
      const published = await others[(round + 1) % 2].request({
        action: "publish",
        topic_name: topic,
        message: "m",
      }) as { status: string };
      assert.equal(published.status, "message_published", `publish ${topic}`);
      const subscribed = await other.request({
        action: "subscribe",
        topic_name: topic,
        subscriber_id: `s${round}`,
        from: "earliest",
      }) as { status: string };
      assert.equal(subscribed.status, "subscribed", `subscribe ${topic}`);
      const pushed = await other.next() as { event: string; message: string };
      assert.equal(pushed.message, "m");
      await other.request({ action: "unsubscribe", topic_name: topic, subscriber_id: `s${round}` });
    }
  } finally {
    await creator.close();
    for (const client of others) await client.close();
    await cluster.dispose();
  }
});
