/**
 * Multi-process cluster helpers: N real peers on 127.0.0.1, a client over
 * all of them, bounded waiting, and a reader of a stopped replica's log from
 * disk so tests can compare what every replica stored.
 *
 * @module
 */

import { PubSubClient } from "../../lib/client/client.ts";
import { ClusterSecret } from "../../lib/cluster/peer_auth.ts";
import { readReplicaMessages } from "../../lib/cluster/replica_files.ts";
import { freePort, type PeerProcess, startPeer } from "./peer_process.ts";
import { makeTlsFiles, type TlsFiles } from "./tls.ts";

/**
 * How a test cluster's peers protect their links: `secret` (the default: a
 * cluster secret, as `pubsub cluster` runs), `tls` (a secret and TLS with a
 * verified CA, for clients and peer links alike) or `none` (loopback only).
 */
export type ClusterSecurity = "none" | "secret" | "tls";

/** Fast failure detection for tests; elections keep their default 1-2 s. */
export const testClusterArgs = ["--heartbeat-ms", "200", "--dead-after", "2000"];

/** A running test cluster. */
export interface TestCluster {
  root: string;
  security: ClusterSecurity;
  /** The CA of a `tls` cluster. */
  tls?: TlsFiles;
  /** The arguments every peer gets for the cluster's security. */
  securityArgs: string[];
  /** Each peer's `--metrics-port` (by id - 1), when started with `metrics: true`. */
  metricsPorts?: number[];
  peers: PeerProcess[];
  peerList: string;
  addresses(): string[];
  /** Starts (or restarts) peer `id` with its data directory. */
  start(id: number, extraArgs?: string[]): Promise<PeerProcess>;
  peer(id: number): PeerProcess;
  client(options?: { requestTimeoutMs?: number }): Promise<PubSubClient>;
  /** Stops every peer; their data directories stay, for a test to look into or restart from. */
  stopAll(): Promise<void>;
  /** Stops every peer and deletes `root` (data directories, secret, TLS files): a test's last step. */
  dispose(): Promise<void>;
}

/** Starts `count` peers that form one cluster (ids 1..count). */
export async function startCluster(
  count: number,
  options: {
    spare?: number;
    args?: (id: number) => string[];
    security?: ClusterSecurity;
    /** Serve /metrics on every peer (see {@linkcode waitForFullReplication}). */
    metrics?: boolean;
  } = {},
): Promise<TestCluster> {
  const root = await Deno.makeTempDir({ prefix: "pubsub-cluster-" });
  const security = options.security ?? "secret";
  const securityArgs: string[] = [];
  let tls: TlsFiles | undefined;
  if (security !== "none") {
    await Deno.writeTextFile(`${root}/cluster.secret`, ClusterSecret.generateText());
    securityArgs.push("--cluster-secret-file", `${root}/cluster.secret`);
  }
  if (security === "tls") {
    tls = await makeTlsFiles(`${root}/tls`);
    securityArgs.push("--tls-cert", tls.certPath, "--tls-key", tls.keyPath, "--tls-ca", tls.caPath);
  }
  const total = count + (options.spare ?? 0);
  const ports = Array.from({ length: total }, () => freePort());
  const metricsPorts = options.metrics ? ports.map(() => freePort()) : undefined;
  const peerList = ports.map((port, index) => `${index + 1}@127.0.0.1:${port}`).join(",");
  const peers = new Map<number, PeerProcess>();
  const cluster: TestCluster = {
    root,
    security,
    tls,
    securityArgs,
    metricsPorts,
    peerList,
    get peers() {
      return [...peers.values()];
    },
    addresses: () => [...peers.values()].map((peer) => peer.address),
    start: async (id, extraArgs = []) => {
      const peer = await startPeer({
        id,
        port: ports[id - 1],
        dataDir: `${root}/${id}`,
        peers: peerList,
        args: [
          ...testClusterArgs,
          ...securityArgs,
          ...(metricsPorts === undefined ? [] : ["--metrics-port", String(metricsPorts[id - 1])]),
          ...(options.args?.(id) ?? []),
          ...extraArgs,
        ],
      });
      peers.set(id, peer);
      return peer;
    },
    peer: (id) => peers.get(id)!,
    client: (clientOptions = {}) =>
      PubSubClient.connect({
        peers: ports.slice(0, total).map((port) => `127.0.0.1:${port}`),
        requestTimeoutMs: clientOptions.requestTimeoutMs ?? 5000,
        retries: 20,
        tls: tls === undefined ? undefined : { caCerts: [tls.ca] },
      }),
    stopAll: async () => {
      await Promise.all([...peers.values()].map((peer) => peer.stop().catch(() => {})));
    },
    dispose: async () => {
      await cluster.stopAll();
      await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
  for (let id = 1; id <= count; id++) await cluster.start(id);
  await waitForFormation(cluster.peers, tls);
  return cluster;
}

/** The node id that leads `topic`, once `describe_topic` through `client` names one. */
export function waitForLeader(
  client: { describeTopic(topic: string): Promise<{ leader: number | null }> },
  topic: string,
): Promise<number> {
  return waitFor(
    `a leader of '${topic}'`,
    async () => (await client.describeTopic(topic)).leader ?? undefined,
  );
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string | (() => string),
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(
    `Timed out waiting for ${typeof what === "string" ? what : what()}${
      lastError ? `: ${(lastError as Error).message}` : ""
    }`,
  );
}

/**
 * Waits until the leader of `topic` reports that every voter's log matches
 * its own to the last entry (`pubsub_replica_lag_entries` 0), so replicas
 * read from disk after a stop hold the same log. In-sync (`describe_topic`)
 * is weaker: a voter counts when it matched the commit index within the last
 * second, so it may still miss the last entries. Needs `metrics: true`.
 *
 * @example
 * ```ts
 * const cluster = await startCluster(3, { metrics: true });
 * // ... publish to "orders" ...
 * await waitForFullReplication(cluster, "orders");
 * await cluster.stopAll(); // every replica's files now hold the same messages
 * ```
 */
export async function waitForFullReplication(
  cluster: TestCluster,
  topic: string,
  timeoutMs = 30_000,
): Promise<void> {
  const ports = cluster.metricsPorts;
  if (ports === undefined) throw new Error("The cluster was started without metrics: true");
  const line = `pubsub_replica_lag_entries{topic="${topic}"} `;
  let lags: string[] = [];
  await waitFor(
    () => `every replica of ${topic} to hold the whole log (lags: ${lags})`,
    async () => {
      lags = [];
      for (const peer of cluster.peers) {
        // A killed or paused peer answers nothing: bounded, and then not counted.
        const text = await fetch(`http://127.0.0.1:${ports[peer.id - 1]}/metrics`, {
          signal: AbortSignal.timeout(2000),
        }).then((response) => response.text()).catch(() => "");
        const lag = text.split("\n").find((row) => row.startsWith(line))?.slice(line.length);
        if (lag !== undefined) lags.push(`${peer.id}: ${lag}`);
        if (lag === "0") return true;
      }
      return false;
    },
    timeoutMs,
  );
}

/** Messages a (stopped) peer's replica of `topic` holds, read from its files. */
export const replicaMessages = readReplicaMessages;

/**
 * Waits until every peer follows a metadata leader (it joined and received
 * the metadata) and the metadata group has all its voters (up to 5): before
 * that, stopping the controller can leave the cluster without a quorum.
 */
export async function waitForFormation(peers: PeerProcess[], tls?: TlsFiles): Promise<void> {
  for (const peer of peers) {
    const client = await PubSubClient.connect({
      peers: [peer.address],
      retries: 0,
      tls: tls === undefined ? undefined : { caCerts: [tls.ca] },
    });
    try {
      await waitFor(`peer ${peer.id} to follow a controller`, async () => {
        const status = await client.clusterStatus();
        return status.metaLeader !== null && status.nodes.length >= peers.length &&
          status.metaVoters.length >= Math.min(peers.length, 5);
      });
    } finally {
      await client.close();
    }
  }
}
