/**
 * Replica placement as pure functions: where a new topic's replicas go, how a
 * placement is repaired when members die or leave, and which single
 * membership change moves a Raft group toward its desired replicas. The
 * controller and the group leaders call these; tests call them directly.
 *
 * @module
 */

import type { ConfChange, ProgressStatus } from "../raft/types.ts";
import type { ConfState } from "../storage/types.ts";
import type { TopicPlacement } from "./meta_state.ts";

/** Replicas and leaders per node, for balancing. */
export interface Load {
  replicas: Map<number, number>;
  leaders: Map<number, number>;
}

/** Counts replicas and preferred leaders per node over `topics`. */
export function loadOf(topics: Iterable<TopicPlacement>): Load {
  const load: Load = { replicas: new Map(), leaders: new Map() };
  for (const topic of topics) {
    topic.replicas.forEach((node, position) => {
      load.replicas.set(node, (load.replicas.get(node) ?? 0) + 1);
      if (position === 0) load.leaders.set(node, (load.leaders.get(node) ?? 0) + 1);
    });
  }
  return load;
}

/**
 * Chooses `count` replicas among `candidates` (alive members), least loaded
 * first, and puts the one leading the fewest topics first (preferred leader).
 *
 * @example
 * ```ts
 * placeReplicas([1, 2, 3, 4], loadOf([]), 3); // [1, 2, 3]
 * ```
 */
export function placeReplicas(candidates: readonly number[], load: Load, count: number): number[] {
  const chosen = [...candidates]
    .sort((a, b) => (load.replicas.get(a) ?? 0) - (load.replicas.get(b) ?? 0) || a - b)
    .slice(0, count);
  chosen.sort((a, b) => (load.leaders.get(a) ?? 0) - (load.leaders.get(b) ?? 0) || a - b);
  return chosen;
}

/**
 * The repaired replica list of a topic: members that are gone (dead or
 * removed) are replaced by alive ones, and an under-replicated topic grows
 * back toward its replication factor. Undefined when nothing changes.
 * A gone replica is kept while no replacement exists, so the group keeps
 * its data until a live peer can take it over.
 */
export function repairPlacement(
  topic: TopicPlacement,
  alive: ReadonlySet<number>,
  gone: ReadonlySet<number>,
  load: Load,
): number[] | undefined {
  const kept = topic.replicas.filter((node) => !gone.has(node));
  const spare = [...alive].filter((node) => !topic.replicas.includes(node));
  const wanted = Math.max(0, topic.replicationFactor - kept.length);
  const added = placeReplicas(spare, load, wanted);
  if (added.length === 0) return undefined;
  // Drop gone replicas only as far as replacements arrive.
  const dropped = topic.replicas.filter((node) => gone.has(node)).slice(0, added.length);
  return [...topic.replicas.filter((node) => !dropped.includes(node)), ...added];
}

/** Entries a learner may lag behind the leader and still be promoted. */
export const catchUpEntriesMax = 100;

/**
 * The next single membership change that moves a group from `conf` toward
 * `desired` voters (and `learners`), or undefined when there is none to make
 * now. New members join as learners and are promoted once caught up; members
 * leave only after every desired one votes, so the group never shrinks below
 * its target first.
 *
 * @example
 * ```ts
 * nextConfChange({ voters: [1, 2], learners: [] }, [1, 2, 3], {}, 10); // addLearner 3
 * ```
 */
export function nextConfChange(
  conf: ConfState,
  desired: readonly number[],
  progress: Readonly<Record<number, ProgressStatus>>,
  lastIndex: number,
  learners: readonly number[] = [],
): ConfChange | undefined {
  const members = new Set([...conf.voters, ...conf.learners]);
  const missing = [...desired, ...learners].find((node) => !members.has(node));
  if (missing !== undefined) return { type: "addLearner", node: missing };
  const ready = conf.learners.find((node) =>
    desired.includes(node) && caughtUp(progress[node], lastIndex)
  );
  if (ready !== undefined) return { type: "promote", node: ready };
  if (desired.some((node) => !conf.voters.includes(node))) return undefined;
  const extra = [...conf.voters, ...conf.learners].find((node) =>
    !desired.includes(node) && !learners.includes(node)
  );
  if (extra !== undefined) return { type: "remove", node: extra };
  return undefined;
}

/**
 * Whether a follower is caught up with `index`: it acknowledged appends in
 * the replicating state (so it answers) and its log reaches within
 * `catchUpEntriesMax` of `index`. A peer that never answered is never caught
 * up, however short the log.
 *
 * @example
 * ```ts
 * caughtUp({ match: 95, next: 96, state: "replicate", learner: true, inflight: 0 }, 100); // true
 * ```
 */
export function caughtUp(progress: ProgressStatus | undefined, index: number): boolean {
  if (progress === undefined) return false;
  if (progress.match >= index) return true;
  return progress.state === "replicate" && progress.match > 0 &&
    progress.match >= index - catchUpEntriesMax;
}
