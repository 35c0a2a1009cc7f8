/**
 * Options of the Raft core with their documented defaults, validated once.
 *
 * @module
 */

import type { LogStore } from "../storage/types.ts";
import type { Rng } from "./types.ts";

/**
 * Deliberately broken behaviours, off by default. They exist only so that
 * the simulator's tests can prove it detects each class of bug.
 */
export interface UnsafeVariants {
  /** Leader counts its own appended-but-not-synced log toward the commit quorum. */
  countUnsyncedOwnLog?: boolean;
  /** Leader commits by counting replicas of entries from earlier terms (Raft paper figure 8). */
  commitOldTermEntries?: boolean;
  /** Voters grant votes without checking that the candidate's log is up to date. */
  grantVoteWithoutLogCheck?: boolean;
  /** A rebuilt (recovering) replica votes at once, as if it had never lost its log. */
  recoveringVotes?: boolean;
  /**
   * A Ready whose hard state changed only by its vote is not marked
   * `mustSync`, so the vote is answered before it is durable.
   */
  voteWithoutSync?: boolean;
  /** A leader serves ReadIndex at once, without a heartbeat round confirming its leadership. */
  readIndexWithoutQuorum?: boolean;
}

/** Options of `RaftNode`. */
export interface RaftOptions {
  /** This replica's id, a positive integer. */
  id: number;
  /** The replica's durable log; read synchronously by the core, written by the shell. */
  store: LogStore;
  /** Randomness for election timeouts. */
  rng: Rng;
  /** Voters of a new group; used only when `store` is empty (bootstrap). Default: none (joins later). */
  voters?: number[];
  /** Learners of a new group; used only when `store` is empty. Default: none. */
  learners?: number[];
  /**
   * The leader of term 1 of a new group, one of `voters` (used only when
   * `store` is empty, like `voters`). Every founding replica starts having
   * voted for it in term 1, and it leads term 1 as soon as its bootstrap
   * (entry 1 and that vote) is durable, without an election or an empty
   * entry: creating a group then costs no vote round trips and no vote
   * fsyncs. Every founding replica must be given the same value (it comes
   * from committed metadata). Default: none (the first leader is elected).
   */
  bootstrapLeader?: number;
  /** Minimum election timeout in ticks; each timeout is drawn from [electionTicks, 2 * electionTicks). Default 10. */
  electionTicks?: number;
  /** Leader heartbeat interval in ticks, less than electionTicks. Default 1. */
  heartbeatTicks?: number;
  /** Run a pre-election so a partitioned node cannot inflate terms. Default true. */
  preVote?: boolean;
  /** Leader steps down without a quorum of recent contact; followers in lease ignore votes. Default true. */
  checkQuorum?: boolean;
  /**
   * Whether voter `id`'s process was heard from lately (by any group's
   * traffic). CheckQuorum then counts it as in contact, so a leader whose
   * followers' replicas lag behind their busy processes (or are not open
   * yet) keeps leading; and a follower whose leader's process is active
   * waits up to `leaderPatienceTimeouts` election timeouts before it
   * campaigns. Liveness only: neither timer protects a safety property.
   * Default: none.
   */
  isPeerActive?: (id: number) => boolean;
  /** Appends in flight per follower in replicate state. Default 64. */
  inflightAppendsMax?: number;
  /** Entry data bytes per append message (at least one entry is always sent). Default 1 MiB. */
  appendBytesMax?: number;
  /** Entry data bytes of committed entries per Ready. Default 16 MiB. */
  applyBytesMax?: number;
  /** Uncommitted entries the leader accepts before refusing proposals. Default 100000. */
  uncommittedEntriesMax?: number;
  /** Pending ReadIndex requests before refusing new ones. Default 4096. */
  readsPendingMax?: number;
  /**
   * A leader of 3 or more voters marks its appends to the voters it does not
   * need for a commit `lazySync` (see `Message.lazySync`): with 3 voters the
   * leader and one follower commit, and the other follower may gather its
   * fsyncs. Which followers are needed follows their acknowledged logs: the
   * ones furthest along (in replicate state), the current ones on a tie, so
   * a follower that stops answering is passed by a lazy one at its next
   * fsync. A lazy follower has one append in flight at a time: what comes
   * meanwhile waits for its answer and then goes in one append, and no
   * commit notice goes to it meanwhile. So a lost eager follower is passed
   * within two of the lazy follower's waits: its answer to the append in
   * flight, then to the entries held meanwhile. Default false.
   */
  lazyFollowers?: boolean;
  /**
   * Set when this replica was rebuilt empty after its log was found damaged
   * (a quarantined replica): its previous incarnation may have voted, and
   * acknowledged entries it no longer holds, in terms up to this one. The
   * replica starts in the term after it, grants no votes and does not
   * campaign until its log holds a committed entry of a later term (see
   * `Raft` for why). Persist it with the replica and pass it again after a
   * restart until a Ready reports `recovered`. Default: undefined (a normal
   * replica).
   */
  recoveringTerm?: number;
  /** Deliberately broken variants for simulator tests. Default: none. */
  unsafe?: UnsafeVariants;
}

/** Options with every default filled in. */
export type ResolvedRaftOptions =
  & Required<
    Omit<RaftOptions, "voters" | "learners" | "recoveringTerm" | "bootstrapLeader" | "isPeerActive">
  >
  & {
    voters: number[];
    learners: number[];
    recoveringTerm: number | undefined;
    bootstrapLeader: number | undefined;
    isPeerActive: ((id: number) => boolean) | undefined;
  };

/**
 * Fills defaults and validates relations between limits.
 *
 * @example
 * ```ts
 * const options = resolveRaftOptions({ id: 1, store, rng });
 * options.electionTicks; // 10
 * ```
 */
export function resolveRaftOptions(options: RaftOptions): ResolvedRaftOptions {
  const resolved: ResolvedRaftOptions = {
    voters: [],
    learners: [],
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    inflightAppendsMax: 64,
    appendBytesMax: 1 << 20,
    applyBytesMax: 16 << 20,
    uncommittedEntriesMax: 100_000,
    readsPendingMax: 4096,
    lazyFollowers: false,
    recoveringTerm: undefined,
    bootstrapLeader: undefined,
    isPeerActive: undefined,
    unsafe: {},
    ...definedOnly(options),
  } as ResolvedRaftOptions;
  requirePositiveInteger("id", resolved.id);
  requirePositiveInteger("electionTicks", resolved.electionTicks);
  requirePositiveInteger("heartbeatTicks", resolved.heartbeatTicks);
  requirePositiveInteger("inflightAppendsMax", resolved.inflightAppendsMax);
  requirePositiveInteger("appendBytesMax", resolved.appendBytesMax);
  requirePositiveInteger("applyBytesMax", resolved.applyBytesMax);
  requirePositiveInteger("uncommittedEntriesMax", resolved.uncommittedEntriesMax);
  requirePositiveInteger("readsPendingMax", resolved.readsPendingMax);
  if (resolved.heartbeatTicks >= resolved.electionTicks) {
    throw new RangeError(
      `Cannot create Raft node as 'heartbeatTicks' must be less than 'electionTicks': current values are ${resolved.heartbeatTicks} and ${resolved.electionTicks}`,
    );
  }
  for (const id of [...resolved.voters, ...resolved.learners]) requirePositiveInteger("voters", id);
  const recoveringTerm = resolved.recoveringTerm;
  if (
    recoveringTerm !== undefined && (!Number.isSafeInteger(recoveringTerm) || recoveringTerm < 0)
  ) {
    throw new RangeError(
      `Cannot create Raft node as 'recoveringTerm' must be a non-negative integer: current value is ${recoveringTerm}`,
    );
  }
  const leader = resolved.bootstrapLeader;
  if (leader !== undefined && resolved.voters.length > 0 && !resolved.voters.includes(leader)) {
    throw new RangeError(
      `Cannot create Raft node as 'bootstrapLeader' must be one of 'voters' [${
        resolved.voters.join(", ")
      }]: current value is ${leader}`,
    );
  }
  return resolved;
}

function definedOnly(options: RaftOptions): Partial<RaftOptions> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) if (value !== undefined) result[key] = value;
  return result as Partial<RaftOptions>;
}

function requirePositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(
      `Cannot create Raft node as '${name}' must be a positive integer: current value is ${value}`,
    );
  }
}
