/**
 * The durability floor: the one-publish-at-a-time latency of a "broker" that
 * does only what "acknowledged after fdatasync on a majority of 3" needs, on
 * this machine. Three child processes (a leader and two followers) on real
 * sockets and real files; a publish is `messageBytes` raw bytes, no framing,
 * no parsing, no Raft. The leader sends each publish to both followers,
 * writes it to its own file and fdatasyncs it inline, and answers once a
 * follower answered too; a follower writes, fdatasyncs and answers. Files
 * are preallocated (zero-filled and synced before the run), as pubsub's
 * segments are, so an fdatasync writes data only.
 *
 * It is the yardstick for the one-at-a-time targets of `bench/compare.ts`:
 * what is left between pubsub and this floor is pubsub's own work, and a
 * system that does not fsync (NATS JetStream's default) can run below it.
 * Written by hand because it is the measurement itself: any library in the
 * path would be part of what it measures.
 *
 * @module
 */

import type { LatencyHistogram } from "./histogram.ts";
import { writeAll, writeAllSync } from "../write_all.ts";

/** Bytes preallocated per replica file; the writes wrap around inside it. */
const fileBytes = 16 * 1024 * 1024;
/** Bytes of a stored record besides the message (pubsub's record header). */
const recordHeaderBytes = 24;
/** How long a child may take to listen. */
const listenTimeoutMs = 20_000;
/** How long one publish may take before the run is given up (a child died or hung). */
const publishTimeoutMs = 10_000;

/** Options of {@linkcode measureDurabilityFloor}. */
export interface FloorOptions {
  /** Publish for this long, one at a time. */
  durationMs: number;
  /** Bytes of each publish. */
  messageBytes: number;
  /** Records the latency of every acknowledged publish. */
  histogram: LatencyHistogram;
  /** Ports to use: leader, follower 1, follower 2 (all on 127.0.0.1). */
  ports: [number, number, number];
}

/**
 * Runs the floor for `durationMs` and returns how many publishes were
 * acknowledged; stops every child process by its PID, also on error.
 *
 * @example
 * ```ts
 * import { LatencyHistogram } from "./histogram.ts";
 * import { freePort } from "./local_cluster.ts";
 * import { measureDurabilityFloor } from "./durability_floor.ts";
 *
 * const histogram = new LatencyHistogram();
 * const ports: [number, number, number] = [freePort(), freePort(), freePort()];
 * await measureDurabilityFloor({ durationMs: 5000, messageBytes: 100, histogram, ports });
 * console.log(histogram.percentile(50), histogram.percentile(99));
 * ```
 */
export async function measureDurabilityFloor(options: FloorOptions): Promise<number> {
  const directory = await Deno.makeTempDir({ prefix: "pubsub-floor-" });
  const [leaderPort, port1, port2] = options.ports;
  const size = String(options.messageBytes);
  const children: Deno.ChildProcess[] = [];
  const spawn = (...args: string[]) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", import.meta.url, ...args, size],
      stdin: "null",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    children.push(child);
  };
  try {
    spawn("follower", String(port1), `${directory}/1`);
    spawn("follower", String(port2), `${directory}/2`);
    await connectWhenListening(port1).then((conn) => conn.close());
    await connectWhenListening(port2).then((conn) => conn.close());
    spawn("leader", String(leaderPort), `${directory}/0`, String(port1), String(port2));
    const conn = await connectWhenListening(leaderPort);
    // A hung child must not hang the caller: closing the socket ends the wait.
    let stalled = false;
    const guard = setTimeout(() => {
      stalled = true;
      conn.close();
    }, options.durationMs + publishTimeoutMs);
    try {
      return await publishOneAtATime(conn, options);
    } catch (error) {
      if (stalled) throw new Error(`The durability floor stalled for ${publishTimeoutMs} ms`);
      throw error;
    } finally {
      clearTimeout(guard);
      if (!stalled) conn.close();
    }
  } finally {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.status;
    }
    await Deno.remove(directory, { recursive: true }).catch(() => {});
  }
}

async function publishOneAtATime(conn: Deno.Conn, options: FloorOptions): Promise<number> {
  const message = new Uint8Array(options.messageBytes).fill(120);
  const answer = new Uint8Array(1);
  const endMs = performance.now() + options.durationMs;
  let acked = 0;
  while (performance.now() < endMs) {
    const sentMs = performance.now();
    await writeAll(conn, message);
    if (!await readExactly(conn, answer)) {
      throw new Error("The durability floor's leader closed the connection");
    }
    options.histogram.recordMilliseconds(performance.now() - sentMs);
    acked++;
  }
  return acked;
}

/** The leader listens first after the followers, so the caller waits here until each listens. */
async function connectWhenListening(port: number): Promise<Deno.Conn> {
  const giveUpMs = performance.now() + listenTimeoutMs;
  while (true) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.setNoDelay(true);
      return conn;
    } catch (error) {
      if (performance.now() > giveUpMs) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function readExactly(conn: Deno.Conn, into: Uint8Array): Promise<boolean> {
  let filled = 0;
  while (filled < into.length) {
    const read = await conn.read(into.subarray(filled));
    if (read === null) return false;
    filled += read;
  }
  return true;
}

/** A preallocated file; `append` writes a record at the next offset and fdatasyncs it. */
function openReplicaFile(path: string, messageBytes: number) {
  const file = Deno.openSync(path, { read: true, write: true, create: true, truncate: true });
  const zeros = new Uint8Array(1024 * 1024);
  for (let at = 0; at < fileBytes; at += zeros.length) writeAllSync(file, zeros);
  file.syncSync();
  const record = new Uint8Array(recordHeaderBytes + messageBytes);
  let offset = 0;
  return (message: Uint8Array) => {
    record.set(message, recordHeaderBytes);
    if (offset + record.length > fileBytes) offset = 0;
    file.seekSync(offset, Deno.SeekMode.Start);
    writeAllSync(file, record);
    offset += record.length;
    file.syncDataSync();
  };
}

async function runFollower(port: number, path: string, messageBytes: number): Promise<void> {
  const append = openReplicaFile(path, messageBytes);
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const message = new Uint8Array(messageBytes);
  const ack = new Uint8Array([1]);
  for await (const conn of listener) {
    conn.setNoDelay(true);
    while (await readExactly(conn, message)) {
      append(message);
      await writeAll(conn, ack);
    }
    conn.close();
  }
}

async function runLeader(
  port: number,
  path: string,
  followerPorts: number[],
  messageBytes: number,
): Promise<void> {
  const append = openReplicaFile(path, messageBytes);
  const followers = await Promise.all(followerPorts.map(connectWhenListening));
  let bestAcked = 0;
  let wake: (() => void) | undefined;
  for (const follower of followers) {
    (async () => {
      const ack = new Uint8Array(1);
      let acked = 0;
      while (await readExactly(follower, ack)) {
        acked++;
        if (acked > bestAcked) bestAcked = acked;
        wake?.();
      }
    })();
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const message = new Uint8Array(messageBytes);
  const answer = new Uint8Array([1]);
  let sent = 0;
  for await (const conn of listener) {
    conn.setNoDelay(true);
    while (await readExactly(conn, message)) {
      sent++;
      await Promise.all(followers.map((follower) => writeAll(follower, message)));
      append(message);
      while (bestAcked < sent) await new Promise<void>((resolve) => wake = resolve);
      await writeAll(conn, answer);
    }
    conn.close();
  }
}

if (import.meta.main) {
  const [role, port, path, ...rest] = Deno.args;
  const messageBytes = Number(rest.at(-1));
  if (role === "follower") await runFollower(Number(port), path, messageBytes);
  else await runLeader(Number(port), path, rest.slice(0, 2).map(Number), messageBytes);
}
