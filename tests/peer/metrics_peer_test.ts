import assert from "node:assert/strict";
import { freePort, startPeer } from "../_helpers/peer_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";

Deno.test("a peer with --metrics-port serves its request, latency and replication metrics", async () => {
  const metricsPort = freePort();
  const peer = await startPeer({ args: ["--metrics-port", String(metricsPort)] });
  try {
    const client = await RawClient.connect(peer.port);
    await client.request({ action: "create_topic", topic_name: "observed" });
    await client.request({ action: "publish", topic_name: "observed", message: "x" });
    await client.request({ action: "fetch", topic_name: "observed" });
    await client.request({ action: "publish", topic_name: "missing", message: "x" });
    await client.close();
    // Gauges refresh every second.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.match(text, /pubsub_requests_total\{action="publish",status="message_published"\} 1/);
    assert.match(text, /pubsub_requests_total\{action="publish",status="topic_not_found"\} 1/);
    assert.match(text, /pubsub_publish_latency_seconds_count 2/);
    assert.match(text, /pubsub_fetch_latency_seconds_count 1/);
    assert.match(text, /pubsub_raft_term\{group="t:observed"\} [1-9]/);
    assert.match(text, /pubsub_replica_lag_entries\{topic="observed"\} 0/);
    assert.match(text, /pubsub_leader_changes_total [1-9]/);
    assert.match(text, /pubsub_connections [0-9]/);
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});
