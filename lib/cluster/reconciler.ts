/**
 * The reconciliation loop: every `reconcileMs` this peer moves the cluster
 * one step toward what the committed metadata says. Locally it opens and
 * drops replicas; as controller (the metadata group's leader) it registers
 * itself, shapes the metadata group and repairs placements; as a topic
 * group's leader it moves the group's membership toward the placement (join
 * as learner, catch up, promote, then remove: one change at a time). What to
 * do is decided by the pure planners of `reconcile_plan.ts`; this loop only
 * carries their actions out.
 *
 * @module
 */

import { getLogger } from "../logging.ts";
import type { Membership } from "./membership.ts";
import type { LivenessView } from "./liveness.ts";
import type { MetaState } from "./meta_state.ts";
import type { MetadataClient } from "./metadata_client.ts";
import { planGroup, planMetaGroup, planPlacementRepair } from "./reconcile_plan.ts";
import type { LocalReplica, ReplicaManager } from "./replica_manager.ts";
import type { ReplicaGroup } from "./replica_group.ts";
import type { Cancel, Scheduler } from "./runtime.ts";

/** How often the controller and the group leaders reconcile. */
export const reconcileMs = 300;

/** What a {@linkcode Reconciler} works with. */
export interface ReconcilerOptions {
  nodeId: number;
  /** The "host:port" other peers dial to reach this one. */
  address: string;
  /** This data directory's identity (see `node_identity.ts`). */
  directoryId(): string;
  meta: MetaState;
  metaGroup(): ReplicaGroup;
  metadata: MetadataClient;
  membership: Membership;
  liveness: LivenessView;
  replicas: ReplicaManager;
  scheduler: Scheduler;
  isClosed(): boolean;
}

/**
 * Drives reconciliation.
 *
 * @example
 * ```ts
 * const reconciler = new Reconciler({ nodeId: 1, address: "127.0.0.1:5001", ... });
 * reconciler.start();
 * await reconciler.registerSelf();
 * reconciler.stop();
 * ```
 */
export class Reconciler {
  readonly #options: ReconcilerOptions;
  readonly #logger = getLogger("cluster");
  #timer: Cancel | undefined;
  #running = false;

  constructor(options: ReconcilerOptions) {
    this.#options = options;
  }

  /** Starts the periodic rounds. */
  start(): void {
    this.#timer ??= this.#options.scheduler.every(reconcileMs, () => this.#round());
  }

  /** Stops the periodic rounds (a round in progress finishes). */
  stop(): void {
    this.#timer?.();
    this.#timer = undefined;
  }

  /** The controller records itself as a member (a bootstrapped cluster starts empty). */
  async registerSelf(): Promise<boolean> {
    const { meta, nodeId, address } = this.#options;
    const self = meta.members.get(nodeId);
    if (self?.left) return false;
    const directoryId = this.#options.directoryId();
    if (self === undefined || self.address !== address || self.directoryId !== directoryId) {
      await this.#bounded(
        this.#options.metadata.propose({ op: "add_member", id: nodeId, address, directoryId }),
      );
    }
    return true;
  }

  async #round(): Promise<void> {
    if (this.#running || this.#options.isClosed()) return;
    this.#running = true;
    try {
      this.#options.replicas.reconcile();
      if (this.#options.metaGroup().isLeader) await this.#reconcileController();
      for (const [name, local] of this.#options.replicas.entries()) {
        if (local.group.isLeader) await this.#reconcileGroup(name, local);
      }
    } catch (error) {
      this.#logger.debug("Reconciliation deferred: {error}", { error: (error as Error).message });
    } finally {
      this.#running = false;
    }
  }

  /**
   * Waits for a reconciliation step at most one request timeout: a proposal
   * lost with a leadership change must not stall every later round.
   */
  #bounded<T>(step: Promise<T>): Promise<T> {
    return this.#options.metadata.withTimeout(step, "A reconciliation step timed out");
  }

  /** The controller's duties: register itself, shape the metadata group, repair placements. */
  async #reconcileController(): Promise<void> {
    const { meta, nodeId, address } = this.#options;
    const metaGroup = this.#options.metaGroup();
    const plan = planMetaGroup({
      nodeId,
      self: meta.members.get(nodeId),
      address,
      directoryId: this.#options.directoryId(),
      active: meta.activeMembers().map((member) => member.id),
      status: metaGroup.node.status(),
    });
    if (plan.kind === "hand_over") {
      // This node was removed: hand the controller role to a remaining voter.
      if (plan.target !== undefined) metaGroup.transferLeadership(plan.target);
      return;
    }
    if (plan.register) await this.registerSelf();
    if (plan.change !== undefined) {
      await this.#bounded(metaGroup.proposeConfChange(plan.change));
      return;
    }
    await this.#repairPlacements();
  }

  async #repairPlacements(): Promise<void> {
    const { meta, membership, liveness, metadata } = this.#options;
    const repair = planPlacementRepair({
      topics: meta.topics.values(),
      members: meta.members.values(),
      states: new Map(membership.view().map((node) => [node.id, node.state])),
      alive: liveness.aliveMembers(),
    });
    if (repair === undefined) return;
    this.#logger.info("Moving replicas of {topic} from {from} to {to}", {
      topic: repair.name,
      from: repair.from,
      to: repair.replicas,
    });
    await this.#bounded(
      metadata.propose({ op: "set_replicas", name: repair.name, replicas: repair.replicas }),
    );
  }

  /** A group leader moves its group's membership one step toward the placement. */
  async #reconcileGroup(name: string, local: LocalReplica): Promise<void> {
    const { meta, nodeId } = this.#options;
    const placement = meta.topics.get(name);
    if (placement === undefined) return;
    const plan = planGroup({
      nodeId,
      placement,
      epoch: local.epoch,
      removed: meta.members.get(nodeId)?.left === true,
      settled: local.settled,
      status: local.group.node.status(),
    });
    switch (plan.kind) {
      case "none":
        return;
      case "transfer":
        local.group.transferLeadership(plan.target);
        return;
      case "settle":
        if (plan.report) await this.#reportMembers(name, local);
        local.settled = { generation: plan.generation, term: plan.term };
        return;
      case "change":
        await this.#bounded(local.group.proposeConfChange(plan.change));
        if (plan.report) await this.#reportMembers(name, local);
        return;
    }
  }

  /**
   * Records the group's committed membership in the metadata. A removed
   * replica deletes its data only once this committed record leaves it out
   * (never because a message asked it to), so the report follows the conf
   * change's commit, and is repeated by the next leader if this one failed.
   */
  async #reportMembers(name: string, local: LocalReplica): Promise<void> {
    const conf = local.group.node.status().conf;
    const members = [...conf.voters, ...conf.learners].sort((a, b) => a - b);
    const recorded = this.#options.meta.topics.get(name)?.members;
    if (recorded !== undefined && recorded.join() === members.join()) return;
    await this.#bounded(
      this.#options.metadata.propose({ op: "group_members", name, epoch: local.epoch, members }),
    );
  }
}
