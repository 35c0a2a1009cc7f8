/**
 * One client connection: pipelines requests over a `Transport`, matches
 * answers to requests, routes pushed subscription frames, coalesces writes.
 * It never retries: on failure it hands its unanswered requests back to the
 * client, in the order they were sent.
 *
 * @module
 */

import { concatFrames, encodeFrame, FrameDecoder, frameHeaderBytes } from "../wire/frame.ts";
import { isPushedEvent, type MessageEvent } from "../wire/responses.ts";
import { PubSubError } from "./errors.ts";
import type { Transport } from "./_transport.ts";

/** A request on the wire, waiting for its answer. */
export interface PendingRequest {
  readonly id: number;
  /** Receives the decoded answer (an object or an array). */
  settle(response: unknown): void;
}

/** What a connection reports to its owner. */
export interface ConnectionHandlers {
  onPush(event: MessageEvent): void;
  /** Called once, with every request that got no answer, oldest first. */
  onClose(connection: Connection, error: Error, unanswered: PendingRequest[]): void;
}

/** Limits of one connection. */
export interface ConnectionLimits {
  /** Largest response frame accepted. */
  frameBytesMax: number;
  /** Largest request frame sent (the peer's `--max-frame`); larger ones are refused locally. */
  requestBytesMax: number;
  /** Most requests awaiting an answer at once. */
  inFlightRequestsMax: number;
  /** Most bytes queued for writing before `hasRoom` turns false. */
  sendQueueBytesMax: number;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A pipelined connection.
 *
 * @example
 * ```ts
 * const connection = new Connection(transport, limits, handlers);
 * connection.send({ action: "ping" }, { id: 1, settle: console.log });
 * ```
 */
export class Connection {
  readonly address: string;
  #transport: Transport;
  #handlers: ConnectionHandlers;
  #limits: ConnectionLimits;
  #decoder: FrameDecoder;
  // Insertion-ordered: the oldest entry is the next answer when one carries no id.
  #pending = new Map<number, PendingRequest>();
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #flushScheduled = false;
  #writing = false;
  #closed = false;
  #retiring = false;
  #roomWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];

  constructor(transport: Transport, limits: ConnectionLimits, handlers: ConnectionHandlers) {
    this.address = transport.address;
    this.#transport = transport;
    this.#limits = limits;
    this.#handlers = handlers;
    this.#decoder = new FrameDecoder({ frameBytesMax: limits.frameBytesMax });
    this.#readLoop();
  }

  /** True once closed; a closed connection accepts nothing. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Requests sent and not answered yet. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** True while another request may be sent without exceeding a limit. */
  get hasRoom(): boolean {
    return !this.#closed && this.#pending.size < this.#limits.inFlightRequestsMax &&
      this.#queuedBytes < this.#limits.sendQueueBytesMax;
  }

  /** True while frames are queued or being written. */
  get busy(): boolean {
    return this.#flushScheduled || this.#writing;
  }

  /**
   * Resolves once nothing is queued or being written (or the connection
   * closed): what queued up meanwhile can then go out together.
   */
  idle(): Promise<void> {
    if (!this.busy || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Resolves when `hasRoom` may have turned true (or the connection closed). */
  room(): Promise<void> {
    if (this.hasRoom || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** Queues `body` with `request.id`; the write happens once per microtask burst. */
  send(body: Record<string, unknown>, request: PendingRequest): void {
    if (this.#closed) throw new PubSubError("disconnected", "The connection is closed");
    const frame = encodeFrame({ ...body, id: request.id });
    if (frame.length - frameHeaderBytes > this.#limits.requestBytesMax) {
      throw new PubSubError(
        "frame_too_large",
        `Cannot send a ${
          frame.length - frameHeaderBytes
        }-byte request as the limit is requestBytesMax ${this.#limits.requestBytesMax}`,
      );
    }
    this.#pending.set(request.id, request);
    this.#queue.push(frame);
    this.#queuedBytes += frame.length;
    if (!this.#flushScheduled && !this.#writing) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /** Stops taking requests; closes as soon as every sent request is answered. */
  retire(): void {
    this.#retiring = true;
    if (this.#pending.size === 0) this.close(new PubSubError("disconnected", "Connection retired"));
  }

  /** Closes now; unanswered requests go back to the owner through `onClose`. */
  close(error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#transport.close();
    const unanswered = [...this.#pending.values()];
    this.#pending.clear();
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#wakeRoomWaiters();
    this.#wakeIdleWaiters();
    this.#handlers.onClose(this, error, unanswered);
  }

  async #flush(): Promise<void> {
    this.#flushScheduled = false;
    // One write per burst: everything queued while the previous write ran goes out together.
    while (this.#queue.length > 0 && !this.#closed) {
      const bytes = concatFrames(this.#queue);
      this.#queue = [];
      this.#writing = true;
      try {
        await this.#transport.write(bytes);
      } catch (error) {
        this.close(
          new PubSubError("disconnected", `Cannot write to ${this.address}`, { cause: error }),
        );
        return;
      } finally {
        this.#writing = false;
      }
      this.#queuedBytes -= bytes.length;
      this.#wakeRoomWaiters();
    }
    this.#wakeIdleWaiters();
  }

  async #readLoop(): Promise<void> {
    let reason: Error = new PubSubError(
      "disconnected",
      `Connection to ${this.address} closed by the peer`,
    );
    try {
      for await (const chunk of this.#transport.readable) {
        for (const event of this.#decoder.push(chunk)) {
          if (event.kind !== "frame") {
            throw new PubSubError(
              "protocol",
              event.kind === "empty"
                ? `Peer ${this.address} sent an empty frame`
                : `Peer ${this.address} sent a ${event.length}-byte frame, over frameBytesMax ${this.#limits.frameBytesMax}`,
            );
          }
          this.#receive(JSON.parse(utf8.decode(event.payload)));
          if (this.#closed) return;
        }
      }
    } catch (error) {
      reason = error instanceof PubSubError
        ? error
        : new PubSubError("disconnected", `Connection to ${this.address} failed`, { cause: error });
    }
    this.close(reason);
  }

  #receive(value: unknown): void {
    if (isPushedEvent(value)) {
      this.#handlers.onPush(value);
      return;
    }
    const id = typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as { id?: unknown }).id
      : undefined;
    // Answers come in request order; arrays (and errors about unreadable frames) carry no id.
    let request = typeof id === "number" ? this.#pending.get(id) : undefined;
    if (request === undefined) request = this.#pending.values().next().value;
    if (request === undefined) {
      throw new PubSubError("protocol", `Peer ${this.address} answered a request never sent`);
    }
    this.#pending.delete(request.id);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      delete (value as { id?: unknown }).id;
    }
    request.settle(value);
    this.#wakeRoomWaiters();
    if (this.#retiring && this.#pending.size === 0) {
      this.close(new PubSubError("disconnected", "Connection retired"));
    }
  }

  #wakeIdleWaiters(): void {
    if (this.#idleWaiters.length === 0 || (this.busy && !this.#closed)) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }

  #wakeRoomWaiters(): void {
    if (this.#roomWaiters.length === 0 || (!this.hasRoom && !this.#closed)) return;
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const wake of waiters) wake();
  }
}
