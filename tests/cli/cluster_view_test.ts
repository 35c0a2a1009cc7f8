import assert from "node:assert/strict";
import { renderClusterView } from "../../lib/cli/_cluster_view.ts";

Deno.test("the cluster view lists nodes, topics with their leaders and the connect hint", () => {
  const view = renderClusterView({
    nodes: [
      { id: 1, address: "127.0.0.1:5001", pid: 10, state: "up", view: "1:alive 2:suspect" },
      { id: 2, address: "127.0.0.1:5002", pid: 11, state: "exited (137)" },
    ],
    topics: [{
      name: "news",
      leader: 1,
      replicas: [1, 2],
      inSync: [1],
      firstOffset: 2,
      nextOffset: 7,
    }],
    metaLeader: 1,
    uptimeMs: 4200,
    connectHint: "Connect a client: ./pubsub client --peers 127.0.0.1:5001",
  });
  assert.match(view, /1\/2 peers up, controller 1, uptime 4 s/);
  assert.match(view, /node {2}1 {2}127\.0\.0\.1:5001 +10 +up +1:alive 2:suspect/);
  assert.match(view, /node {2}2 .*exited \(137\)/);
  assert.match(view, /news +1 +1,2 +1 +5 +7/);
  assert.match(view, /Connect a client: .\/pubsub client/);
  assert.ok(!view.includes("\u001b["), "no colour unless asked");
});

Deno.test("the cluster view says so when there are no topics", () => {
  const view = renderClusterView({ nodes: [], topics: [], metaLeader: null, uptimeMs: 0 });
  assert.match(view, /\(no topics yet\)/);
  assert.match(view, /controller -/);
});
