/**
 * The live cluster the fuzzer throws inputs at: real `pubsub peer` child
 * processes on 127.0.0.1 with a cluster secret, their output kept for the
 * stderr check, their exits watched, and every one stopped by its PID.
 *
 * @module
 */

import { PubSubClient } from "../lib/client/client.ts";
import { ClusterSecret } from "../lib/cluster/peer_auth.ts";

/** How long a peer may take to print that it listens. */
export const peerStartTimeoutMs = 30_000;
/** How long the cluster may take until every peer sees every peer alive. */
export const clusterFormTimeoutMs = 30_000;
/** How long a peer may take to exit after SIGTERM before it gets SIGKILL. */
export const peerStopTimeoutMs = 10_000;
/**
 * The idle timeout of the fuzzed peers: short, so that the fuzzer can check
 * that a connection stuck in a partial frame is closed, in bounded time.
 */
export const idleTimeoutMs = 1_500;
/** Largest request frame of the fuzzed peers (the documented default). */
export const maxFrameBytes = 1024 * 1024;

const mainPath = new URL("../main.ts", import.meta.url).pathname;

/** Output that means a peer hit a bug: an unexpected failure, a stack trace or a panic. */
export const alarmingOutput =
  /request failed unexpectedly|Uncaught|panicked|^\s+at .+:\d+:\d+\)?$/m;

/** One peer process. */
export interface FuzzPeer {
  id: number;
  port: number;
  pid: number;
  address: string;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Set once the process exited: its exit code or signal. */
  exit: string | undefined;
}

/** A running fuzz cluster. */
export interface FuzzCluster {
  root: string;
  peers: FuzzPeer[];
  addresses(): string[];
  /** Stops every peer by PID (SIGTERM, then SIGKILL) and removes the data. */
  stop(): Promise<void>;
}

/** Clusters started and not stopped yet, for {@linkcode stopAllClusters}. */
const running = new Set<FuzzCluster>();

/**
 * Stops every cluster still running (on SIGINT or SIGTERM of the fuzzer).
 *
 * @example
 * ```ts
 * Deno.addSignalListener("SIGTERM", () => stopAllClusters().then(() => Deno.exit(143)));
 * ```
 */
export async function stopAllClusters(): Promise<void> {
  await Promise.all([...running].map((cluster) => cluster.stop()));
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

interface Spawned {
  peer: FuzzPeer;
  child: Deno.ChildProcess;
  done: Promise<void>;
}

async function spawnPeer(
  id: number,
  port: number,
  peerList: string,
  root: string,
): Promise<Spawned> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", mainPath, "peer", "--id", String(id), "--port", String(port)],
      ...["--host", "127.0.0.1", "--peers", peerList, "--data-dir", `${root}/${id}`],
      ...["--cluster-secret-file", `${root}/cluster.secret`, "--log-level", "warning"],
      ...["--heartbeat-ms", "200", "--dead-after", "5000"],
      ...["--idle-timeout", String(idleTimeoutMs), "--max-frame", String(maxFrameBytes)],
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const peer: FuzzPeer = {
    id,
    port,
    pid: child.pid,
    address: `127.0.0.1:${port}`,
    output: () => text,
    exit: undefined,
  };
  const ready = Promise.withResolvers<void>();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      if (text.includes(`listening on ${peer.address}`)) ready.resolve();
    }
  };
  const streams = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const done = child.status.then(async (status) => {
    peer.exit = status.signal ?? `exit code ${status.code}`;
    await streams.catch(() => {});
    ready.reject(new Error(`Peer ${id} exited (${peer.exit}) before listening:\n${text}`));
  });
  const timer = setTimeout(
    () => ready.reject(new Error(`Peer ${id} did not listen within ${peerStartTimeoutMs} ms`)),
    peerStartTimeoutMs,
  );
  try {
    await ready.promise;
  } catch (error) {
    signal(child, "SIGKILL");
    await done;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return { peer, child, done };
}

function signal(child: Deno.ChildProcess, name: Deno.Signal): void {
  try {
    child.kill(name);
  } catch {
    // Already exited.
  }
}

async function stopSpawned(spawned: Spawned): Promise<void> {
  if (spawned.peer.exit !== undefined) return;
  const timer = setTimeout(() => signal(spawned.child, "SIGKILL"), peerStopTimeoutMs);
  signal(spawned.child, "SIGTERM");
  await spawned.done;
  clearTimeout(timer);
}

/**
 * Starts `count` peers with a new cluster secret and waits until each of
 * them sees all of them alive.
 *
 * @example
 * ```ts
 * const cluster = await startFuzzCluster(3);
 * try {
 *   console.log(cluster.addresses());
 * } finally {
 *   await cluster.stop();
 * }
 * ```
 */
export async function startFuzzCluster(count: number): Promise<FuzzCluster> {
  const root = await Deno.makeTempDir({ prefix: "pubsub-fuzz-" });
  await Deno.writeTextFile(`${root}/cluster.secret`, ClusterSecret.generateText());
  const ports = Array.from({ length: count }, () => freePort());
  const peerList = ports.map((port, index) => `${index + 1}@127.0.0.1:${port}`).join(",");
  const spawned: Spawned[] = [];
  let stopping: Promise<void> | undefined;
  const cluster: FuzzCluster = {
    root,
    get peers() {
      return spawned.map((entry) => entry.peer);
    },
    addresses: () => spawned.map((entry) => entry.peer.address),
    // Once: a signal handler and the normal path may both stop the cluster.
    stop: () => {
      running.delete(cluster);
      stopping ??= Promise.all(spawned.map(stopSpawned)).then(() =>
        Deno.remove(root, { recursive: true }).catch(() => {})
      );
      return stopping;
    },
  };
  running.add(cluster);
  try {
    // One at a time: the first peer bootstraps, the others join through it.
    for (const [index, port] of ports.entries()) {
      spawned.push(await spawnPeer(index + 1, port, peerList, root));
    }
    await waitUntilFormed(cluster);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

async function aliveSeenBy(address: string): Promise<number> {
  const client = await PubSubClient.connect({
    peers: [address],
    retries: 0,
    requestTimeoutMs: 2000,
  })
    .catch(() => undefined);
  try {
    const status = await client?.clusterStatus();
    if (status === undefined || status.metaLeader === null) return 0;
    return status.nodes.filter((node) => node.state === "alive").length;
  } catch {
    return 0;
  } finally {
    await client?.close();
  }
}

async function waitUntilFormed(cluster: FuzzCluster): Promise<void> {
  const deadline = performance.now() + clusterFormTimeoutMs;
  let seen: number[] = [];
  while (performance.now() < deadline) {
    seen = await Promise.all(cluster.addresses().map(aliveSeenBy));
    if (seen.every((alive) => alive === cluster.peers.length)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(
    `The fuzz cluster did not form within ${clusterFormTimeoutMs} ms (alive peers seen: ${seen})`,
  );
}
