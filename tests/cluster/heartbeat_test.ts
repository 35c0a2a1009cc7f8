import assert from "node:assert/strict";
import { ClusterNode } from "../../lib/cluster/cluster_node.ts";
import { LocalBroker } from "../../lib/peer/local_broker.ts";
import { Server } from "../../lib/peer/server.ts";
import type { NodeStatus } from "../../lib/wire/responses.ts";
import { freePort } from "../_helpers/peer_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";

const entryPath = new URL("./_membership_peer.ts", import.meta.url).pathname;
const heartbeatMs = 200;
const deadAfterMs = 1500;
/** Longest a peer may take to print that it listens. */
const readyTimeoutMs = 30_000;
/** Longest any membership change may take to show up. */
const convergeTimeoutMs = 10_000;

/** A membership peer child process. */
interface PeerChild {
  id: number;
  port: number;
  child: Deno.ChildProcess;
  status: Promise<Deno.CommandStatus>;
}

async function spawnPeer(id: number, port: number, peers: string, dataDir: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      entryPath,
      ...["--id", String(id), "--port", String(port), "--peers", peers],
      ...["--heartbeat-ms", String(heartbeatMs), "--dead-after", String(deadAfterMs)],
      ...["--data-dir", dataDir],
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const status = child.status;
  const peer: PeerChild = { id, port, child, status };
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => killPeer(peer), readyTimeoutMs);
  let output = "";
  try {
    while (!output.includes(`listening on 127.0.0.1:${port}`)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`Peer ${id} exited before listening: ${output}`);
      output += value;
    }
  } finally {
    clearTimeout(timer);
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })().catch(() => {});
  return peer;
}

async function killPeer(peer: PeerChild): Promise<void> {
  try {
    peer.child.kill("SIGKILL");
  } catch {
    // Already exited.
  }
  await peer.status;
}

/** The `cluster_status` nodes of the peer on `port`. */
async function nodesSeenBy(port: number): Promise<NodeStatus[]> {
  const client = await RawClient.connect(port);
  try {
    const answer = await client.request({ action: "cluster_status" }, 2000) as {
      nodes: NodeStatus[];
    };
    return answer.nodes;
  } finally {
    await client.close();
  }
}

function statesOf(nodes: NodeStatus[]): Record<number, string> {
  return Object.fromEntries(nodes.map((node) => [node.id, node.state]));
}

/** Polls until `check` holds for the view of every peer in `ports`, or fails with the last views. */
async function waitForViews(
  description: string,
  ports: number[],
  check: (states: Record<number, string>) => boolean,
): Promise<void> {
  const deadline = Date.now() + convergeTimeoutMs;
  let last: Record<number, string>[] = [];
  while (Date.now() < deadline) {
    last = await Promise.all(ports.map(async (port) => statesOf(await nodesSeenBy(port))));
    if (last.every(check)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`Timed out waiting until ${description}; last views: ${JSON.stringify(last)}`);
}

/** A view of the peer on `port` in which every one of `ids` is alive (polled, bounded). */
async function aliveView(port: number, ids: number[]): Promise<NodeStatus[]> {
  const deadline = Date.now() + convergeTimeoutMs;
  let last: NodeStatus[] = [];
  while (Date.now() < deadline) {
    last = await nodesSeenBy(port);
    const states = statesOf(last);
    if (ids.every((id) => states[id] === "alive")) return last;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`Timed out waiting for a view with ${ids} alive; last: ${JSON.stringify(last)}`);
}

Deno.test("peers detect each other alive, a killed peer suspect then dead then alive again on restart, and learn a late joiner by gossip", async () => {
  const ports = [freePort(), freePort(), freePort(), freePort()];
  const dataDir = await Deno.makeTempDir({ prefix: "pubsub-heartbeat-test-" });
  const list = ports.slice(0, 3).map((port, index) => `${index + 1}@127.0.0.1:${port}`).join(",");
  const peers: PeerChild[] = [];
  const start = async (id: number, peerList: string) => {
    const peer = await spawnPeer(id, ports[id - 1], peerList, `${dataDir}/${id}`);
    peers.push(peer);
    return peer;
  };
  try {
    await Promise.all([1, 2, 3].map((id) => start(id, list)));
    const all = ports.slice(0, 3);
    await waitForViews(
      "all three see each other alive",
      all,
      (states) => states[1] === "alive" && states[2] === "alive" && states[3] === "alive",
    );
    // The ages and the states of one view: under load a view taken a moment
    // later may find a heartbeat late, so wait for one that shows all alive.
    const view = await aliveView(ports[0], [1, 2, 3]);
    assert.deepEqual(view.map(({ id, address }) => ({ id, address })), [
      { id: 1, address: `127.0.0.1:${ports[0]}` },
      { id: 2, address: `127.0.0.1:${ports[1]}` },
      { id: 3, address: `127.0.0.1:${ports[2]}` },
    ]);
    assert.equal(view[0].last_heartbeat_ms_ago, 0);
    assert.ok(view.every((node) => node.last_heartbeat_ms_ago <= 2 * heartbeatMs));

    await killPeer(peers.find((peer) => peer.id === 3)!);
    const survivors = ports.slice(0, 2);
    await waitForViews(
      "the survivors suspect peer 3",
      survivors,
      (states) => states[3] === "suspect",
    );
    await waitForViews(
      "the survivors declare peer 3 dead",
      survivors,
      (states) => states[3] === "dead",
    );
    const silent = (await nodesSeenBy(ports[0])).find((node) => node.id === 3)!;
    assert.ok(silent.last_heartbeat_ms_ago >= deadAfterMs);

    await start(3, list);
    await waitForViews(
      "the restarted peer 3 is alive for all",
      all,
      (states) => states[1] === "alive" && states[2] === "alive" && states[3] === "alive",
    );

    await start(4, `4@127.0.0.1:${ports[3]},1@127.0.0.1:${ports[0]}`);
    await waitForViews(
      "all four see each other alive",
      ports,
      (states) => [1, 2, 3, 4].every((id) => states[id] === "alive"),
    );
  } finally {
    await Promise.all(peers.map(killPeer));
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a ClusterNode that leaves gracefully is reported left, not dead, by the others", async () => {
  const ports = [freePort(), freePort()];
  const dataDir = await Deno.makeTempDir({ prefix: "pubsub-leave-test-" });
  const peers = ports.map((port, index) => ({ id: index + 1, host: "127.0.0.1", port }));
  const nodes: { cluster: ClusterNode; server: Server; broker: LocalBroker }[] = [];
  try {
    for (const peer of peers) {
      const broker = await LocalBroker.open({
        nodeId: peer.id,
        dataDir: `${dataDir}/${peer.id}`,
        address: `127.0.0.1:${peer.port}`,
      });
      const cluster = ClusterNode.start({ ...peer, peers, heartbeatMs, deadAfterMs });
      const server = Server.listen({
        hostname: "127.0.0.1",
        port: peer.port,
        broker,
        frameBytesMax: 1024 * 1024,
        idleTimeoutMs: 30_000,
        requestTimeoutMs: 5_000,
        peerHandler: cluster.peerHandler,
      });
      nodes.push({ cluster, server, broker });
    }
    const stateOf = (viewer: number, id: number) =>
      nodes[viewer].cluster.membership.view().find((node) => node.id === id)?.state;
    const deadline = Date.now() + convergeTimeoutMs;
    while (stateOf(0, 2) !== "alive" || stateOf(1, 1) !== "alive") {
      assert.ok(Date.now() < deadline, "the two nodes never saw each other alive");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await nodes[1].cluster.leave();
    assert.equal(stateOf(0, 2), "left");
    assert.deepEqual(nodes[0].cluster.membership.targets(), []);
  } finally {
    for (const { cluster, server, broker } of nodes) {
      await cluster.close();
      await server.close();
      await broker.close();
    }
    await Deno.remove(dataDir, { recursive: true });
  }
});
