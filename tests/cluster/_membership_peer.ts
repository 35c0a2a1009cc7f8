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
import type { Broker, ClusterView } from "../../lib/peer/broker.ts";
import { LocalBroker } from "../../lib/peer/local_broker.ts";
import { Server } from "../../lib/peer/server.ts";
import type { Topic } from "../../lib/peer/topic.ts";
import type { TopicDescription } from "../../lib/wire/responses.ts";

/** LocalBroker with `cluster_status` nodes taken from the membership view. */
class MembershipBroker implements Broker {
  readonly nodeId: number;
  readonly #broker: LocalBroker;
  readonly #cluster: ClusterNode;

  constructor(broker: LocalBroker, cluster: ClusterNode) {
    this.nodeId = broker.nodeId;
    this.#broker = broker;
    this.#cluster = cluster;
  }
  createTopic(name: string, replicationFactor?: number): Promise<boolean> {
    return this.#broker.createTopic(name, replicationFactor);
  }
  deleteTopic(name: string): Promise<void> {
    return this.#broker.deleteTopic(name);
  }
  topicNames(): Promise<string[]> {
    return this.#broker.topicNames();
  }
  topic(name: string): Promise<Topic> {
    return this.#broker.topic(name);
  }
  describeTopic(name: string): Promise<Omit<TopicDescription, "status">> {
    return this.#broker.describeTopic(name);
  }
  async clusterStatus(): Promise<ClusterView> {
    return { ...(await this.#broker.clusterStatus()), nodes: this.#cluster.membership.view() };
  }
  removeNode(nodeId: number): Promise<void> {
    return this.#broker.removeNode(nodeId);
  }
  close(): Promise<void> {
    return this.#broker.close();
  }
}

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
  const server = Server.listen({
    hostname: host,
    port,
    broker: new MembershipBroker(local, cluster),
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
