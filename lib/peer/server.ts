/**
 * The client-facing TCP (or TLS) listener: the only place the peer accepts
 * sockets. It enforces the connection limit and sweeps connections that sent
 * part of a frame and then went silent.
 *
 * @module
 */

import { encodeFrame } from "../wire/frame.ts";
import { errorResponse } from "../wire/errors.ts";
import { Connection, type ConnectionOptions } from "./connection.ts";

/** Most client connections a peer serves at once. */
export const connectionsMaxDefault = 10_000;
/** How often idle connections are looked for. */
const sweepIntervalMs = 1000;

/** Listener settings. */
export interface ServerOptions extends ConnectionOptions {
  hostname: string;
  port: number;
  idleTimeoutMs: number;
  connectionsMax?: number;
  tls?: { cert: string; key: string };
}

/**
 * A running listener.
 *
 * @example
 * ```ts
 * const server = Server.listen({ hostname: "127.0.0.1", port: 0, ... });
 * console.log(server.port);
 * await server.close();
 * ```
 */
export class Server {
  readonly #listener: Deno.Listener;
  readonly #options: ServerOptions;
  readonly #connections = new Set<Connection>();
  readonly #sweeper: ReturnType<typeof setInterval>;
  readonly #accepting: Promise<void>;

  private constructor(listener: Deno.Listener, options: ServerOptions) {
    this.#listener = listener;
    this.#options = options;
    this.#sweeper = setInterval(() => this.#sweep(), sweepIntervalMs);
    this.#accepting = this.#accept();
  }

  /** Binds the port and starts accepting. Throws Deno errors (e.g. AddrInUse). */
  static listen(options: ServerOptions): Server {
    const listener = options.tls
      ? Deno.listenTls({ hostname: options.hostname, port: options.port, ...options.tls })
      : Deno.listen({ hostname: options.hostname, port: options.port });
    return new Server(listener, options);
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Number of open client connections. */
  get connections(): number {
    return this.#connections.size;
  }

  async #accept(): Promise<void> {
    const connectionsMax = this.#options.connectionsMax ?? connectionsMaxDefault;
    for await (const conn of this.#listener) {
      if (this.#connections.size >= connectionsMax) {
        const refusal = errorResponse(
          "overloaded",
          `The peer already serves its maximum of ${connectionsMax} connections`,
        );
        conn.write(encodeFrame(refusal)).catch(() => {}).finally(() => conn.close());
        continue;
      }
      // Nagle's algorithm would hold small answers back; TLS conns lack the switch.
      if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
      const connection = new Connection(conn, this.#options);
      this.#connections.add(connection);
      connection.serve().finally(() => this.#connections.delete(connection));
    }
  }

  #sweep(): void {
    const now = Date.now();
    for (const connection of this.#connections) {
      if (
        connection.partialFrame && now - connection.lastReceivedAt > this.#options.idleTimeoutMs
      ) {
        connection.close();
      }
    }
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    for (const connection of this.#connections) connection.close();
    await this.#accepting.catch(() => {});
  }
}
