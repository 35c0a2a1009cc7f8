/**
 * A call that gets no answer in time fails with code `timeout` and one
 * sentence; for a write it says the request may still have taken effect.
 * The peer here is a real socket that reads every request and never answers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PubSubClient } from "../../lib/client/client.ts";
import { RequestTimeoutError } from "../../lib/client/errors.ts";

/** A TCP server on 127.0.0.1 that accepts connections and reads them without ever writing. */
function silentPeer(): { address: string; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const connection of listener) {
      connections.push(connection);
      (async () => {
        const buffer = new Uint8Array(4096);
        try {
          while ((await connection.read(buffer)) !== null) { /* never answers */ }
        } catch { /* closed by the test */ }
      })();
    }
  })();
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    async close() {
      listener.close();
      for (const connection of connections) {
        try {
          connection.close();
        } catch { /* already closed */ }
      }
      await serving.catch(() => {});
    },
  };
}

Deno.test("a publish that gets no answer fails with a timeout that says it may still have taken effect", async () => {
  const peer = silentPeer();
  const client = await PubSubClient.connect({
    peers: [peer.address],
    requestTimeoutMs: 200,
    retries: 1,
    callTimeoutMs: 400,
  });
  try {
    await assert.rejects(client.publish("events", "hello"), (error: unknown) => {
      assert.ok(error instanceof RequestTimeoutError, String(error));
      assert.equal(error.code, "timeout");
      assert.match(
        error.message,
        /^No answer to 'publish' within 400 ms; it may still have taken effect$/,
      );
      return true;
    });
    await assert.rejects(client.request({ action: "fetch_topics" }, { retry: true }), (error) => {
      assert.ok(error instanceof RequestTimeoutError, String(error));
      assert.match(error.message, /^No answer to 'fetch_topics' within 400 ms$/);
      return true;
    });
  } finally {
    await client.close();
    await peer.close();
  }
});
