/**
 * The peers of a whole-cluster simulation: for each node id a simulated
 * disk that outlives its processes, and at most one running process, a
 * real `ClusterBroker` opened on that disk, the shared virtual clock (its
 * own `NodeScheduler`), a seeded random source and a `SimTransport`.
 * Processes start, crash (kill or power loss), stop cleanly and restart;
 * a crashed process is silenced everywhere at once (timers, links, disk
 * handles), as the operating system would end it.
 *
 * @module
 */

import { ClusterBroker, type ClusterBrokerOptions } from "../../cluster/cluster_broker.ts";
import type { ManualScheduler } from "../../cluster/manual_scheduler.ts";
import type { DiscoveryPeer } from "../../cluster/cluster_node.ts";
import { Prng } from "../prng.ts";
import { type CrashKind, type DiskProfile, SimDisk } from "./sim_disk.ts";
import { NodeScheduler } from "./sim_loop.ts";
import type { SimNetwork, SimTransport } from "./sim_network.ts";

/** Timing of every simulated peer (virtual ms). */
export interface PeerTiming {
  tickMs: number;
  heartbeatMs: number;
  deadAfterMs: number;
  requestTimeoutMs: number;
  replicationFactor: number;
}

/** Short timings so a run of a few virtual minutes sees elections, deaths and repairs. */
export const simTiming: PeerTiming = {
  tickMs: 100,
  heartbeatMs: 500,
  deadAfterMs: 4000,
  requestTimeoutMs: 2000,
  replicationFactor: 3,
};

/** One running process of a peer. */
export interface SimProcess {
  readonly incarnation: number;
  readonly scheduler: NodeScheduler;
  readonly transport: SimTransport;
  /** Set once `ClusterBroker.open` resolved. */
  broker: ClusterBroker | undefined;
}

/** One peer: its disk, and its process when one runs. */
export interface SimPeer {
  readonly id: number;
  readonly disk: SimDisk;
  process: SimProcess | undefined;
  /** Set when the process could not open or the cluster refused it (fatal). */
  failure: string | undefined;
  /** Processes started so far. */
  starts: number;
}

/** What the cluster reports to the run (log lines for the trace). */
export type ClusterEventSink = (kind: string, node: number, detail: string) => void;

/**
 * The simulated peers.
 *
 * @example
 * ```ts
 * const cluster = new SimCluster({ scheduler, network, rng, timing: simTiming, founders: [1, 2, 3] });
 * cluster.start(1); cluster.start(2); cluster.start(3);
 * cluster.crash(2, "power_loss");
 * ```
 */
export class SimCluster {
  readonly peers = new Map<number, SimPeer>();
  readonly #scheduler: ManualScheduler;
  readonly #network: SimNetwork;
  readonly #rng: Prng;
  readonly #timing: PeerTiming;
  readonly #founders: number[];
  readonly #sink: ClusterEventSink;
  #incarnations = 0;

  constructor(options: {
    scheduler: ManualScheduler;
    network: SimNetwork;
    rng: Prng;
    timing: PeerTiming;
    /** The ids of the discovery list; the first bootstraps. */
    founders: number[];
    disk: (id: number) => DiskProfile;
    sink?: ClusterEventSink;
  }) {
    this.#scheduler = options.scheduler;
    this.#network = options.network;
    this.#rng = options.rng;
    this.#timing = options.timing;
    this.#founders = options.founders;
    this.#sink = options.sink ?? (() => {});
    this.#diskProfile = options.disk;
  }

  readonly #diskProfile: (id: number) => DiskProfile;

  /** The peer `id`, created (with an empty disk) on first use. */
  peer(id: number): SimPeer {
    let peer = this.peers.get(id);
    if (peer === undefined) {
      const disk = new SimDisk(id, {
        scheduler: this.#scheduler,
        rng: this.#rng.fork(),
        profile: this.#diskProfile(id),
      });
      peer = { id, disk, process: undefined, failure: undefined, starts: 0 };
      this.peers.set(id, peer);
    }
    return peer;
  }

  /** Brokers of the processes running and open, by node id. */
  brokers(): Map<number, ClusterBroker> {
    const result = new Map<number, ClusterBroker>();
    for (const peer of [...this.peers.values()].sort((a, b) => a.id - b.id)) {
      const broker = peer.process?.broker;
      if (broker !== undefined) result.set(peer.id, broker);
    }
    return result;
  }

  /** Starts a process of `id` (a no-op while one runs). */
  start(id: number): void {
    const peer = this.peer(id);
    if (peer.process !== undefined) return;
    peer.starts++;
    peer.failure = undefined;
    const scheduler = new NodeScheduler(this.#scheduler);
    const transport = this.#network.transport(id, scheduler);
    const process: SimProcess = {
      incarnation: ++this.#incarnations,
      scheduler,
      transport,
      broker: undefined,
    };
    peer.process = process;
    this.#sink("start", id, `incarnation ${process.incarnation}`);
    ClusterBroker.open(this.#options(id, process, peer.disk)).then(
      (broker) => {
        if (peer.process !== process) return;
        process.broker = broker;
        this.#network.listen(id, transport, broker.peerHandler);
        this.#sink("open", id, "");
        broker.fatal.then((error) => {
          if (peer.process !== process) return;
          peer.failure = error.message;
          this.#sink("fatal", id, error.message);
          this.crash(id, "kill");
        });
      },
      (error) => {
        if (peer.process !== process) return;
        peer.failure = (error as Error).message;
        this.#sink("open_failed", id, (error as Error).message);
        this.crash(id, "kill");
      },
    );
  }

  /** Ends the process of `id` abruptly; its disk keeps what `kind` leaves. */
  crash(id: number, kind: CrashKind): void {
    const peer = this.peer(id);
    const process = peer.process;
    if (process === undefined) return;
    peer.process = undefined;
    process.scheduler.kill();
    this.#network.crash(id);
    peer.disk.crash(kind);
    this.#sink(kind, id, `incarnation ${process.incarnation}`);
  }

  /** Stops the process of `id` cleanly (`ClusterBroker.close`), then silences what is left. */
  async stop(id: number): Promise<void> {
    const peer = this.peer(id);
    const process = peer.process;
    if (process === undefined) return;
    this.#sink("stop", id, `incarnation ${process.incarnation}`);
    try {
      await process.broker?.close();
    } finally {
      if (peer.process === process) {
        peer.process = undefined;
        process.scheduler.kill();
        this.#network.crash(id);
      }
    }
  }

  #options(id: number, process: SimProcess, disk: SimDisk): ClusterBrokerOptions {
    const peers: DiscoveryPeer[] = this.#founders.map((founder) => address(founder));
    return {
      nodeId: id,
      ...address(id),
      dataDir: `/sim/${id}`,
      peers: this.#founders.includes(id) ? peers : peers.filter((peer) => peer.id !== id),
      replicationFactor: this.#timing.replicationFactor,
      heartbeatMs: this.#timing.heartbeatMs,
      deadAfterMs: this.#timing.deadAfterMs,
      requestTimeoutMs: this.#timing.requestTimeoutMs,
      tickMs: this.#timing.tickMs,
      runtime: {
        scheduler: process.scheduler,
        rng: new Prng(this.#rng.nextUint32()),
        stores: disk.boot(),
      },
      transport: process.transport,
    };
  }
}

/**
 * The simulated address of node `id`.
 *
 * @example
 * ```ts
 * address(2); // { id: 2, host: "10.0.0.2", port: 5002 }
 * ```
 */
export function address(id: number): DiscoveryPeer {
  return { id, host: `10.0.0.${id}`, port: 5000 + id };
}
