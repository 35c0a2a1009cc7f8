/**
 * The decisions of reconciliation as pure planners: given the metadata, a
 * group's status and who is alive, each returns the next action, and the
 * caller (`reconciler.ts`) carries it out. Like `placement.ts`, they hold
 * no I/O and no clock, so they are tested with plain values.
 *
 * - `planMetaGroup`: the controller's shaping of the metadata group (up to
 *   `metaVotersMax` voters, the other members learners), or handing the
 *   controller role over when this node was removed.
 * - `planPlacementRepair`: one topic whose replicas must move off dead or
 *   removed peers.
 * - `planGroup`: a topic group leader's next step toward the placement.
 *
 * @module
 */

import type { ConfChange, ProgressStatus } from "../raft/types.ts";
import type { ConfState } from "../storage/types.ts";
import type { MemberState } from "./membership.ts";
import type { MemberInfo, TopicPlacement } from "./meta_state.ts";
import { loadOf, nextConfChange, repairPlacement } from "./placement.ts";

/** Most voters of the metadata group; other members follow it as learners. */
export const metaVotersMax = 5;

/** What a Raft group's leader knows of its group (from `RaftNode.status()`). */
export interface GroupStatus {
  term: number;
  conf: ConfState;
  progress: Readonly<Record<number, ProgressStatus>>;
  lastIndex: number;
}

/** Inputs of {@linkcode planMetaGroup}. */
export interface MetaGroupInput {
  nodeId: number;
  /** This node's member record in the metadata, if any. */
  self: MemberInfo | undefined;
  /** The address and data-directory id this node should be recorded with. */
  address: string;
  directoryId: string;
  /** Ids of the members that have not left. */
  active: readonly number[];
  /** The metadata group, as its leader (this node) sees it. */
  status: GroupStatus;
}

/** The controller's next step with the metadata group. */
export type MetaGroupPlan =
  /** This node was removed: hand the controller role to a remaining voter (if any). */
  | { kind: "hand_over"; target: number | undefined }
  /**
   * Record this node as a member first when `register`; then propose
   * `change` to the metadata group, or with none, repair placements.
   */
  | { kind: "shape"; register: boolean; change: ConfChange | undefined };

/**
 * The controller's next step with the metadata group.
 *
 * @example
 * ```ts
 * const plan = planMetaGroup({ nodeId: 1, self, address, directoryId, active: [1, 2], status });
 * if (plan.kind === "shape" && plan.change) await group.proposeConfChange(plan.change);
 * ```
 */
export function planMetaGroup(input: MetaGroupInput): MetaGroupPlan {
  const { nodeId, self, active, status } = input;
  if (self?.left) {
    const target = status.conf.voters.find((id) => id !== nodeId && active.includes(id));
    return { kind: "hand_over", target };
  }
  const register = self === undefined || self.address !== input.address ||
    self.directoryId !== input.directoryId;
  const voters = [
    ...status.conf.voters.filter((id) => active.includes(id)),
    ...active.filter((id) => !status.conf.voters.includes(id)),
  ].slice(0, metaVotersMax);
  const learners = active.filter((id) => !voters.includes(id));
  const change = nextConfChange(status.conf, voters, status.progress, status.lastIndex, learners);
  return { kind: "shape", register, change };
}

/** Inputs of {@linkcode planPlacementRepair}. */
export interface PlacementRepairInput {
  topics: Iterable<TopicPlacement>;
  members: Iterable<MemberInfo>;
  /** The failure detector's view: each node's state. */
  states: ReadonlyMap<number, MemberState>;
  /** Members alive now (see `LivenessView.aliveMembers`). */
  alive: readonly number[];
}

/** One placement change: the topic's new replica list. */
export interface PlacementRepair {
  name: string;
  from: readonly number[];
  replicas: number[];
}

/**
 * The first topic with a replica on a dead, departed or removed peer that a live
 * peer can take over, and its new replica list; undefined when none. One
 * change per round keeps the cluster's churn bounded.
 *
 * @example
 * ```ts
 * const repair = planPlacementRepair({ topics, members, states, alive: [1, 2, 4] });
 * if (repair) await proposeMeta({ op: "set_replicas", name: repair.name, replicas: repair.replicas });
 * ```
 */
export function planPlacementRepair(input: PlacementRepairInput): PlacementRepair | undefined {
  const dead = new Set<number>();
  // A peer that announced its leave is gone too, even while the metadata
  // still counts it (a join retried during its leave can add it back after
  // its removal): it sends no heartbeat again, so it would never turn dead.
  for (const [id, state] of input.states) if (state === "dead" || state === "left") dead.add(id);
  for (const member of input.members) if (member.left) dead.add(member.id);
  const alive = new Set(input.alive);
  const topics = [...input.topics];
  const load = loadOf(topics);
  for (const topic of topics) {
    const replicas = repairPlacement(topic, alive, dead, load);
    if (replicas !== undefined) return { name: topic.name, from: topic.replicas, replicas };
  }
  return undefined;
}

/**
 * True when a group's membership matched `placement` at the leader's
 * current `term` (and this node was not removed): it needs no look until
 * the placement or the leadership changes, so thousands of idle topics cost
 * nothing to reconcile.
 *
 * @example
 * ```ts
 * groupSettled(placement, { generation: placement.generation, term: 4 }, 4, false); // true
 * ```
 */
export function groupSettled(
  placement: TopicPlacement,
  settled: { generation: number; term: number } | undefined,
  term: number,
  removed: boolean,
): boolean {
  return !removed && settled?.generation === placement.generation && settled.term === term;
}

/**
 * What placement repair depends on besides the topics: who is dead, left
 * or alive. The controller scans the topics again only when this changes
 * (or a topic's placement changed while a member is not alive, or its slow
 * sweep is due), not every round.
 *
 * @example
 * ```ts
 * repairSignature({ members: [], states: new Map([[1, "alive"]]), alive: [1] }); // "1:alive||1"
 * ```
 */
export function repairSignature(input: Omit<PlacementRepairInput, "topics">): string {
  const byId = (a: number, b: number) => a - b;
  const states = [...input.states].sort(([a], [b]) => a - b).map(([id, state]) => `${id}:${state}`);
  const left = [...input.members].filter((member) => member.left).map((member) => member.id);
  return `${states.join(",")}|${left.sort(byId).join(",")}|${
    [...input.alive].sort(byId).join(",")
  }`;
}

/** Inputs of {@linkcode planGroup}. */
export interface GroupInput {
  nodeId: number;
  /** The topic's placement in the metadata. */
  placement: TopicPlacement;
  /** The epoch of the local replica. */
  epoch: number;
  /** True when the metadata says this node was removed from the cluster. */
  removed: boolean;
  /** Placement generation and term at which the group last matched its placement. */
  settled: { generation: number; term: number } | undefined;
  /** The group as its leader (this node) sees it. */
  status: GroupStatus;
}

/** A topic group leader's next step. */
export type GroupPlan =
  /** Nothing to do this round. */
  | { kind: "none" }
  /** Hand leadership to `target`: this node leaves the group or the cluster. */
  | { kind: "transfer"; target: number }
  /**
   * The membership matches the placement: record it in the metadata when
   * `report`, then remember the group as settled at this generation and term.
   */
  | { kind: "settle"; report: boolean; generation: number; term: number }
  /** Propose `change`; after an added learner or a removal, record the new membership. */
  | { kind: "change"; change: ConfChange; report: boolean };

/**
 * A group leader's next step toward the placement: one membership change at
 * a time (add a learner, promote it once caught up, remove the old replica).
 *
 * @example
 * ```ts
 * const plan = planGroup({ nodeId: 1, placement, epoch: 3, removed: false, settled, status });
 * if (plan.kind === "change") await group.proposeConfChange(plan.change);
 * ```
 */
export function planGroup(input: GroupInput): GroupPlan {
  const { nodeId, placement, status } = input;
  if (placement.epoch !== input.epoch) return { kind: "none" };
  if (groupSettled(placement, input.settled, status.term, input.removed)) return { kind: "none" };
  if (input.removed) {
    // A removed node soon stops receiving metadata, so it must not steer
    // any group: it hands leadership to a voter that stays.
    const target = status.conf.voters.find((id) => id !== nodeId);
    return target === undefined ? { kind: "none" } : { kind: "transfer", target };
  }
  const change = nextConfChange(
    status.conf,
    placement.replicas,
    status.progress,
    status.lastIndex,
  );
  if (change === undefined) {
    const complete = status.conf.learners.length === 0 &&
      status.conf.voters.length === placement.replicas.length;
    if (!complete) return { kind: "none" };
    return {
      kind: "settle",
      report: placement.generation > 0,
      generation: placement.generation,
      term: status.term,
    };
  }
  if (change.type === "remove" && change.node === nodeId) {
    const target = status.conf.voters.find((id) =>
      id !== nodeId && placement.replicas.includes(id)
    );
    return target === undefined ? { kind: "none" } : { kind: "transfer", target };
  }
  // Recorded after a learner joins as well as after a removal: a node that
  // is a learner must find itself in the record, or a placement that moved
  // it away takes the stale record for its removal and deletes its replica
  // while a leader with an older placement may still promote it (cluster
  // seed 9703731: the promoted voter came back empty and recovering, and a
  // group of four voters with one gone could elect no leader).
  return { kind: "change", change, report: change.type !== "promote" };
}
