import assert from "node:assert/strict";
import { Timeline } from "../../web/timeline.js";

const cluster = {
  nodes: [{ id: 1, address: "127.0.0.1:1", state: "alive" }],
  meta_leader: 1,
  topics: 1,
};

function snapshot(t: number, orders: Record<string, unknown>) {
  return { t, node: 2, cluster, topics: new Map([["orders", orders]]) };
}

Deno.test("the console timeline sees a leader move across a poll where the topic could not be described", () => {
  const timeline = new Timeline();
  timeline.observe(snapshot(1, { leader: 1, replicas: [1, 2, 3], in_sync: [1, 2, 3] }));
  // During the election the topic answers unavailable.
  timeline.observe(snapshot(2, { error: "Topic 'orders' has no leader" }));
  timeline.observe(snapshot(3, { leader: 2, replicas: [1, 2, 3], in_sync: [2, 3] }));
  const texts = timeline.events.map((event: { text: string }) => event.text);
  assert.ok(texts.includes("orders: leader moved from peer 1 to peer 2"), texts.join("\n"));
});
