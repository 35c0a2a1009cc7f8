import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { FaultProxy, helloNodeId } from "../../lib/verify/proxy.ts";
import { encodeFrame, FrameDecoder } from "../../lib/wire/frame.ts";

/** A stand-in for a peer: it records every frame it receives and echoes it back. */
class EchoPeer {
  readonly received: unknown[] = [];
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #connections: Deno.Conn[] = [];
  readonly #serving: Promise<void>;
  readonly port = (this.#listener.addr as Deno.NetAddr).port;

  constructor() {
    this.#serving = this.#serve();
  }

  /** Sends a frame on every accepted connection (the peer speaking on its own). */
  async push(value: unknown): Promise<void> {
    for (const conn of this.#connections) await conn.write(encodeFrame(value));
  }

  async close(): Promise<void> {
    this.#listener.close();
    for (const conn of this.#connections) closeQuietly(conn);
    await this.#serving;
  }

  async #serve(): Promise<void> {
    const tasks: Promise<void>[] = [];
    try {
      for await (const conn of this.#listener) {
        this.#connections.push(conn);
        tasks.push((async () => {
          for await (const frame of frames(conn)) {
            this.received.push(frame);
            await conn.write(encodeFrame({ echo: frame })).catch(() => {});
          }
        })());
      }
    } catch { /* closed */ }
    await Promise.allSettled(tasks);
  }
}

async function* frames(conn: Deno.Conn): AsyncGenerator<unknown> {
  const decoder = new FrameDecoder({ frameBytesMax: 1 << 20 });
  const buffer = new Uint8Array(4096);
  while (true) {
    const read = await conn.read(buffer).catch(() => null);
    if (read === null) return;
    for (const event of decoder.push(buffer.subarray(0, read))) {
      if (event.kind === "frame") yield JSON.parse(new TextDecoder().decode(event.payload));
    }
  }
}

/** A dialing "peer": a connection through the proxy that said peer_hello as `nodeId`. */
async function dial(address: string, nodeId: number) {
  const [hostname, port] = address.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const inbox: unknown[] = [];
  let ended = false;
  const reading = (async () => {
    for await (const frame of frames(conn)) inbox.push(frame);
    ended = true;
  })();
  await conn.write(encodeFrame({ action: "peer_hello", node_id: nodeId, nonce: "n" }));
  return {
    inbox,
    ended: () => ended,
    send: (value: unknown) => conn.write(encodeFrame(value)),
    close: async () => {
      closeQuietly(conn);
      await reading;
    },
  };
}

async function until(what: string, condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* closed */ }
}

Deno.test("FaultProxy relays both ways and learns the dialer's node id from peer_hello", async () => {
  const peer = new EchoPeer();
  const proxy = new FaultProxy();
  try {
    const address = proxy.listen(2, { hostname: "127.0.0.1", port: peer.port });
    equal(proxy.addressOf(2), address);
    const dialer = await dial(address, 1);
    await dialer.send({ n: 1 });
    await until("the echo", () => dialer.inbox.length === 2);
    deepStrictEqual(peer.received[1], { n: 1 });
    deepStrictEqual(dialer.inbox[1], { echo: { n: 1 } });
    const stats = proxy.stats();
    const upstream = stats.find((entry) => entry.from === 1 && entry.to === 2);
    const downstream = stats.find((entry) => entry.from === 2 && entry.to === 1);
    equal(upstream?.connections, 1);
    ok(upstream!.bytes > 0 && downstream!.bytes > 0);
    await dialer.close();
  } finally {
    await proxy.close();
    await peer.close();
  }
});

Deno.test("FaultProxy holds one direction while the other flows, and heal delivers the held bytes in order", async () => {
  const peer = new EchoPeer();
  const proxy = new FaultProxy();
  try {
    const address = proxy.listen(2, { hostname: "127.0.0.1", port: peer.port });
    const dialer = await dial(address, 1);
    await until("the hello at the peer", () => peer.received.length === 1);
    await until("the hello's echo", () => dialer.inbox.length === 1);
    proxy.block(1, 2);
    ok(proxy.isBlocked(1, 2));
    ok(!proxy.isBlocked(2, 1));
    await dialer.send({ n: 1 });
    await dialer.send({ n: 2 });
    await peer.push({ pushed: true });
    await until("the push from 2 to 1", () => dialer.inbox.length === 2);
    deepStrictEqual(dialer.inbox[1], { pushed: true });
    await new Promise((resolve) => setTimeout(resolve, 200));
    equal(peer.received.length, 1, "bytes from 1 to 2 must be held");
    proxy.heal();
    await until("the held frames", () => peer.received.length === 3);
    deepStrictEqual(peer.received.slice(1), [{ n: 1 }, { n: 2 }]);
    await until("their echoes", () => dialer.inbox.length === 4);
    deepStrictEqual(proxy.blockedDirections(), []);
    await dialer.close();
  } finally {
    await proxy.close();
    await peer.close();
  }
});

Deno.test("FaultProxy partitions two sides both ways and leaves other links alone", async () => {
  const peer = new EchoPeer();
  const proxy = new FaultProxy();
  try {
    const address = proxy.listen(2, { hostname: "127.0.0.1", port: peer.port });
    const cut = await dial(address, 1);
    const bridge = await dial(address, 3);
    await until("both hellos", () => peer.received.length === 2);
    await until("both echoes", () => cut.inbox.length === 1 && bridge.inbox.length === 1);
    proxy.partition([1], [2]);
    await cut.send({ from: 1 });
    await bridge.send({ from: 3 });
    await until("the bridge's frame", () => bridge.inbox.length === 2);
    await new Promise((resolve) => setTimeout(resolve, 150));
    equal(cut.inbox.length, 1);
    ok(!peer.received.some((frame) => (frame as { from?: number }).from === 1));
    proxy.unblock(1, 2);
    await until("the frame from 1", () => peer.received.length === 4);
    await new Promise((resolve) => setTimeout(resolve, 100));
    equal(cut.inbox.length, 1, "its echo is still held from 2 to 1");
    proxy.unblock(2, 1);
    await until("the echo to 1", () => cut.inbox.length === 2);
    await cut.close();
    await bridge.close();
  } finally {
    await proxy.close();
    await peer.close();
  }
});

Deno.test("FaultProxy delays a direction and drops connections on request", async () => {
  const peer = new EchoPeer();
  const proxy = new FaultProxy();
  try {
    const address = proxy.listen(2, { hostname: "127.0.0.1", port: peer.port });
    const dialer = await dial(address, 1);
    await until("the hello's echo", () => dialer.inbox.length === 1);
    proxy.setDelay(1, 2, 300);
    const sentAt = performance.now();
    await dialer.send({ n: 1 });
    await until("the delayed echo", () => dialer.inbox.length === 2);
    ok(performance.now() - sentAt >= 290, `echo after ${performance.now() - sentAt} ms`);
    proxy.heal();
    equal(proxy.dropConnections((from) => from === 3), 0);
    equal(proxy.dropConnections((from, to) => from === 1 && to === 2), 1);
    await until("the dialer to see the close", () => dialer.ended());
    equal(proxy.connectionCount, 0);
    const again = await dial(address, 1);
    await until("a new connection's echo", () => again.inbox.length === 1);
    equal(proxy.stats().find((entry) => entry.from === 1)?.connections, 2);
    await dialer.close();
    await again.close();
  } finally {
    await proxy.close();
    await peer.close();
  }
});

Deno.test("FaultProxy closes a dialer at once when the peer behind it is down", async () => {
  const peer = new EchoPeer();
  const port = peer.port;
  await peer.close();
  const proxy = new FaultProxy();
  try {
    const dialer = await dial(proxy.listen(2, { hostname: "127.0.0.1", port }), 1);
    await until("the close", () => dialer.ended());
    await dialer.close();
  } finally {
    await proxy.close();
  }
});

Deno.test("helloNodeId reads the node id of a peer_hello frame only", () => {
  const payload = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  equal(helloNodeId(payload({ action: "peer_hello", node_id: 7, nonce: "x" })), 7);
  equal(helloNodeId(payload({ action: "publish", node_id: 7 })), undefined);
  equal(helloNodeId(payload({ action: "peer_hello", node_id: "7" })), undefined);
  equal(helloNodeId(new TextEncoder().encode("{not json")), undefined);
});
