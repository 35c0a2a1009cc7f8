/**
 * A long-lived, multiplexed outbound connection from this node to one other
 * peer, over the client port and the client frame codec. Requests carry an
 * auto-increment `id` that the peer echoes; one-way messages (heartbeats,
 * Raft traffic) carry none and their answers are ignored. Writes of one
 * microtask burst leave in one socket write, the send queue is capped, and a
 * dropped connection is re-established with capped exponential backoff.
 *
 * Every connection first runs the peer handshake (`peer_auth.ts`): with a
 * cluster secret both sides prove they know it before any queued message
 * leaves. With TLS configured the link dials TLS and verifies the peer's
 * certificate against the configured CA. Why a link cannot be established
 * is kept (`lastError`, shown by `cluster_status`) and logged once per
 * minute per peer.
 *
 * This is the only file of the cluster layer that calls `Deno.connect`.
 *
 * @module
 */

import { kickIdleSpin } from "../peer/idle_spin.ts";
import { getLogger } from "../logging.ts";
import { type ClusterSecret, DialerHandshake, PeerHandshakeError } from "./peer_auth.ts";
import { errorCodes } from "../wire/errors.ts";
import { encodeFrame, FrameDecoder, peerFrameBytesMax } from "../wire/frame.ts";
import { backoffDelayMs } from "./_backoff.ts";
import { type Cancel, type Scheduler, systemScheduler } from "./runtime.ts";
import { writeAll } from "../write_all.ts";

/** Default cap on bytes queued for the socket and not yet written. */
export const queuedBytesMaxDefault = 8 * 1024 * 1024;
/** Default cap on requests awaiting an answer. */
export const pendingRequestsMaxDefault = 4096;
/** Default cap on one answer (forwarded fetches can be large). */
export const responseBytesMaxDefault = 64 * 1024 * 1024;
/** Default time a connect attempt may take. */
export const connectTimeoutMsDefault = 2000;
/** Default first reconnect delay. */
export const backoffMinMsDefault = 50;
/** Default largest reconnect delay. */
export const backoffMaxMsDefault = 2000;
/** Default time a request waits for its answer. */
export const requestTimeoutMsDefault = 5000;
/** Bytes read from the socket at once. */
const readBufferBytes = 64 * 1024;
/** A link that keeps failing for the same reason says so at most this often. */
export const linkErrorLogMs = 60_000;
/** Parts at least this large are written as they are instead of being copied into one buffer. */
export const directWriteBytesMin = 64 * 1024;
/** Answers are UTF-8 JSON; one decoder serves every link. */
const utf8 = new TextDecoder();

/** A peer message: a JSON object whose first key is `action` ("peer_..."). */
export type PeerMessage = { action: string } & Record<string, unknown>;

/** Settings of one link. */
export interface PeerLinkOptions {
  host: string;
  port: number;
  /** This node's id, sent in the handshake (default 1, for tests of one link). */
  nodeId?: number;
  /** The cluster secret both ends must prove they know; without it the link is unauthenticated. */
  secret?: ClusterSecret;
  /** Dial TLS, verifying the peer against these CA certificates (PEM; system roots when empty). */
  tls?: { caCerts?: string[] };
  /** Cap on bytes queued and not yet written (default 8 MiB). */
  queuedBytesMax?: number;
  /** Cap on requests awaiting an answer (default 4096). */
  pendingRequestsMax?: number;
  /** Largest outgoing message (default 64 MiB, the limit a peer_hello connection gets). */
  frameBytesMax?: number;
  /** Largest answer accepted (default 64 MiB). */
  responseBytesMax?: number;
  /** Default 2000 ms. */
  connectTimeoutMs?: number;
  /** Default 50 ms. */
  backoffMinMs?: number;
  /** Default 2000 ms. */
  backoffMaxMs?: number;
  /** Default timeout of `request` (5000 ms). */
  requestTimeoutMs?: number;
  /** Uniform float in [0, 1) for backoff jitter (default Math.random). */
  random?: () => number;
  /** Backoff, connect and request timers (default: the host's timers). */
  scheduler?: Scheduler;
  /** Called after every change of `state`. */
  onStateChange?: (state: PeerLinkState) => void;
}

/** Options of one request. */
export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * The peer cannot be reached: the link is down, the connection dropped while
 * the request was pending, the queue is full, or the link is closed. Nothing
 * is known about whether the peer acted on the request.
 *
 * @example
 * ```ts
 * try { await link.request({ action: "peer_ping" }); }
 * catch (error) { if (error instanceof PeerUnavailableError) retryLater(); }
 * ```
 */
export class PeerUnavailableError extends Error {
  readonly address: string;
  constructor(address: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PeerUnavailableError";
    this.address = address;
  }
}

/**
 * No answer arrived within the request's timeout.
 *
 * @example
 * ```ts
 * await link.request(message, { timeoutMs: 100 }).catch((e) => e instanceof PeerTimeoutError);
 * ```
 */
export class PeerTimeoutError extends PeerUnavailableError {
  constructor(address: string, message: string, options?: ErrorOptions) {
    super(address, message, options);
    this.name = "PeerTimeoutError";
  }
}

/**
 * A message is larger than the peer accepts; sending it would close the link.
 *
 * @example
 * ```ts
 * await link.request(huge).catch((e) => e instanceof PeerMessageTooLargeError);
 * ```
 */
export class PeerMessageTooLargeError extends RangeError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PeerMessageTooLargeError";
  }
}

/** `connecting`: an attempt is under way (messages queue); `backoff`: waiting to retry. */
export type PeerLinkState = "connecting" | "connected" | "backoff" | "closed";

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

type Settings =
  & Required<Omit<PeerLinkOptions, "secret" | "tls" | "onStateChange">>
  & Pick<PeerLinkOptions, "secret" | "tls" | "onStateChange">;

/**
 * One outbound link.
 *
 * @example
 * ```ts
 * const link = new PeerLink({ host: "127.0.0.1", port: 5002 });
 * link.send({ action: "peer_heartbeat", from: 1, address: "127.0.0.1:5001", members: [], sent_at: 0 });
 * const answer = await link.request({ action: "peer_heartbeat", from: 1, address: "127.0.0.1:5001", members: [], sent_at: 0 });
 * await link.close();
 * ```
 */
export class PeerLink {
  readonly address: string;
  readonly #settings: Settings;
  readonly #pending = new Map<number, Pending>();
  #state: PeerLinkState = "connecting";
  #conn: Deno.Conn | undefined;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  /** Bumped when a connection ends so a write in progress does not touch the new queue. */
  #epoch = 0;
  #pumping = false;
  /** Where `#writeParts` gathers small parts; allocated on first use. */
  #writeBuffer: Uint8Array | undefined;
  #nextId = 1;
  #attempt = 0;
  #droppedMessages = 0;
  #connections = 0;
  #sleepTimer: Cancel | undefined;
  #lastError: string | undefined;
  /** A connection still in its handshake. */
  #dialing: Deno.Conn | undefined;
  #lastErrorLoggedAt = -Infinity;
  #lastErrorLogged: string | undefined;
  #wakeSleep: (() => void) | undefined;
  readonly #running: Promise<void>;

  constructor(options: PeerLinkOptions) {
    this.#settings = validate(options);
    this.address = `${options.host}:${options.port}`;
    this.#running = this.#run();
  }

  /** Where the link is in its connection life. */
  get state(): PeerLinkState {
    return this.#state;
  }

  /**
   * One-way messages refused at `send` because the link was down or its queue
   * full. Messages lost with a dropped connection are not counted: like
   * network loss, nobody can know which of them arrived.
   */
  get droppedMessages(): number {
    return this.#droppedMessages;
  }

  /** Bytes queued and not yet written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Requests awaiting an answer. */
  get pendingRequests(): number {
    return this.#pending.size;
  }

  /** Connections established so far (a reconnect adds one). */
  get connections(): number {
    return this.#connections;
  }

  /** Why the last attempt to establish the link failed; undefined once it works. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /**
   * Queues a one-way message. Returns false, and counts a drop, when the link
   * is down or its queue is full: callers of one-way traffic tolerate loss.
   */
  send(message: PeerMessage): boolean {
    if (this.#state === "backoff" || this.#state === "closed") {
      this.#droppedMessages++;
      return false;
    }
    const frame = encodeFrame(actionFirst(message));
    if (frame.length - 4 > this.#settings.frameBytesMax || !this.#enqueue(frame)) {
      this.#droppedMessages++;
      return false;
    }
    return true;
  }

  /**
   * Queues a prebuilt one-way frame (length prefix included, e.g. a binary
   * Raft frame), whole or as consecutive parts (large parts, such as entry
   * data, are then written without being copied); like `send`, false and a
   * counted drop when the link is down, its queue is full or the frame is
   * over `frameBytesMax`.
   */
  sendFrame(frame: Uint8Array | readonly Uint8Array[]): boolean {
    const parts = frame instanceof Uint8Array ? [frame] : frame;
    let bytes = 0;
    for (const part of parts) bytes += part.length;
    if (
      this.#state === "backoff" || this.#state === "closed" ||
      bytes - 4 > this.#settings.frameBytesMax ||
      this.#queuedBytes + bytes > this.#settings.queuedBytesMax
    ) {
      this.#droppedMessages++;
      return false;
    }
    for (const part of parts) this.#queue.push(part);
    this.#queuedBytes += bytes;
    kickIdleSpin();
    // A Raft frame comes coalesced already (RaftHost sends one per peer and
    // flush): it starts writing now, ahead of the leader's own file write
    // and fsync of the same entries, instead of a microtask later.
    this.#schedulePump(true);
    return true;
  }

  /**
   * Sends a request and resolves with the peer's answer (error answers
   * included). Rejects with PeerUnavailableError (or its PeerTimeoutError)
   * when no answer can come, with PeerMessageTooLargeError for a message over
   * `frameBytesMax`, and with the signal's reason when it aborts.
   */
  request(message: PeerMessage, options: RequestOptions = {}): Promise<unknown> {
    const refusal = this.#refusal(options.signal);
    if (refusal !== undefined) return Promise.reject(refusal);
    const id = this.#nextId++;
    const frame = encodeFrame({ ...actionFirst(message), id });
    if (frame.length - 4 > this.#settings.frameBytesMax) {
      return Promise.reject(
        new PeerMessageTooLargeError(
          `Message of ${
            frame.length - 4
          } bytes exceeds the peer's limit of ${this.#settings.frameBytesMax} bytes`,
        ),
      );
    }
    if (!this.#enqueue(frame)) {
      return Promise.reject(
        new PeerUnavailableError(
          this.address,
          `The send queue to ${this.address} is full (${this.#settings.queuedBytesMax} bytes)`,
        ),
      );
    }
    return this.#awaitAnswer(id, options);
  }

  #refusal(signal: AbortSignal | undefined): Error | undefined {
    if (signal?.aborted) return signal.reason;
    if (this.#state === "closed") {
      return new PeerUnavailableError(this.address, `The link to ${this.address} is closed`);
    }
    if (this.#state === "backoff") {
      return new PeerUnavailableError(this.address, `Peer ${this.address} is unreachable`);
    }
    if (this.#pending.size >= this.#settings.pendingRequestsMax) {
      return new PeerUnavailableError(
        this.address,
        `The link to ${this.address} already has its maximum of ${this.#settings.pendingRequestsMax} pending requests`,
      );
    }
    return undefined;
  }

  #awaitAnswer(id: number, options: RequestOptions): Promise<unknown> {
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    const timeoutMs = options.timeoutMs ?? this.#settings.requestTimeoutMs;
    const signal = options.signal;
    const settle = () => {
      this.#pending.delete(id);
      cancelTimer();
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      settle();
      reject(signal!.reason);
    };
    const cancelTimer = this.#settings.scheduler.schedule(timeoutMs, () => {
      settle();
      reject(
        new PeerTimeoutError(
          this.address,
          `Peer ${this.address} did not answer in ${timeoutMs} ms`,
        ),
      );
    });
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#pending.set(id, {
      resolve: (value) => {
        settle();
        resolve(value);
      },
      reject: (error) => {
        settle();
        reject(error);
      },
    });
    return promise;
  }

  #enqueue(frame: Uint8Array): boolean {
    if (this.#queuedBytes + frame.length > this.#settings.queuedBytesMax) return false;
    this.#queue.push(frame);
    this.#queuedBytes += frame.length;
    this.#schedulePump();
    return true;
  }

  #schedulePump(now = false): void {
    if (this.#pumping || this.#conn === undefined) return;
    this.#pumping = true;
    const conn = this.#conn;
    if (now) {
      this.#pump(conn);
      return;
    }
    // One write per microtask burst: everything queued until then goes together.
    queueMicrotask(() => this.#pump(conn));
  }

  async #pump(conn: Deno.Conn): Promise<void> {
    const epoch = this.#epoch;
    try {
      while (this.#queue.length > 0 && this.#epoch === epoch) {
        const parts = this.#queue;
        this.#queue = [];
        let bytes = 0;
        for (const part of parts) bytes += part.length;
        try {
          const gathered = bytes <= directWriteBytesMin ? this.#gather(parts, bytes) : undefined;
          // The usual burst fits the write buffer: written here, without the
          // async frames of #writeParts and writeAll around each write.
          if (gathered !== undefined) {
            let written = await conn.write(gathered);
            while (written < gathered.length) {
              written += await conn.write(gathered.subarray(written));
            }
          } else await this.#writeParts(conn, parts);
        } catch {
          // The read loop sees the closed socket and fails what is pending.
          closeQuietly(conn);
          return;
        } finally {
          if (this.#epoch === epoch) this.#queuedBytes -= bytes;
        }
      }
    } finally {
      if (this.#epoch === epoch) this.#pumping = false;
    }
  }

  /** `parts` (`bytes` in all, at most the buffer's size) copied into the write buffer. */
  #gather(parts: readonly Uint8Array[], bytes: number): Uint8Array {
    const buffer = this.#writeBuffer ??= new Uint8Array(directWriteBytesMin);
    let filled = 0;
    for (const part of parts) {
      buffer.set(part, filled);
      filled += part.length;
    }
    return buffer.subarray(0, bytes);
  }

  /**
   * Writes `parts` in order: runs of small parts copied into the link's
   * write buffer (one write for a burst of small frames), large parts as
   * they are (no copy). The buffer is reused: `#pump` writes one burst at a
   * time, and a fresh buffer per burst was the link's largest allocation on
   * the publish path (two appends and two answers per publish).
   */
  async #writeParts(conn: Deno.Conn, parts: readonly Uint8Array[]): Promise<void> {
    const buffer = this.#writeBuffer ??= new Uint8Array(directWriteBytesMin);
    let filled = 0;
    for (const part of parts) {
      if (part.length >= directWriteBytesMin) {
        if (filled > 0) await writeAll(conn, buffer.subarray(0, filled));
        filled = 0;
        await writeAll(conn, part);
        continue;
      }
      if (filled + part.length > buffer.length) {
        await writeAll(conn, buffer.subarray(0, filled));
        filled = 0;
      }
      buffer.set(part, filled);
      filled += part.length;
    }
    if (filled > 0) await writeAll(conn, buffer.subarray(0, filled));
  }

  async #run(): Promise<void> {
    while (this.#state !== "closed") {
      this.#setState("connecting");
      const conn = await this.#connect();
      if (conn !== undefined && this.#isClosed()) closeQuietly(conn);
      else if (conn !== undefined) await this.#serve(conn);
      this.#dropConnection(
        new PeerUnavailableError(this.address, `The connection to ${this.address} was lost`),
      );
      if (this.#isClosed()) break;
      this.#setState("backoff");
      await this.#sleep(backoffDelayMs(this.#attempt++, this.#settings, this.#settings.random));
    }
  }

  async #connect(): Promise<Deno.Conn | undefined> {
    const { host, port, tls } = this.#settings;
    const attempt: Promise<Deno.Conn> = tls === undefined
      ? Deno.connect({ hostname: host, port })
      : Deno.connectTls({ hostname: host, port, caCerts: tls.caCerts });
    let cancelTimer: Cancel | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      cancelTimer = this.#settings.scheduler.schedule(
        this.#settings.connectTimeoutMs,
        () => resolve(undefined),
      );
    });
    try {
      const conn = await Promise.race([attempt, timeout]);
      if (conn === undefined) {
        attempt.then(closeQuietly, () => {});
        this.#failed(`connecting timed out after ${this.#settings.connectTimeoutMs} ms`);
        return undefined;
      }
      // A TLS handshake happens on first use: make it fail here, with its reason.
      if (tls !== undefined) await (conn as Deno.TlsConn).handshake();
      return conn;
    } catch (error) {
      this.#failed(describeConnectError(error, tls !== undefined));
      return undefined;
    } finally {
      cancelTimer?.();
    }
  }

  /** Records (and at most once a minute per reason, logs) why the link is down. */
  #failed(reason: string): void {
    this.#lastError = reason;
    const now = this.#settings.scheduler.now();
    if (reason === this.#lastErrorLogged && now - this.#lastErrorLoggedAt < linkErrorLogMs) return;
    this.#lastErrorLogged = reason;
    this.#lastErrorLoggedAt = now;
    getLogger("cluster").warn("Cannot link to peer {address}: {reason}", {
      address: this.address,
      reason,
    });
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    // Nagle's algorithm would hold heartbeats and small Raft messages back.
    if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
    const frames = readFrames(conn, this.#settings.responseBytesMax);
    // close() must be able to end a connection still in its handshake, and a
    // peer that never answers the handshake must not hold the link forever.
    this.#dialing = conn;
    let timedOut = false;
    const cancelHandshakeTimer = this.#settings.scheduler.schedule(
      this.#settings.connectTimeoutMs,
      () => {
        timedOut = true;
        closeQuietly(conn);
      },
    );
    try {
      const ready = await this.#handshake(conn, frames, () => timedOut);
      cancelHandshakeTimer();
      this.#dialing = undefined;
      if (timedOut) this.#failed(`the handshake took over ${this.#settings.connectTimeoutMs} ms`);
      if (!ready || this.#isClosed()) return;
      this.#conn = conn;
      this.#setState("connected");
      this.#connections++;
      this.#lastError = undefined;
      // A completed handshake shows the peer works (one-way traffic gets no answers to show it).
      this.#attempt = 0;
      this.#schedulePump();
      for await (const payload of frames) {
        if (!this.#isConnected()) break;
        this.#receive(payload);
      }
    } catch {
      // A reset, a close() or an unusable answer all end this connection alike.
    } finally {
      cancelHandshakeTimer();
      this.#dialing = undefined;
      closeQuietly(conn);
    }
  }

  /** Runs the peer handshake before anything queued may leave; false when it failed. */
  async #handshake(
    conn: Deno.Conn,
    frames: AsyncIterator<Uint8Array>,
    timedOut: () => boolean,
  ): Promise<boolean> {
    const dialer = new DialerHandshake(this.#settings.nodeId, this.#settings.secret);
    try {
      let message: Record<string, unknown> | undefined = dialer.hello();
      while (message !== undefined) {
        await writeAll(conn, encodeFrame(message));
        const next = await frames.next();
        if (next.done) {
          throw new PeerHandshakeError("it closed the connection during the handshake");
        }
        const step = dialer.answer(parseAnswer(next.value));
        message = step.done ? undefined : step.send;
      }
      return true;
    } catch (error) {
      // Cut short by its timeout (said by the caller) or by close(): no other reason to give.
      if (timedOut() || this.#isClosed()) return false;
      this.#failed(
        error instanceof PeerHandshakeError
          ? `peer handshake failed: ${error.message}`
          : describeConnectError(error, this.#settings.tls !== undefined),
      );
      return false;
    }
  }

  #receive(payload: Uint8Array): void {
    let answer: unknown;
    try {
      answer = JSON.parse(utf8.decode(payload));
    } catch {
      return;
    }
    if (typeof answer !== "object" || answer === null) return;
    const { id, status } = answer as { id?: unknown; status?: unknown };
    if (!(errorCodes as readonly unknown[]).includes(status)) this.#attempt = 0;
    if (status === "unauthorized") this.#failed("it refused a message as unauthorized");
    // Answers without a known id belong to one-way messages or timed-out requests.
    if (typeof id === "number") this.#pending.get(id)?.resolve(answer);
  }

  #dropConnection(error: PeerUnavailableError): void {
    this.#conn = undefined;
    this.#epoch++;
    this.#pumping = false;
    // A write of the old connection may still hold the old buffer.
    this.#writeBuffer = undefined;
    this.#queue = [];
    this.#queuedBytes = 0;
    for (const pending of [...this.#pending.values()]) pending.reject(error);
  }

  /** Methods, so TypeScript does not narrow the state across awaits. */
  #isClosed(): boolean {
    return this.#state === "closed";
  }

  #isConnected(): boolean {
    return this.#state === "connected";
  }

  #setState(state: PeerLinkState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#settings.onStateChange?.(state);
  }

  #sleep(delayMs: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wakeSleep = resolve;
      this.#sleepTimer = this.#settings.scheduler.schedule(delayMs, resolve);
    });
  }

  /** Stops reconnecting, rejects everything pending and closes the socket. */
  async close(): Promise<void> {
    if (this.#state !== "closed") {
      this.#setState("closed");
      if (this.#conn !== undefined) closeQuietly(this.#conn);
      if (this.#dialing !== undefined) closeQuietly(this.#dialing);
      this.#sleepTimer?.();
      this.#wakeSleep?.();
      this.#dropConnection(
        new PeerUnavailableError(this.address, `The link to ${this.address} is closed`),
      );
    }
    await this.#running;
  }
}

/** The peer listener recognizes peer frames by `{"action":"peer_` at their very start. */
function actionFirst(message: PeerMessage): PeerMessage {
  const { action, ...rest } = message;
  return { action, ...rest };
}

/** Frame payloads from a connection until it ends; an unusable frame ends it. */
async function* readFrames(conn: Deno.Conn, frameBytesMax: number): AsyncGenerator<Uint8Array> {
  const decoder = new FrameDecoder({ frameBytesMax });
  const buffer = new Uint8Array(readBufferBytes);
  while (true) {
    const read = await conn.read(buffer);
    if (read === null) return;
    for (const event of decoder.push(buffer.subarray(0, read))) {
      if (event.kind !== "frame") throw new Error("Unusable frame from a peer");
      yield event.payload;
    }
  }
}

function parseAnswer(payload: Uint8Array): unknown {
  try {
    return JSON.parse(utf8.decode(payload));
  } catch {
    throw new PeerHandshakeError("it answered the handshake with invalid JSON");
  }
}

/** One line saying why a connection (or its TLS handshake) failed. */
function describeConnectError(error: unknown, tls: boolean): string {
  const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
  if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (tls && /certificate|tls|handshake|InvalidData|UnknownIssuer|alert/i.test(message)) {
    return `TLS handshake failed: ${message}`;
  }
  return message;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

function validate(options: PeerLinkOptions): Settings {
  const settings: Settings = {
    host: options.host,
    port: options.port,
    nodeId: options.nodeId ?? 1,
    secret: options.secret,
    tls: options.tls,
    queuedBytesMax: options.queuedBytesMax ?? queuedBytesMaxDefault,
    pendingRequestsMax: options.pendingRequestsMax ?? pendingRequestsMaxDefault,
    frameBytesMax: options.frameBytesMax ?? peerFrameBytesMax,
    responseBytesMax: options.responseBytesMax ?? responseBytesMaxDefault,
    connectTimeoutMs: options.connectTimeoutMs ?? connectTimeoutMsDefault,
    backoffMinMs: options.backoffMinMs ?? backoffMinMsDefault,
    backoffMaxMs: options.backoffMaxMs ?? backoffMaxMsDefault,
    requestTimeoutMs: options.requestTimeoutMs ?? requestTimeoutMsDefault,
    random: options.random ?? Math.random,
    scheduler: options.scheduler ?? systemScheduler,
    onStateChange: options.onStateChange,
  };
  if (settings.host.length === 0) {
    throw new RangeError("Cannot create peer link as 'host' must not be empty");
  }
  if (!Number.isInteger(settings.port) || settings.port < 1 || settings.port > 65535) {
    throw new RangeError(
      `Cannot create peer link as 'port' must be between 1 and 65535: current value is ${settings.port}`,
    );
  }
  for (
    const name of [
      "queuedBytesMax",
      "pendingRequestsMax",
      "frameBytesMax",
      "responseBytesMax",
      "connectTimeoutMs",
      "backoffMinMs",
      "backoffMaxMs",
      "requestTimeoutMs",
    ] as const
  ) {
    const value = settings[name];
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(
        `Cannot create peer link as '${name}' must be a positive integer: current value is ${value}`,
      );
    }
  }
  if (settings.backoffMaxMs < settings.backoffMinMs) {
    throw new RangeError(
      `Cannot create peer link as 'backoffMaxMs' must be at least 'backoffMinMs' (${settings.backoffMinMs}): current value is ${settings.backoffMaxMs}`,
    );
  }
  return settings;
}
