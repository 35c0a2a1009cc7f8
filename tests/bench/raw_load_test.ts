/**
 * `rawPublishLoad` (lib/bench/raw_load.ts) against a real in-process peer:
 * it counts every acknowledged publish and every refused one (keeping the
 * first refusal's status and sentence), and its answer check tells a
 * success from anything else without parsing the usual success.
 *
 * @module
 */

import assert from "node:assert/strict";
import { AnswerCheck, rawPublishLoad } from "../../lib/bench/raw_load.ts";
import { LocalBroker } from "../../lib/peer/local_broker.ts";
import { Server } from "../../lib/peer/server.ts";

const encoder = new TextEncoder();

/** Runs `run` against a standalone peer on a free port that has the topic "events". */
async function withPeer(run: (address: string, broker: LocalBroker) => Promise<void>) {
  const dataDir = await Deno.makeTempDir({ prefix: "pubsub-raw-load-" });
  const broker = await LocalBroker.open({ nodeId: 1, dataDir, address: "127.0.0.1:1" });
  const server = Server.listen({
    hostname: "127.0.0.1",
    port: 0,
    broker,
    frameBytesMax: 1024 * 1024,
    requestTimeoutMs: 5000,
    idleTimeoutMs: 30_000,
  });
  try {
    await broker.createTopic("events");
    await run(`127.0.0.1:${server.port}`, broker);
  } finally {
    await server.close();
    await broker.close();
    await Deno.remove(dataDir, { recursive: true });
  }
}

Deno.test("rawPublishLoad counts the publishes a topic stored, and no failures", async () => {
  await withPeer(async (address, broker) => {
    const result = await rawPublishLoad({
      address,
      topic: "events",
      inFlight: 8,
      durationMs: 200,
      message: "m",
    });
    assert.equal(result.failed, 0);
    assert.equal(result.firstError, undefined);
    assert.ok(result.acked > 0);
    const topic = await broker.topic("events");
    assert.equal((await topic.bounds()).nextOffset, result.acked);
  });
});

Deno.test("rawPublishLoad against a topic that does not exist reports every publish as failed", async () => {
  await withPeer(async (address) => {
    const result = await rawPublishLoad({
      address,
      topic: "missing",
      inFlight: 8,
      durationMs: 200,
      message: "m",
    });
    assert.equal(result.acked, 0);
    assert.ok(result.failed >= 8, `only ${result.failed} failures`);
    assert.equal(result.firstError, "topic_not_found: Topic 'missing' does not exist.");
  });
});

Deno.test("AnswerCheck counts a success only with the status message_published", () => {
  const answers = new AnswerCheck("events");
  const check = (json: string) => answers.check(encoder.encode(json));
  assert.equal(check('{"status":"message_published","topic":"events","offset":0}'), true);
  assert.equal(check('{"status":"message_published","topic":"events","offset":1234}'), true);
  // Spelled otherwise: parsed, and still a success.
  assert.equal(check('{"offset":5,"status":"message_published","topic":"events"}'), true);
  assert.equal(check('{"status":"overloaded","error":"Too many requests."}'), false);
  assert.equal(check('{"status":"messages_published","topic":"events","first_offset":1}'), false);
  assert.equal(check('{"status":"message_published","topic":"events","offset":1'), false);
  assert.equal(check('{"status":"message_published","topic":"events","offset":}'), false);
  assert.equal(check("[]"), false);
  assert.equal(answers.acked, 3);
  assert.equal(answers.failed, 5);
  assert.equal(answers.firstError, "overloaded: Too many requests.");
});
