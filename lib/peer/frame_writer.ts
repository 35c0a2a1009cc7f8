/**
 * Coalesced, bounded writes to one connection: frames queued in the same
 * microtask burst go out in one `write`, and producers of pushed frames wait
 * in `drain()` while more than `queuedBytesHigh` are queued, so a slow reader
 * cannot grow the peer's memory without bound.
 *
 * @module
 */

import { concatFrames } from "../wire/frame.ts";

/** Queued bytes above which pushers wait. */
export const queuedBytesHigh = 4 * 1024 * 1024;

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
  #queue: Uint8Array[] = [];
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
    if (this.#failed) return;
    this.#queue.push(frame);
    this.#queuedBytes += frame.length;
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
      const bytes = concatFrames(frames);
      try {
        let written = 0;
        while (written < bytes.length) {
          written += await this.#sink.write(bytes.subarray(written));
        }
      } catch {
        this.#failed = true;
      }
      this.#queuedBytes -= bytes.length;
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
