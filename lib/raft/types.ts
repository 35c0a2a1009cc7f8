/**
 * Plain-data types that cross the boundary of the Raft core: messages, the
 * `Ready` batch of side effects, status snapshots and the injected `Rng`.
 *
 * Everything here is a plain object (no class instances) so that the network
 * shell can serialize it as it likes; entry payloads are `Uint8Array`.
 *
 * @module
 */

import type { ConfState, Entry, HardState, Snapshot } from "../storage/types.ts";

/** Message kinds exchanged between replicas of one group. */
export type MessageType =
  | "preVote"
  | "preVoteResp"
  | "vote"
  | "voteResp"
  | "app"
  | "appResp"
  | "heartbeat"
  | "heartbeatResp"
  | "snap"
  | "timeoutNow";

/** Every message kind, for validation at the network edge. */
export const MESSAGE_TYPES: readonly MessageType[] = [
  "preVote",
  "preVoteResp",
  "vote",
  "voteResp",
  "app",
  "appResp",
  "heartbeat",
  "heartbeatResp",
  "snap",
  "timeoutNow",
];

/**
 * One Raft message, in the style of etcd-io/raft's `raftpb.Message`: a single
 * shape whose fields mean different things per `type` (documented on each).
 *
 * @example
 * ```ts
 * const heartbeat: Message = {
 *   type: "heartbeat", from: 1, to: 2, term: 3, logTerm: 0, index: 0,
 *   entries: [], commit: 7, reject: false, rejectHint: 0,
 * };
 * ```
 */
export interface Message {
  type: MessageType;
  from: number;
  to: number;
  term: number;
  /** app: term of the entry at `index`; vote: last log term; appResp reject: term at rejectHint. */
  logTerm: number;
  /** app: index preceding `entries`; vote: last log index; appResp: highest matched index. */
  index: number;
  /** app: entries to append after `index`. */
  entries: Entry[];
  /** app/heartbeat: leader commit index the receiver may adopt. */
  commit: number;
  /** appResp/voteResp/preVoteResp: true when refused. */
  reject: boolean;
  /** appResp reject: the follower's suggestion of where logs may match (fast backtracking). */
  rejectHint: number;
  /** snap: the snapshot to install. */
  snapshot?: Snapshot;
  /** heartbeat/heartbeatResp: ReadIndex request context echoed for quorum confirmation. */
  context?: Uint8Array;
  /** vote/preVote: campaign started by a leadership transfer, which bypasses leases. */
  transfer?: boolean;
  /**
   * app without entries: only a new commit index for a follower in replicate
   * state. The follower answers it only with a rejection; an acceptance
   * would tell the leader nothing the answers to the appends before it do not.
   */
  commitNotice?: boolean;
  /**
   * app with entries, to a voter the leader does not need for this commit
   * (`RaftOptions.lazyFollowers`): the receiver may make them durable, and
   * answer, a little later, gathering the appends of a short while into one
   * fsync. A hint only: the answer still means durable.
   */
  lazySync?: boolean;
}

/**
 * A message of `type` with every other field blank (no entries, index 0,
 * not refused): what Raft fills in for heartbeats, votes and answers.
 *
 * @example
 * ```ts
 * import { blankMessage } from "./types.ts";
 * const heartbeat = { ...blankMessage("heartbeat", 1, 2, 3), commit: 7 };
 * ```
 */
export function blankMessage(type: MessageType, from: number, to: number, term: number): Message {
  return {
    type,
    from,
    to,
    term,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
  };
}

/**
 * What `message` does to its receiver's lazy wait (`Message.lazySync`): an
 * append with entries marked `lazySync` opens one (`"open"`, unless one is
 * open); an append with entries that is not lazy, or any message but a
 * heartbeat or an append without entries (a commit notice), ends it
 * (`"end"`: the leader needs this replica's answer now); those two leave it
 * as it is (`"keep"`). The rule `ReplicaGroup` and the simulator's replica
 * both follow.
 *
 * @example
 * ```ts
 * import { blankMessage, lazyWaitEffect } from "./types.ts";
 * lazyWaitEffect(blankMessage("heartbeat", 1, 2, 3)); // "keep"
 * ```
 */
export function lazyWaitEffect(message: Message): "open" | "end" | "keep" {
  const entries = message.type === "app" && message.entries.length > 0;
  if (entries && message.lazySync === true) return "open";
  if (entries || (message.type !== "app" && message.type !== "heartbeat")) return "end";
  return "keep";
}

/** Role of a replica. */
export type Role = "follower" | "preCandidate" | "candidate" | "leader";

/** A confirmed linearizable read: serve it once `applied >= index`. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

/** Volatile state that the shell may want to observe (not persisted). */
export interface SoftState {
  role: Role;
  leader: number;
}

/**
 * Side effects produced by the core, handled by the shell in this order:
 * install `snapshot`, persist `entries` + `hardState` and sync when
 * `mustSync`, send `messages`, apply `committedEntries`, serve `readStates`,
 * then call `advance()`.
 */
export interface Ready {
  /** Present when volatile role or leader changed since the previous Ready. */
  softState?: SoftState;
  /** Present when term, vote or commit changed; persist with `setHardState`. */
  hardState?: HardState;
  /** A snapshot received from the leader; install it before anything else. */
  snapshot?: Snapshot;
  /** Entries to append to the store (may overwrite an uncommitted suffix). */
  entries: Entry[];
  /** Messages to send once `entries`, `hardState` and `snapshot` are durable. */
  messages: Message[];
  /** Committed entries to apply to the state machine, in order. */
  committedEntries: Entry[];
  /** Confirmed ReadIndex requests. */
  readStates: ReadState[];
  /** Contexts of ReadIndex requests that will never be confirmed (leadership lost); fail them. */
  droppedReads: Uint8Array[];
  /** True when entries, vote or term changed and `sync()` is required before sending. */
  mustSync: boolean;
  /**
   * True on a leader when only its own new entries need the fsync (no
   * snapshot, term or vote change, commit index to make durable, or
   * recovery): the shell may send the messages, apply, and call
   * `advance({ entriesDurable: false })` without waiting, then report the
   * entries with `persisted()` once its fsync completed. The leader counts
   * itself toward a commit only then, so two followers can commit without
   * it (Raft thesis 10.2.1).
   */
  syncInBackground: boolean;
  /**
   * True once, when a recovering replica (`recoveringTerm`) caught up: after
   * this Ready's entries and hard state are durable, clear the persisted
   * recovering flag (a crash before that only leaves the replica recovering
   * a while longer, which is safe).
   */
  recovered: boolean;
}

/** Replication state of one peer as seen by the leader. */
export interface ProgressStatus {
  match: number;
  next: number;
  state: "probe" | "replicate" | "snapshot";
  learner: boolean;
  inflight: number;
  /**
   * Ticks since the leader last heard from the peer (an append or heartbeat
   * answer); absent until it has since this replica became leader. The
   * leader's own entry reads 0. A quiescent group does not tick, so this
   * age stops growing while it sleeps.
   */
  heardTicksAgo?: number;
  /**
   * Ticks since the peer's acknowledged log last reached the leader's commit
   * index (0 while it is there, for the leader's own durable log); absent
   * until it has since this replica became leader, or since its log went
   * backwards or its process restarted. Like Kafka's in-sync replicas, a
   * follower that reached the commit index within the last round trip is in
   * sync even while new entries are in flight to it.
   */
  caughtUpTicksAgo?: number;
}

/** A read-only view of a replica, for the shell, tests and the simulator. */
export interface Status {
  id: number;
  role: Role;
  term: number;
  vote: number;
  leader: number;
  commit: number;
  applied: number;
  lastIndex: number;
  conf: ConfState;
  /** The replica is rebuilding a lost log: it neither votes nor campaigns (see `recoveringTerm`). */
  recovering: boolean;
  /** Per peer (leader only; empty otherwise). */
  progress: Record<number, ProgressStatus>;
  leadTransferee: number;
}

/**
 * Source of randomness injected into the core (randomized election timeouts).
 * Production passes a crypto-seeded one; the simulator passes a seeded PRNG.
 */
export interface Rng {
  /** A uniformly distributed float in [0, 1). */
  next(): number;
}

/** A single-step membership change, proposed through the log. */
export type ConfChange =
  | { type: "addVoter"; node: number }
  | { type: "addLearner"; node: number }
  | { type: "promote"; node: number }
  | { type: "remove"; node: number }
  /** Written once at index 1 when a new group bootstraps; carries the whole conf. */
  | { type: "bootstrap"; voters: number[]; learners: number[] };
