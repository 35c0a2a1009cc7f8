/**
 * A running peer: the broker behind it, the client listener in front of it,
 * and the metrics endpoint beside it, started and stopped as one.
 *
 * @module
 */

import type { Retention } from "../wire/retention.ts";
import { getLogger } from "../logging.ts";
import { countDeliveries, DeliveryCounts } from "../http/deliveries.ts";
import { type HttpServer, serveHttp } from "../http/server.ts";
import { frameBytesMaxDefault } from "../wire/frame.ts";
import { storedBytesTotal } from "../storage/segment_log_store.ts";
import type { Broker } from "./broker.ts";
import { ClusterBroker } from "../cluster/cluster_broker.ts";
import type { ClusterSecret } from "../cluster/peer_auth.ts";
import { systemRuntime } from "../cluster/runtime.ts";
import type { AccessPolicy } from "./auth.ts";
import { lockDataDir } from "./data_dir_lock.ts";
import { LocalBroker } from "./local_broker.ts";
import { startMemoryTrim } from "./memory_trim.ts";
import { createBrokerMetrics, type MetricsServer, serveMetrics } from "./metrics.ts";
import { Server } from "./server.ts";

/** Everything a peer is configured with (the `pubsub peer` flags). */
export interface PeerOptions {
  id: number;
  host: string;
  port: number;
  dataDir: string;
  frameBytesMax?: number;
  idleTimeoutMs?: number;
  requestTimeoutMs?: number;
  authToken?: string;
  /** Client tokens and their topic permissions (`--auth-file`); wins over `authToken` for clients. */
  access?: AccessPolicy;
  /** Serve TLS; with `ca`, peer links dial TLS and verify peers against it. */
  tls?: { cert: string; key: string; ca?: string };
  /**
   * The cluster secret: peer actions are accepted only from connections
   * that prove they know it, and links to other peers prove it too.
   */
  clusterSecret?: ClusterSecret;
  metricsPort?: number;
  /**
   * Serve the HTTP API, the web console and `/metrics` on this port (0 picks
   * a free one); off when undefined.
   */
  httpPort?: number;
  /** When set, `/metrics` requires `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
  /** The discovery list (`--peers`); the first entry bootstraps a new cluster. */
  peers?: { id: number; host: string; port: number }[];
  /** The "host:port" other peers dial to reach this one (default host:port). */
  advertiseAddress?: string;
  replicationFactor?: number;
  heartbeatMs?: number;
  deadAfterMs?: number;
  /** Raft tick length in ms (default 100). */
  tickMs?: number;
  /**
   * Serve alone without Raft: topics are plain fsynced logs on this peer
   * (like a single non-clustered server). Default false.
   */
  standalone?: boolean;
  /** Most topics (default 10,000); more answer `overloaded`. */
  topicsMax?: number;
  /** Retention of topics created through this peer without one (`--retention-*`). Default: none. */
  retentionDefaults?: Retention;
  /** Entries a Raft group applies between two snapshots (`--snapshot-entries`). Default 10,000. */
  snapshotEntries?: number;
}

/** A started peer. */
export interface RunningPeer {
  readonly id: number;
  readonly port: number;
  /** The bound HTTP port, when HTTP is on. */
  readonly httpPort: number | undefined;
  readonly broker: Broker;
  /** Removes this peer from the cluster, waiting (bounded) for its replicas to move. */
  leave(): Promise<void>;
  /** Stops accepting, closes connections, flushes and closes storage. */
  close(): Promise<void>;
}

/**
 * Starts a peer.
 *
 * @example
 * ```ts
 * const peer = await startPeer({ id: 1, host: "127.0.0.1", port: 5001, dataDir: "./data/1" });
 * await peer.close();
 * ```
 */
export async function startPeer(options: PeerOptions): Promise<RunningPeer> {
  // Before anything in the directory is opened: a second process must not touch it.
  const lock = await lockDataDir(options.dataDir);
  let peer: RunningPeer;
  try {
    peer = await startLockedPeer(options);
  } catch (error) {
    lock.release();
    throw error;
  }
  return {
    ...peer,
    close: async () => {
      try {
        await peer.close();
      } finally {
        lock.release();
      }
    },
  };
}

async function startLockedPeer(options: PeerOptions): Promise<RunningPeer> {
  const logger = getLogger("peer");
  const metrics = createBrokerMetrics();
  const broker = options.standalone
    ? await LocalBroker.open({
      nodeId: options.id,
      dataDir: options.dataDir,
      address: `${options.host}:${options.port}`,
      topicsMax: options.topicsMax,
      retentionDefaults: options.retentionDefaults,
    })
    : await ClusterBroker.open({
      nodeId: options.id,
      host: options.host,
      port: options.port,
      dataDir: options.dataDir,
      peers: options.peers ?? [{ id: options.id, host: options.host, port: options.port }],
      replicationFactor: options.replicationFactor ?? 3,
      heartbeatMs: options.heartbeatMs ?? 3000,
      deadAfterMs: options.deadAfterMs ?? 30_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 5_000,
      clusterSecret: options.clusterSecret,
      tls: options.tls === undefined
        ? undefined
        : { caCerts: options.tls.ca === undefined ? undefined : [options.tls.ca] },
      advertiseAddress: options.advertiseAddress,
      tickMs: options.tickMs,
      topicsMax: options.topicsMax,
      retentionDefaults: options.retentionDefaults,
      snapshotEntries: options.snapshotEntries,
      // The one place the cluster layer's real clock, randomness and disks are chosen.
      runtime: systemRuntime(options.dataDir),
    });
  const peerHandler = broker instanceof ClusterBroker ? broker.peerHandler : undefined;
  // Clients (TCP and HTTP) reach the broker through a counter of delivered messages.
  const deliveries = new DeliveryCounts((topic, count) =>
    metrics.messagesDelivered.inc({ topic }, count)
  );
  const clientBroker = countDeliveries(broker, deliveries);
  const observe = (action: string, status: string, seconds: number) => {
    metrics.requests.inc({ action, status });
    if (action === "publish" || action === "publish_batch") {
      metrics.publishLatency.observe(seconds);
    }
    if (action === "fetch" || action === "fetch_messages") {
      metrics.fetchLatency.observe(seconds);
    }
  };
  let server: Server;
  try {
    server = Server.listen({
      hostname: options.host,
      port: options.port,
      broker: clientBroker,
      frameBytesMax: options.frameBytesMax ?? frameBytesMaxDefault,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 5_000,
      authToken: options.authToken,
      access: options.access,
      peerHandler,
      clusterSecret: options.clusterSecret,
      tls: options.tls === undefined ? undefined : { cert: options.tls.cert, key: options.tls.key },
      observe,
    });
  } catch (error) {
    await broker.close();
    throw bindError(error, `${options.host}:${options.port}`);
  }
  let http: HttpServer | undefined;
  if (options.httpPort !== undefined) {
    try {
      http = await serveHttp({
        hostname: options.host,
        port: options.httpPort,
        broker: clientBroker,
        frameBytesMax: options.frameBytesMax ?? frameBytesMaxDefault,
        requestTimeoutMs: options.requestTimeoutMs ?? 5_000,
        authToken: options.authToken,
        access: options.access,
        tls: options.tls === undefined
          ? undefined
          : { cert: options.tls.cert, key: options.tls.key },
        metrics: { registry: metrics.registry, token: options.metricsToken },
        deliveries,
        observe,
      });
    } catch (error) {
      await server.close();
      await broker.close();
      throw error;
    }
  }
  let metricsServer: MetricsServer | undefined;
  // The HTTP port serves /metrics too: the same port given twice is one server.
  if (options.metricsPort !== undefined && options.metricsPort !== options.httpPort) {
    metricsServer = serveMetrics(options.metricsPort, metrics.registry, {
      hostname: options.host,
      token: options.metricsToken,
    });
  }
  // Gauges are computed when scraped: between scrapes no work is done per
  // group, which matters with thousands of topics.
  const stopTrimming = startMemoryTrim();
  let reportedLeaderChanges = 0;
  const stopCollecting = metrics.registry.onCollect(() => {
    metrics.connections.set({}, server.connections);
    metrics.bytesStored.set({}, storedBytesTotal());
    if (!(broker instanceof ClusterBroker)) return;
    const stats = broker.stats();
    metrics.raftTerm.clear();
    metrics.replicaLag.clear();
    for (const group of stats.groups) {
      metrics.raftTerm.set({ group: group.group }, group.term);
      if (group.lag !== undefined && group.group.startsWith("t:")) {
        metrics.replicaLag.set({ topic: group.group.slice(2) }, group.lag);
      }
    }
    metrics.leaderChanges.inc({}, stats.leaderChanges - reportedLeaderChanges);
    reportedLeaderChanges = stats.leaderChanges;
  });
  logger.info("Peer {id} listening on {host}:{port}", {
    id: options.id,
    host: options.host,
    port: server.port,
  });
  if (peerHandler !== undefined && options.clusterSecret === undefined) {
    logger.warn(
      "Peer {id} runs without a cluster secret: any process able to reach {host}:{port} can act as a peer (use --cluster-secret-file)",
      { id: options.id, host: options.host, port: server.port },
    );
  }
  if (http !== undefined) {
    logger.info("Peer {id} serves HTTP (API, console, metrics) at {url}", {
      id: options.id,
      url: http.url,
    });
  }
  return {
    id: options.id,
    port: server.port,
    httpPort: http?.port,
    broker,
    leave: () => broker instanceof ClusterBroker ? broker.leave() : Promise.resolve(),
    close: async () => {
      stopCollecting();
      stopTrimming();
      await http?.close();
      await server.close();
      await metricsServer?.close();
      await broker.close();
    },
  };
}

/** A bind failure as one sentence naming the address (AddrInUse alone names none). */
export function bindError(error: unknown, address: string): unknown {
  if (error instanceof Deno.errors.AddrInUse) {
    return new Error(
      `Cannot listen on ${address}: the address is already in use (is another peer running there?)`,
      { cause: error },
    );
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return new Error(`Cannot listen on ${address}: it is not an address of this machine`, {
      cause: error,
    });
  }
  return error;
}
