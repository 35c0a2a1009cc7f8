/**
 * The client connection's framing over a real socket: answers split at any
 * byte, several in one read, frames larger than the reused read buffer,
 * pushed events between answers, multi-byte text, and the protocol errors
 * (empty frame, frame over the limit) that close it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Connection, type PendingRequest, readBufferBytes } from "../../lib/client/_connection.ts";
import { connectTransport } from "../../lib/client/_transport.ts";
import { PubSubError } from "../../lib/client/errors.ts";
import { encodeFrame, FrameDecoder } from "../../lib/wire/frame.ts";
import type { MessageEvent } from "../../lib/wire/responses.ts";

const utf8 = new TextDecoder();

/** A one-connection server: hands every request it reads to `serve` with the socket. */
function startServer(
  serve: (request: Record<string, unknown>, socket: Deno.Conn) => Promise<void>,
): { address: string; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sockets: Deno.Conn[] = [];
  (async () => {
    for await (const socket of listener) {
      sockets.push(socket);
      const decoder = new FrameDecoder({ frameBytesMax: 1024 * 1024 });
      (async () => {
        for await (const chunk of socket.readable) {
          for (const event of decoder.push(chunk)) {
            if (event.kind === "frame") await serve(JSON.parse(utf8.decode(event.payload)), socket);
          }
        }
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close() {
      listener.close();
      for (const socket of sockets) {
        try {
          socket.close();
        } catch {
          // Closed by the client already.
        }
      }
    },
  };
}

/** Writes `bytes` in pieces of `size`, letting each go out on its own. */
async function writeInPieces(socket: Deno.Conn, bytes: Uint8Array, size: number): Promise<void> {
  for (let at = 0; at < bytes.length; at += size) {
    await socket.write(bytes.subarray(at, Math.min(bytes.length, at + size)));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

interface Opened {
  connection: Connection;
  pushed: MessageEvent[];
  closed: Promise<{ error: Error; unanswered: PendingRequest[] }>;
}

async function open(address: string, frameBytesMax = 1024 * 1024): Promise<Opened> {
  const transport = await connectTransport(address, { connectTimeoutMs: 5000 });
  const pushed: MessageEvent[] = [];
  let closedWith: (value: { error: Error; unanswered: PendingRequest[] }) => void = () => {};
  const closed = new Promise<{ error: Error; unanswered: PendingRequest[] }>((resolve) =>
    closedWith = resolve
  );
  const connection = new Connection(transport, {
    frameBytesMax,
    requestBytesMax: 1024 * 1024,
    inFlightRequestsMax: 100,
    sendQueueBytesMax: 1024 * 1024,
  }, {
    onPush: (event) => pushed.push(event),
    onClose: (_, error, unanswered) => closedWith({ error, unanswered }),
  });
  return { connection, pushed, closed };
}

/** Sends `body` with `id` and resolves with its answer. */
function ask(connection: Connection, id: number, body: Record<string, unknown>): Promise<unknown> {
  return new Promise((resolve) => connection.send(body, { id, settle: resolve }));
}

Deno.test("a connection decodes answers split at any byte, batched, and larger than its read buffer", async () => {
  const big = "x".repeat(3 * readBufferBytes + 17);
  const server = startServer(async (request, socket) => {
    if (request.action !== "go") return;
    // Four answers and a push, in one byte stream cut into odd pieces.
    const frames = [
      encodeFrame({ event: "message", topic: "t", subscriber_id: "s", offset: 4, message: "p" }),
      encodeFrame({ status: "ok", id: 1, text: "h\u00e9llo \u{1F600}" }),
      encodeFrame({ status: "ok", id: 2, text: big }),
      encodeFrame({ status: "ok", id: 3, text: "after the big one" }),
      encodeFrame(["no", "id"]),
    ];
    const total = frames.reduce((sum, frame) => sum + frame.length, 0);
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const frame of frames) {
      bytes.set(frame, at);
      at += frame.length;
    }
    await writeInPieces(socket, bytes.subarray(0, 3), 1);
    await writeInPieces(socket, bytes.subarray(3), 7001);
  });
  const { connection, pushed, closed } = await open(server.address);
  try {
    const answers = Promise.all([
      ask(connection, 1, { action: "go" }),
      ask(connection, 2, { action: "wait" }),
      ask(connection, 3, { action: "wait" }),
      ask(connection, 4, { action: "wait" }),
    ]);
    assert.deepEqual(await answers, [
      { status: "ok", id: 1, text: "h\u00e9llo \u{1F600}" },
      { status: "ok", id: 2, text: big },
      { status: "ok", id: 3, text: "after the big one" },
      ["no", "id"],
    ]);
    assert.deepEqual(pushed, [
      { event: "message", topic: "t", subscriber_id: "s", offset: 4, message: "p" },
    ]);
    assert.equal(connection.inFlight, 0);
    assert.equal(connection.closed, false);
  } finally {
    connection.close(new PubSubError("closed", "Test over"));
    await closed;
    server.close();
  }
});

Deno.test("a connection closes on an empty frame and on one over frameBytesMax, handing back what was unanswered", async () => {
  for (
    const [header, sentence] of [[0, "empty frame"], [5000, "over frameBytesMax 4096"]] as const
  ) {
    const server = startServer(async (request, socket) => {
      if (request.action !== "go") return;
      const bytes = new Uint8Array(4);
      new DataView(bytes.buffer).setUint32(0, header);
      await socket.write(bytes);
    });
    const { connection, closed } = await open(server.address, 4096);
    try {
      connection.send({ action: "wait" }, { id: 1, settle: () => assert.fail("answered") });
      connection.send({ action: "go" }, { id: 2, settle: () => assert.fail("answered") });
      const { error, unanswered } = await closed;
      assert.ok(error instanceof PubSubError);
      assert.equal(error.code, "protocol");
      assert.ok(error.message.includes(sentence), error.message);
      assert.deepEqual(unanswered.map((request) => request.id), [1, 2]);
      assert.equal(connection.closed, true);
    } finally {
      server.close();
    }
  }
});

Deno.test("a connection sends a burst of requests, multi-byte text included, in order and refuses one over requestBytesMax", async () => {
  const seen: Record<string, unknown>[] = [];
  const server = startServer(async (request, socket) => {
    seen.push(request);
    await socket.write(encodeFrame({ status: "ok", id: request.id }));
  });
  const { connection, closed } = await open(server.address);
  try {
    const texts = Array.from({ length: 500 }, (_, index) => `m${index} \u00e9\u{1F600}`);
    await Promise.all(texts.map((text, index) => ask(connection, index + 1, { text })));
    assert.deepEqual(seen, texts.map((text, index) => ({ text, id: index + 1 })));
    // 400k characters of 3 UTF-8 bytes each: 1.2 MB, over the 1 MiB limit.
    assert.throws(
      () => connection.send({ text: "\u20ac".repeat(400_000) }, { id: 9999, settle: () => {} }),
      (error: unknown) => error instanceof PubSubError && error.code === "frame_too_large",
    );
    // 1.1M ASCII characters are as many bytes: over the limit without being encoded.
    assert.throws(
      () => connection.send({ text: "a".repeat(1_100_000) }, { id: 9998, settle: () => {} }),
      (error: unknown) => error instanceof PubSubError && error.code === "frame_too_large",
    );
    // 400k ASCII characters fit although 3 bytes per character would not.
    assert.deepEqual(await ask(connection, 10_000, { text: "a".repeat(400_000) }), {
      status: "ok",
      id: 10_000,
    });
  } finally {
    connection.close(new PubSubError("closed", "Test over"));
    await closed;
    server.close();
  }
});

Deno.test("a connection takes a real U+FFFD and closes on malformed UTF-8", async () => {
  const server = startServer(async (request, socket) => {
    if (request.action === "replacement") {
      await socket.write(encodeFrame({ status: "ok", id: request.id, text: "a\uFFFDb" }));
    } else {
      // '{"x":"' 0xff '"}': not UTF-8.
      const payload = new Uint8Array([123, 34, 120, 34, 58, 34, 0xff, 34, 125]);
      const bytes = new Uint8Array(4 + payload.length);
      new DataView(bytes.buffer).setUint32(0, payload.length);
      bytes.set(payload, 4);
      await socket.write(bytes);
    }
  });
  const { connection, closed } = await open(server.address);
  try {
    assert.deepEqual(await ask(connection, 1, { action: "replacement" }), {
      status: "ok",
      id: 1,
      text: "a\uFFFDb",
    });
    connection.send({ action: "malformed" }, { id: 2, settle: () => assert.fail("answered") });
    const { error, unanswered } = await closed;
    assert.ok(error instanceof PubSubError && error.code === "disconnected", String(error));
    assert.ok(error.cause instanceof TypeError, String(error.cause));
    assert.deepEqual(unanswered.map((request) => request.id), [2]);
  } finally {
    server.close();
  }
});
