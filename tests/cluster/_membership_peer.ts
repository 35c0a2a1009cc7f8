/**
 * A minimal peer for the multi-process membership test: a real `Server` with
 * a `LocalBroker` and a `ClusterNode` wired in the way `startPeer` will be,
 * with `cluster_status` answered from the membership view. Runs until
 * SIGTERM/SIGINT (or SIGKILL).
 *
 * Usage: deno run -A tests/cluster/_membership_peer.ts --id 1 --port 5001
 *   --peers 1@127.0.0.1:5001,2@127.0.0.1:5002 --heartbeat-ms 200 --dead-after 1500
 *   --data-dir DIR
 *
 * @module
 */

import { ClusterNode, type DiscoveryPeer } from "../../lib/cluster/cluster_node.ts";
import { LocalBroker } from "../../lib/peer/local_broker.ts";
import { Server } from "../../lib/peer/server.ts";

function flag(args: string[], name: string): string {
  const index = args.indexOf(`--${name}`);
  if (index < 0 || index + 1 >= args.length) throw new Error(`Missing --${name}`);
  return args[index + 1];
}

function parsePeers(list: string): DiscoveryPeer[] {
  return list.split(",").filter(Boolean).map((item) => {
    const match = /^(\d+)@(.+):(\d+)$/.exec(item);
    if (match === null) throw new Error(`Bad --peers item '${item}'`);
    return { id: Number(match[1]), host: match[2], port: Number(match[3]) };
  });
}

async function main(args: string[]): Promise<void> {
  const id = Number(flag(args, "id"));
  const port = Number(flag(args, "port"));
  const host = "127.0.0.1";
  const local = await LocalBroker.open({
    nodeId: id,
    dataDir: flag(args, "data-dir"),
    address: `${host}:${port}`,
  });
  const cluster = ClusterNode.start({
    id,
    host,
    port,
    peers: parsePeers(flag(args, "peers")),
    heartbeatMs: Number(flag(args, "heartbeat-ms")),
    deadAfterMs: Number(flag(args, "dead-after")),
  });
  // cluster_status reports the membership view, as startPeer will once wired.
  const localStatus = local.clusterStatus.bind(local);
  local.clusterStatus = async () => ({
    ...(await localStatus()),
    nodes: cluster.membership.view(),
  });
  const server = Server.listen({
    hostname: host,
    port,
    broker: local,
    frameBytesMax: 1024 * 1024,
    idleTimeoutMs: 30_000,
    requestTimeoutMs: 5_000,
    peerHandler: cluster.peerHandler,
  });
  console.log(`membership peer ${id} listening on ${host}:${server.port}`);
  await new Promise<void>((resolve) => {
    Deno.addSignalListener("SIGTERM", resolve);
    Deno.addSignalListener("SIGINT", resolve);
  });
  await cluster.close();
  await server.close();
  await local.close();
  Deno.exit(0);
}

if (import.meta.main) await main(Deno.args);
