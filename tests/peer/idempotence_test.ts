import assert from "node:assert/strict";
import fc from "fast-check";
import { PubSubClient } from "../../lib/client/client.ts";
import { OutOfOrderSequenceError, PubSubError } from "../../lib/client/errors.ts";
import { encodeCommand, type PublishPart } from "../../lib/peer/topic_commands.ts";
import { producerSequencesMax, TopicState } from "../../lib/peer/topic_state.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { ProtocolError } from "../../lib/wire/errors.ts";
import { startPeer } from "../_helpers/peer_process.ts";
import { startProxy } from "../client/_proxy.ts";
import { oneVoterTopic } from "./_one_voter_topic.ts";

/** The old window: a client with more publishes in flight than this lost answers to -1. */
const oldWindow = 64;

Deno.test("A standalone (one-voter) topic answers a duplicate with its original offset and refuses a gap or an expired sequence", async () => {
  const { topic, close } = await oneVoterTopic("events", new MemoryLogStore());
  try {
    for (let sequence = 0; sequence < producerSequencesMax + 10; sequence++) {
      const result = await topic.publish([`m${sequence}`], { producerId: "p", sequence });
      assert.equal(result.firstOffset, sequence);
    }
    const last = producerSequencesMax + 9;
    assert.deepEqual(await topic.publish(["again"], { producerId: "p", sequence: last - 3 }), {
      firstOffset: last - 3,
      count: 1,
      duplicate: true,
    });
    for (const sequence of [last + 2, 0, 9]) {
      await assert.rejects(
        topic.publish(["x"], { producerId: "p", sequence }),
        (error: unknown) =>
          error instanceof ProtocolError && error.code === "out_of_order_sequence" &&
          /was not stored$/.test(error.message),
      );
    }
    // A producer the topic does not know starts wherever it starts.
    const stranger = await topic.publish(["s3"], { producerId: "stranger", sequence: 3 });
    assert.equal(stranger.firstOffset, last + 1);
    assert.equal((await topic.bounds()).nextOffset, last + 2);
    const { messages } = await topic.read(last - 3, 10);
    assert.deepEqual(messages.map((item) => item.message), [
      `m${last - 3}`,
      `m${last - 2}`,
      `m${last - 1}`,
      `m${last}`,
      "s3",
    ]);
  } finally {
    await close();
  }
});

/** One delivery of a client publish to the state machine, as a lossy network may order them. */
interface Delivery {
  producer: number;
  sequence: number;
  /** Deliveries with the same entry number in a row share one log entry (coalescing). */
  entry: number;
}

Deno.test("TopicState never acknowledges what it did not store, under any retry and reorder schedule", () => {
  const producers = 3;
  const deliveries = fc.array(
    fc.record({
      producer: fc.integer({ min: 0, max: producers - 1 }),
      // Mostly near the front, so that runs of in-order sequences happen.
      sequence: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 80 })),
      entry: fc.integer({ min: 0, max: 3 }),
    }),
    { maxLength: 400 },
  );
  fc.assert(
    fc.property(deliveries, (schedule: Delivery[]) => {
      const replicas = [new TopicState(), new TopicState()];
      const log: string[] = [];
      const stored = new Map<string, number>();
      const verdicts: string[][] = [[], []];
      for (const [position, entry] of groupEntries(schedule).entries()) {
        const parts: PublishPart[] = entry.map(({ producer, sequence }) => ({
          messages: [message(producer, sequence)],
          producerId: `p${producer}`,
          sequence,
        }));
        const data = encodeCommand({ kind: "publish", parts });
        replicas.forEach((state, replica) => {
          const result = state.apply(position + 1, data);
          assert.equal(result.kind, "published");
          if (result.kind !== "published") return;
          if (replica === 0) log.push(...result.messages);
          result.parts.forEach((part, index) => {
            const text = parts[index].messages[0];
            if ("rejected" in part) {
              verdicts[replica].push(`refused ${text}`);
              return;
            }
            verdicts[replica].push(`${text}@${part.firstOffset}`);
            // Every success names offsets that hold exactly this message.
            assert.ok(part.firstOffset >= 0 && part.count === 1, `bad answer for ${text}`);
            assert.equal(log[part.firstOffset], text, `offset ${part.firstOffset} of ${text}`);
            if (replica === 0 && !part.duplicate) stored.set(text, part.firstOffset);
            if (part.duplicate) assert.equal(stored.get(text), part.firstOffset);
          });
        });
      }
      // Replicas decide alike; nothing is stored twice; each producer's
      // sequences are stored in order with no gap after its first one
      // (which may be any number): s, s+1, s+2, ...
      assert.deepEqual(verdicts[0], verdicts[1]);
      assert.equal(new Set(log).size, log.length);
      for (let producer = 0; producer < producers; producer++) {
        const sequences = log.filter((text) => text.startsWith(`p${producer}:`))
          .map((text) => Number(text.split(":")[1]));
        assert.deepEqual(sequences, sequences.map((_, index) => (sequences[0] ?? 0) + index));
      }
    }),
    { numRuns: 300 },
  );
});

function message(producer: number, sequence: number): string {
  return `p${producer}:${sequence}`;
}

function groupEntries(schedule: Delivery[]): Delivery[][] {
  const entries: Delivery[][] = [];
  for (const delivery of schedule) {
    const current = entries.at(-1);
    if (current !== undefined && current[0].entry === delivery.entry) current.push(delivery);
    else entries.push([delivery]);
  }
  return entries;
}

Deno.test("publishes through a proxy that drops answers, far more in flight than the old window, are each stored once at their acknowledged offset", async () => {
  const peer = await startPeer();
  let seen = 0;
  // Cut the connection (losing every answer in flight on it) at these publishes.
  const cuts = new Set([150, 420, 700, 950]);
  const proxy = startProxy({ hostname: "127.0.0.1", port: peer.port }, (request) => {
    if (request.action !== "publish") return { kind: "forward" };
    seen++;
    return cuts.has(seen) ? { kind: "lose_answer" } : { kind: "forward" };
  });
  // One request per publish: the cuts must land among many publishes in flight.
  const client = await PubSubClient.connect({
    peers: [proxy.address],
    retries: 30,
    coalesce: false,
  });
  try {
    await client.createTopic("events");
    const count = 1000;
    const texts = Array.from({ length: count }, (_, index) => `message ${index}`);
    const answers = await Promise.all(texts.map((text) => client.publish("events", text)));
    const offsets = answers.map((answer) => answer.offset);
    assert.ok(offsets.every((offset) => Number.isInteger(offset) && offset >= 0));
    assert.equal(new Set(offsets).size, count, "two publishes were acknowledged at one offset");
    const stored = await client.fetchMessages("events");
    assert.equal(stored.length, count, "a retry was stored twice or a message was lost");
    texts.forEach((text, index) => assert.equal(stored[offsets[index]], text));
    // The cuts forced retries of publishes that were stored already. With
    // the old 64-sequence window some of them were answered with offset -1.
    const sent = proxy.requests.filter((request) => request.action === "publish");
    assert.ok(
      sent.length > count + oldWindow,
      `too few publishes were retried (${sent.length} sent)`,
    );
  } finally {
    await client.close();
    await proxy.close();
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("a publish answered unavailable while later ones go through is stored once, and in sequence order", async () => {
  const peer = await startPeer();
  let refused = false;
  const proxy = startProxy({ hostname: "127.0.0.1", port: peer.port }, (request) => {
    if (request.action === "publish" && request.sequence === 5 && !refused) {
      refused = true;
      return { kind: "answer", response: { status: "unavailable", error: "No leader." } };
    }
    return { kind: "forward" };
  });
  const client = await PubSubClient.connect({ peers: [proxy.address] });
  try {
    await client.createTopic("events");
    const texts = Array.from({ length: 40 }, (_, index) => `m${index}`);
    const answers = await Promise.all(texts.map((text) => client.publish("events", text)));
    // Sequence order is offset order: the refused publish did not fall behind later ones.
    assert.deepEqual(answers.map((answer) => answer.offset), texts.map((_, index) => index));
    assert.deepEqual(await client.fetchMessages("events"), texts);
  } finally {
    await client.close();
    await proxy.close();
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("a publish that fails for good makes the later ones in flight fail with OutOfOrderSequenceError once, and the next publish works", async () => {
  const peer = await startPeer();
  const proxy = startProxy({ hostname: "127.0.0.1", port: peer.port }, (request) => {
    if (request.action === "publish" && request.sequence === 3) {
      return { kind: "answer", response: { status: "storage_full", error: "The disk is full." } };
    }
    return { kind: "forward" };
  });
  // One request (and sequence) per publish, so that the fourth one alone fails.
  const client = await PubSubClient.connect({ peers: [proxy.address], coalesce: false });
  try {
    await client.createTopic("events");
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, (_, index) => client.publish("events", `m${index}`)),
    );
    for (const index of [0, 1, 2]) {
      assert.deepEqual(outcomes[index], { status: "fulfilled", value: { offset: index } });
    }
    const failure = outcomes[3];
    assert.ok(failure.status === "rejected" && failure.reason instanceof PubSubError);
    assert.equal(failure.reason.code, "storage_full");
    for (const outcome of outcomes.slice(4)) {
      assert.equal(outcome.status, "rejected");
      const error = (outcome as PromiseRejectedResult).reason;
      assert.ok(error instanceof OutOfOrderSequenceError, `got ${error}`);
      assert.equal(error.code, "out_of_order_sequence");
      assert.match(
        error.message,
        /skips ahead of its last stored sequence 2.*publish the message again/,
      );
    }
    // Not looped: each refused publish went out at most twice (the refusal, one resend).
    const publishes = proxy.requests.filter((request) => request.action === "publish");
    for (let sequence = 4; sequence < 10; sequence++) {
      const copies = publishes.filter((request) => request.sequence === sequence).length;
      assert.ok(copies >= 1 && copies <= 2, `sequence ${sequence} went out ${copies} times`);
    }
    // A new producer stream starts at sequence 0, so the next publish is stored.
    assert.deepEqual(await client.publish("events", "after"), { offset: 3 });
    const last = proxy.requests.at(-1)!;
    assert.equal(last.sequence, 0);
    assert.notEqual(last.producer_id, client.producerId);
    assert.deepEqual(await client.fetchMessages("events"), ["m0", "m1", "m2", "after"]);
  } finally {
    await client.close();
    await proxy.close();
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("a raw publish after a gap gets out_of_order_sequence and is not retried by the client", async () => {
  const peer = await startPeer();
  const proxy = startProxy({ hostname: "127.0.0.1", port: peer.port }, () => ({ kind: "forward" }));
  const client = await PubSubClient.connect({ peers: [proxy.address] });
  try {
    await client.createTopic("events");
    const publish = (sequence: number) =>
      client.request({
        action: "publish",
        topic_name: "events",
        message: `s${sequence}`,
        producer_id: "raw",
        sequence,
      }, { retry: true });
    await publish(0);
    await assert.rejects(publish(2), (error: unknown) => {
      assert.ok(error instanceof OutOfOrderSequenceError);
      return true;
    });
    assert.equal(proxy.requests.filter((request) => request.sequence === 2).length, 1);
    assert.deepEqual(await client.fetchMessages("events"), ["s0"]);
  } finally {
    await client.close();
    await proxy.close();
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});
