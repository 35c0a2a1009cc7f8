/**
 * Derivation of a whole simulation's parameters from one seed.
 *
 * @module
 */

import { Prng } from "./prng.ts";

/** Deliberately broken variants the simulator can enable (all off by default). */
export type BrokenVariant =
  | "ack-before-fsync"
  | "commit-old-term"
  | "no-prevote-checkquorum"
  | "vote-without-log-check"
  | "recovering-votes"
  | "vote-not-fsynced"
  | "read-index-without-quorum"
  | "apply-before-commit"
  | "forget-producer-table-on-restart"
  | "skip-subscriber-offset"
  | "restore-without-subscribers";

/** Every broken variant, for CLI validation. */
export const BROKEN_VARIANTS: readonly BrokenVariant[] = [
  "ack-before-fsync",
  "commit-old-term",
  "no-prevote-checkquorum",
  "vote-without-log-check",
  "recovering-votes",
  "vote-not-fsynced",
  "read-index-without-quorum",
  "apply-before-commit",
  "forget-producer-table-on-restart",
  "skip-subscriber-offset",
  "restore-without-subscribers",
];

/** Parameters of one simulation run, all derived from `seed` (plus CLI overrides). */
export interface SimConfig {
  seed: number;
  nodes: number;
  /** Virtual milliseconds per Raft tick. */
  tickMs: number;
  safetyTicks: number;
  /**
   * Ticks the healed cluster has to converge in. Past them it may go on only
   * while replicas still catch up (their applied indexes grew within the last
   * `livenessStallTicks`), up to `livenessCatchUpTicksMax` in all: a member
   * added late with one entry per append, one append in flight and slow
   * fsyncs needs longer than the window to copy the whole log, and that is
   * slowness the configuration chose, not a stall.
   */
  livenessTicksMax: number;
  livenessStallTicks: number;
  livenessCatchUpTicksMax: number;
  electionTicks: number;
  heartbeatTicks: number;
  inflightAppendsMax: number;
  appendBytesMax: number;
  dropRate: number;
  duplicateRate: number;
  delayMsMin: number;
  delayMsMax: number;
  syncMsMax: number;
  /** Chance per tick of injecting one fault in the safety phase. */
  faultRate: number;
  /** Chance per tick of a client proposal burst. */
  proposeRate: number;
  readRate: number;
  membershipChanges: boolean;
  compaction: boolean;
  /**
   * With compaction, a replica also compacts its log once it applied this
   * many entries past its first index (besides compactions injected as faults).
   */
  snapshotEntries: number;
  /** Idempotent producers publishing one sequence at a time, retrying until answered. */
  producers: number;
  /** Chance per tick per producer of publishing (or retrying when due). */
  produceRate: number;
  /** Ticks a producer waits for an answer before it retries the same sequence. */
  retryTicks: number;
  /** Durable subscribers reading from one replica at a time and acknowledging. */
  subscribers: number;
  /** Chance per tick per subscriber of a delivery round. */
  subscribeRate: number;
  /**
   * "mixed": every kind of fault; "leader-churn": frequent leader crashes,
   * isolations and power losses with one entry per append message, and
   * most new leaders isolated within a round trip of their election, the
   * ground where figure-8 style bugs of the commit rule surface.
   */
  profile: "mixed" | "leader-churn";
  broken: BrokenVariant | undefined;
  /**
   * The founding replicas start with the first of them as the leader of
   * term 1, without an election (`RaftOptions.bootstrapLeader`), as the
   * cluster creates topics.
   */
  bootstrapLeader: boolean;
  /**
   * Leaders write their own entries in the background (`Ready.syncInBackground`,
   * as `ReplicaGroup` does): two followers commit without the leader's fsync.
   */
  leaderBackgroundSync: boolean;
  /**
   * Lazy followers (`RaftOptions.lazyFollowers`): leaders mark the appends a
   * commit does not need `lazySync` and hold a lazy follower to one append
   * in flight; a follower handles a lazy append this many ms late, as
   * `ReplicaGroup` does. 0: off.
   */
  lazySyncMs: number;
}

/** Options that override what the seed would choose. */
export interface SimOverrides {
  safetyTicks?: number;
  livenessCatchUpTicksMax?: number;
  broken?: BrokenVariant;
  /** Lazy followers' wait in ms, 0 for none (`SimConfig.lazySyncMs`). */
  lazySyncMs?: number;
}

/**
 * Derives the configuration of seed `seed`.
 *
 * @example
 * ```ts
 * configFromSeed(7).nodes; // 3 or 5, always the same for seed 7
 * ```
 */
export function configFromSeed(seed: number, overrides: SimOverrides = {}): SimConfig {
  const prng = new Prng(seed ^ 0x5eed);
  const config: SimConfig = {
    seed,
    nodes: prng.chance(0.6) ? 3 : 5,
    tickMs: 10,
    safetyTicks: overrides.safetyTicks ?? 1200,
    livenessTicksMax: 1500,
    livenessStallTicks: 300,
    livenessCatchUpTicksMax: overrides.livenessCatchUpTicksMax ?? 6000,
    electionTicks: 10,
    heartbeatTicks: prng.pick([1, 2, 3]),
    inflightAppendsMax: prng.pick([1, 4, 64]),
    appendBytesMax: prng.pick([8, 64, 1 << 20]),
    dropRate: prng.pick([0, 0.01, 0.05, 0.15]),
    duplicateRate: prng.pick([0, 0.01, 0.05]),
    delayMsMin: 1,
    delayMsMax: prng.pick([1, 2, 5, 30, 80]),
    syncMsMax: prng.pick([2, 5, 20]),
    faultRate: prng.pick([0.005, 0.02, 0.05]),
    proposeRate: prng.pick([0.2, 0.5, 1]),
    readRate: prng.pick([0.02, 0.1, 0.3]),
    membershipChanges: prng.chance(0.5),
    compaction: prng.chance(0.5),
    snapshotEntries: prng.pick([30, 100, 400]),
    producers: prng.pick([0, 1, 3]),
    produceRate: prng.pick([0.2, 0.5]),
    retryTicks: prng.pick([3, 10, 30]),
    subscribers: prng.pick([0, 1, 2]),
    subscribeRate: prng.pick([0.1, 0.5]),
    profile: "mixed",
    broken: overrides.broken,
    bootstrapLeader: false,
    leaderBackgroundSync: false,
    lazySyncMs: 0,
  };
  if (prng.chance(0.25)) {
    config.profile = "leader-churn";
    config.faultRate = prng.pick([0.2, 0.3, 0.5]);
    config.proposeRate = 1;
    config.appendBytesMax = 1;
    config.inflightAppendsMax = 1;
    config.dropRate = 0;
    config.membershipChanges = false;
  }
  // Drawn last, so that the settings above stay what each seed chose before.
  config.bootstrapLeader = prng.chance(0.5);
  config.leaderBackgroundSync = prng.chance(0.5);
  const lazySyncMs = prng.chance(0.5) ? prng.pick([5, 20]) : 0;
  config.lazySyncMs = overrides.lazySyncMs ?? lazySyncMs;
  return config;
}

/** One line describing `config`, printed with a violation. */
export function describeConfig(config: SimConfig): string {
  return [
    `profile=${config.profile}`,
    `nodes=${config.nodes}`,
    `drop=${config.dropRate}`,
    `dup=${config.duplicateRate}`,
    `delay=${config.delayMsMin}-${config.delayMsMax}ms`,
    `sync<=${config.syncMsMax}ms`,
    `faults=${config.faultRate}/tick`,
    `heartbeat=${config.heartbeatTicks}`,
    `inflight=${config.inflightAppendsMax}`,
    `appendBytes=${config.appendBytesMax}`,
    `membership=${config.membershipChanges}`,
    `compaction=${config.compaction ? `every ${config.snapshotEntries}` : "no"}`,
    `producers=${config.producers}`,
    `retry=${config.retryTicks}`,
    `subscribers=${config.subscribers}`,
    `bootstrapLeader=${config.bootstrapLeader}`,
    `leaderBackgroundSync=${config.leaderBackgroundSync}`,
    `lazySync=${config.lazySyncMs}ms`,
    config.broken ? `broken=${config.broken}` : "",
  ].filter((part) => part !== "").join(" ");
}
