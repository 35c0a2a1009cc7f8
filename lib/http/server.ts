/**
 * The peer's HTTP port (`--http-port`): the JSON API under `/api/`,
 * Prometheus metrics at `/metrics`, and the web console at `/`, on one
 * `Deno.serve` listener (HTTPS when the peer serves TLS).
 *
 * @module
 */

import { getLogger } from "../logging.ts";
import { metricsHandler, type MetricsRegistry } from "../peer/metrics.ts";
import { ConsoleAssets } from "./console_assets.ts";
import { HttpApi, type HttpApiOptions } from "./routes.ts";

/** Settings of {@linkcode serveHttp}. */
export interface HttpServerOptions extends HttpApiOptions {
  /** Address to listen on (the peer's `--host`). */
  hostname: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** Serve HTTPS with this certificate and key (the peer's `--tls-cert/--tls-key`). */
  tls?: { cert: string; key: string };
  /** Serve `/metrics` from this registry; with `token`, it needs `Authorization: Bearer`. */
  metrics?: { registry: MetricsRegistry; token?: string };
  /** The console's files (default `web/` of the repository). */
  consoleDir?: URL | string;
}

/** A running HTTP server. */
export interface HttpServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** The console's address, e.g. `http://127.0.0.1:5101/`. */
  readonly url: string;
  /** Ends event streams, stops listening and waits for open requests. */
  close(): Promise<void>;
}

/**
 * Starts the HTTP server of a peer.
 *
 * @example
 * ```ts
 * const http = await serveHttp({
 *   hostname: "127.0.0.1",
 *   port: 5101,
 *   broker,
 *   frameBytesMax: 1024 * 1024,
 *   requestTimeoutMs: 5000,
 * });
 * console.log(`console at ${http.url}`);
 * await http.close();
 * ```
 */
export async function serveHttp(options: HttpServerOptions): Promise<HttpServer> {
  if (!(Number.isInteger(options.port) && options.port >= 0 && options.port <= 65535)) {
    throw new RangeError(
      `Cannot serve HTTP as 'port' must be an integer between 0 and 65535: current value is ${options.port}`,
    );
  }
  const logger = getLogger("http");
  const api = new HttpApi(options);
  const assets = await ConsoleAssets.load(options.consoleDir);
  const metrics = options.metrics === undefined
    ? undefined
    : metricsHandler(options.metrics.registry, { token: options.metrics.token });
  const handler = (request: Request): Response | Promise<Response> => {
    const path = new URL(request.url).pathname;
    if (path === "/metrics") {
      return metrics?.(request) ?? new Response("Not found\n", { status: 404 });
    }
    if (path === "/api" || path.startsWith("/api/")) return api.handle(request);
    return assets.respond(request);
  };
  const address = `${options.hostname}:${options.port}`;
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = listen(options, handler, logger);
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    throw new Error(`Cannot serve HTTP on ${address}: the address is already in use`, {
      cause: error,
    });
  }
  const port = server.addr.port;
  const scheme = options.tls === undefined ? "http" : "https";
  const host = options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname;
  return {
    port,
    url: `${scheme}://${host}:${port}/`,
    close: async () => {
      api.closeStreams();
      await server.shutdown();
    },
  };
}

function listen(
  options: HttpServerOptions,
  handler: (request: Request) => Response | Promise<Response>,
  logger: ReturnType<typeof getLogger>,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname: options.hostname,
    port: options.port,
    ...(options.tls === undefined ? {} : { cert: options.tls.cert, key: options.tls.key }),
    onListen: () => {},
    onError: (error) => {
      logger.error("HTTP request failed: {error}", { error: String(error) });
      return new Response("Internal server error\n", { status: 500 });
    },
  }, handler);
}
