/**
 * What `PubSubClient.publish` puts on the wire: the request text it writes
 * for a lone publish (built as a template, not by `JSON.stringify` of the
 * body) is exactly `JSON.stringify` of the protocol's body with its id, for
 * plain and idempotent publishes and messages that need escapes. A fake
 * transport records every request and answers it as a peer does.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PubSubClient } from "../../lib/client/client.ts";
import type { Transport } from "../../lib/client/_transport.ts";
import { encodeFrame, FrameDecoder } from "../../lib/wire/frame.ts";
import { publishedAnswerJson } from "../../lib/wire/responses.ts";

/** A transport to one fake peer that records request texts and answers publishes. */
function recordingTransport(texts: string[]): Transport {
  const decoder = new FrameDecoder({ frameBytesMax: 1024 * 1024 });
  const answers: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  let offset = 0;
  return {
    address: "127.0.0.1:1",
    write(bytes) {
      for (const event of decoder.push(bytes)) {
        if (event.kind !== "frame") throw new Error("unexpected frame event");
        const text = new TextDecoder().decode(event.payload);
        texts.push(text);
        const request = JSON.parse(text);
        const answer = request.action === "publish"
          ? publishedAnswerJson(request.topic_name, offset++, request.id)
          : JSON.stringify({ status: "pong", node: 1, id: request.id });
        answers.push(new TextEncoder().encode(answer));
      }
      wake?.();
      return Promise.resolve();
    },
    async read(buffer) {
      while (answers.length === 0 && !closed) await new Promise<void>((resolve) => wake = resolve);
      if (closed) return null;
      const frame = encodeFrame(JSON.parse(new TextDecoder().decode(answers.shift()!)));
      buffer.set(frame);
      return frame.length;
    },
    close() {
      closed = true;
      wake?.();
    },
  };
}

for (const idempotent of [false, true]) {
  Deno.test(`a lone ${idempotent ? "idempotent" : "plain"} publish writes JSON.stringify of its body`, async () => {
    const texts: string[] = [];
    const client = await PubSubClient.connect({
      peers: ["127.0.0.1:1"],
      idempotent,
      connect: () => Promise.resolve(recordingTransport(texts)),
    });
    try {
      const messages = ["hello", 'quote " and \\ backslash', "zäh €😀", "line\nbreak\u0001", ""];
      const topics = ["events", "orders.2", "events"];
      for (const [index, message] of messages.entries()) {
        const topic = topics[index % topics.length];
        const { offset } = await client.publish(topic, message);
        const sent = texts.at(-1)!;
        const request = JSON.parse(sent);
        assert.equal(request.message, message);
        assert.equal(request.topic_name, topic);
        const expected = idempotent
          ? {
            action: "publish",
            topic_name: topic,
            message,
            producer_id: request.producer_id,
            sequence: request.sequence,
            id: request.id,
          }
          : { action: "publish", topic_name: topic, message, id: request.id };
        assert.equal(sent, JSON.stringify(expected));
        if (idempotent) {
          assert.equal(typeof request.producer_id, "string");
          assert.ok(Number.isSafeInteger(request.sequence));
        }
        assert.ok(offset >= 0);
      }
    } finally {
      await client.close();
    }
  });
}
