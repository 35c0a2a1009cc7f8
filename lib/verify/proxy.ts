/**
 * A fault-injecting TCP proxy between cluster peers, for `pubsub verify`.
 *
 * The proxy has one listener per peer; a peer started with
 * `--advertise-address <that listener>` is dialed there by every other peer,
 * and the proxy relays the bytes to the peer's real port. The first frame a
 * dialing peer sends is `{"action":"peer_hello","node_id":N,...}`
 * (`lib/cluster/peer_auth.ts`), so the proxy knows both ends of every link
 * and applies rules per direction: bytes from node A to node B (A's
 * requests on links A dialed, A's answers on links B dialed).
 *
 * A blocked direction holds its bytes, like a network that loses packets
 * under TCP: nothing is lost or reordered inside a connection; the proxy
 * keeps at most `heldBytesMax` per direction and then stops reading, so the
 * sender's socket and its own queue fill up as they would. Healing releases
 * what was held, in order. A one-way rule stalls one direction only, which
 * is harsher than a real network (where TCP needs both ways) but still a
 * legal asynchronous network, so it can only expose real bugs. Dropping
 * closes connections (both sockets at once); peers then redial, through the
 * proxy again. A delay holds each chunk for that long after it was read.
 *
 * This is the only file of `lib/verify` that listens or dials TCP itself.
 *
 * @module
 */

import { sleep } from "../async.ts";

/** Most bytes held for one direction of one connection before the proxy stops reading it. */
export const heldBytesMax = 1024 * 1024;
/** Longest first frame read to learn who dials (a `peer_hello` is about 100 bytes). */
export const helloBytesMax = 64 * 1024;
/** How long dialing a peer's real port may take. */
export const targetConnectTimeoutMs = 2_000;
/** Bytes read from a socket at once. */
const readBytes = 64 * 1024;

/** Where a proxy listener relays to. */
export interface ProxyTarget {
  hostname: string;
  port: number;
}

/** Traffic seen on one direction of the links between two peers. */
export interface ProxyLinkStats {
  /** The sending node; undefined for a dialer that did not say `peer_hello`. */
  from: number | undefined;
  to: number | undefined;
  /** Connections dialed from `from` to `to`'s listener. */
  connections: number;
  /** Bytes relayed from `from` to `to`, over links either side dialed. */
  bytes: number;
}

interface Listening {
  nodeId: number;
  listener: Deno.Listener;
  target: ProxyTarget;
  address: string;
  accepting: Promise<void>;
}

interface Chunk {
  bytes: Uint8Array;
  dueAt: number;
}

/** One direction of a relayed connection. */
interface Pipe {
  from: number | undefined;
  to: number | undefined;
  source: Deno.Conn;
  target: Deno.Conn;
  queue: Chunk[];
  queuedBytes: number;
  /** Wakes a reader waiting for the queue to drain below `heldBytesMax`. */
  drained: (() => void) | undefined;
  /** Wakes the writer waiting for a chunk. */
  filled: (() => void) | undefined;
  sourceEnded: boolean;
}

interface Relayed {
  dialer: number | undefined;
  listener: number;
  sockets: Deno.Conn[];
  closed: boolean;
  /** Resolves when the connection is closed (wakes every wait of its pipes). */
  whenClosed: Promise<void>;
  close(): void;
}

/**
 * Relays peer links and injects partitions, one-way partitions, delays and
 * connection drops.
 *
 * @example
 * ```ts
 * import { FaultProxy } from "./proxy.ts";
 *
 * const proxy = new FaultProxy();
 * const address = proxy.listen(2, { hostname: "127.0.0.1", port: 5002 });
 * // start peer 2 with --advertise-address <address>, then:
 * proxy.block(1, 2); // node 1 can no longer be heard by node 2
 * proxy.heal();
 * await proxy.close();
 * ```
 */
export class FaultProxy {
  readonly #hostname: string;
  readonly #listeners = new Map<number, Listening>();
  readonly #connections = new Set<Relayed>();
  readonly #blocked = new Set<string>();
  readonly #delays = new Map<string, number>();
  readonly #stats = new Map<string, ProxyLinkStats>();
  readonly #tasks = new Set<Promise<void>>();
  /** Accepted sockets whose first frame has not arrived yet. */
  readonly #greeting = new Map<Deno.Conn, number>();
  #rulesChanged = Promise.withResolvers<void>();
  #closed = false;

  constructor(options: { hostname?: string } = {}) {
    this.#hostname = options.hostname ?? "127.0.0.1";
  }

  /**
   * Starts the listener that stands for node `nodeId` and relays to
   * `target`; returns its "host:port" (what the peer must advertise).
   */
  listen(nodeId: number, target: ProxyTarget, options: { port?: number } = {}): string {
    if (this.#closed) throw new Error("Cannot listen on a closed proxy");
    if (this.#listeners.has(nodeId)) {
      throw new RangeError(`Cannot listen for node ${nodeId} twice`);
    }
    const listener = Deno.listen({ hostname: this.#hostname, port: options.port ?? 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const address = `${this.#hostname}:${port}`;
    const entry: Listening = {
      nodeId,
      listener,
      target,
      address,
      accepting: Promise.resolve(),
    };
    entry.accepting = this.#accept(entry);
    this.#listeners.set(nodeId, entry);
    return address;
  }

  /** The listener address standing for `nodeId`, if any. */
  addressOf(nodeId: number): string | undefined {
    return this.#listeners.get(nodeId)?.address;
  }

  /** Closes the listener of `nodeId` and every connection to it. */
  async unlisten(nodeId: number): Promise<void> {
    const entry = this.#listeners.get(nodeId);
    if (entry === undefined) return;
    this.#listeners.delete(nodeId);
    closeQuietly(entry.listener);
    for (const [conn, listener] of this.#greeting) if (listener === nodeId) closeQuietly(conn);
    this.dropConnections((dialer, listener) => listener === nodeId || dialer === nodeId);
    await entry.accepting;
  }

  /** Holds every byte from `from` to `to` until `unblock` or `heal`. */
  block(from: number, to: number): void {
    this.#blocked.add(directionKey(from, to));
    this.#signalRules();
  }

  /** Lets bytes from `from` to `to` flow again (held bytes leave in order). */
  unblock(from: number, to: number): void {
    this.#blocked.delete(directionKey(from, to));
    this.#signalRules();
  }

  /** Whether bytes from `from` to `to` are held. */
  isBlocked(from: number | undefined, to: number | undefined): boolean {
    if (from === undefined || to === undefined) return false;
    return this.#blocked.has(directionKey(from, to));
  }

  /** Blocks both directions between every node of `sideA` and every node of `sideB`. */
  partition(sideA: readonly number[], sideB: readonly number[]): void {
    for (const a of sideA) {
      for (const b of sideB) {
        this.#blocked.add(directionKey(a, b));
        this.#blocked.add(directionKey(b, a));
      }
    }
    this.#signalRules();
  }

  /** Delays bytes from `from` to `to` by `delayMs` (0 removes the delay). */
  setDelay(from: number, to: number, delayMs: number): void {
    if (!Number.isFinite(delayMs) || delayMs < 0) {
      throw new RangeError(
        `Cannot delay as 'delayMs' must be a non-negative number: current value is ${delayMs}`,
      );
    }
    if (delayMs === 0) this.#delays.delete(directionKey(from, to));
    else this.#delays.set(directionKey(from, to), delayMs);
    this.#signalRules();
  }

  /** Removes every block and delay; held bytes flow again. */
  heal(): void {
    this.#blocked.clear();
    this.#delays.clear();
    this.#signalRules();
  }

  /** Directions blocked now, as [from, to] pairs. */
  blockedDirections(): [number, number][] {
    return [...this.#blocked].map((key) => key.split(">").map(Number) as [number, number]);
  }

  /**
   * Closes the relayed connections that `match` selects (all by default);
   * returns how many. The peers redial through the proxy.
   */
  dropConnections(
    match: (dialer: number | undefined, listener: number) => boolean = () => true,
  ): number {
    let dropped = 0;
    for (const connection of [...this.#connections]) {
      if (!match(connection.dialer, connection.listener)) continue;
      connection.close();
      dropped++;
    }
    return dropped;
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Traffic per direction since the proxy started. */
  stats(): ProxyLinkStats[] {
    return [...this.#stats.values()].map((entry) => ({ ...entry }));
  }

  /** Closes every listener and connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const entry of this.#listeners.values()) closeQuietly(entry.listener);
    for (const conn of this.#greeting.keys()) closeQuietly(conn);
    this.dropConnections();
    this.#signalRules();
    await Promise.allSettled([...this.#listeners.values()].map((entry) => entry.accepting));
    this.#listeners.clear();
    await Promise.allSettled([...this.#tasks]);
  }

  #signalRules(): void {
    const previous = this.#rulesChanged;
    this.#rulesChanged = Promise.withResolvers<void>();
    previous.resolve();
  }

  async #accept(entry: Listening): Promise<void> {
    try {
      for await (const conn of entry.listener) {
        if (this.#closed) {
          closeQuietly(conn);
          continue;
        }
        this.#track(this.#relay(conn, entry));
      }
    } catch {
      // The listener was closed.
    }
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #relay(dialerConn: Deno.Conn, entry: Listening): Promise<void> {
    this.#greeting.set(dialerConn, entry.nodeId);
    const hello = await readHello(dialerConn);
    this.#greeting.delete(dialerConn);
    if (hello === undefined) {
      closeQuietly(dialerConn);
      return;
    }
    let targetConn: Deno.Conn;
    try {
      targetConn = await connectWithTimeout(entry.target);
    } catch {
      // The peer is down: the dialer sees the connection close, as if refused.
      closeQuietly(dialerConn);
      return;
    }
    if (this.#closed || !this.#listeners.has(entry.nodeId)) {
      closeQuietly(dialerConn);
      closeQuietly(targetConn);
      return;
    }
    for (const conn of [dialerConn, targetConn]) {
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch { /* not a TCP connection */ }
    }
    const closed = Promise.withResolvers<void>();
    const relayed: Relayed = {
      dialer: hello.nodeId,
      listener: entry.nodeId,
      sockets: [dialerConn, targetConn],
      closed: false,
      whenClosed: closed.promise,
      close: () => {
        if (relayed.closed) return;
        relayed.closed = true;
        for (const socket of relayed.sockets) closeQuietly(socket);
        this.#connections.delete(relayed);
        closed.resolve();
      },
    };
    this.#connections.add(relayed);
    this.#count(hello.nodeId, entry.nodeId).connections++;
    const upstream = newPipe(hello.nodeId, entry.nodeId, dialerConn, targetConn);
    const downstream = newPipe(entry.nodeId, hello.nodeId, targetConn, dialerConn);
    if (hello.bytes.length > 0) this.#push(upstream, hello.bytes);
    await Promise.allSettled([
      this.#read(upstream, relayed),
      this.#write(upstream, relayed),
      this.#read(downstream, relayed),
      this.#write(downstream, relayed),
    ]);
    relayed.close();
  }

  #push(pipe: Pipe, bytes: Uint8Array): void {
    const delayMs = pipe.from === undefined || pipe.to === undefined
      ? 0
      : this.#delays.get(directionKey(pipe.from, pipe.to)) ?? 0;
    pipe.queue.push({ bytes, dueAt: performance.now() + delayMs });
    pipe.queuedBytes += bytes.length;
    pipe.filled?.();
  }

  async #read(pipe: Pipe, relayed: Relayed): Promise<void> {
    try {
      while (!relayed.closed) {
        if (pipe.queuedBytes >= heldBytesMax) {
          await Promise.race([
            new Promise<void>((resolve) => pipe.drained = resolve),
            relayed.whenClosed,
          ]);
          continue;
        }
        const buffer = new Uint8Array(readBytes);
        const read = await pipe.source.read(buffer);
        if (read === null) break;
        this.#push(pipe, buffer.slice(0, read));
      }
    } catch {
      // A reset or a close: the connection ends.
      relayed.close();
    } finally {
      pipe.sourceEnded = true;
      pipe.filled?.();
    }
  }

  async #write(pipe: Pipe, relayed: Relayed): Promise<void> {
    try {
      while (!relayed.closed) {
        const chunk = pipe.queue[0];
        if (chunk === undefined) {
          // The source ended and everything it sent was delivered: close like it did.
          if (pipe.sourceEnded) break;
          await Promise.race([
            new Promise<void>((resolve) => pipe.filled = resolve),
            relayed.whenClosed,
          ]);
          pipe.filled = undefined;
          continue;
        }
        if (this.isBlocked(pipe.from, pipe.to)) {
          await Promise.race([this.#rulesChanged.promise, relayed.whenClosed]);
          continue;
        }
        const waitMs = chunk.dueAt - performance.now();
        if (waitMs > 0) {
          // A block set meanwhile is checked again after the wait.
          await Promise.race([sleep(waitMs), relayed.whenClosed]);
          continue;
        }
        pipe.queue.shift();
        pipe.queuedBytes -= chunk.bytes.length;
        pipe.drained?.();
        pipe.drained = undefined;
        let written = 0;
        while (written < chunk.bytes.length) {
          written += await pipe.target.write(chunk.bytes.subarray(written));
        }
        this.#count(pipe.from, pipe.to).bytes += chunk.bytes.length;
      }
    } catch {
      // The destination went away.
    } finally {
      relayed.close();
    }
  }

  #count(from: number | undefined, to: number | undefined): ProxyLinkStats {
    const key = `${from ?? "?"}>${to ?? "?"}`;
    let entry = this.#stats.get(key);
    if (entry === undefined) {
      entry = { from, to, connections: 0, bytes: 0 };
      this.#stats.set(key, entry);
    }
    return entry;
  }
}

function newPipe(
  from: number | undefined,
  to: number | undefined,
  source: Deno.Conn,
  target: Deno.Conn,
): Pipe {
  return {
    from,
    to,
    source,
    target,
    queue: [],
    queuedBytes: 0,
    drained: undefined,
    filled: undefined,
    sourceEnded: false,
  };
}

function directionKey(from: number, to: number): string {
  return `${from}>${to}`;
}

/**
 * Reads the dialer's first frame (bounded in size) and the node id of its
 * `peer_hello`; returns every byte read, to be relayed first. Undefined when
 * the dialer closed before sending anything. Every dialer of this protocol
 * speaks first, so there is no time limit: a silent one relays nothing.
 */
async function readHello(
  conn: Deno.Conn,
): Promise<{ nodeId: number | undefined; bytes: Uint8Array } | undefined> {
  let bytes = new Uint8Array(0);
  while (true) {
    if (bytes.length >= 4) {
      const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
      if (length > helloBytesMax) return { nodeId: undefined, bytes };
      if (bytes.length >= 4 + length) {
        return { nodeId: helloNodeId(bytes.subarray(4, 4 + length)), bytes };
      }
    }
    const buffer = new Uint8Array(readBytes);
    const read = await conn.read(buffer).catch(() => null);
    if (read === null) return undefined;
    const joined = new Uint8Array(bytes.length + read);
    joined.set(bytes);
    joined.set(buffer.subarray(0, read), bytes.length);
    bytes = joined;
  }
}

/**
 * The node id of a `peer_hello` frame payload, or undefined for anything else.
 *
 * @example
 * ```ts
 * import { helloNodeId } from "./proxy.ts";
 *
 * helloNodeId(new TextEncoder().encode('{"action":"peer_hello","node_id":2}')); // 2
 * ```
 */
export function helloNodeId(payload: Uint8Array): number | undefined {
  try {
    const message = JSON.parse(new TextDecoder().decode(payload));
    if (typeof message !== "object" || message === null) return undefined;
    const { action, node_id: nodeId } = message as Record<string, unknown>;
    if (action !== "peer_hello" || typeof nodeId !== "number" || !Number.isInteger(nodeId)) {
      return undefined;
    }
    return nodeId;
  } catch {
    return undefined;
  }
}

async function connectWithTimeout(target: ProxyTarget): Promise<Deno.Conn> {
  const attempt = Deno.connect({ hostname: target.hostname, port: target.port });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), targetConnectTimeoutMs);
  });
  try {
    const conn = await Promise.race([attempt, timeout]);
    if (conn === undefined) {
      attempt.then(closeQuietly, () => {});
      throw new Error(`Connecting to ${target.hostname}:${target.port} timed out`);
    }
    return conn;
  } finally {
    clearTimeout(timer);
  }
}

function closeQuietly(closable: { close(): void }): void {
  try {
    closable.close();
  } catch {
    // Already closed.
  }
}
