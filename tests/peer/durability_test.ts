import assert from "node:assert/strict";
import { startPeer } from "../_helpers/peer_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";

for (const mode of ["replicated", "standalone"]) {
  Deno.test(`a ${mode} peer killed with SIGKILL keeps every publish it acknowledged`, async () => {
    await killedPeerKeepsAcknowledged(mode === "standalone" ? ["--standalone"] : []);
  });
}

async function killedPeerKeepsAcknowledged(args: string[]) {
  const dataDir = await Deno.makeTempDir({ prefix: "pubsub-durability-" });
  let peer = await startPeer({ dataDir, args });
  try {
    const client = await RawClient.connect(peer.port);
    await client.request({ action: "create_topic", topic_name: "orders" });
    // Pipelined publishes: the kill lands while many are in flight.
    const total = 2000;
    for (let index = 0; index < total; index++) {
      await client.send({
        action: "publish",
        topic_name: "orders",
        message: `m${index}`,
        id: index,
      });
    }
    const acknowledged: number[] = [];
    for (let index = 0; index < total / 2; index++) {
      const answer = await client.next() as { status: string; offset: number; id: number };
      assert.equal(answer.status, "message_published");
      acknowledged.push(answer.id);
    }
    await peer.kill("SIGKILL");
    await client.close();

    peer = await startPeer({ dataDir, port: peer.port, args });
    const reader = await RawClient.connect(peer.port);
    const messages = await reader.request({
      action: "fetch_messages",
      topic_name: "orders",
    }) as string[];
    assert.ok(messages.length >= acknowledged.length);
    // Offsets were assigned in send order, so every acknowledged one is at its index.
    for (const id of acknowledged) assert.equal(messages[id], `m${id}`);
    assert.equal(new Set(messages).size, messages.length, "no message stored twice");
    assert.deepEqual(await reader.request({ action: "fetch_topics" }), ["orders"]);
    await reader.close();
  } finally {
    await peer.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
}

for (const mode of ["replicated", "standalone"]) {
  Deno.test(`a durable subscriber resumes right after its last ack, on a new connection and after a restart (${mode})`, async () => {
    await subscriberResumesAfterLastAck(mode === "standalone" ? ["--standalone"] : []);
  });
}

async function subscriberResumesAfterLastAck(args: string[]) {
  const dataDir = await Deno.makeTempDir({ prefix: "pubsub-resume-" });
  let peer = await startPeer({ dataDir, args });
  try {
    const producer = await RawClient.connect(peer.port);
    await producer.request({ action: "create_topic", topic_name: "feed" });
    const subscriber = await RawClient.connect(peer.port);
    assert.deepEqual(
      await subscriber.request({ action: "subscribe", topic_name: "feed", subscriber_id: "u1" }),
      { status: "subscribed", topic: "feed", subscriber_id: "u1" },
    );
    await producer.request({
      action: "publish_batch",
      topic_name: "feed",
      messages: ["a", "b", "c", "d"],
    });
    const pushed = [];
    for (let index = 0; index < 4; index++) pushed.push(await subscriber.next());
    assert.deepEqual(pushed[0], {
      event: "message",
      topic: "feed",
      subscriber_id: "u1",
      offset: 0,
      message: "a",
    });
    assert.deepEqual(pushed.map((event) => (event as { offset: number }).offset), [0, 1, 2, 3]);
    assert.deepEqual(
      await subscriber.request({
        action: "ack",
        topic_name: "feed",
        subscriber_id: "u1",
        offset: 1,
      }),
      { status: "acked", topic: "feed", subscriber_id: "u1", offset: 1 },
    );
    await subscriber.close();
    await producer.request({ action: "publish", topic_name: "feed", message: "e" });

    const again = await RawClient.connect(peer.port);
    await again.request({ action: "subscribe", topic_name: "feed", subscriber_id: "u1" });
    const resumed = [];
    for (let index = 0; index < 3; index++) {
      resumed.push(await again.next() as { offset: number; message: string });
    }
    assert.deepEqual(resumed.map((event) => event.message), ["c", "d", "e"]);
    await again.request({ action: "ack", topic_name: "feed", subscriber_id: "u1", offset: 3 });
    await again.close();
    await producer.close();
    // Acks gather for up to 100 ms before they are written: a graceful stop
    // right after the answer writes them before it exits.
    await peer.stop();

    peer = await startPeer({ dataDir, port: peer.port, args });
    const afterRestart = await RawClient.connect(peer.port);
    await afterRestart.request({ action: "subscribe", topic_name: "feed", subscriber_id: "u1" });
    assert.deepEqual(await afterRestart.next(), {
      event: "message",
      topic: "feed",
      subscriber_id: "u1",
      offset: 4,
      message: "e",
    });
    await afterRestart.close();
  } finally {
    await peer.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
}

Deno.test("a subscription pauses at max_in_flight until acks arrive", async () => {
  const peer = await startPeer();
  try {
    const client = await RawClient.connect(peer.port);
    await client.request({ action: "create_topic", topic_name: "flow" });
    await client.request({
      action: "publish_batch",
      topic_name: "flow",
      messages: Array.from({ length: 10 }, (_, index) => `m${index}`),
    });
    await client.request({
      action: "subscribe",
      topic_name: "flow",
      subscriber_id: "slow",
      from: "earliest",
      max_in_flight: 3,
    });
    const first = [];
    for (let index = 0; index < 3; index++) {
      first.push((await client.next() as { offset: number }).offset);
    }
    assert.deepEqual(first, [0, 1, 2]);
    // Nothing more arrives while three are unacknowledged: acking two frees two slots.
    await client.send({ action: "ack", topic_name: "flow", subscriber_id: "slow", offset: 1 });
    const frames = [];
    for (let index = 0; index < 3; index++) {
      frames.push(await client.next() as Record<string, unknown>);
    }
    assert.equal(frames.filter((frame) => frame.status === "acked").length, 1);
    assert.deepEqual(
      frames.filter((frame) => frame.event === "message").map((frame) => frame.offset),
      [3, 4],
    );
    await assert.rejects(client.next(300), /Timed out/);
    assert.deepEqual(
      await client.request({ action: "unsubscribe", topic_name: "flow", subscriber_id: "slow" }),
      { status: "unsubscribed", topic: "flow", subscriber_id: "slow" },
    );
    await client.close();
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});
