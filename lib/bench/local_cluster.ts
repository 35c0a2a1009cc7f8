/**
 * The cluster a benchmark runs against: either local peers that the bench
 * starts as child processes (so it can SIGKILL and restart them), or an
 * existing cluster given by its addresses, optionally with the PIDs of its
 * processes (then a "failure" freezes the process with SIGSTOP and recovery
 * thaws it with SIGCONT, because a process the bench did not start cannot be
 * restarted by it).
 *
 * @module
 */

import { peerV8Flags } from "../peer/memory_trim.ts";
import { ensureSecretFile } from "../cluster/secret_file.ts";
import { PubSubClient } from "../client/client.ts";
import { PeerStartError, spawnPeerChild } from "./peer_child.ts";

export { PeerStartError, peerStartTimeoutMs } from "./peer_child.ts";
/** How long a stopped peer may take to exit after SIGTERM before it gets SIGKILL. */
export const peerStopTimeoutMs = 10_000;
/** Arguments of every local peer: failure detection fast enough for a benchmark. */
export const localPeerArgs = ["--heartbeat-ms", "500", "--dead-after", "5000"];

const mainPath = new URL("../../main.ts", import.meta.url).pathname;

/** One node of the benchmarked cluster. */
export interface BenchNode {
  id: number;
  address: string;
  /** The process id, when known. */
  pid: number | undefined;
}

/** What the fault-tolerance checks and the kill workload need from a cluster. */
export interface BenchCluster {
  readonly nodes: readonly BenchNode[];
  /** Why nodes cannot be failed, or undefined when they can. */
  readonly killUnsupportedReason: string | undefined;
  /** How a failure is simulated, for the report ("SIGKILL" or "SIGSTOP"). */
  readonly failureMode: string;
  node(id: number): BenchNode;
  /** Fails node `id` (SIGKILL, or SIGSTOP for an external cluster) and waits for it. */
  fail(id: number): Promise<void>;
  /** Brings node `id` back (restart with the same data, or SIGCONT). */
  recover(id: number): Promise<void>;
  /** The data directory of node `id` when the bench owns it. */
  dataDir(id: number): string | undefined;
  /** A client that may use only the given peers (default: all). */
  client(addresses?: string[], options?: { requestTimeoutMs?: number }): Promise<PubSubClient>;
  /** Stops every process the bench started; idempotent. */
  stop(): Promise<void>;
}

/** Asks the OS for a port that is free on 127.0.0.1 right now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

interface LocalPeer extends BenchNode {
  port: number;
  process: Deno.ChildProcess | undefined;
  exited: Promise<void> | undefined;
}

/**
 * Starts `count` local peers on free 127.0.0.1 ports with data in a new
 * temporary directory, and resolves once all of them listen. Each peer gets
 * `options.peerArgs` (default {@linkcode localPeerArgs}: failure detection
 * fast enough for a benchmark's kills).
 *
 * @example
 * ```ts
 * import { startLocalCluster } from "./local_cluster.ts";
 *
 * const cluster = await startLocalCluster(3);
 * try {
 *   const client = await cluster.client();
 *   await client.close();
 * } finally {
 *   await cluster.stop();
 * }
 * ```
 */
export async function startLocalCluster(
  count: number,
  options: { peerArgs?: readonly string[] } = {},
): Promise<BenchCluster> {
  const root = await Deno.makeTempDir({ prefix: "pubsub-bench-" });
  const peers: LocalPeer[] = Array.from({ length: count }, (_, index) => {
    const port = freePort();
    return {
      id: index + 1,
      port,
      address: `127.0.0.1:${port}`,
      pid: undefined,
      process: undefined,
      exited: undefined,
    };
  });
  const peerList = peers.map((peer) => `${peer.id}@${peer.address}`).join(",");
  // The benchmark measures the cluster as `pubsub cluster` runs it: with a cluster secret.
  const secretFile = await ensureSecretFile(`${root}/cluster.secret`);
  const start = (peer: LocalPeer) =>
    spawnPeer(peer, peerList, `${root}/${peer.id}`, [
      ...(options.peerArgs ?? localPeerArgs),
      ...["--cluster-secret-file", secretFile],
    ]);
  const find = (id: number) => {
    const peer = peers.find((candidate) => candidate.id === id);
    if (peer === undefined) throw new RangeError(`Cannot find node ${id} in the bench cluster`);
    return peer;
  };
  const cluster: BenchCluster = {
    nodes: peers,
    killUnsupportedReason: undefined,
    failureMode: "SIGKILL",
    node: find,
    fail: async (id) => {
      const peer = find(id);
      signal(peer.process, "SIGKILL");
      await peer.exited;
    },
    recover: (id) => start(find(id)),
    dataDir: (id) => `${root}/${find(id).id}`,
    client: (addresses, options) => connect(addresses ?? peers.map((p) => p.address), options),
    stop: async () => {
      await Promise.all(peers.map((peer) => stopPeer(peer)));
      if (Deno.env.get("PUBSUB_BENCH_KEEP") === undefined) {
        await Deno.remove(root, { recursive: true }).catch(() => {});
      } else console.error(`kept ${root}`);
    },
  };
  try {
    // One at a time: the first peer bootstraps, the others join through it.
    for (const peer of peers) await start(peer);
    await waitUntilFormed(cluster);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/** How long a new cluster may take until every node sees every other alive. */
export const clusterFormTimeoutMs = 30_000;

/**
 * Waits until every node reports all nodes alive: a topic created earlier
 * would be placed on fewer replicas than the cluster has.
 */
async function waitUntilFormed(cluster: BenchCluster): Promise<void> {
  const deadlineMs = performance.now() + clusterFormTimeoutMs;
  let seen = "no answer";
  while (performance.now() < deadlineMs) {
    const views = await Promise.all(cluster.nodes.map(async (node) => {
      const client = await connect([node.address], { requestTimeoutMs: 2000 }).catch(() =>
        undefined
      );
      try {
        const status = await client?.clusterStatus();
        return status?.nodes.filter((entry) => entry.state === "alive").length ?? 0;
      } catch {
        return 0;
      } finally {
        await client?.close();
      }
    }));
    seen = views.join(",");
    if (views.every((alive) => alive === cluster.nodes.length)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new PeerStartError(
    `The local cluster did not form within ${clusterFormTimeoutMs} ms (alive nodes seen per peer: ${seen})`,
  );
}

/**
 * An existing cluster at `addresses`; node ids are asked with `ping`. With
 * `pids` (same order as the addresses) nodes can be failed by SIGSTOP.
 *
 * @example
 * ```ts
 * import { externalCluster } from "./local_cluster.ts";
 *
 * const cluster = await externalCluster(["127.0.0.1:5001", "127.0.0.1:5002"]);
 * console.log(cluster.killUnsupportedReason);
 * ```
 */
export async function externalCluster(
  addresses: string[],
  pids: number[] | undefined = undefined,
): Promise<BenchCluster> {
  if (pids !== undefined && pids.length !== addresses.length) {
    throw new RangeError(
      `Cannot use --pids as it must list one pid per peer: ${pids.length} pids for ${addresses.length} peers`,
    );
  }
  const nodes: BenchNode[] = [];
  for (const [index, address] of addresses.entries()) {
    const client = await connect([address], { requestTimeoutMs: 5000 });
    try {
      nodes.push({ id: (await client.ping()).node, address, pid: pids?.[index] });
    } finally {
      await client.close();
    }
  }
  const find = (id: number) => {
    const node = nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new RangeError(`Cannot find node ${id} in the bench cluster`);
    return node;
  };
  const send = (id: number, name: Deno.Signal) => {
    const pid = find(id).pid;
    if (pid === undefined) throw new RangeError(`Cannot signal node ${id}: its pid is unknown`);
    Deno.kill(pid, name);
    return Promise.resolve();
  };
  return {
    nodes,
    killUnsupportedReason: pids === undefined
      ? "an existing cluster (--peers) without --pids cannot have its processes failed"
      : undefined,
    failureMode: "SIGSTOP",
    node: find,
    fail: (id) => send(id, "SIGSTOP"),
    recover: (id) => send(id, "SIGCONT"),
    dataDir: () => undefined,
    client: (only, options) => connect(only ?? addresses, options),
    stop: () => Promise.resolve(),
  };
}

function connect(
  addresses: string[],
  options: { requestTimeoutMs?: number } = {},
): Promise<PubSubClient> {
  // Many retries: a benchmark client must ride through a failover, not give up.
  return PubSubClient.connect({
    peers: addresses,
    requestTimeoutMs: options.requestTimeoutMs ?? 5000,
    retries: 20,
  });
}

/**
 * Extra `deno run` flags for the peer with id `id`, from the environment
 * variable `PUBSUB_BENCH_PEER_FLAGS` (space-separated; `{id}` stands for the
 * peer's id), for profiling a benchmark's peers without editing code:
 * `PUBSUB_BENCH_PEER_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof/{id}"` or
 * `"--inspect=127.0.0.1:940{id}"`. V8 flags go through `PUBSUB_BENCH_V8_FLAGS`
 * (comma-separated, added to the peers' own), e.g. `"--trace-gc"`.
 *
 * @example
 * ```ts
 * peerDenoFlags(2, { PUBSUB_BENCH_PEER_FLAGS: "--cpu-prof --cpu-prof-dir=/tmp/p/{id}" });
 * // ["--v8-flags=--no-memory-reducer", "--cpu-prof", "--cpu-prof-dir=/tmp/p/2"]
 * ```
 */
export function peerDenoFlags(
  id: number,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): string[] {
  const v8 = env.PUBSUB_BENCH_V8_FLAGS?.trim();
  const extra = (env.PUBSUB_BENCH_PEER_FLAGS ?? "").split(/\s+/).filter((flag) => flag !== "");
  return [
    v8 ? `${peerV8Flags},${v8}` : peerV8Flags,
    ...extra.map((flag) => flag.replaceAll("{id}", String(id))),
  ];
}

async function spawnPeer(
  peer: LocalPeer,
  peerList: string,
  dataDir: string,
  extraArgs: string[],
): Promise<void> {
  await Deno.mkdir(dataDir, { recursive: true });
  await spawnPeerChild(peer, [
    ...["run", "-A", ...peerDenoFlags(peer.id), mainPath, "peer"],
    ...["--id", String(peer.id), "--port", String(peer.port)],
    ...["--host", "127.0.0.1", "--peers", peerList, "--data-dir", dataDir],
    ...extraArgs,
  ], `${dataDir}/peer.log`);
}

async function stopPeer(peer: LocalPeer): Promise<void> {
  if (peer.process === undefined) return;
  signal(peer.process, "SIGTERM");
  const timer = setTimeout(() => signal(peer.process, "SIGKILL"), peerStopTimeoutMs);
  await peer.exited;
  clearTimeout(timer);
}

function signal(process: Deno.ChildProcess | undefined, name: Deno.Signal): void {
  try {
    process?.kill(name);
  } catch { /* already exited */ }
}
