/**
 * A TCP proxy between a client and a real peer that can lose one answer or
 * answer for the peer, to test the client's retries deterministically.
 *
 * @module
 */

import { encodeFrame, FrameDecoder } from "../../lib/wire/frame.ts";

const utf8 = new TextDecoder();

/** What to do with one request seen by the proxy. */
export type ProxyVerdict =
  | { kind: "forward" }
  /** Forward the request, then cut the connection instead of relaying its answer. */
  | { kind: "lose_answer" }
  /** Answer this instead of forwarding. */
  | { kind: "answer"; response: Record<string, unknown> }
  /** Forward the request after `ms` (later requests on the connection wait behind it). */
  | { kind: "delay"; ms: number };

/** A running proxy. */
export interface Proxy {
  address: string;
  /** Requests seen, in order. */
  requests: Record<string, unknown>[];
  close(): Promise<void>;
}

/** Listens on a free port and relays to `target`, asking `judge` about every request. */
export function startProxy(
  target: { hostname: string; port: number },
  judge: (request: Record<string, unknown>) => ProxyVerdict,
): Proxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: Record<string, unknown>[] = [];
  const connections = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const client of listener) {
      connections.add(client);
      tasks.push(relay(client, target, judge, requests, connections));
    }
  })().catch(() => {});
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    requests,
    async close() {
      listener.close();
      for (const connection of connections) closeQuietly(connection);
      await accepting;
      await Promise.allSettled(tasks);
    },
  };
}

async function relay(
  client: Deno.Conn,
  target: { hostname: string; port: number },
  judge: (request: Record<string, unknown>) => ProxyVerdict,
  requests: Record<string, unknown>[],
  connections: Set<Deno.Conn>,
): Promise<void> {
  const server = await Deno.connect(target);
  connections.add(server);
  const doomedIds = new Set<unknown>();
  const cut = () => {
    closeQuietly(client);
    closeQuietly(server);
  };
  const upstream = (async () => {
    const decoder = new FrameDecoder();
    for await (const chunk of client.readable) {
      for (const event of decoder.push(chunk)) {
        if (event.kind !== "frame") continue;
        const request = JSON.parse(utf8.decode(event.payload));
        requests.push(request);
        const verdict = judge(request);
        if (verdict.kind === "answer") {
          await client.write(encodeFrame({ ...verdict.response, id: request.id }));
          continue;
        }
        if (verdict.kind === "lose_answer") doomedIds.add(request.id);
        if (verdict.kind === "delay") {
          await new Promise((resolve) => setTimeout(resolve, verdict.ms));
        }
        await server.write(encodeFrame(request));
      }
    }
  })();
  const downstream = (async () => {
    const decoder = new FrameDecoder({ frameBytesMax: 64 * 1024 * 1024 });
    for await (const chunk of server.readable) {
      for (const event of decoder.push(chunk)) {
        if (event.kind !== "frame") continue;
        const response = JSON.parse(utf8.decode(event.payload));
        if (doomedIds.has(response?.id)) return cut();
        await client.write(encodeFrame(response));
      }
    }
  })();
  await Promise.allSettled([upstream, downstream]);
  cut();
  connections.delete(client);
  connections.delete(server);
}

function closeQuietly(connection: Deno.Conn): void {
  try {
    connection.close();
  } catch {
    // Already closed by the other side.
  }
}
