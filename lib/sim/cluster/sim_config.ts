/**
 * Everything a whole-cluster run does, drawn from its seed: the cluster's
 * size, the workload, the network's and disks' behaviour, and the broken
 * variant when one is asked for.
 *
 * @module
 */

import type { Prng } from "../prng.ts";
import { type DiskProfile, healthyDisk } from "./sim_disk.ts";
import type { NetworkProfile } from "./sim_network.ts";

/**
 * Deliberately broken variants, each of which the checker must catch:
 * - `ack-before-fsync`: a disk whose fsync reports success before the data
 *   is durable, so a replica acknowledges entries a power loss then erases;
 * - `vote-before-fsync`: the same for hard-state-only writes, so a replica
 *   grants a vote that a crash forgets, and can vote twice in one term;
 * - `fetch-from-follower`: a fetch is answered from the contacted peer's own
 *   replica, without the leader's ReadIndex barrier, so it can miss a
 *   publish acknowledged before it began.
 */
export const clusterBrokenVariants = [
  "ack-before-fsync",
  "vote-before-fsync",
  "fetch-from-follower",
] as const;

/** One of `clusterBrokenVariants`. */
export type ClusterBrokenVariant = typeof clusterBrokenVariants[number];

/** The shape of one run. */
export interface ClusterSimConfig {
  seed: number;
  /** Nodes of the discovery list; the first bootstraps. */
  founders: number[];
  /** Nodes that join later (nemesis `join`). */
  joiners: number[];
  topics: string[];
  /** Producers per topic. */
  producersPerTopic: number;
  /** Messages each producer publishes. */
  messagesPerProducer: number;
  network: NetworkProfile;
  /** Disk profile by node id. */
  disks: Map<number, DiskProfile>;
  /** Virtual ms of the phase with faults. */
  safetyMs: number;
  /** Most virtual ms the healed cluster gets to finish the workload and converge. */
  livenessMs: number;
  /** Mean virtual ms between two faults. */
  faultEveryMs: number;
  /** The sharpened profile of broken variants (crashes only, slow disks, no loss). */
  crashHeavy: boolean;
  broken: ClusterBrokenVariant | undefined;
}

/** Defaults of `deriveConfig`. */
export const safetyMsDefault = 30_000;
export const livenessMsDefault = 60_000;

/**
 * Draws a run's configuration from `rng` (seeded by the run's seed).
 *
 * @example
 * ```ts
 * const config = deriveConfig(7, new Prng(7), {});
 * ```
 */
export function deriveConfig(
  seed: number,
  rng: Prng,
  options: { broken?: ClusterBrokenVariant; safetyMs?: number; crashHeavy?: boolean },
): ClusterSimConfig {
  const sharp = options.broken !== undefined || options.crashHeavy === true;
  const size = 3 + rng.int(3);
  const founders = Array.from({ length: size }, (_, index) => index + 1);
  const joiners = rng.chance(0.5) ? [size + 1] : [];
  const topics = rng.chance(0.5) ? ["alpha"] : ["alpha", "beta"];
  const calm = rng.chance(0.25);
  const network: NetworkProfile = {
    delayMsMin: 1,
    delayMsMax: 2 + rng.int(calm ? 3 : 25),
    loss: calm ? 0 : rng.next() * 0.05,
    duplicate: calm ? 0 : rng.next() * 0.03,
    reorder: calm ? 0 : rng.next() * 0.1,
  };
  const disks = new Map<number, DiskProfile>();
  for (const id of [...founders, ...joiners]) {
    const slow = rng.chance(0.2);
    disks.set(id, {
      syncMsMin: slow ? 5 : healthyDisk.syncMsMin,
      syncMsMax: slow ? 40 + rng.int(100) : healthyDisk.syncMsMax,
      syncFailureChance: rng.chance(0.15) ? 0.01 : 0,
    });
  }
  if (sharp) sharpen(disks, network);
  return {
    seed,
    founders,
    joiners,
    topics,
    producersPerTopic: 1 + rng.int(2),
    messagesPerProducer: 10 + rng.int(20),
    network,
    disks,
    safetyMs: options.safetyMs ?? safetyMsDefault,
    livenessMs: livenessMsDefault,
    // A broken variant's window (an fsync in flight) is short: crash often.
    faultEveryMs: sharp ? 300 + rng.int(500) : 1000 + rng.int(3000),
    crashHeavy: sharp,
    broken: options.broken,
  };
}

/**
 * The fault profile of a broken-variant run: slow fsyncs everywhere (a wide
 * window between an acknowledgement and durability) and a lossless network
 * (so the run spends its faults on crashes, not on retransmissions).
 */
function sharpen(disks: Map<number, DiskProfile>, network: NetworkProfile): void {
  for (const [id, disk] of disks) {
    disks.set(id, { ...disk, syncMsMin: 20, syncMsMax: 200, syncFailureChance: 0 });
  }
  network.loss = 0;
}
