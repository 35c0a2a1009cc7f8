import assert from "node:assert/strict";
import { type PeerProcess, startPeer } from "../_helpers/peer_process.ts";
import { PubSubClient } from "../../lib/client/client.ts";
import { ConnectionError, PubSubError } from "../../lib/client/errors.ts";
import type { Subscription } from "../../lib/client/subscription.ts";
import { startProxy } from "./_proxy.ts";

/** Runs `body` with a fresh single-node peer and a client, stopping both afterwards. */
async function withPeer(
  body: (client: PubSubClient, peer: PeerProcess) => Promise<void>,
  options: { requestBytesMax?: number } = {},
): Promise<void> {
  const peer = await startPeer();
  let client: PubSubClient | undefined;
  try {
    client = await PubSubClient.connect({ peers: [peer.address], ...options });
    await body(client, peer);
  } finally {
    await client?.close();
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
}

async function assertRejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof PubSubError, `expected PubSubError, got ${error}`);
    assert.equal(error.name, error.constructor.name);
    assert.equal(error.code, code);
    assert.ok(error.message.length > 0);
    return true;
  });
}

/** Takes `count` messages from a subscription. */
async function take(subscription: Subscription, count: number) {
  const taken = [];
  while (taken.length < count) {
    const { value, done } = await subscription.next();
    assert.equal(done, false, `subscription ended after ${taken.length} messages`);
    taken.push(value);
  }
  return taken;
}

Deno.test("PubSubClient creates, publishes, fetches, describes and deletes a topic on a real peer", async () => {
  await withPeer(async (client) => {
    assert.deepEqual(await client.createTopic("events"), { topic: "events", created: true });
    assert.deepEqual(await client.publish("events", "hi"), { offset: 0 });
    assert.deepEqual(await client.publishBatch("events", ["a", "b", "c"]), {
      firstOffset: 1,
      count: 3,
    });
    assert.deepEqual(await client.fetchMessages("events"), ["hi", "a", "b", "c"]);
    assert.deepEqual(await client.fetch("events", { fromOffset: 2, max: 1 }), {
      messages: [{ offset: 2, message: "b" }],
      nextOffset: 3,
    });
    assert.deepEqual(await client.topics(), ["events"]);
    const description = await client.describeTopic("events");
    assert.equal(description.topic, "events");
    assert.equal(description.firstOffset, 0);
    assert.equal(description.nextOffset, 4);
    assert.deepEqual(description.replicas, [1]);
    assert.equal(description.leader, 1);
    await client.deleteTopic("events");
    assert.deepEqual(await client.topics(), []);
  });
});

Deno.test("PubSubClient reports the cluster status and pings the connected node", async () => {
  await withPeer(async (client, peer) => {
    assert.deepEqual(await client.ping(), { node: 1 });
    const status = await client.clusterStatus();
    assert.equal(status.metaLeader, 1);
    assert.equal(status.topics, 0);
    assert.deepEqual(status.nodes.map(({ id, address, state }) => ({ id, address, state })), [
      { id: 1, address: peer.address, state: "alive" },
    ]);
    assert.equal(client.address, peer.address);
  });
});

Deno.test("PubSubClient rejects error answers with a PubSubError carrying the protocol code", async () => {
  await withPeer(async (client) => {
    await assertRejectsWithCode(client.publish("missing", "x"), "topic_not_found");
    await assertRejectsWithCode(client.fetchMessages("missing"), "topic_not_found");
    await assertRejectsWithCode(client.deleteTopic("missing"), "topic_not_found");
    await assertRejectsWithCode(client.removeNode(99), "bad_request");
    await client.createTopic("events");
    await assertRejectsWithCode(client.createTopic("events"), "topic_exists");
    assert.deepEqual(await client.createTopic("events", { ifNotExists: true }), {
      topic: "events",
      created: false,
    });
    // The client refuses a bad topic name itself, with the code the peer would answer.
    await assertRejectsWithCode(client.publish("..", "x"), "bad_request");
  });
});

Deno.test("PubSubClient refuses a request over requestBytesMax without sending it", async () => {
  await withPeer(async (client) => {
    await client.createTopic("events");
    await assertRejectsWithCode(client.publish("events", "x".repeat(2000)), "frame_too_large");
    // The connection is still usable: nothing was sent.
    assert.deepEqual(await client.publish("events", "small"), { offset: 0 });
  }, { requestBytesMax: 1024 });
});

Deno.test("PubSubClient measures a request near requestBytesMax in UTF-8 bytes with JSON escapes", async () => {
  await withPeer(async (client) => {
    await client.createTopic("events");
    // 1,900 characters, 3,800 bytes: under the limit with its envelope.
    assert.deepEqual(await client.publish("events", "é".repeat(1900)), { offset: 0 });
    // 2,100 characters, 4,202 bytes once each quote is escaped: over it.
    await assertRejectsWithCode(client.publish("events", '"'.repeat(2100)), "frame_too_large");
    await assertRejectsWithCode(
      client.publishBatch("events", ["a", "🎉".repeat(1100)]),
      "frame_too_large",
    );
    assert.deepEqual(await client.publish("events", "small"), { offset: 1 });
  }, { requestBytesMax: 4096 });
});

Deno.test("PubSubClient sends messages near requestBytesMax exactly as they are, plain or escaped", async () => {
  await withPeer(async (client) => {
    await client.createTopic("events");
    // Each is measured (near the limit); a plain one goes between quotes as it is.
    const messages = [
      "x".repeat(3000),
      "a\x7fb".repeat(700),
      'say "hi" \\ '.repeat(150),
      "line\nbreak\u0001\t".repeat(150),
      "héllo ".repeat(400),
      "🎉 \ud800 ".repeat(200),
    ];
    for (const [offset, message] of messages.entries()) {
      assert.deepEqual(await client.publish("events", message), { offset });
    }
    assert.deepEqual(await client.fetchMessages("events"), messages);
  }, { requestBytesMax: 4096 });
});

Deno.test("PubSubClient pipelines 1000 publishes on one connection with dense ordered offsets", async () => {
  await withPeer(async (client) => {
    await client.createTopic("events");
    const messages = Array.from({ length: 1000 }, (_, index) => `message ${index}`);
    const answers = await Promise.all(messages.map((message) => client.publish("events", message)));
    assert.deepEqual(answers.map(({ offset }) => offset), messages.map((_, index) => index));
    assert.deepEqual(await client.fetchMessages("events"), messages);
  });
});

Deno.test("PubSubClient queues past its send-queue limit, waits for room, and reads answers larger than its read buffer", async () => {
  await withPeer(async (client) => {
    await client.createTopic("big");
    // 20 batches of 10 x 90 kB, 18 MB in all: more than sendQueueBytesMax (8 MiB) queues at once.
    const batches = Array.from(
      { length: 20 },
      (_, batch) =>
        Array.from({ length: 10 }, (_, index) => `${batch}.${index} ${"x".repeat(90_000)}`),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const answers = await Promise.race([
      Promise.all(batches.map((messages) => client.publishBatch("big", messages))),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("The publishes never all went out")), 60_000);
      }),
    ]).finally(() => clearTimeout(timer));
    assert.deepEqual(answers, batches.map((_, batch) => ({ firstOffset: batch * 10, count: 10 })));
    // Pages of about 1.8 MB: each answer is many times the 64 KiB read buffer.
    const stored: string[] = [];
    for (let from = 0; from < 200; from += 20) {
      const page = await client.fetch("big", { fromOffset: from, max: 20 });
      stored.push(...page.messages.map(({ message }) => message));
    }
    assert.deepEqual(stored, batches.flat());
  });
});

Deno.test("PubSubClient.connect fails with ConnectionError when no peer is reachable", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const address = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  listener.close();
  await assert.rejects(
    PubSubClient.connect({ peers: [address], retries: 1, requestTimeoutMs: 500 }),
    ConnectionError,
  );
});

Deno.test("PubSubClient.connect skips unreachable bootstrap addresses", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  listener.close();
  const peer = await startPeer();
  const client = await PubSubClient.connect({ peers: [dead, peer.address] });
  try {
    assert.equal(client.address, peer.address);
    assert.deepEqual(await client.ping(), { node: 1 });
  } finally {
    await client.close();
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("PubSubClient.connect validates its options with one RangeError per rule", async () => {
  await assert.rejects(PubSubClient.connect({ peers: [] }), RangeError);
  await assert.rejects(PubSubClient.connect({ peers: ["nohost"] }), /'host:port'/);
  await assert.rejects(
    PubSubClient.connect({ peers: ["127.0.0.1:1"], requestTimeoutMs: 0 }),
    /'requestTimeoutMs' must be an integer between 1 and 3600000: current value is 0/,
  );
});

Deno.test("a subscription with autoAck receives every message in order and resumes after its acks", async () => {
  await withPeer(async (client, peer) => {
    await client.createTopic("events");
    await client.publishBatch("events", ["a", "b", "c"]);
    const subscription = await client.subscribe("events", "reader", {
      from: "earliest",
      maxInFlight: 4,
    });
    const published = Array.from({ length: 20 }, (_, index) => `live ${index}`);
    for (const message of published) await client.publish("events", message);
    const received = await take(subscription, 23);
    assert.deepEqual(received.map(({ offset }) => offset), Array.from({ length: 23 }, (_, i) => i));
    assert.deepEqual(received.map(({ message }) => message), ["a", "b", "c", ...published]);
    await subscription.close();

    await client.publish("events", "after close");
    const second = await PubSubClient.connect({ peers: [peer.address] });
    try {
      const resumed = await second.subscribe("events", "reader");
      assert.deepEqual(await take(resumed, 1), [{ offset: 23, message: "after close" }]);
      await resumed.close();
    } finally {
      await second.close();
    }
  });
});

Deno.test("a subscription without autoAck delivers only maxInFlight messages until acked", async () => {
  await withPeer(async (client) => {
    await client.createTopic("events");
    await client.publishBatch("events", ["0", "1", "2", "3", "4"]);
    const subscription = await client.subscribe("events", "manual", {
      from: "earliest",
      maxInFlight: 2,
      autoAck: false,
    });
    const first = await take(subscription, 2);
    assert.deepEqual(first.map(({ offset }) => offset), [0, 1]);
    // Nothing more may arrive while both messages are unacknowledged.
    const early = await Promise.race([
      subscription.next(),
      new Promise((resolve) => setTimeout(() => resolve("window full"), 300)),
    ]);
    assert.equal(early, "window full");
    await subscription.ack(1);
    const rest = await take(subscription, 1);
    assert.ok(rest[0].offset >= 2);
    await subscription.close();
  });
});

Deno.test("leaving a for-await loop closes the subscription", async () => {
  await withPeer(async (client) => {
    await client.createTopic("events");
    await client.publishBatch("events", ["a", "b", "c"]);
    const subscription = await client.subscribe("events", "looper", { from: "earliest" });
    const seen: string[] = [];
    for await (const { message } of subscription) {
      seen.push(message);
      if (seen.length === 2) break;
    }
    assert.deepEqual(seen, ["a", "b"]);
    assert.equal(subscription.closed, true);
    assert.deepEqual(await subscription.next(), { value: undefined, done: true });
  });
});

Deno.test("PubSubClient retries after a killed peer restarts and the subscription resumes without gaps", async () => {
  const first = await startPeer();
  const { port, dataDir } = first;
  let peer: PeerProcess = first;
  const client = await PubSubClient.connect({ peers: [first.address], retries: 12 });
  try {
    await client.createTopic("events");
    const subscription = await client.subscribe("events", "durable", { from: "earliest" });
    for (let index = 0; index < 10; index++) await client.publish("events", `before ${index}`);
    const before = await take(subscription, 10);
    assert.deepEqual(before.map(({ offset }) => offset), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

    await first.kill("SIGKILL");
    const publishing = Promise.all(
      Array.from({ length: 10 }, (_, index) => client.publish("events", `after ${index}`)),
    );
    peer = await startPeer({ port, dataDir });
    const offsets = (await publishing).map(({ offset }) => offset);
    assert.deepEqual(offsets, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);

    const after = await take(subscription, 10);
    assert.deepEqual(after.map(({ offset }) => offset), offsets);
    assert.deepEqual(after.map(({ message }) => message), offsets.map((_, i) => `after ${i}`));
    assert.equal((await client.fetchMessages("events")).length, 20);
    await subscription.close();
  } finally {
    await client.close();
    await peer.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a publish whose answer is lost is retried with the same sequence and stored once", async () => {
  const peer = await startPeer();
  let lost = false;
  const proxy = startProxy({ hostname: "127.0.0.1", port: peer.port }, (request) => {
    if (request.action === "publish" && !lost) {
      lost = true;
      return { kind: "lose_answer" };
    }
    return { kind: "forward" };
  });
  const client = await PubSubClient.connect({ peers: [proxy.address] });
  try {
    await client.createTopic("events");
    assert.deepEqual(await client.publish("events", "once"), { offset: 0 });
    assert.deepEqual(await client.publish("events", "twice?"), { offset: 1 });
    assert.deepEqual(await client.fetchMessages("events"), ["once", "twice?"]);
    const publishes = proxy.requests.filter((request) => request.action === "publish");
    assert.equal(publishes.length, 3, "the first publish went out twice");
    assert.equal(publishes[0].sequence, publishes[1].sequence);
    assert.equal(publishes[0].producer_id, client.producerId);
    assert.equal(publishes[2].sequence, (publishes[1].sequence as number) + 1);
  } finally {
    await client.close();
    await proxy.close();
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("an unavailable answer moves an idempotent request to the next bootstrap address", async () => {
  const peer = await startPeer();
  const target = { hostname: "127.0.0.1", port: peer.port };
  const refusing = startProxy(
    target,
    (request) =>
      request.action === "fetch_topics"
        ? { kind: "answer", response: { status: "unavailable", error: "No quorum." } }
        : { kind: "forward" },
  );
  const healthy = startProxy(target, () => ({ kind: "forward" }));
  const client = await PubSubClient.connect({ peers: [refusing.address, healthy.address] });
  try {
    assert.equal(client.address, refusing.address);
    assert.deepEqual(await client.topics(), []);
    assert.equal(client.address, healthy.address);
  } finally {
    await client.close();
    await refusing.close();
    await healthy.close();
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("a non-idempotent request is not retried after an unavailable answer", async () => {
  const peer = await startPeer();
  const proxy = startProxy(
    { hostname: "127.0.0.1", port: peer.port },
    (request) =>
      request.action === "delete_topic"
        ? { kind: "answer", response: { status: "unavailable", error: "No quorum." } }
        : { kind: "forward" },
  );
  const client = await PubSubClient.connect({ peers: [proxy.address] });
  try {
    await client.createTopic("events");
    await assertRejectsWithCode(client.deleteTopic("events"), "unavailable");
    assert.equal(proxy.requests.filter((request) => request.action === "delete_topic").length, 1);
  } finally {
    await client.close();
    await proxy.close();
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("PubSubClient authenticates with its token first on a peer that requires one", async () => {
  const tokenFile = await Deno.makeTempFile();
  await Deno.writeTextFile(tokenFile, "s3cret\n");
  const peer = await startPeer({ args: ["--auth-token-file", tokenFile] });
  try {
    const client = await PubSubClient.connect({ peers: [peer.address], token: "s3cret" });
    assert.deepEqual(await client.ping(), { node: 1 });
    await client.close();
    await assert.rejects(
      PubSubClient.connect({ peers: [peer.address], token: "wrong" }),
      (error: unknown) => error instanceof PubSubError && error.code === "unauthorized",
    );
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
    await Deno.remove(tokenFile);
  }
});
