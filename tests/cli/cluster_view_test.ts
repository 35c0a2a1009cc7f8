import assert from "node:assert/strict";
import { renderClusterView } from "../../lib/cli/_cluster_view.ts";

const topic = {
  name: "news",
  leader: 1,
  replicas: [1, 2],
  inSync: [1],
  firstOffset: 2,
  nextOffset: 7,
};

Deno.test("the cluster view lists nodes, topics with their leaders and the connect hint", () => {
  const view = renderClusterView({
    nodes: [
      { id: 1, address: "127.0.0.1:5001", pid: 10, state: "up", view: "1:alive 2:suspect" },
      { id: 2, address: "127.0.0.1:5002", pid: undefined, state: "down", detail: "exited 137" },
    ],
    topics: [topic],
    topicsKnown: true,
    metaLeader: 1,
    uptimeMs: 4200,
    connectHint: "Connect a client: ./pubsub client --peers 127.0.0.1:5001",
  });
  assert.match(view, /1\/2 peers up, controller 1, uptime 4 s/);
  assert.match(view, /1 {2}127\.0\.0\.1:5001 +10 +up +1:alive 2:suspect/);
  assert.match(view, /2 {2}127\.0\.0\.1:5002 +- +down \(exited 137\)/);
  assert.match(view, /news +1 +1,2 +1 +5 +7/);
  assert.match(view, /Connect a client: .\/pubsub client/);
  assert.ok(!view.includes("\u001b["), "no colour unless asked");
});

Deno.test("the cluster view's columns start exactly under their headers, coloured or not", () => {
  for (const color of [false, true]) {
    const view = renderClusterView({
      nodes: [
        { id: 1, address: "127.0.0.1:5001", pid: 12345, state: "up", view: "1:alive" },
        { id: 10, address: "127.0.0.1:50010", pid: 7, state: "no answer" },
      ],
      topics: [topic, { ...topic, name: "a-much-longer-topic-name", leader: null }],
      topicsKnown: true,
      metaLeader: 1,
      uptimeMs: 0,
    }, { color });
    // deno-lint-ignore no-control-regex
    const lines = view.replace(/\x1b\[\d+m/g, "").split("\n");
    const header = lines.find((line) => line.includes("address"))!;
    const row = lines.find((line) => line.includes("50010"))!;
    assert.equal(row.indexOf("127.0.0.1:50010"), header.indexOf("address"));
    assert.equal(row.indexOf("no answer"), header.indexOf("state"));
    const topicHeader = lines.find((line) => line.includes("leader"))!;
    const longRow = lines.find((line) => line.includes("a-much-longer"))!;
    // Right-aligned numbers end where their header ends.
    const end = (line: string, text: string) => line.indexOf(text) + text.length;
    assert.equal(end(longRow, " 7"), end(topicHeader, "next offset"));
  }
});

Deno.test("the cluster view says when there is no quorum and which peers are missing", () => {
  const view = renderClusterView({
    nodes: [
      { id: 1, address: "127.0.0.1:5001", pid: 10, state: "up" },
      { id: 2, address: "127.0.0.1:5002", pid: undefined, state: "down", detail: "exited 137" },
      { id: 3, address: "127.0.0.1:5003", pid: 12, state: "no answer" },
    ],
    topics: [topic],
    topicsKnown: true,
    topicsAgeMs: 12_300,
    metaLeader: null,
    uptimeMs: 0,
  });
  assert.match(view, /No quorum: peers 2, 3 are not up; writes wait until 2 of 3 peers are up\./);
  assert.match(view, /topics \(as of 12 s ago: no peer could list them now\)/);
  assert.match(view, /news/, "the last known topics stay listed");
});

Deno.test("the cluster view tells 'no topics' from 'not known yet'", () => {
  const base = { nodes: [], topics: [], metaLeader: null, uptimeMs: 0 };
  assert.match(renderClusterView({ ...base, topicsKnown: true }), /\(no topics yet\)/);
  assert.match(renderClusterView({ ...base, topicsKnown: false }), /\(not known yet\)/);
  assert.match(renderClusterView(base), /controller -/);
});
