/**
 * One client connection: bytes in through the frame decoder, requests handled
 * concurrently (pipelining), responses written strictly in request order
 * (peer requests on a cluster member's link: as soon as each is ready, by id),
 * pushed frames written as they come. A connection that sent part of a frame
 * and then went silent for `idleTimeoutMs` is closed by the server's sweeper.
 *
 * @module
 */

import { kickIdleSpin } from "./idle_spin.ts";
import { type ClusterSecret, type ListenerHandshake, listenerStep } from "../cluster/peer_auth.ts";
import type { PeerHandler } from "../cluster/peer_handler.ts";
import { decodeBinaryRaftPayload, isBinaryRaftPayload } from "../cluster/raft_binary.ts";
import { answerJson, encodeFrame, FrameDecoder, peerFrameBytesMax } from "../wire/frame.ts";
import { errorResponse, isErrorResponse, ProtocolError } from "../wire/errors.ts";
import { decodeRequest, type Request, RequestError } from "../wire/requests.ts";
import { publishRequestOf, type PublishScan, scanPublish } from "../wire/publish_fast.ts";
import type { PublishReceiver } from "../cluster/raft_topic.ts";
import { batchPublishedAnswerJson, publishedAnswerJson } from "../wire/responses.ts";
import type { AccessPolicy } from "./auth.ts";
import type { Broker } from "./broker.ts";
import { FrameWriter } from "./frame_writer.ts";
import { type Handled, Session } from "./session.ts";
import type { PublishResult } from "./topic.ts";

/** Most requests one connection may have in progress at once. */
export const inflightRequestsMax = 4096;

/** Settings shared by every connection of a peer. */
export interface ConnectionOptions {
  broker: Broker;
  frameBytesMax: number;
  requestTimeoutMs: number;
  authToken?: string;
  /** Tokens and their topic permissions (`--auth-file`); wins over `authToken`. */
  access?: AccessPolicy;
  /**
   * Handles peer-to-peer messages (actions starting with "peer_"), which the
   * cluster layer validates itself; without it such actions are unknown.
   * Only connections that completed the peer handshake reach it.
   */
  peerHandler?: PeerHandler;
  /**
   * The cluster secret a connection must prove it knows before it may send
   * peer actions; without one any connection may (loopback development).
   */
  clusterSecret?: ClusterSecret;
  /** Called with every handled request's action, status and duration (metrics). */
  observe?: (action: string, status: string, seconds: number) => void;
}

interface Slot {
  /** The answer: an encoded frame, or its JSON text (encoded with its burst). */
  frame: Uint8Array | string | undefined;
  afterWrite?: () => void;
  close?: boolean;
  /** When a request still unanswered gets the timed-out answer instead (ms since epoch). */
  deadline: number;
}

/** Peer frames are UTF-8 JSON; one decoder serves every connection. */
const utf8 = new TextDecoder();

/**
 * Serves one accepted connection until it closes.
 *
 * @example
 * ```ts
 * const connection = new Connection(conn, options);
 * await connection.serve();
 * ```
 */
export class Connection {
  readonly #conn: Deno.Conn;
  readonly #options: ConnectionOptions;
  readonly #decoder: FrameDecoder;
  readonly #writer: FrameWriter;
  readonly #session: Session;
  #slots: Slot[] = [];
  #closed = false;
  #handshake: ListenerHandshake = { state: "none" };
  /**
   * One timer per connection, armed for the oldest unanswered request's
   * deadline, instead of a timer and a race per request: every request gets
   * the same timeout, so deadlines grow in slot order.
   */
  #deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  /** Time of the last bytes received, for the idle sweeper. */
  lastReceivedAt = Date.now();
  /**
   * When the bytes being dispatched were read (`performance.now()`): every
   * request of one read arrived then, and its duration counts from there.
   */
  #readAt = 0;

  constructor(conn: Deno.Conn, options: ConnectionOptions) {
    this.#conn = conn;
    this.#options = options;
    // Requests are decoded (copied into strings) while their read is
    // dispatched, before the read buffer is used again: no copy per frame.
    this.#decoder = new FrameDecoder({ frameBytesMax: options.frameBytesMax, borrow: true });
    this.#writer = new FrameWriter(conn);
    this.#session = new Session({
      broker: options.broker,
      writer: this.#writer,
      close: () => this.close(),
      authToken: options.authToken,
      access: options.access,
    });
  }

  /** True while a frame has started arriving and is not complete. */
  get partialFrame(): boolean {
    return this.#decoder.partial;
  }

  /** Reads until the client closes or the connection is closed. */
  async serve(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (!this.#closed) {
        const read = await this.#conn.read(buffer);
        if (read === null) break;
        kickIdleSpin();
        this.lastReceivedAt = Date.now();
        this.#readAt = performance.now();
        for (const event of this.#decoder.push(buffer.subarray(0, read))) {
          if (event.kind === "frame") this.#dispatch(event.payload, event.owned === true);
          else if (event.kind === "empty") {
            this.#answer(errorResponse("bad_request", "The frame is empty"));
          } else {
            const message =
              `Frame of ${event.length} bytes exceeds the limit of ${this.#decoder.frameBytesMax} bytes`;
            this.#answer(errorResponse("frame_too_large", message), true);
          }
        }
      }
    } catch {
      // A reset or closed socket ends the connection like an orderly close.
    } finally {
      this.close();
    }
  }

  /** Closes the connection; its subscriptions end, stored offsets remain. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
    this.#session.close();
    this.#writer.flushed().finally(() => {
      try {
        this.#conn.close();
      } catch {
        // Already closed by the other side.
      }
    });
  }

  /** One request frame; `owned` as `FrameEvent.owned` says. */
  #dispatch(payload: Uint8Array, owned: boolean): void {
    const peerHandler = this.#options.peerHandler;
    if (peerHandler !== undefined && isPeerFrame(payload)) {
      this.#dispatchPeer(payload, peerHandler);
      return;
    }
    if (peerHandler !== undefined && isBinaryRaftPayload(payload)) {
      this.#dispatchBinaryPeer(payload, owned, peerHandler);
      return;
    }
    const scanned = scanPublish(payload);
    if (scanned !== undefined && this.#slots.length < inflightRequestsMax) {
      const answer = new PublishAnswer(this.#settlePublish, scanned, this.#readAt);
      if (this.#session.publishScanned(scanned, payload, answer)) {
        // Before anything can settle it: the receiver hears nothing during the call.
        answer.slot = this.#pushSlot();
        return;
      }
    }
    let request: Request;
    try {
      request = scanned === undefined ? decodeRequest(payload) : publishRequestOf(scanned, payload);
    } catch (error) {
      const id = error instanceof RequestError ? error.id : undefined;
      const code = error instanceof ProtocolError ? error.code : "bad_request";
      this.#answer(errorResponse(code, (error as Error).message, id));
      return;
    }
    if (this.#slots.length >= inflightRequestsMax) {
      const message = `A connection may have at most ${inflightRequestsMax} requests in progress`;
      this.#answer(errorResponse("overloaded", message, request.id));
      return;
    }
    const slot = this.#pushSlot();
    this.#handle(request, slot).then((handled) => {
      // Too late: the slot holds the timed-out answer already.
      if (slot.frame !== undefined) return;
      slot.frame = answerJson(handled.response, request.id);
      slot.afterWrite = handled.afterWrite;
      slot.close = handled.close;
      this.#flushSlots();
    });
  }

  /**
   * Answers a publish or batch of the fast path (see `Session.publishScanned`):
   * the same answer, metrics and timeout as `#handle` gives it, without
   * its chain of async frames and promises.
   */
  readonly #settlePublish = (
    answer: PublishAnswer,
    result: PublishResult | undefined,
    error: unknown,
  ): void => {
    if (answer.settled) return;
    answer.settled = true;
    const slot = answer.slot!;
    const late = slot.frame !== undefined;
    const action = answer.action;
    const batch = action === "publish_batch";
    if (result !== undefined) {
      const status = batch ? "messages_published" : "message_published";
      this.#observe(action, late ? "unavailable" : status, answer.started);
      if (late) return;
      slot.frame = batch
        ? batchPublishedAnswerJson(answer.topic, result.firstOffset, result.count, answer.id)
        : publishedAnswerJson(answer.topic, result.firstOffset, answer.id);
    } else {
      const response = toErrorResponse(error);
      this.#observe(action, late ? "unavailable" : response.status, answer.started);
      if (late) return;
      slot.frame = answerJson(response, answer.id);
    }
    this.#flushSlots();
  };

  #observe(action: string, status: string, started: number): void {
    const observe = this.#options.observe;
    if (observe !== undefined) observe(action, status, (burstNow() - started) / 1000);
  }

  #pushSlot(): Slot {
    // Requests are dispatched as their read arrives: their timeout counts from it.
    const deadline = this.lastReceivedAt + this.#options.requestTimeoutMs;
    const slot: Slot = { frame: undefined, deadline };
    this.#slots.push(slot);
    if (this.#deadlineTimer === undefined) this.#armDeadline(slot.deadline);
    return slot;
  }

  #armDeadline(deadline: number): void {
    this.#deadlineTimer = setTimeout(
      () => this.#expire(),
      Math.max(0, deadline - Date.now()),
    );
  }

  /** Answers every request past its deadline as timed out, then waits for the next one. */
  #expire(): void {
    this.#deadlineTimer = undefined;
    if (this.#closed) return;
    const now = Date.now();
    let next: Slot | undefined;
    for (const slot of this.#slots) {
      if (slot.frame !== undefined) continue;
      if (slot.deadline > now) {
        next = slot;
        break;
      }
      slot.frame = encodeFrame(toErrorResponse(requestTimedOut()));
    }
    this.#flushSlots();
    if (next !== undefined) this.#armDeadline(next.deadline);
  }

  #dispatchPeer(
    payload: Uint8Array,
    handler: PeerHandler,
  ): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(utf8.decode(payload));
    } catch {
      this.#answer(errorResponse("bad_request", "The frame is not valid JSON"));
      return;
    }
    this.#dispatchPeerMessage(message, handler);
  }

  /** A Raft frame in the binary form: only from a member, decoded with bounds checks. */
  #dispatchBinaryPeer(
    payload: Uint8Array,
    owned: boolean,
    handler: PeerHandler,
  ): void {
    if (this.#handshake.state !== "member") {
      this.#answer(errorResponse(
        "unauthorized",
        "Peer actions need a connection authenticated as a cluster member",
      ));
      return;
    }
    let message: Record<string, unknown>;
    try {
      // Unless owned, the payload is a view of the read buffer: the decoder
      // copies what entries keep.
      message = decodeBinaryRaftPayload(payload, owned);
    } catch (error) {
      this.#answer(toErrorResponse(error));
      return;
    }
    this.#dispatchPeerMessage(message, handler);
  }

  #dispatchPeerMessage(
    message: Record<string, unknown>,
    handler: PeerHandler,
  ): void {
    const id = idOf(message);
    if (message.action === "peer_hello" || message.action === "peer_auth") {
      this.#handshakeStep(message, id);
      return;
    }
    if (this.#handshake.state !== "member") {
      const refusal = errorResponse(
        "unauthorized",
        "Peer actions need a connection authenticated as a cluster member",
        id,
      );
      this.#answer(refusal);
      return;
    }
    if (id === undefined) {
      // One-way (Raft traffic, heartbeats): a success is not answered, as the
      // sender reads none; a refused frame still is, so that bad or forged
      // peer input gets its error code and sentence like any other request.
      // Run now (`PeerHandler.now`): no promise and callbacks per Raft frame.
      let response: unknown;
      try {
        response = handler.now(message, { peerId: this.#handshake.nodeId });
      } catch (error) {
        this.#answer(toErrorResponse(error));
        return;
      }
      if (response instanceof Promise) {
        response.then(
          (settled) => this.#answerOneWay(settled),
          (error) => this.#answer(toErrorResponse(error)),
        );
      } else this.#answerOneWay(response);
      return;
    }
    // Answered as soon as it is ready, not in request order: the link matches
    // answers by id, so a slow request (a topic waiting for a leader) holds
    // back no other on the same link. The sender's own timeout bounds it.
    handler(message, { peerId: this.#handshake.nodeId }).then(
      (response) => response,
      (error) => toErrorResponse(error),
    ).then((response) => {
      if (!this.#closed) this.#writer.write(encodeFrame(withId(response, id)));
    });
  }

  /** A one-way message is answered only when refused. */
  #answerOneWay(response: unknown): void {
    if (isErrorResponse(response)) this.#answer(response);
  }

  #handshakeStep(message: Record<string, unknown>, id: string | number | undefined): void {
    try {
      const step = listenerStep(this.#options.clusterSecret, this.#handshake, message);
      this.#handshake = step.next;
      // A cluster member's link: Raft catch-up frames may exceed the client limit.
      if (step.next.state === "member") this.#decoder.raiseLimit(peerFrameBytesMax);
      this.#answer(withId(step.response, id), step.close);
    } catch (error) {
      this.#answer(withId(toErrorResponse(error), id));
    }
  }

  async #handle(request: Request, slot: Slot): Promise<Handled> {
    const started = this.#readAt;
    let handled: Handled;
    try {
      handled = await this.#session.handle(request);
    } catch (error) {
      handled = { response: toErrorResponse(error) };
    }
    // A request answered as timed out by the deadline timer is counted as such.
    const status = slot.frame !== undefined ? "unavailable" : statusOf(handled.response);
    this.#observe(request.action, status, started);
    return handled;
  }

  #answer(response: unknown, close = false): void {
    this.#slots.push({ frame: encodeFrame(response), close, deadline: 0 });
    this.#flushSlots();
  }

  #flushSlots(): void {
    while (this.#slots.length > 0 && this.#slots[0].frame !== undefined) {
      const slot = this.#slots.shift()!;
      if (this.#closed) continue;
      const frame = slot.frame!;
      if (typeof frame === "string") this.#writer.writeJson(frame);
      else this.#writer.write(frame);
      slot.afterWrite?.();
      if (slot.close) this.close();
    }
  }
}

/** Where one fast-path publish (or batch) is answered once its topic stored or refused it. */
class PublishAnswer implements PublishReceiver {
  /** Set right after the publish started (nothing settles before). */
  slot: Slot | undefined;
  settled = false;
  /** A `publish_batch` is answered with `first_offset` and `count`, a `publish` with `offset`. */
  readonly action: "publish" | "publish_batch";
  readonly topic: string;
  readonly id: string | number | undefined;
  /** When its request was read (`performance.now()`). */
  readonly started: number;
  readonly #settle: (answer: PublishAnswer, result?: PublishResult, error?: unknown) => void;

  constructor(
    settle: (answer: PublishAnswer, result?: PublishResult, error?: unknown) => void,
    scanned: PublishScan,
    started: number,
  ) {
    this.#settle = settle;
    this.action = scanned.action;
    this.topic = scanned.topic_name;
    this.id = scanned.id;
    this.started = started;
  }

  resolve(result: PublishResult): void {
    this.#settle(this, result, undefined);
  }

  reject(error: Error): void {
    this.#settle(this, undefined, error);
  }
}

/** `performance.now()` of the current burst of microtasks (see `burstNow`). */
let burstClock: number | undefined;

/**
 * `performance.now()`, read once per burst of microtasks: the answers of
 * one entry complete together, and their durations share one reading.
 */
function burstNow(): number {
  if (burstClock === undefined) {
    burstClock = performance.now();
    queueMicrotask(() => burstClock = undefined);
  }
  return burstClock;
}

/** Peer frames start with {"action":"peer_ — checked on bytes to skip a parse. */
const peerPrefix = new TextEncoder().encode('{"action":"peer_');

function isPeerFrame(payload: Uint8Array): boolean {
  if (payload.length < peerPrefix.length) return false;
  for (let index = 0; index < peerPrefix.length; index++) {
    if (payload[index] !== peerPrefix[index]) return false;
  }
  return true;
}

/** A peer frame's id, as the request validator accepts ids: a string or a finite number. */
function idOf(message: Record<string, unknown>): string | number | undefined {
  const id = message.id;
  return typeof id === "string" || (typeof id === "number" && Number.isFinite(id)) ? id : undefined;
}

function withId(response: unknown, id: string | number | undefined): unknown {
  if (id === undefined || typeof response !== "object" || response === null) return response;
  if (Array.isArray(response)) return response;
  return { ...response, id };
}

/** The answer to a request that outlived `--request-timeout` (TCP and HTTP alike). */
export function requestTimedOut(): ProtocolError {
  return new ProtocolError("unavailable", "The request timed out before it completed");
}

function toErrorResponse(error: unknown) {
  if (error instanceof ProtocolError) return errorResponse(error.code, error.message);
  // Anything else is a bug; the client sees a retryable failure, never a stack.
  console.error("pubsub: request failed unexpectedly:", error);
  return errorResponse("unavailable", "The peer failed to complete the request");
}

function statusOf(response: unknown): string {
  if (Array.isArray(response)) return "ok";
  return String((response as { status?: string }).status ?? "ok");
}
