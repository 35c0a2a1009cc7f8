/**
 * A bare protocol client for conformance tests: raw frames in and out, with
 * no retries, so tests see exactly what the peer answers.
 *
 * @module
 */

import { encodeFrame, FrameDecoder } from "../../lib/wire/frame.ts";

/** A raw connection to a peer. */
export class RawClient {
  readonly conn: Deno.Conn;
  #decoder = new FrameDecoder({ frameBytesMax: 256 * 1024 * 1024 });
  #frames: unknown[] = [];
  #waiting: (() => void) | undefined;
  #closed = false;
  #reading: Promise<void>;

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.#reading = this.#read();
  }

  /** Connects to a peer on 127.0.0.1; with `caCerts`, over TLS verified against them. */
  static async connect(port: number, options: { caCerts?: string[] } = {}): Promise<RawClient> {
    if (options.caCerts !== undefined) {
      const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: options.caCerts });
      await conn.handshake();
      return new RawClient(conn);
    }
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const read = await this.conn.read(buffer);
        if (read === null) break;
        for (const event of this.#decoder.push(buffer.subarray(0, read))) {
          if (event.kind === "frame") {
            this.#frames.push(JSON.parse(new TextDecoder().decode(event.payload)));
          }
        }
        this.#waiting?.();
      }
    } catch { /* reset */ }
    this.#closed = true;
    this.#waiting?.();
  }

  /** True once the peer closed the connection. */
  get closed(): boolean {
    return this.#closed;
  }

  async sendBytes(bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) written += await this.conn.write(bytes.subarray(written));
  }

  send(request: unknown): Promise<void> {
    return this.sendBytes(encodeFrame(request));
  }

  /** The next frame (response or pushed event); rejects after `timeoutMs`. */
  async next(timeoutMs = 10_000): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    while (this.#frames.length === 0) {
      if (this.#closed) throw new Error("Connection closed");
      if (Date.now() > deadline) throw new Error("Timed out waiting for a frame");
      await new Promise<void>((resolve) => {
        this.#waiting = resolve;
        setTimeout(resolve, 50);
      });
      this.#waiting = undefined;
    }
    return this.#frames.shift();
  }

  /** Sends a request and returns the next frame. */
  async request(request: unknown, timeoutMs?: number): Promise<unknown> {
    await this.send(request);
    return await this.next(timeoutMs);
  }

  /** Waits until the peer closes the connection. */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (!this.#closed) throw new Error("Connection still open");
  }

  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch { /* closed */ }
    await this.#reading;
  }
}
