/**
 * Redis for `bench/compare.ts`: one `redis-server` with the append-only file
 * fsynced before every reply (`appendfsync always`), on a free 127.0.0.1
 * port with its files in a temporary directory, stopped by its PID; and a
 * pipelined `XADD` load over the raw RESP protocol, so no client library
 * sits between the load and the server (as with pubsub's raw publisher).
 *
 * @module
 */

import { freePort } from "../lib/bench/local_cluster.ts";
import { waitForPort } from "./_programs.ts";
import type { LatencyHistogram } from "../lib/bench/histogram.ts";
import { writeAll } from "../lib/write_all.ts";

/** How long redis-server may take to accept connections. */
export const redisStartTimeoutMs = 15_000;

/** A running redis-server. */
export interface RedisServer {
  port: number;
  /** The command line used, for RESULTS.md. */
  command: string;
  stop(): Promise<void>;
}

/**
 * Starts redis-server with `appendonly yes` and `appendfsync always`
 * (every write is fsynced before its reply), no RDB snapshots.
 *
 * @example
 * ```ts
 * import { startRedis } from "./_redis_server.ts";
 *
 * const redis = await startRedis();
 * await redis.stop();
 * ```
 */
export async function startRedis(): Promise<RedisServer> {
  const root = await Deno.makeTempDir({ prefix: "pubsub-compare-redis-" });
  const port = freePort();
  const args = [
    ...["--port", String(port), "--bind", "127.0.0.1", "--dir", root],
    ...["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
    ...["--protected-mode", "no", "--daemonize", "no"],
  ];
  const process = new Deno.Command("redis-server", {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      process.kill("SIGTERM");
    } catch { /* already exited */ }
    await process.status;
    await Deno.remove(root, { recursive: true }).catch(() => {});
  };
  try {
    await waitForPort(port, "redis-server", redisStartTimeoutMs);
  } catch (error) {
    await stop();
    throw error;
  }
  const command = args.map((arg) => arg === "" ? "''" : arg).join(" ");
  return { port, command: `redis-server ${command}`, stop };
}

/** Options of {@linkcode redisXaddLoad}. */
export interface XaddLoadOptions {
  port: number;
  /** Commands outstanding at once on the one connection. */
  inFlight: number;
  durationMs: number;
  message: string;
  histogram?: LatencyHistogram;
}

/**
 * `XADD bench * m <message>` with `inFlight` commands outstanding (each
 * reply sends the next) until `durationMs` passed; resolves with the
 * replies counted and the time taken.
 *
 * @example
 * ```ts
 * import { redisXaddLoad } from "./_redis_server.ts";
 *
 * const { acked, elapsedMs } = await redisXaddLoad({
 *   port: 6379, inFlight: 256, durationMs: 5000, message: "x".repeat(100),
 * });
 * ```
 */
export async function redisXaddLoad(
  options: XaddLoadOptions,
): Promise<{ acked: number; failed: number; elapsedMs: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: options.port });
  conn.setNoDelay(true);
  const command = new TextEncoder().encode(
    respCommand(["XADD", "bench", "*", "m", options.message]),
  );
  const sentAt: number[] = [];
  let head = 0;
  let acked = 0;
  let failed = 0;
  const startedMs = performance.now();
  const send = async (count: number) => {
    const now = performance.now();
    const bytes = new Uint8Array(command.length * count);
    for (let index = 0; index < count; index++) {
      bytes.set(command, index * command.length);
      sentAt.push(now);
    }
    await writeAll(conn, bytes);
  };
  const replies = new ReplyCounter();
  try {
    await send(options.inFlight);
    const buffer = new Uint8Array(64 * 1024);
    while (head < sentAt.length) {
      const read = await conn.read(buffer);
      if (read === null) throw new Error("redis-server closed the connection");
      const now = performance.now();
      const { ok, errors } = replies.push(buffer.subarray(0, read));
      for (let index = 0; index < ok + errors; index++) {
        options.histogram?.recordMilliseconds(now - sentAt[head]);
        head++;
      }
      acked += ok;
      failed += errors;
      if (ok + errors > 0 && now - startedMs < options.durationMs) await send(ok + errors);
    }
  } finally {
    conn.close();
  }
  return { acked, failed, elapsedMs: performance.now() - startedMs };
}

function respCommand(parts: string[]): string {
  const encoder = new TextEncoder();
  return `*${parts.length}\r\n` +
    parts.map((part) => `$${encoder.encode(part).length}\r\n${part}\r\n`).join("");
}

/**
 * Counts complete RESP replies of XADD across chunk boundaries: a bulk
 * string (`$<n>\r\n<id>\r\n`) is a success, an error line (`-...\r\n`) a
 * failure.
 */
class ReplyCounter {
  #pending = "";
  #decoder = new TextDecoder();

  push(chunk: Uint8Array): { ok: number; errors: number } {
    this.#pending += this.#decoder.decode(chunk, { stream: true });
    let ok = 0;
    let errors = 0;
    let at = 0;
    while (true) {
      const end = this.#pending.indexOf("\r\n", at);
      if (end < 0) break;
      const kind = this.#pending[at];
      if (kind === "$") {
        const length = Number(this.#pending.slice(at + 1, end));
        const bodyEnd = end + 2 + Math.max(0, length) + 2;
        if (length >= 0 && this.#pending.length < bodyEnd) break;
        ok++;
        at = length >= 0 ? bodyEnd : end + 2;
      } else {
        if (kind === "-") errors++;
        else ok++;
        at = end + 2;
      }
    }
    this.#pending = this.#pending.slice(at);
    return { ok, errors };
  }
}
