/**
 * `countDeliveries` (lib/http/deliveries.ts) over a real standalone broker:
 * methods reach the broker bound to it, the same function on every access
 * (the request path asks for `leadingTopic` on every publish), and what
 * subscription sources return is counted.
 *
 * @module
 */

import assert from "node:assert/strict";
import { countDeliveries, DeliveryCounts } from "../../lib/http/deliveries.ts";
import { LocalBroker } from "../../lib/peer/local_broker.ts";

Deno.test("countDeliveries binds each method once and counts what sources return", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "pubsub-deliveries-" });
  const broker = await LocalBroker.open({ nodeId: 1, dataDir, address: "127.0.0.1:1" });
  try {
    const counts = new DeliveryCounts();
    const counted = countDeliveries(broker, counts);
    assert.equal(counted.leadingTopic, counted.leadingTopic);
    assert.equal(counted.nodeId, 1);
    assert.equal(await counted.createTopic("events"), true);
    const topic = await counted.topic("events");
    await topic.publish(["a", "b"]);
    assert.equal(counted.leadingTopic!("events"), topic);
    assert.equal(counted.leadingTopic!("missing"), undefined);
    const source = await counted.source("events");
    const read = await source.readCommitted(0, 10);
    assert.deepStrictEqual(read.messages.map((item) => item.message), ["a", "b"]);
    assert.deepStrictEqual(counts.snapshot(), { events: 2 });
  } finally {
    await broker.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
