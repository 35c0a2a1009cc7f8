/**
 * Test clusters whose peers serve HTTP (`--http-port`), and small helpers to
 * talk to them: JSON requests and a Server-Sent Events reader with bounded
 * waits.
 *
 * @module
 */

import {
  type ClusterSecurity,
  startCluster,
  type TestCluster,
} from "../_helpers/cluster_process.ts";
import { freePort, type PeerProcess, startPeer } from "../_helpers/peer_process.ts";

/** A test cluster and the HTTP base URL of each peer. */
export interface HttpCluster extends TestCluster {
  /** `http://127.0.0.1:<http port of peer id>`. */
  url(id: number): string;
  httpPort(id: number): number;
}

/** Starts `count` peers with HTTP on free ports (a cluster secret by default). */
export async function startHttpCluster(
  count: number,
  options: { args?: (id: number) => string[]; security?: ClusterSecurity } = {},
): Promise<HttpCluster> {
  const ports = Array.from({ length: count }, () => freePort());
  const cluster = await startCluster(count, {
    security: options.security,
    args: (id) => ["--http-port", String(ports[id - 1]), ...(options.args?.(id) ?? [])],
  });
  return Object.assign(cluster, {
    url: (id: number) => `http://127.0.0.1:${ports[id - 1]}`,
    httpPort: (id: number) => ports[id - 1],
  });
}

/** One peer alone with HTTP; `url` is its base URL. */
export async function startHttpPeer(
  args: string[] = [],
): Promise<PeerProcess & { url: string; httpPort: number }> {
  const httpPort = freePort();
  const peer = await startPeer({ args: ["--http-port", String(httpPort), ...args] });
  return Object.assign(peer, { url: `http://127.0.0.1:${httpPort}`, httpPort });
}

/** A decoded answer: status, JSON body and headers. */
export interface JsonAnswer {
  status: number;
  // deno-lint-ignore no-explicit-any
  body: any;
  headers: Headers;
}

/** Sends a request and reads the whole JSON answer. */
export async function request(
  url: string,
  init: RequestInit & { json?: unknown; token?: string } = {},
): Promise<JsonAnswer> {
  const headers = new Headers(init.headers);
  let body = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers.set("content-type", "application/json");
  }
  if (init.token !== undefined) headers.set("authorization", `Bearer ${init.token}`);
  const response = await fetch(url, {
    ...init,
    headers,
    body,
    signal: init.signal ?? AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/** One Server-Sent Event. */
export interface ServerSentEvent {
  type: string;
  id: string | undefined;
  // deno-lint-ignore no-explicit-any
  data: any;
}

/**
 * Reads Server-Sent Events from a response body: `next()` waits (bounded)
 * for the next event; `close()` cancels the body.
 */
export class EventReader {
  readonly response: Response;
  #events: ServerSentEvent[] = [];
  #waiter: (() => void) | undefined;
  #ended = false;
  #reading: Promise<void>;
  #reader: ReadableStreamDefaultReader<string>;
  /** Comment lines seen (keepalives). */
  comments = 0;
  /** The `retry:` field, if sent. */
  retry: number | undefined;

  constructor(response: Response) {
    this.response = response;
    this.#reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    this.#reading = this.#read();
  }

  /** Opens `url` as an event stream; the caller checks `response.status`. */
  static async open(url: string, headers: Record<string, string> = {}): Promise<EventReader> {
    const response = await fetch(url, { headers: { accept: "text/event-stream", ...headers } });
    return new EventReader(response);
  }

  async #read(): Promise<void> {
    let buffer = "";
    let data: string[] = [];
    let id: string | undefined;
    let type = "message";
    try {
      while (true) {
        const { value, done } = await this.#reader.read();
        if (done) break;
        buffer += value;
        let newline;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          if (line === "") {
            if (data.length > 0) {
              this.#events.push({ type, id, data: JSON.parse(data.join("\n")) });
              this.#waiter?.();
            }
            data = [];
            id = undefined;
            type = "message";
          } else if (line.startsWith(":")) {
            this.comments++;
          } else {
            const colon = line.indexOf(":");
            const field = line.slice(0, colon);
            const text = line.slice(colon + 1).replace(/^ /, "");
            if (field === "data") data.push(text);
            else if (field === "id") id = text;
            else if (field === "event") type = text;
            else if (field === "retry") this.retry = Number(text);
          }
        }
      }
    } catch {
      // Cancelled or reset.
    }
    this.#ended = true;
    this.#waiter?.();
  }

  /** True once the server ended the stream. */
  get ended(): boolean {
    return this.#ended && this.#events.length === 0;
  }

  /** The next event; throws after `timeoutMs` or when the stream ends first. */
  async next(timeoutMs = 10_000): Promise<ServerSentEvent> {
    const deadline = Date.now() + timeoutMs;
    while (this.#events.length === 0) {
      if (this.#ended) throw new Error("The event stream ended");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`No event within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
    return this.#events.shift()!;
  }

  /** Message events until `count` arrived (bounded). */
  async messages(count: number, timeoutMs = 10_000): Promise<ServerSentEvent[]> {
    const deadline = Date.now() + timeoutMs;
    const received: ServerSentEvent[] = [];
    while (received.length < count) {
      const event = await this.next(Math.max(1, deadline - Date.now()));
      if (event.type === "message") received.push(event);
    }
    return received;
  }

  /** Waits until the server ends the stream (bounded). */
  async waitEnded(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended) {
      if (Date.now() > deadline) throw new Error(`The stream did not end within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async close(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    await this.#reading;
  }
}
