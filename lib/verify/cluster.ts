/**
 * The cluster `pubsub verify` runs against, and what it can do to it.
 *
 * - **Local** (the default): `pubsub peer` child processes on free
 *   127.0.0.1 ports, data in a new temporary directory, a cluster secret,
 *   and a {@linkcode FaultProxy} listener per peer that the peer advertises
 *   (`--advertise-address`), so every peer link runs through the proxy.
 *   Clients connect to the peers' own ports. Every fault kind works, spares
 *   join with fresh ids, and each stopped peer's replica is read from its
 *   files.
 * - **External** (`--peers`): a running cluster. Without `--pids` verify
 *   cannot signal its processes, without `--proxy-ports` (and peers started
 *   with `--advertise-address` set to those ports) it cannot partition them,
 *   it never restarts or adds peers, and replicas are read through a
 *   subscription each peer serves from its own replica.
 *
 * Every process is started and stopped by its PID; a paused peer gets
 * SIGCONT before SIGTERM, and SIGKILL follows when it does not exit in time.
 *
 * @module
 */

import { peerV8Flags } from "../peer/memory_trim.ts";
import { PubSubClient } from "../client/client.ts";
import { readReplicaMessages } from "../cluster/replica_files.ts";
import { ensureSecretFile } from "../cluster/secret_file.ts";
import { freePort, localPeerArgs } from "../bench/local_cluster.ts";
import { PeerStartError, spawnPeerChild } from "../bench/peer_child.ts";
import { FaultProxy } from "./proxy.ts";

/** How long a stopped peer may take to exit after SIGTERM before it gets SIGKILL. */
export const peerStopTimeoutMs = 10_000;
/** How long a new cluster (or a joining spare) may take until it sees every member alive. */
export const clusterFormTimeoutMs = 30_000;
/** Attempt timeout of the clients verify uses; a silent peer is left after this long. */
export const clientRequestTimeoutMs = 2_000;
/** Retries of those clients (so one request may take up to 5 attempts). */
export const clientRetries = 4;

const mainPath = new URL("../../main.ts", import.meta.url).pathname;

/** What verify knows about one node. */
export interface VerifyNode {
  id: number;
  /** Where clients reach it: its own port. */
  address: string;
  /** The proxy listener other peers dial for it (local clusters, or `--proxy-ports`). */
  proxyAddress: string | undefined;
  pid: number | undefined;
  dataDir: string | undefined;
  /** `up`, `killed` (SIGKILL, not restarted yet), `paused` (SIGSTOP) or `retired` (removed). */
  state: "up" | "killed" | "paused" | "retired";
}

/** What a cluster lets verify do; each undefined entry is possible, a string says why not. */
export interface ClusterLimits {
  /** SIGKILL and restart. */
  kill: string | undefined;
  /** SIGSTOP and SIGCONT. */
  pause: string | undefined;
  /** Proxy faults: partitions, delays, dropped connections. */
  proxy: string | undefined;
  /** A spare joining and a member removed. */
  membership: string | undefined;
}

/** A cluster under test. */
export interface VerifyCluster {
  /** One line describing it. */
  readonly description: string;
  readonly limits: ClusterLimits;
  /** The proxy between peers, when there is one. */
  readonly proxy: FaultProxy | undefined;
  /** The temporary data directory of a local cluster. */
  readonly root: string | undefined;
  /** Every node not retired. */
  members(): VerifyNode[];
  node(id: number): VerifyNode;
  /** SIGKILL, and wait for the exit. */
  kill(id: number): Promise<void>;
  /** Starts a killed node again on its data directory. */
  restart(id: number): Promise<void>;
  /** SIGSTOP. */
  pause(id: number): void;
  /** SIGCONT. */
  resume(id: number): void;
  /**
   * Starts a new node (the next unused id, an empty data directory, on
   * `port` or a free one) that joins through the members; resolves once it
   * listens.
   */
  spawn(options?: { port?: number }): Promise<VerifyNode>;
  /** Stops a node for good (SIGTERM) and closes its proxy listener; `wipe` deletes its data. */
  retire(id: number, options?: { wipe?: boolean }): Promise<void>;
  /** A client of the given addresses (default: every member's), in this order. */
  client(addresses?: string[]): Promise<PubSubClient>;
  /** Stops every peer process gracefully, so their files can be read. */
  stopPeers(): Promise<void>;
  /** The messages of `topic` in node `id`'s own files (after `stopPeers`). */
  readReplica(id: number, topic: string): Promise<string[]>;
  /** Stops everything started; removes the data directory unless `keep`. */
  close(options?: { keep?: boolean }): Promise<void>;
}

/** Options of {@linkcode startVerifyCluster}. */
export interface LocalClusterOptions {
  nodes: number;
  /** Extra `pubsub peer` arguments. */
  peerArgs?: string[];
  /** Log level of the peers (their logs go to `<root>/logs/<id>.log`). */
  logLevel?: string;
}

interface LocalNode extends VerifyNode {
  port: number;
  process: Deno.ChildProcess | undefined;
  exited: Promise<void> | undefined;
}

/**
 * Starts a local cluster of `options.nodes` peers behind a fault proxy.
 *
 * @example
 * ```ts
 * import { startVerifyCluster } from "./cluster.ts";
 *
 * const cluster = await startVerifyCluster({ nodes: 3 });
 * try {
 *   cluster.proxy!.partition([1], [2, 3]);
 * } finally {
 *   await cluster.close();
 * }
 * ```
 */
export async function startVerifyCluster(options: LocalClusterOptions): Promise<VerifyCluster> {
  const root = await Deno.makeTempDir({ prefix: "pubsub-verify-" });
  const cluster = new LocalCluster(root, options);
  try {
    await cluster.start();
  } catch (error) {
    await cluster.close({ keep: true });
    throw new PeerStartError(`${(error as Error).message} (peer logs kept in ${root}/logs)`, {
      cause: error,
    });
  }
  return cluster;
}

class LocalCluster implements VerifyCluster {
  readonly root: string;
  readonly proxy = new FaultProxy();
  readonly limits: ClusterLimits = {
    kill: undefined,
    pause: undefined,
    proxy: undefined,
    membership: undefined,
  };
  readonly #options: LocalClusterOptions;
  readonly #nodes: LocalNode[] = [];
  #secretFile = "";
  #nextId = 1;

  constructor(root: string, options: LocalClusterOptions) {
    this.root = root;
    this.#options = options;
  }

  get description(): string {
    return `local, ${this.#options.nodes} peers started by verify behind a fault proxy ` +
      `(${localPeerArgs.join(" ")}), data in ${this.root}`;
  }

  async start(): Promise<void> {
    this.#secretFile = await ensureSecretFile(`${this.root}/cluster.secret`);
    await Deno.mkdir(`${this.root}/logs`, { recursive: true });
    for (let index = 0; index < this.#options.nodes; index++) this.#add(freePort());
    // One at a time: the first peer bootstraps, the others join through it.
    for (const node of this.#nodes) await this.#startProcess(node);
    await waitUntilAlive(this, this.members());
  }

  members(): VerifyNode[] {
    return this.#nodes.filter((node) => node.state !== "retired");
  }

  node(id: number): LocalNode {
    const node = this.#nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new RangeError(`Cannot find node ${id} in the verified cluster`);
    return node;
  }

  async kill(id: number): Promise<void> {
    const node = this.node(id);
    signal(node.process, "SIGKILL");
    await node.exited;
    node.state = "killed";
  }

  async restart(id: number): Promise<void> {
    const node = this.node(id);
    if (node.state !== "killed") throw new Error(`Cannot restart node ${id}: it is ${node.state}`);
    await this.#startProcess(node);
  }

  pause(id: number): void {
    const node = this.node(id);
    signal(node.process, "SIGSTOP");
    node.state = "paused";
  }

  resume(id: number): void {
    const node = this.node(id);
    signal(node.process, "SIGCONT");
    if (node.state === "paused") node.state = "up";
  }

  async spawn(options: { port?: number } = {}): Promise<VerifyNode> {
    const node = this.#add(options.port ?? freePort());
    await this.#startProcess(node);
    return node;
  }

  async retire(id: number, options: { wipe?: boolean } = {}): Promise<void> {
    const node = this.node(id);
    await stopProcess(node);
    node.state = "retired";
    await this.proxy.unlisten(id);
    if (options.wipe && node.dataDir !== undefined) {
      await Deno.remove(node.dataDir, { recursive: true }).catch(() => {});
    }
  }

  client(addresses?: string[]): Promise<PubSubClient> {
    return connectClient(addresses ?? this.members().map((node) => node.address));
  }

  async stopPeers(): Promise<void> {
    await Promise.all(this.#nodes.map((node) => stopProcess(node)));
  }

  async readReplica(id: number, topic: string): Promise<string[]> {
    const node = this.node(id);
    if (node.process !== undefined) {
      throw new Error(`Cannot read node ${id}'s files while it runs`);
    }
    return await readReplicaMessages(node.dataDir!, topic);
  }

  async close(options: { keep?: boolean } = {}): Promise<void> {
    await this.stopPeers();
    await this.proxy.close();
    if (!options.keep) await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }

  #add(port: number): LocalNode {
    const id = this.#nextId++;
    const proxyAddress = this.proxy.listen(id, { hostname: "127.0.0.1", port });
    const node: LocalNode = {
      id,
      port,
      address: `127.0.0.1:${port}`,
      proxyAddress,
      pid: undefined,
      dataDir: `${this.root}/${id}`,
      state: "up",
      process: undefined,
      exited: undefined,
    };
    this.#nodes.push(node);
    return node;
  }

  /** The discovery list of `node`: the members first (the first one bootstraps), itself last. */
  #peerList(node: LocalNode): string {
    const others = this.#nodes.filter((other) => other !== node && other.state !== "retired");
    const list = node.id === 1 && others.every((other) => other.process === undefined)
      ? [node, ...others]
      : [...others, node];
    return list.map((entry) => `${entry.id}@${entry.proxyAddress}`).join(",");
  }

  async #startProcess(node: LocalNode): Promise<void> {
    await Deno.mkdir(node.dataDir!, { recursive: true });
    const args = [
      ...["run", "-A", peerV8Flags, mainPath, "peer"],
      ...["--id", String(node.id), "--port", String(node.port)],
      ...["--host", "127.0.0.1", "--advertise-address", node.proxyAddress!],
      ...["--peers", this.#peerList(node), "--data-dir", node.dataDir!],
      ...["--cluster-secret-file", this.#secretFile, ...localPeerArgs],
      ...["--log-level", this.#options.logLevel ?? "info"],
      ...(this.#options.peerArgs ?? []),
    ];
    await spawnPeerChild(node, args, `${this.root}/logs/${node.id}.log`);
    node.state = "up";
  }
}

/**
 * An existing cluster at `addresses` (node ids asked with `ping`). With
 * `pids` (same order) nodes can be paused; with `proxyPorts` (node id to a
 * port) verify listens there and relays to the node, which must advertise
 * that port (`pubsub peer --advertise-address 127.0.0.1:PORT`): such peers
 * reach each other only while verify runs. Resolves once every node sees
 * every other alive.
 *
 * @example
 * ```ts
 * import { externalVerifyCluster } from "./cluster.ts";
 *
 * const cluster = await externalVerifyCluster(["127.0.0.1:5001", "127.0.0.1:5002"]);
 * console.log(cluster.limits.kill);
 * ```
 */
export async function externalVerifyCluster(
  addresses: string[],
  options: { pids?: number[]; proxyPorts?: Map<number, number> } = {},
): Promise<VerifyCluster> {
  if (options.pids !== undefined && options.pids.length !== addresses.length) {
    throw new RangeError(
      `Cannot use --pids as it must list one pid per peer: ${options.pids.length} pids for ${addresses.length} peers`,
    );
  }
  const nodes: VerifyNode[] = [];
  for (const [index, address] of addresses.entries()) {
    const client = await connectClient([address]);
    try {
      nodes.push({
        id: (await client.ping()).node,
        address,
        proxyAddress: undefined,
        pid: options.pids?.[index],
        dataDir: undefined,
        state: "up",
      });
    } finally {
      await client.close();
    }
  }
  let proxy: FaultProxy | undefined;
  if (options.proxyPorts !== undefined) {
    proxy = new FaultProxy();
    for (const [id, port] of options.proxyPorts) {
      const node = nodes.find((candidate) => candidate.id === id);
      if (node === undefined) {
        await proxy.close();
        throw new RangeError(`Cannot proxy node ${id}: no peer of --peers answered as node ${id}`);
      }
      const [hostname, targetPort] = splitAddress(node.address);
      node.proxyAddress = proxy.listen(id, { hostname, port: targetPort }, { port });
    }
  }
  const cluster = new ExternalCluster(nodes, proxy, options.pids !== undefined);
  try {
    // Peers that advertise verify's proxy can reach each other only now.
    await waitUntilAlive(cluster, nodes);
  } catch (error) {
    await cluster.close();
    throw error;
  }
  return cluster;
}

class ExternalCluster implements VerifyCluster {
  readonly root = undefined;
  readonly limits: ClusterLimits;
  readonly proxy: FaultProxy | undefined;
  readonly #nodes: VerifyNode[];

  constructor(nodes: VerifyNode[], proxy: FaultProxy | undefined, pids: boolean) {
    this.#nodes = nodes;
    this.proxy = proxy;
    this.limits = {
      kill: "verify cannot restart the processes of an existing cluster (--peers)",
      pause: pids ? undefined : "pausing processes of an existing cluster needs --pids",
      proxy: proxy === undefined
        ? "partitions of an existing cluster need --proxy-ports and peers advertising them"
        : undefined,
      membership: "verify cannot start spare peers for an existing cluster (--peers)",
    };
  }

  get description(): string {
    return `existing: ${this.#nodes.map((node) => `${node.id}@${node.address}`).join(",")}` +
      (this.proxy === undefined ? "" : " (peer links through verify's proxy)");
  }

  members(): VerifyNode[] {
    return this.#nodes;
  }

  node(id: number): VerifyNode {
    const node = this.#nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new RangeError(`Cannot find node ${id} in the verified cluster`);
    return node;
  }

  kill(): Promise<void> {
    return Promise.reject(new Error(this.limits.kill));
  }

  restart(): Promise<void> {
    return Promise.reject(new Error(this.limits.kill));
  }

  pause(id: number): void {
    Deno.kill(this.#pid(id), "SIGSTOP");
    this.node(id).state = "paused";
  }

  resume(id: number): void {
    Deno.kill(this.#pid(id), "SIGCONT");
    this.node(id).state = "up";
  }

  spawn(): Promise<VerifyNode> {
    return Promise.reject(new Error(this.limits.membership));
  }

  retire(): Promise<void> {
    return Promise.reject(new Error(this.limits.membership));
  }

  client(addresses?: string[]): Promise<PubSubClient> {
    return connectClient(addresses ?? this.#nodes.map((node) => node.address));
  }

  stopPeers(): Promise<void> {
    // Not ours to stop; only make sure nothing stays paused.
    for (const node of this.#nodes) if (node.state === "paused") this.resume(node.id);
    return Promise.resolve();
  }

  readReplica(): Promise<string[]> {
    return Promise.reject(new Error("verify cannot read the files of an existing cluster"));
  }

  async close(): Promise<void> {
    await this.stopPeers();
    await this.proxy?.close();
  }

  #pid(id: number): number {
    const pid = this.node(id).pid;
    if (pid === undefined) throw new Error(`Cannot signal node ${id}: its pid is unknown`);
    return pid;
  }
}

/** Attempt timeout and retries of an impatient client (its outcomes are often unknown). */
export const impatientRequestTimeoutMs = 1_000;
export const impatientRetries = 1;

/**
 * A client that rides through failovers (several short attempts, then an
 * unknown outcome), or an impatient one that gives up after two short ones.
 *
 * @example
 * ```ts
 * import { connectClient } from "./cluster.ts";
 *
 * const client = await connectClient(["127.0.0.1:5001"], { impatient: true });
 * await client.close();
 * ```
 */
export function connectClient(
  addresses: string[],
  options: { impatient?: boolean } = {},
): Promise<PubSubClient> {
  return PubSubClient.connect({
    peers: addresses,
    requestTimeoutMs: options.impatient ? impatientRequestTimeoutMs : clientRequestTimeoutMs,
    retries: options.impatient ? impatientRetries : clientRetries,
  });
}

/**
 * Waits until every one of `nodes` reports each of them alive.
 *
 * @example
 * ```ts
 * import { waitUntilAlive } from "./cluster.ts";
 *
 * await waitUntilAlive(cluster, cluster.members());
 * ```
 */
export async function waitUntilAlive(
  cluster: VerifyCluster,
  nodes: readonly VerifyNode[],
  timeoutMs = clusterFormTimeoutMs,
): Promise<void> {
  const deadlineMs = performance.now() + timeoutMs;
  const ids = nodes.map((node) => node.id);
  let seen = "no answer";
  while (performance.now() < deadlineMs) {
    const views = await Promise.all(nodes.map(async (node) => {
      const client = await cluster.client([node.address]).catch(() => undefined);
      try {
        const status = await client?.clusterStatus();
        const alive = status?.nodes.filter((entry) => entry.state === "alive")
          .map((entry) => entry.id) ?? [];
        return ids.every((id) => alive.includes(id));
      } catch {
        return false;
      } finally {
        await client?.close();
      }
    }));
    seen = views.map((ok, index) => `${ids[index]}:${ok ? "all" : "not all"}`).join(",");
    if (views.every(Boolean)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new PeerStartError(
    `The nodes ${ids.join(",")} did not all see each other alive within ${timeoutMs} ms (${seen})`,
  );
}

async function stopProcess(node: LocalNode): Promise<void> {
  if (node.process === undefined) return;
  // A stopped process acts on SIGTERM only once it runs again.
  signal(node.process, "SIGCONT");
  signal(node.process, "SIGTERM");
  const timer = setTimeout(() => signal(node.process, "SIGKILL"), peerStopTimeoutMs);
  await node.exited;
  clearTimeout(timer);
}

function signal(process: Deno.ChildProcess | undefined, name: Deno.Signal): void {
  try {
    process?.kill(name);
  } catch { /* already exited */ }
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(":");
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}
