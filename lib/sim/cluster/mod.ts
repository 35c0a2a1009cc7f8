/**
 * The whole-cluster simulator: real `ClusterBroker`s on a simulated network
 * and disks, driven from one seed on one virtual clock (`pubsub sim --cluster`).
 *
 * @module
 */

export { type ClusterSimOptions, type ClusterSimResult, runClusterSeed } from "./cluster_sim.ts";
export { type ClusterBrokenVariant, clusterBrokenVariants } from "./sim_config.ts";
export { formatClusterResult, SeedsHash } from "./report.ts";
export { type CrashKind, type DiskProfile, healthyDisk, SimDisk, SimLogStore } from "./sim_disk.ts";
export { calmNetwork, type NetworkProfile, SimNetwork, SimTransport } from "./sim_network.ts";
export { NodeScheduler, runUntil, settle } from "./sim_loop.ts";
