/**
 * Coalesced, bounded writes to one connection: frames queued in the same
 * microtask burst go out in one `write`, and producers of pushed frames wait
 * in `drain()` while more than `queuedBytesHigh` are queued, so a slow reader
 * cannot grow the peer's memory without bound.
 *
 * @module
 */

import { encodeFrames, frameHeaderBytes } from "../wire/frame.ts";

/** Queued bytes above which pushers wait. */
export const queuedBytesHigh = 4 * 1024 * 1024;

/** Size of the write buffers writers share; a bigger burst gets a buffer of its own. */
const scratchBytes = 64 * 1024;
/** Write buffers kept for reuse: one per connection writing at the same moment. */
const scratchPoolMax = 4;
const scratchPool: Uint8Array[] = [];

/** Something bytes can be written to (a Deno.Conn). */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<number>;
}

/**
 * Write coalescer for one connection.
 *
 * @example
 * ```ts
 * const writer = new FrameWriter(conn);
 * writer.write(encodeFrame({ status: "pong", node: 1 }));
 * await writer.flushed();
 * ```
 */
export class FrameWriter {
  readonly #sink: ByteSink;
  /** Encoded frames, and frames as JSON text (encoded together when written). */
  #queue: (Uint8Array | string)[] = [];
  #queuedBytes = 0;
  #writing = false;
  #failed = false;
  #drainWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  /** Bytes waiting to be written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** True once a write failed (the connection is gone). */
  get failed(): boolean {
    return this.#failed;
  }

  /** Queues a frame; the write happens after the current microtask burst. */
  write(frame: Uint8Array): void {
    this.#push(frame);
  }

  /**
   * Queues a frame given as its JSON text: it is encoded when written,
   * into the one buffer of its burst (no buffer of its own).
   */
  writeJson(json: string): void {
    this.#push(json);
  }

  #push(frame: Uint8Array | string): void {
    if (this.#failed) return;
    this.#queue.push(frame);
    this.#queuedBytes += queuedSize(frame);
    if (!this.#writing) {
      this.#writing = true;
      queueMicrotask(() => this.#pump());
    }
  }

  /** Resolves when the queue is below the high-water mark (or the sink failed). */
  drain(): Promise<void> {
    if (this.#queuedBytes <= queuedBytesHigh || this.#failed) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Resolves when everything queued so far has been written. */
  flushed(): Promise<void> {
    if (!this.#writing || this.#failed) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async #pump(): Promise<void> {
    while (this.#queue.length > 0 && !this.#failed) {
      const frames = this.#queue;
      this.#queue = [];
      let queued = 0;
      for (const frame of frames) queued += queuedSize(frame);
      // A burst of answers is encoded into a shared buffer, taken until its write is done.
      const scratch = scratchPool.pop() ?? new Uint8Array(scratchBytes);
      const bytes = encodeFrames(frames, scratch);
      try {
        let written = 0;
        while (written < bytes.length) {
          written += await this.#sink.write(bytes.subarray(written));
        }
      } catch {
        this.#failed = true;
      }
      if (scratchPool.length < scratchPoolMax) scratchPool.push(scratch);
      this.#queuedBytes -= queued;
      if (this.#queuedBytes <= queuedBytesHigh || this.#failed) this.#wake(this.#drainWaiters);
    }
    if (this.#failed) {
      this.#queue = [];
      this.#queuedBytes = 0;
      this.#wake(this.#drainWaiters);
    }
    this.#writing = false;
    this.#wake(this.#idleWaiters);
  }

  #wake(waiters: (() => void)[]): void {
    for (const resolve of waiters.splice(0)) resolve();
  }
}

/** What a queued frame counts toward `queuedBytesHigh` (JSON text: its length, a lower bound). */
function queuedSize(frame: Uint8Array | string): number {
  return typeof frame === "string" ? frameHeaderBytes + frame.length : frame.length;
}
