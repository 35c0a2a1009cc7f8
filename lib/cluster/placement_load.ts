/**
 * The controller's running count of replicas and preferred leaders per
 * node, for placing new topics: kept up to date from the metadata commands
 * as they apply (a full recount only after a deletion, a replica move or a
 * restored snapshot), plus the placements proposed and not applied yet. A
 * burst of pipelined creations then costs no scan of every topic per
 * creation, and creations in flight together spread over the nodes instead
 * of all seeing the same load.
 *
 * @module
 */

import type { MetaCommand, MetaState } from "./meta_state.ts";
import { type Load, loadOf } from "./placement.ts";

/**
 * Replicas one peer holds comfortably: measured (bench/RESULTS.md) at
 * 10,000 idle replicas per peer within 300 MiB, 1,000 fds and 2% of a core.
 */
export const replicasPerPeerMax = 10_000;

/** The default topic limit of a cluster (`--max-topics`) never goes below this. */
export const clusterTopicsMin = 10_000;

/**
 * The default topic limit of a cluster: as many topics as its members hold
 * at `replicasPerPeerMax` replicas each, at `replicationFactor` replicas per
 * topic (10,000 on 3 peers at factor 3, 20,000 on 6), and at least
 * `clusterTopicsMin`.
 *
 * @example
 * ```ts
 * clusterTopicsMax(6, 3); // 20000
 * ```
 */
export function clusterTopicsMax(members: number, replicationFactor: number): number {
  const held = Math.floor((replicasPerPeerMax * members) / Math.max(1, replicationFactor));
  return Math.max(clusterTopicsMin, held);
}

/** Placements proposed and not applied yet that are counted, at most. */
export const pendingPlacementsMax = 100_000;

/**
 * Replicas and preferred leaders per node, committed and in flight.
 *
 * @example
 * ```ts
 * const load = new PlacementLoad(meta);
 * const replicas = placeReplicas(alive, load.current(), 3);
 * const release = load.reserve("events", replicas);
 * try {
 *   await propose({ op: "create_topic", name: "events", replicas, replicationFactor: 3 });
 * } finally {
 *   release();
 * }
 * ```
 */
export class PlacementLoad {
  readonly #meta: MetaState;
  /** The load of the applied metadata; undefined until recounted. */
  #committed: Load | undefined;
  readonly #pending = new Map<string, readonly number[]>();

  constructor(meta: MetaState) {
    this.#meta = meta;
    meta.onChange((command?: MetaCommand) => this.#applied(command));
  }

  #applied(command: MetaCommand | undefined): void {
    if (command === undefined) {
      this.#committed = undefined;
      return;
    }
    if (command.op === "create_topic") {
      this.#pending.delete(command.name);
      const placement = this.#meta.topics.get(command.name);
      // A create of an existing name applies as a no-op: its placement is another one.
      if (this.#committed !== undefined && placement?.replicas === command.replicas) {
        add(this.#committed, command.replicas);
      }
    } else if (command.op === "delete_topic" || command.op === "set_replicas") {
      this.#committed = undefined;
    }
  }

  /** The load now: applied placements plus those proposed and not applied yet. */
  current(): Load {
    this.#committed ??= loadOf(this.#meta.topics.values());
    const load: Load = {
      replicas: new Map(this.#committed.replicas),
      leaders: new Map(this.#committed.leaders),
    };
    for (const replicas of this.#pending.values()) add(load, replicas);
    return load;
  }

  /**
   * Counts `replicas` for topic `name` until its creation applies or the
   * returned function is called (the proposal failed or finished).
   */
  reserve(name: string, replicas: readonly number[]): () => void {
    if (this.#pending.size >= pendingPlacementsMax) return () => {};
    this.#pending.set(name, replicas);
    return () => {
      if (this.#pending.get(name) === replicas) this.#pending.delete(name);
    };
  }
}

function add(load: Load, replicas: readonly number[]): void {
  replicas.forEach((node, position) => {
    load.replicas.set(node, (load.replicas.get(node) ?? 0) + 1);
    if (position === 0) load.leaders.set(node, (load.leaders.get(node) ?? 0) + 1);
  });
}
