/**
 * One client connection: pipelines requests over a `Transport`, matches
 * answers to requests, routes pushed subscription frames, coalesces writes.
 * It never retries: on failure it hands its unanswered requests back to the
 * client, in the order they were sent.
 *
 * The hot path allocates little: requests are queued as JSON text and
 * encoded, a burst at a time, into one reused write buffer; answers are read
 * into one reused read buffer and decoded where they lie (a frame larger
 * than the buffer gets a buffer of its own size while it arrives).
 *
 * @module
 */

import { readUint32, writeUint32 } from "../bytes.ts";
import { answerJson, frameHeaderBytes } from "../wire/frame.ts";
import { decodePublishedAnswer, isPushedEvent, type MessageEvent } from "../wire/responses.ts";
import { PubSubError } from "./errors.ts";
import type { Transport } from "./_transport.ts";

/** Bytes of the buffer a connection reads into (reused for every read). */
export const readBufferBytes = 64 * 1024;
/** Bytes of the buffer a burst of requests is encoded into (reused; a larger burst gets its own). */
export const writeBufferBytes = 64 * 1024;
/**
 * A larger burst's buffer is kept for the next one up to this size (the
 * bound of a 1 MiB request, three bytes per character): a client sending
 * 512 KiB messages made a new 1.5 MiB buffer per publish (session 14).
 */
export const largeWriteBufferBytesMax = 4 * 1024 * 1024;
/** A character that takes more than one byte in UTF-8. */
const wide = /[\u0080-\uffff]/;

/** A request on the wire, waiting for its answer. */
export interface PendingRequest {
  /** The id it is sent with (answers carry it back). */
  readonly id: number;
  /**
   * The body's JSON text without its closing brace, when the caller wrote
   * it already (a publish's): the id is appended to it instead of the body
   * being encoded again.
   */
  readonly bodyJson?: string;
  /**
   * An upper bound of the request's UTF-8 bytes when the caller measured it
   * (a publish near the limit): checked against `requestBytesMax` as it is,
   * without scanning the text again.
   */
  readonly bodyBytes?: number;
  /** Receives the decoded answer (an object, still with its `id`, or an array) and its id. */
  settle(response: unknown, id: number): void;
}

/** What a connection reports to its owner. */
export interface ConnectionHandlers {
  /** A pushed subscription message, with the connection it came on. */
  onPush(event: MessageEvent, connection: Connection): void;
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
  /**
   * Most bytes queued for writing before `hasRoom` turns false (counted as
   * UTF-16 units of the JSON text plus the header: exact for ASCII).
   */
  sendQueueBytesMax: number;
}

// The lenient decoder has Deno's fast path; the strict one runs only when a
// replacement character shows up, to tell bad UTF-8 from a real U+FFFD.
const utf8 = new TextDecoder("utf-8");
const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

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
  // Insertion-ordered: the oldest entry is the next answer when one carries no id.
  #pending = new Map<number, PendingRequest>();
  /** JSON text of the requests not written yet. */
  #queue: string[] = [];
  #queuedBytes = 0;
  #writeBuffer = new Uint8Array(writeBufferBytes);
  /** The last larger burst's buffer (see `largeWriteBufferBytesMax`); a write is done before the next encode. */
  #largeWriteBuffer: Uint8Array | undefined;
  #flushScheduled = false;
  #writing = false;
  #closed = false;
  #retiring = false;
  #roomWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];
  readonly #flushNow = (): void => {
    this.#flush();
  };

  constructor(transport: Transport, limits: ConnectionLimits, handlers: ConnectionHandlers) {
    this.address = transport.address;
    this.#transport = transport;
    this.#limits = limits;
    this.#handlers = handlers;
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
    const json = request.bodyJson === undefined
      ? answerJson(body, request.id)
      : `${request.bodyJson},"id":${request.id}}`;
    // UTF-8 takes at most 3 bytes per UTF-16 unit: only a request near the limit is measured.
    if (json.length * 3 > this.#limits.requestBytesMax) {
      // ASCII text is as many bytes as characters: a scan, not an encoding (a 512 KiB copy).
      const bytes = request.bodyBytes ??
        (wide.test(json) ? encoder.encode(json).length : json.length);
      if (bytes > this.#limits.requestBytesMax) {
        throw new PubSubError(
          "frame_too_large",
          `Cannot send a ${bytes}-byte request as the limit is requestBytesMax ${this.#limits.requestBytesMax}`,
        );
      }
    }
    this.#pending.set(request.id, request);
    this.#queue.push(json);
    this.#queuedBytes += frameHeaderBytes + json.length;
    if (!this.#flushScheduled && !this.#writing) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flushNow);
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
      const queue = this.#queue;
      this.#queue = [];
      let counted = 0;
      for (const json of queue) counted += frameHeaderBytes + json.length;
      const bytes = this.#encode(queue);
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
      this.#queuedBytes -= counted;
      this.#wakeRoomWaiters();
    }
    this.#wakeIdleWaiters();
  }

  /** Frames `queue` into the write buffer (or, for a burst larger than it, a buffer of its own). */
  #encode(queue: string[]): Uint8Array {
    let bound = 0;
    for (const json of queue) bound += frameHeaderBytes + json.length * 3;
    const out = bound <= this.#writeBuffer.length ? this.#writeBuffer : this.#largeBuffer(bound);
    let at = 0;
    for (const json of queue) {
      const { written } = encoder.encodeInto(json, out.subarray(at + frameHeaderBytes));
      writeUint32(out, at, written);
      at += frameHeaderBytes + written;
    }
    return out.subarray(0, at);
  }

  /** A buffer of at least `bound` bytes for a burst larger than the write buffer. */
  #largeBuffer(bound: number): Uint8Array {
    const kept = this.#largeWriteBuffer;
    if (kept !== undefined && kept.length >= bound) return kept;
    const buffer = new Uint8Array(bound);
    if (bound <= largeWriteBufferBytesMax) this.#largeWriteBuffer = buffer;
    return buffer;
  }

  async #readLoop(): Promise<void> {
    let reason: Error = new PubSubError(
      "disconnected",
      `Connection to ${this.address} closed by the peer`,
    );
    try {
      const small = new Uint8Array(readBufferBytes);
      let buffer = small;
      let filled = 0;
      while (true) {
        const count = await this.#transport.read(filled === 0 ? buffer : buffer.subarray(filled));
        if (count === null) break;
        filled += count;
        const used = this.#receiveFrames(buffer, filled);
        if (this.#closed) return;
        if (used > 0) {
          buffer.copyWithin(0, used, filled);
          filled -= used;
        }
        // What is left is part of one frame: make room for all of it, or go back to the small buffer.
        const needed = filled >= frameHeaderBytes ? frameHeaderBytes + readUint32(buffer, 0) : 0;
        if (needed > buffer.length) {
          const larger = new Uint8Array(needed);
          larger.set(buffer.subarray(0, filled));
          buffer = larger;
        } else if (buffer !== small && needed <= small.length) {
          small.set(buffer.subarray(0, filled));
          buffer = small;
        }
      }
    } catch (error) {
      reason = error instanceof PubSubError
        ? error
        : new PubSubError("disconnected", `Connection to ${this.address} failed`, { cause: error });
    }
    this.close(reason);
  }

  /** Handles every whole frame in `buffer[0, filled)`; returns the bytes they took. */
  #receiveFrames(buffer: Uint8Array, filled: number): number {
    let at = 0;
    while (filled - at >= frameHeaderBytes) {
      const length = readUint32(buffer, at);
      if (length === 0) {
        throw new PubSubError("protocol", `Peer ${this.address} sent an empty frame`);
      }
      if (length > this.#limits.frameBytesMax) {
        throw new PubSubError(
          "protocol",
          `Peer ${this.address} sent a ${length}-byte frame, over frameBytesMax ${this.#limits.frameBytesMax}`,
        );
      }
      const end = at + frameHeaderBytes + length;
      if (end > filled) break;
      const payloadAt = at + frameHeaderBytes;
      // A publish's answer nearly always: recognized without a decode and a parse.
      this.#receive(
        decodePublishedAnswer(buffer, payloadAt, end) ??
          JSON.parse(decodeText(buffer.subarray(payloadAt, end))),
      );
      at = end;
      if (this.#closed) break;
    }
    return at;
  }

  #receive(value: unknown): void {
    if (isPushedEvent(value)) {
      this.#handlers.onPush(value, this);
      return;
    }
    const answered = typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as { id?: unknown }).id
      : undefined;
    // Answers come in request order; arrays (and errors about unreadable frames) carry no id.
    let id = typeof answered === "number" && this.#pending.has(answered) ? answered : undefined;
    if (id === undefined) id = this.#pending.keys().next().value;
    if (id === undefined) {
      throw new PubSubError("protocol", `Peer ${this.address} answered a request never sent`);
    }
    const request = this.#pending.get(id)!;
    this.#pending.delete(id);
    request.settle(value, id);
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

/** UTF-8 `bytes` as text; throws a TypeError on malformed UTF-8. */
function decodeText(bytes: Uint8Array): string {
  const text = utf8.decode(bytes);
  return text.includes("\uFFFD") ? utf8Strict.decode(bytes) : text;
}
