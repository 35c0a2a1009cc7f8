import assert from "node:assert/strict";
import { PubSubClient } from "../../lib/client/client.ts";
import { ClusterSecret } from "../../lib/cluster/peer_auth.ts";
import { startCluster, waitFor } from "../_helpers/cluster_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";
import { freePort, runPeerToExit, startPeer } from "../_helpers/peer_process.ts";
import { tlsUnavailable } from "../_helpers/tls.ts";

/** Creates `topic`, waits for 3 in-sync replicas and publishes `count` messages. */
async function seed(client: PubSubClient, topic: string, count: number): Promise<string[]> {
  await client.createTopic(topic);
  await waitFor(`3 in-sync replicas of ${topic}`, async () => {
    const info = await client.describeTopic(topic);
    return info.inSync.length === 3;
  });
  const messages = Array.from({ length: count }, (_, index) => `${topic}-${index}`);
  for (const message of messages) await client.publish(topic, message);
  return messages;
}

/** Every `peer_*` action a stranger could try, in the shapes a real peer sends. */
function strangerFrames(leader: number): Record<string, unknown>[] {
  return [
    { action: "peer_drop_replica", topic_name: "t", from: leader },
    { action: "peer_meta", command: { op: "remove_member", id: 3 } },
    { action: "peer_meta", command: null },
    { action: "peer_meta", command: { op: "delete_topic", name: "t" } },
    { action: "peer_forward", hops: 1, request: { action: "fetch", topic_name: "t" } },
    { action: "peer_meta_index" },
    { action: "peer_join", node_id: 99, address: "127.0.0.1:1" },
    { action: "peer_subscribe_start", topic_name: "t", subscriber_id: "s", hops: 1 },
    { action: "peer_wait", topic_name: "t", offset: 0, timeout_ms: 10 },
    { action: "peer_heartbeat", from: 2, address: "127.0.0.1:1", members: [], sent_at: 0 },
    { action: "peer_leave", from: 2 },
    { action: "peer_raft", from: 2, incarnation: "x", batch: [] },
    { action: "peer_unknown" },
    // "action" not first: still refused as a peer action, never served.
    { id: 5, action: "peer_meta", command: { op: "remove_member", id: 2 } },
  ];
}

async function fetchAll(client: PubSubClient, topic: string): Promise<string[]> {
  const { messages } = await client.fetch(topic, { fromOffset: 0, max: 10_000 });
  return messages.map((item) => item.message);
}

Deno.test("a stranger sending every peer action to every peer of a secret-protected cluster is refused and changes nothing", async () => {
  const cluster = await startCluster(3);
  const client = await cluster.client();
  try {
    const stored = await seed(client, "t", 30);
    const leader = (await client.describeTopic("t")).leader!;
    for (const peer of cluster.peers) {
      const raw = await RawClient.connect(peer.port);
      try {
        for (const frame of strangerFrames(leader)) {
          const answer = await raw.request(frame) as { status: string };
          assert.equal(answer.status, "unauthorized", `${JSON.stringify(frame)} on ${peer.id}`);
        }
        // A handshake without the secret's proof never makes the connection a member.
        const challenge = await raw.request({ action: "peer_hello", node_id: 2, nonce: "abc" }) as {
          status: string;
        };
        assert.equal(challenge.status, "challenge");
        const refused = await raw.request({ action: "peer_auth", node_id: 2, proof: "AAAA" }) as {
          status: string;
        };
        assert.equal(refused.status, "unauthorized");
        await raw.waitClosed();
      } finally {
        await raw.close();
      }
    }
    assert.deepEqual(await fetchAll(client, "t"), stored);
    const status = await client.clusterStatus();
    assert.deepEqual(
      status.nodes.map((node) => [node.id, node.state]),
      [[1, "alive"], [2, "alive"], [3, "alive"]],
    );
    for (const peer of cluster.peers) {
      assert.doesNotMatch(peer.output(), /TypeError|failed unexpectedly/);
    }
  } finally {
    await client.close();
    await cluster.dispose();
  }
});

Deno.test("even a cluster member cannot make a replica delete data or commit a malformed metadata command", async () => {
  // Without a secret this loopback test connection is a member: what it
  // sends is what a buggy or compromised peer could send.
  const cluster = await startCluster(3, { security: "none" });
  const client = await cluster.client();
  try {
    const stored = await seed(client, "t", 30);
    const leader = (await client.describeTopic("t")).leader!;
    for (const peer of cluster.peers) {
      const raw = await RawClient.connect(peer.port);
      try {
        const hello = await raw.request({ action: "peer_hello", node_id: 50 }) as {
          status: string;
        };
        assert.equal(hello.status, "ok");
        const drop = await raw.request({
          action: "peer_drop_replica",
          topic_name: "t",
          from: leader,
        }) as { status: string };
        assert.equal(drop.status, "bad_request");
        for (
          const command of [
            null,
            { op: "create_topic", name: "x", replicas: "1", replicationFactor: 1 },
            { op: "remove_member", id: -1 },
            { op: "set_replicas", name: "t", replicas: [] },
            { op: "group_members", name: "t", epoch: 1, members: [1, 1] },
            { op: "drop_everything" },
          ]
        ) {
          const answer = await raw.request({ action: "peer_meta", command }) as {
            status: string;
          };
          assert.equal(answer.status, "bad_request", JSON.stringify(command));
        }
        // One member cannot speak for another.
        const forged = await raw.request({
          action: "peer_heartbeat",
          from: 2,
          address: "127.0.0.1:1",
          members: [],
          sent_at: 0,
        }) as { status: string };
        assert.equal(forged.status, "bad_request");
      } finally {
        await raw.close();
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.deepEqual(await fetchAll(client, "t"), stored);
    const info = await client.describeTopic("t");
    assert.deepEqual(info.replicas.toSorted(), [1, 2, 3]);
    for (const peer of cluster.peers) {
      assert.doesNotMatch(peer.output(), /TypeError|failed unexpectedly/);
    }
  } finally {
    await client.close();
    await cluster.dispose();
  }
});

Deno.test("a peer with the wrong cluster secret cannot join, and cluster_status says why", async () => {
  const cluster = await startCluster(3, { spare: 1 });
  const client = await cluster.client();
  try {
    const wrongSecret = `${cluster.root}/wrong.secret`;
    await Deno.writeTextFile(wrongSecret, ClusterSecret.generateText());
    const intruder = await cluster.start(4, ["--cluster-secret-file", wrongSecret]);
    const intruderClient = await PubSubClient.connect({ peers: [intruder.address], retries: 0 });
    try {
      const status = await waitFor("the intruder to report why it cannot link", async () => {
        const view = await intruderClient.clusterStatus();
        const raw = view as unknown as { nodes: { id: number; link_error?: string }[] };
        return raw.nodes.some((node) => node.id === 1 && node.link_error !== undefined) && raw;
      }, 15_000);
      const peer1 = status.nodes.find((node) => node.id === 1)!;
      assert.match(peer1.link_error!, /cluster secret/);
      // The members never hear it: it is listed (the discovery list names it) but never alive.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const fourth = (await client.clusterStatus()).nodes.find((node) => node.id === 4);
      assert.notEqual(fourth?.state, "alive");
    } finally {
      await intruderClient.close();
    }
  } finally {
    await client.close();
    await cluster.dispose();
  }
});

Deno.test({
  name:
    "TLS: plaintext to a TLS port and a client that does not trust the CA are refused, and the peer keeps serving",
  ignore: (await tlsUnavailable()) !== undefined,
  fn: async () => {
    const cluster = await startCluster(3, { security: "tls" });
    const client = await cluster.client();
    try {
      const stored = await seed(client, "secure", 5);
      const port = cluster.peers[0].port;
      // Plaintext: the peer cannot parse a TLS record from it; the connection ends.
      const plain = await RawClient.connect(port);
      await plain.send({ action: "ping" }).catch(() => {});
      await assert.rejects(plain.next(5000));
      await plain.close();
      // A client that does not trust the cluster's CA fails its handshake.
      await assert.rejects(async () => {
        const conn = await Deno.connectTls({ hostname: "127.0.0.1", port });
        try {
          await conn.handshake();
        } finally {
          conn.close();
        }
      });
      const ping = await RawClient.connect(port, { caCerts: [cluster.tls!.ca] });
      assert.equal((await ping.request({ action: "ping" }) as { status: string }).status, "pong");
      await ping.close();
      assert.deepEqual(await fetchAll(client, "secure"), stored);
    } finally {
      await client.close();
      await cluster.dispose();
    }
  },
});

Deno.test("pubsub peer refuses a non-loopback address without a cluster secret, in one line with exit code 2", async () => {
  const run = await runPeerToExit([
    ...["--id", "1", "--port", String(freePort())],
    ...["--host", "0.0.0.0", "--data-dir", await Deno.makeTempDir()],
  ]);
  assert.equal(run.code, 2);
  const stderr = run.stderr.trim();
  assert.equal(stderr.split("\n").length, 1, stderr);
  assert.match(stderr, /--cluster-secret-file/);
  assert.match(stderr, /--insecure/);
});

Deno.test("a peer without a cluster secret says once that any process can act as a peer", async () => {
  const peer = await startPeer();
  try {
    const warnings = peer.output().match(/runs without a cluster secret/g) ?? [];
    assert.equal(warnings.length, 1, peer.output());
  } finally {
    await peer.stop();
  }
});

Deno.test("a peer refuses a dialer of another peer protocol version in the handshake, naming both, and still admits a hello without one", async () => {
  const peer = await startPeer();
  try {
    const newer = await RawClient.connect(peer.port);
    try {
      const answer = await newer.request({ action: "peer_hello", node_id: 2, protocol: 2 }) as {
        status: string;
        error: string;
        protocol: number;
      };
      assert.equal(answer.status, "bad_request");
      assert.equal(
        answer.error,
        "The dialing peer speaks peer protocol 2 and this peer 1: run one pubsub version across the cluster.",
      );
      assert.equal(answer.protocol, 1);
      await newer.waitClosed();
    } finally {
      await newer.close();
    }
    // A build from before the field: version 1, admitted as before.
    const older = await RawClient.connect(peer.port);
    try {
      const answer = await older.request({ action: "peer_hello", node_id: 2 }) as {
        status: string;
        protocol: number;
      };
      assert.equal(answer.status, "ok");
      assert.equal(answer.protocol, 1);
      const index = await older.request({ action: "peer_meta_index", id: 7 }) as {
        status: string;
      };
      assert.notEqual(index.status, "unauthorized");
    } finally {
      await older.close();
    }
  } finally {
    await peer.stop();
  }
});
