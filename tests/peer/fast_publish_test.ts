/**
 * The fast path of plain publishes (Connection + Session.publishHere) on an
 * in-process server over a real standalone broker: the answer bytes are
 * those of the general path, pipelined publishes of both paths keep their
 * order, and a publish that outlives the request timeout, or that the topic
 * refuses at once, is answered as the general path answers it.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { PublishReceiver } from "../../lib/cluster/raft_topic.ts";
import type { Broker } from "../../lib/peer/broker.ts";
import { LocalBroker } from "../../lib/peer/local_broker.ts";
import { Server } from "../../lib/peer/server.ts";
import type { Topic } from "../../lib/peer/topic.ts";
import { ProtocolError } from "../../lib/wire/errors.ts";
import { FrameDecoder } from "../../lib/wire/frame.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A frame of exactly `json` (so the test chooses fast or general path by its spelling). */
function frame(json: string | Uint8Array): Uint8Array {
  const payload = typeof json === "string" ? encoder.encode(json) : json;
  const bytes = new Uint8Array(4 + payload.length);
  new DataView(bytes.buffer).setUint32(0, payload.length);
  bytes.set(payload, 4);
  return bytes;
}

/** Sends `requests` in one write and returns the JSON text of `count` answers, in order. */
async function exchange(
  port: number,
  requests: (string | Uint8Array)[],
  count: number,
): Promise<string[]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const parts = requests.map(frame);
    const all = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
    let at = 0;
    for (const part of parts) {
      all.set(part, at);
      at += part.length;
    }
    await conn.write(all);
    const frames = new FrameDecoder();
    const answers: string[] = [];
    const buffer = new Uint8Array(64 * 1024);
    while (answers.length < count) {
      const read = await conn.read(buffer);
      if (read === null) throw new Error("the peer closed the connection");
      for (const event of frames.push(buffer.subarray(0, read))) {
        if (event.kind === "frame") answers.push(decoder.decode(event.payload));
      }
    }
    return answers;
  } finally {
    conn.close();
  }
}

async function withServer(
  wrap: (broker: LocalBroker) => Broker,
  run: (port: number, observed: string[]) => Promise<void>,
  requestTimeoutMs = 5000,
): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "pubsub-fast-publish-" });
  const broker = await LocalBroker.open({ nodeId: 1, dataDir, address: "127.0.0.1:1" });
  const observed: string[] = [];
  const server = Server.listen({
    hostname: "127.0.0.1",
    port: 0,
    broker: wrap(broker),
    frameBytesMax: 1024 * 1024,
    requestTimeoutMs,
    idleTimeoutMs: 30_000,
    observe: (action, status) => observed.push(`${action}:${status}`),
  });
  try {
    await broker.createTopic("events");
    await run(server.port, observed);
  } finally {
    await server.close();
    await broker.close();
    await Deno.remove(dataDir, { recursive: true });
  }
}

Deno.test("fast and general publishes answer the same bytes, in request order", async () => {
  await withServer((broker) => broker, async (port, observed) => {
    const answers = await exchange(port, [
      '{"action":"publish","topic_name":"events","message":"a","id":1}',
      '{ "action": "publish", "topic_name": "events", "message": "b", "id": 2 }',
      '{"id":"x","message":"c","topic_name":"events","action":"publish"}',
      '{"action":"publish","topic_name":"events","message":"d\\u0021"}',
      '{"action":"publish","topic_name":"events","message":"e","producer_id":"p","sequence":0}',
      '{"action":"publish","topic_name":"events","message":"e","producer_id":"p","sequence":0}',
      '{"action":"publish","topic_name":"missing","message":"f","id":7}',
    ], 7);
    assert.deepStrictEqual(answers, [
      '{"status":"message_published","topic":"events","offset":0,"id":1}',
      '{"status":"message_published","topic":"events","offset":1,"id":2}',
      '{"status":"message_published","topic":"events","offset":2,"id":"x"}',
      '{"status":"message_published","topic":"events","offset":3}',
      '{"status":"message_published","topic":"events","offset":4}',
      // The retry of sequence 0 is answered with its first offset, and stores nothing.
      '{"status":"message_published","topic":"events","offset":4}',
      `{"status":"topic_not_found","error":"Topic 'missing' does not exist.","id":7}`,
    ]);
    // Counted as they complete (the refusal first), not in request order.
    assert.deepStrictEqual(observed.toSorted(), [
      ...Array(6).fill("publish:message_published"),
      "publish:topic_not_found",
    ]);
    const fetched = await exchange(port, ['{"action":"fetch_messages","topic_name":"events"}'], 1);
    assert.deepStrictEqual(JSON.parse(fetched[0]), ["a", "b", "c", "d!", "e"]);
  });
});

Deno.test("fast publishes of non-ASCII, escaped and invalid UTF-8 messages are stored or refused as before", async () => {
  await withServer((broker) => broker, async (port) => {
    const invalid = encoder.encode(
      '{"action":"publish","topic_name":"events","message":"ab","id":4}',
    );
    invalid[invalid.indexOf(0x61)] = 0xff;
    const answers = await exchange(port, [
      '{"action":"publish","topic_name":"events","message":"plain","id":1}',
      '{"action":"publish","topic_name":"events","message":"héllo 🎉","id":2}',
      invalid,
      '{"action":"publish","topic_name":"events","message":"","id":5}',
      '{"action":"publish","topic_name":"events","message":"{\\"k\\":\\"\\\\\\u0001\\"}\\n","id":6}',
    ], 5);
    assert.deepStrictEqual(answers, [
      '{"status":"message_published","topic":"events","offset":0,"id":1}',
      '{"status":"message_published","topic":"events","offset":1,"id":2}',
      '{"status":"bad_request","error":"The frame is not valid UTF-8."}',
      '{"status":"message_published","topic":"events","offset":2,"id":5}',
      '{"status":"message_published","topic":"events","offset":3,"id":6}',
    ]);
    const fetched = await exchange(port, ['{"action":"fetch_messages","topic_name":"events"}'], 1);
    assert.deepStrictEqual(JSON.parse(fetched[0]), [
      "plain",
      "héllo 🎉",
      "",
      '{"k":"\\\u0001"}\n',
    ]);
  });
});

Deno.test("fast and general batches answer the same bytes, in request order", async () => {
  await withServer((broker) => broker, async (port, observed) => {
    const invalid = encoder.encode(
      '{"action":"publish_batch","topic_name":"events","messages":["ok","ab"],"id":9}',
    );
    invalid[invalid.lastIndexOf(0x61)] = 0xff;
    const answers = await exchange(port, [
      '{"action":"publish_batch","topic_name":"events","messages":["a","b"],"id":1}',
      '{ "action": "publish_batch", "topic_name": "events", "messages": ["c"], "id": 2 }',
      '{"action":"publish","topic_name":"events","message":"d"}',
      '{"messages":["é 🎉","f\\n"],"action":"publish_batch","topic_name":"events","id":"x"}',
      '{"action":"publish_batch","topic_name":"events","messages":["g","h"],"producer_id":"p","sequence":0}',
      '{"action":"publish_batch","topic_name":"events","messages":["g","h"],"producer_id":"p","sequence":0}',
      '{"action":"publish_batch","topic_name":"events","messages":["ü","v"],"producer_id":"p","sequence":1,"id":5}',
      invalid,
      '{"action":"publish_batch","topic_name":"events","messages":[],"id":3}',
      '{"action":"publish_batch","topic_name":"missing","messages":["m"],"id":7}',
    ], 10);
    assert.deepStrictEqual(answers, [
      '{"status":"messages_published","topic":"events","first_offset":0,"count":2,"id":1}',
      '{"status":"messages_published","topic":"events","first_offset":2,"count":1,"id":2}',
      '{"status":"message_published","topic":"events","offset":3}',
      '{"status":"messages_published","topic":"events","first_offset":4,"count":2,"id":"x"}',
      '{"status":"messages_published","topic":"events","first_offset":6,"count":2}',
      // The retry of sequence 0 is answered with its first offset and count, and stores nothing.
      '{"status":"messages_published","topic":"events","first_offset":6,"count":2}',
      '{"status":"messages_published","topic":"events","first_offset":8,"count":2,"id":5}',
      '{"status":"bad_request","error":"The frame is not valid UTF-8."}',
      `{"status":"bad_request","error":"Field 'messages' must be an array of 1-10000 strings.","id":3}`,
      `{"status":"topic_not_found","error":"Topic 'missing' does not exist.","id":7}`,
    ]);
    assert.deepStrictEqual(observed.toSorted(), [
      "publish:message_published",
      ...Array(6).fill("publish_batch:messages_published"),
      "publish_batch:topic_not_found",
    ]);
    const fetched = await exchange(port, ['{"action":"fetch_messages","topic_name":"events"}'], 1);
    assert.deepStrictEqual(JSON.parse(fetched[0]), [
      ..."abcd",
      "é 🎉",
      "f\n",
      ..."gh",
      ..."üv",
    ]);
  });
});

/** `broker`, whose topics answer publishes with `publish` instead. */
function withPublish(broker: LocalBroker, publish: Topic["publish"]): Broker {
  return new Proxy(broker, {
    get(target, property) {
      if (property === "leadingTopic") {
        return (name: string) => {
          const topic = target.leadingTopic(name);
          if (topic === undefined) return undefined;
          // Both ways a publish reaches a topic: decoded, and as the request's bytes.
          const publishBytesTo = (receiver: PublishReceiver) => {
            publish([]).then(
              (result) => receiver.resolve(result),
              (error) => receiver.reject(error),
            );
          };
          return Object.assign(Object.create(topic), {
            publish,
            publishBytesTo,
            publishArrayBytesTo: publishBytesTo,
          });
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

Deno.test("a fast publish that outlives the request timeout is answered unavailable", async () => {
  const never = () => new Promise<never>(() => {});
  await withServer((broker) => withPublish(broker, never), async (port) => {
    const answers = await exchange(port, [
      '{"action":"publish","topic_name":"events","message":"a","id":1}',
      '{"action":"publish_batch","topic_name":"events","messages":["b"],"id":3}',
      '{"action":"ping","id":2}',
    ], 3);
    assert.deepStrictEqual(answers, [
      '{"status":"unavailable","error":"The request timed out before it completed."}',
      '{"status":"unavailable","error":"The request timed out before it completed."}',
      '{"status":"pong","node":1,"id":2}',
    ]);
  }, 200);
});

Deno.test("a fast publish the topic refuses at once gets its error code and sentence", async () => {
  const refuse = () => {
    throw new ProtocolError("storage_full", "The disk is full, so the message was not stored");
  };
  await withServer((broker) => withPublish(broker, refuse), async (port, observed) => {
    const answers = await exchange(port, [
      '{"action":"publish","topic_name":"events","message":"a","id":3}',
      '{"action":"publish_batch","topic_name":"events","messages":["b","c"],"id":4}',
    ], 2);
    assert.deepStrictEqual(answers, [
      '{"status":"storage_full","error":"The disk is full, so the message was not stored.","id":3}',
      '{"status":"storage_full","error":"The disk is full, so the message was not stored.","id":4}',
    ]);
    assert.deepStrictEqual(observed, ["publish:storage_full", "publish_batch:storage_full"]);
  });
});
