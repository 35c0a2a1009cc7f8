import assert from "node:assert/strict";
import { Membership } from "../../lib/cluster/membership.ts";
import { createPeerHandler, type PeerHandler } from "../../lib/cluster/peer_handler.ts";
import {
  directWriteBytesMin,
  PeerLink,
  type PeerLinkOptions,
  PeerMessageTooLargeError,
  PeerTimeoutError,
  PeerUnavailableError,
} from "../../lib/cluster/peer_link.ts";
import { PeerLinks } from "../../lib/cluster/peer_links.ts";
import { decodeRaftFrame, type RaftFrame } from "../../lib/cluster/peer_rpc.ts";
import { encodeBinaryRaftFrameParts } from "../../lib/cluster/raft_binary.ts";
import type { Message } from "../../lib/raft/types.ts";
import { ClusterSecret } from "../../lib/cluster/peer_auth.ts";
import { FrameDecoder } from "../../lib/wire/frame.ts";
import { LocalBroker } from "../../lib/peer/local_broker.ts";
import { Server } from "../../lib/peer/server.ts";
import { encodeFrame } from "../../lib/wire/frame.ts";
import { freePort } from "../_helpers/peer_process.ts";

/** A real peer listener (Server + LocalBroker) whose peer handler has test actions. */
class TestPeer {
  readonly port: number;
  readonly membership: Membership;
  readonly handler: PeerHandler;
  readonly held: (() => void)[] = [];
  #broker: LocalBroker;
  #server: Server | undefined;
  #dataDir: string;
  #secret: ClusterSecret | undefined;

  private constructor(
    broker: LocalBroker,
    dataDir: string,
    port: number,
    secret?: ClusterSecret,
  ) {
    this.#broker = broker;
    this.#dataDir = dataDir;
    this.port = port;
    this.#secret = secret;
    this.membership = new Membership({
      self: { id: 9, address: `127.0.0.1:${port}` },
      heartbeatMs: 100,
      deadAfterMs: 1000,
    });
    this.handler = createPeerHandler(this.membership);
    this.handler.register("peer_echo", (message) => ({ status: "ok", value: message.value }));
    // Answers only when the test releases it, to keep requests pending.
    this.handler.register("peer_hold", () => {
      const { promise, resolve } = Promise.withResolvers<unknown>();
      this.held.push(() => resolve({ status: "ok" }));
      return promise;
    });
  }

  static async start(secret?: ClusterSecret): Promise<TestPeer> {
    const dataDir = await Deno.makeTempDir({ prefix: "pubsub-link-test-" });
    const broker = await LocalBroker.open({ nodeId: 9, dataDir, address: "127.0.0.1:0" });
    const peer = new TestPeer(broker, dataDir, freePort(), secret);
    peer.listen();
    return peer;
  }

  listen(): void {
    this.#server = Server.listen({
      hostname: "127.0.0.1",
      port: this.port,
      broker: this.#broker,
      frameBytesMax: 1024 * 1024,
      idleTimeoutMs: 30_000,
      requestTimeoutMs: 5_000,
      // Client auth on: peer links must still get through with the secret alone.
      authToken: "client-token",
      clusterSecret: this.#secret,
      peerHandler: this.handler,
    });
  }

  async stopListening(): Promise<void> {
    await this.#server?.close();
    this.#server = undefined;
  }

  async close(): Promise<void> {
    for (const release of this.held.splice(0)) release();
    await this.stopListening();
    await this.#broker.close();
    await Deno.remove(this.#dataDir, { recursive: true });
  }
}

function linkTo(peer: TestPeer, options: Partial<PeerLinkOptions> = {}): PeerLink {
  return new PeerLink({ host: "127.0.0.1", port: peer.port, random: () => 0.5, ...options });
}

/** Polls `condition` every 10 ms until it holds or `timeoutMs` passes. */
async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("PeerLink matches each answer to its request", async () => {
  const peer = await TestPeer.start();
  const link = linkTo(peer);
  try {
    const answers = await Promise.all(
      ["a", "b", "c"].map((value) => link.request({ action: "peer_echo", value })),
    );
    assert.deepEqual(answers.map((answer) => (answer as { value: string }).value), [
      "a",
      "b",
      "c",
    ]);
    assert.equal((answers[1] as { id: number }).id, (answers[0] as { id: number }).id + 1);
    assert.equal(link.pendingRequests, 0);
  } finally {
    await link.close();
    await peer.close();
  }
});

Deno.test("PeerLink pipelines 1000 requests over one connection", async () => {
  const peer = await TestPeer.start();
  const link = linkTo(peer);
  try {
    const values = Array.from({ length: 1000 }, (_, index) => index);
    const answers = await Promise.all(
      values.map((value) => link.request({ action: "peer_echo", value })),
    );
    assert.deepEqual(answers.map((answer) => (answer as { value: number }).value), values);
    assert.equal(link.connections, 1);
  } finally {
    await link.close();
    await peer.close();
  }
});

Deno.test("PeerLink one-way heartbeats reach the peer's membership", async () => {
  const peer = await TestPeer.start();
  // The heartbeat's sender must be the node the link introduced itself as.
  const link = linkTo(peer, { nodeId: 4 });
  try {
    assert.equal(
      link.send({
        action: "peer_heartbeat",
        from: 4,
        address: "127.0.0.1:5004",
        members: [],
        sent_at: Date.now(),
      }),
      true,
    );
    await waitFor(() => peer.membership.record(4)?.heardAt !== undefined);
    assert.equal(peer.membership.view()[0].state, "alive");
  } finally {
    await link.close();
    await peer.close();
  }
});

Deno.test("PeerLink rejects pending requests when the connection drops and while the peer is down", async () => {
  const peer = await TestPeer.start();
  const link = linkTo(peer, { backoffMinMs: 1000, backoffMaxMs: 1000 });
  try {
    await link.request({ action: "peer_echo", value: 1 });
    const pending = link.request({ action: "peer_hold" });
    const rejected = assert.rejects(pending, PeerUnavailableError);
    await waitFor(() => peer.held.length === 1);
    await peer.stopListening();
    await rejected;
    await waitFor(() => link.state === "backoff");
    await assert.rejects(link.request({ action: "peer_echo", value: 2 }), /unreachable/);
    assert.equal(link.send({ action: "peer_echo" }), false);
    assert.equal(link.droppedMessages, 1);
  } finally {
    await link.close();
    await peer.close();
  }
});

Deno.test("PeerLink rejects requests queued while connecting when nothing listens", async () => {
  const link = new PeerLink({ host: "127.0.0.1", port: freePort(), random: () => 0.5 });
  try {
    await assert.rejects(link.request({ action: "peer_echo" }), PeerUnavailableError);
  } finally {
    await link.close();
  }
});

Deno.test("PeerLink reconnects after the peer restarts on the same port", async () => {
  const peer = await TestPeer.start();
  const link = linkTo(peer, { backoffMinMs: 20, backoffMaxMs: 100 });
  try {
    await link.request({ action: "peer_echo", value: "before" });
    await peer.stopListening();
    await waitFor(() => link.state === "backoff");
    peer.listen();
    await waitFor(() => link.state === "connected");
    const answer = await link.request({ action: "peer_echo", value: "after" });
    assert.equal((answer as { value: string }).value, "after");
    assert.equal(link.connections, 2);
  } finally {
    await link.close();
    await peer.close();
  }
});

Deno.test("PeerLink drops one-way messages and refuses requests beyond queuedBytesMax", async () => {
  const peer = await TestPeer.start();
  const link = linkTo(peer, { queuedBytesMax: 1000 });
  try {
    await link.request({ action: "peer_echo", value: "warm" });
    // One synchronous burst: nothing is written before the burst ends.
    const padding = "x".repeat(80);
    let accepted = 0;
    for (let index = 0; index < 50; index++) {
      if (link.send({ action: "peer_echo", value: padding })) accepted++;
    }
    const frameBytes = encodeFrame({ action: "peer_echo", value: padding }).length;
    assert.equal(accepted, Math.floor(1000 / frameBytes));
    assert.equal(link.droppedMessages, 50 - accepted);
    assert.equal(link.queuedBytes, accepted * frameBytes);
    await assert.rejects(link.request({ action: "peer_echo", value: padding }), /queue .* is full/);
    await waitFor(() => link.queuedBytes === 0);
    const answer = await link.request({ action: "peer_echo", value: "drained" });
    assert.equal((answer as { value: string }).value, "drained");
  } finally {
    await link.close();
    await peer.close();
  }
});

Deno.test("PeerLink times out, aborts, and refuses a message over frameBytesMax", async () => {
  const peer = await TestPeer.start();
  const link = linkTo(peer, { frameBytesMax: 200 });
  try {
    await assert.rejects(
      link.request({ action: "peer_hold" }, { timeoutMs: 50 }),
      PeerTimeoutError,
    );
    const controller = new AbortController();
    const aborted = link.request({ action: "peer_hold" }, { signal: controller.signal });
    controller.abort(new Error("caller gave up"));
    await assert.rejects(aborted, /caller gave up/);
    await assert.rejects(
      link.request({ action: "peer_echo", value: "x".repeat(300) }),
      PeerMessageTooLargeError,
    );
    assert.equal(link.pendingRequests, 0);
    // The link still works after all of that, once the held answers (first in order) go out.
    await waitFor(() => peer.held.length === 2);
    for (const release of peer.held.splice(0)) release();
    assert.equal(
      (await link.request({ action: "peer_echo", value: 5 }) as { value: number }).value,
      5,
    );
  } finally {
    await link.close();
    await peer.close();
  }
});

Deno.test("PeerLink proves the cluster secret before sending, and a wrong secret is refused", async () => {
  const secret = ClusterSecret.fromText(ClusterSecret.generateText());
  const wrong = ClusterSecret.fromText(ClusterSecret.generateText());
  const peer = await TestPeer.start(secret);
  const slow = { backoffMinMs: 1000, backoffMaxMs: 1000 };
  const good = linkTo(peer, { secret });
  const bad = linkTo(peer, { secret: wrong, ...slow });
  const none = linkTo(peer, slow);
  try {
    const answer = await good.request({ action: "peer_echo", value: "in" });
    assert.equal((answer as { value: string }).value, "in");
    await assert.rejects(bad.request({ action: "peer_echo", value: "out" }), PeerUnavailableError);
    await assert.rejects(none.request({ action: "peer_echo", value: "out" }), PeerUnavailableError);
    await waitFor(() => bad.lastError !== undefined && none.lastError !== undefined);
    assert.match(bad.lastError!, /does not know the cluster secret/);
    assert.match(none.lastError!, /requires a cluster secret/);
    assert.equal(good.lastError, undefined);
  } finally {
    await good.close();
    await bad.close();
    await none.close();
    await peer.close();
  }
});

Deno.test("PeerLink with a secret refuses a listener that has none", async () => {
  const peer = await TestPeer.start();
  const link = linkTo(peer, {
    secret: ClusterSecret.fromText(ClusterSecret.generateText()),
    backoffMinMs: 1000,
    backoffMaxMs: 1000,
  });
  try {
    await assert.rejects(link.request({ action: "peer_echo" }), PeerUnavailableError);
    await waitFor(() => link.lastError !== undefined);
    assert.match(link.lastError!, /without a cluster secret/);
  } finally {
    await link.close();
    await peer.close();
  }
});

Deno.test("A client connection gets unauthorized for peer actions, even with the client token", async () => {
  const peer = await TestPeer.start(ClusterSecret.fromText(ClusterSecret.generateText()));
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: peer.port });
  try {
    const frames = [
      { action: "auth", token: "client-token" },
      { action: "peer_echo", value: 1 },
      { id: 7, action: "peer_echo", value: 2 },
      { action: "peer_hello", node_id: 2 },
      { action: "peer_auth", node_id: 2, proof: "AAAA" },
      { action: "peer_hello", node_id: 2, nonce: "n" },
      { action: "peer_auth", node_id: 2, proof: "AAAA" },
    ];
    for (const frame of frames) await conn.write(encodeFrame(frame));
    const answers = await readAnswers(conn, frames.length);
    assert.equal(answers[0].status, "authenticated");
    assert.equal(answers[1].status, "unauthorized");
    assert.equal(answers[2].status, "unauthorized");
    assert.equal(answers[3].status, "bad_request"); // a secret needs a nonce
    assert.equal(answers[4].status, "unauthorized"); // no challenge was issued
    assert.equal(answers[5].status, "challenge");
    assert.equal(answers[6].status, "unauthorized"); // a wrong proof
  } finally {
    conn.close();
    await peer.close();
  }
});

Deno.test("PeerLink close rejects what is pending and refuses new requests", async () => {
  const peer = await TestPeer.start();
  const link = linkTo(peer);
  try {
    await link.request({ action: "peer_echo" });
    const pending = link.request({ action: "peer_hold" });
    const rejected = assert.rejects(pending, /is closed/);
    await waitFor(() => peer.held.length === 1);
    await link.close();
    await rejected;
    await assert.rejects(link.request({ action: "peer_echo" }), PeerUnavailableError);
    assert.equal(link.state, "closed");
  } finally {
    await link.close();
    await peer.close();
  }
});

Deno.test("PeerLinks creates links lazily, replaces them on address change and closes them together", async () => {
  const first = await TestPeer.start();
  const second = await TestPeer.start();
  const links = new PeerLinks({ link: { random: () => 0.5 } });
  try {
    links.update([{ id: 2, address: `127.0.0.1:${first.port}` }]);
    assert.equal(links.size, 0);
    await links.request(2, { action: "peer_echo" });
    const before = links.link(2);
    assert.equal(links.size, 1);
    links.update([{ id: 2, address: `127.0.0.1:${second.port}` }]);
    assert.equal(before?.state, "closed");
    await links.request(2, { action: "peer_echo" });
    assert.equal(links.link(2)?.address, `127.0.0.1:${second.port}`);
    await assert.rejects(links.request(3, { action: "peer_echo" }), /not a known member/);
    assert.equal(links.send(3, { action: "peer_echo" }), false);
  } finally {
    await links.close();
    await first.close();
    await second.close();
  }
});

async function readAnswers(conn: Deno.Conn, count: number): Promise<Record<string, unknown>[]> {
  const decoder = new FrameDecoder({ frameBytesMax: 1024 * 1024 });
  const answers: Record<string, unknown>[] = [];
  const buffer = new Uint8Array(64 * 1024);
  while (answers.length < count) {
    const read = await conn.read(buffer);
    if (read === null) break;
    for (const event of decoder.push(buffer.subarray(0, read))) {
      if (event.kind === "frame") {
        answers.push(JSON.parse(new TextDecoder().decode(event.payload)));
      }
    }
  }
  return answers;
}

Deno.test("PeerLink gives up a handshake nobody answers, and close ends one in progress", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn); // never answers
  })();
  const slow = new PeerLink({
    host: "127.0.0.1",
    port,
    connectTimeoutMs: 200,
    backoffMinMs: 5000,
    backoffMaxMs: 5000,
  });
  const stuck = new PeerLink({ host: "127.0.0.1", port, connectTimeoutMs: 60_000 });
  try {
    await waitFor(() => slow.lastError !== undefined);
    assert.match(slow.lastError!, /handshake took over 200 ms/);
    await waitFor(() => accepted.length >= 2);
    const started = Date.now();
    await stuck.close();
    assert.ok(Date.now() - started < 1000, "close waited for the handshake");
    assert.equal(stuck.state, "closed");
  } finally {
    await slow.close();
    await stuck.close();
    listener.close();
    for (const conn of accepted) conn.close();
    await accepting.catch(() => {});
  }
});

Deno.test("PeerLink sends a binary Raft frame in parts (large ones uncopied) that the listener decodes in order", async () => {
  const peer = await TestPeer.start();
  const received: RaftFrame[] = [];
  peer.handler.register("peer_raft", (message) => {
    received.push(decodeRaftFrame(message));
    return { status: "ok" };
  });
  const link = linkTo(peer, { nodeId: 4 });
  const data = new Uint8Array(3 * directWriteBytesMin + 7).map((_, index) => index % 253);
  const message = (index: number): Message => ({
    type: "app",
    from: 4,
    to: 9,
    term: 2,
    logTerm: 2,
    index,
    entries: [
      { term: 2, index: index + 1, type: 0, data },
      { term: 2, index: index + 2, type: 0, data: new Uint8Array([1, 2, 3]) },
    ],
    commit: index,
    reject: false,
    rejectHint: 0,
    context: new Uint8Array([9]),
  });
  try {
    await waitFor(() => link.state === "connected");
    for (let index = 0; index < 3; index++) {
      const parts = encodeBinaryRaftFrameParts(4, "incarnation", [["t:events", message(index)]]);
      assert.ok(parts.some((part) => part === data), "the entry data is a part of its own");
      assert.equal(link.sendFrame(parts), true);
    }
    await waitFor(() => received.length === 3);
    received.forEach((frame, index) => {
      assert.deepStrictEqual(frame.batch, [{ groupId: "t:events", message: message(index) }]);
    });
  } finally {
    await link.close();
    await peer.close();
  }
});

Deno.test("A slow peer request does not hold back the answer of a later one on the same link", async () => {
  const peer = await TestPeer.start();
  const link = linkTo(peer, { nodeId: 4 });
  try {
    const held = link.request({ action: "peer_hold" });
    await waitFor(() => peer.held.length === 1);
    // Answered while the first request is still held: answers go by id, not in request order.
    assert.deepEqual(await link.request({ action: "peer_echo", value: 7 }), {
      status: "ok",
      value: 7,
      id: 2,
    });
    assert.equal(peer.held.length, 1);
    peer.held[0]();
    assert.deepEqual(await held, { status: "ok", id: 1 });
  } finally {
    await link.close();
    await peer.close();
  }
});
