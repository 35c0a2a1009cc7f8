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
 * A round costs work proportional to what changed, not to the topics held:
 * it looks at the topics named by metadata commands since the last round,
 * at the groups whose leadership changed or that have not settled, and the
 * controller scans placements only when the failure detector's view
 * changed. A slow sweep (`sweepMs`) looks at everything anyway, as a
 * backstop for a missed event.
 *
 * @module
 */

import { getLogger } from "../logging.ts";
import type { Membership } from "./membership.ts";
import type { LivenessView } from "./liveness.ts";
import type { MetaState } from "./meta_state.ts";
import type { MetadataClient } from "./metadata_client.ts";
import type { MetaCommand } from "./meta_state.ts";
import {
  groupSettled,
  planGroup,
  planMetaGroup,
  planPlacementRepair,
  repairSignature,
} from "./reconcile_plan.ts";
import type { LocalReplica, ReplicaManager } from "./replica_manager.ts";
import type { ReplicaGroup } from "./replica_group.ts";
import type { Cancel, Scheduler } from "./runtime.ts";

/** How often the controller and the group leaders reconcile. */
export const reconcileMs = 300;
/** How often a round looks at every topic and group, whatever changed. */
export const sweepMs = 10_000;

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
  /** When the next round looks at everything. */
  #sweepAt = 0;
  /** Groups whose leader may have something to do: changed, or not settled yet. */
  readonly #groupsToPlan = new Set<string>();
  /** Set by a change that may concern every group (a member change, a restored snapshot). */
  #planAllGroups = true;
  /** The failure detector's view at the last placement scan that found nothing to repair. */
  #repairSignature: string | undefined;
  /** A topic's placement changed since the last placement scan. */
  #placementsChanged = false;

  constructor(options: ReconcilerOptions) {
    this.#options = options;
    options.meta.onChange((command?: MetaCommand) => this.#metaChanged(command));
    options.replicas.onGroupChange((name) => this.#groupsToPlan.add(name));
  }

  #metaChanged(command: MetaCommand | undefined): void {
    if (command === undefined || !("name" in command)) {
      this.#planAllGroups = true;
      this.#repairSignature = undefined;
      return;
    }
    this.#groupsToPlan.add(command.name);
    if (command.op === "create_topic" || command.op === "set_replicas") {
      this.#placementsChanged = true;
    }
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
      const now = this.#options.scheduler.now();
      const sweep = now >= this.#sweepAt;
      if (sweep) this.#sweepAt = now + sweepMs;
      this.#options.replicas.reconcile({ full: sweep });
      if (this.#options.metaGroup().isLeader) await this.#reconcileController(sweep);
      // A controller again later scans afresh: others repaired meanwhile.
      else this.#repairSignature = undefined;
      await this.#planGroups(sweep);
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

  /**
   * Plans the groups that may have something to do (every group led here
   * when `all`); a group leaves the set once it settled or is not led here
   * (a leadership change puts it back).
   */
  async #planGroups(all: boolean): Promise<void> {
    const { replicas } = this.#options;
    if (all || this.#planAllGroups) {
      this.#planAllGroups = false;
      for (const name of replicas.names()) this.#groupsToPlan.add(name);
    }
    for (const name of [...this.#groupsToPlan]) {
      const local = replicas.get(name);
      if (local === undefined || !local.group.isLeader) {
        this.#groupsToPlan.delete(name);
        continue;
      }
      await this.#reconcileGroup(name, local);
      if (this.#settled(name, local)) this.#groupsToPlan.delete(name);
    }
  }

  #settled(name: string, local: LocalReplica): boolean {
    const { meta, nodeId } = this.#options;
    const placement = meta.topics.get(name);
    return placement === undefined || placement.epoch !== local.epoch ||
      groupSettled(
        placement,
        local.settled,
        local.group.node.term,
        meta.members.get(nodeId)?.left === true,
      );
  }

  /** The controller's duties: register itself, shape the metadata group, repair placements. */
  async #reconcileController(sweep: boolean): Promise<void> {
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
    await this.#repairPlacements(sweep);
  }

  /**
   * Moves one topic's replicas off dead or removed peers. The topics are
   * scanned only when the failure detector's view changed, a placement
   * changed while some member is not alive, the last scan found a repair,
   * or at a sweep.
   */
  async #repairPlacements(sweep: boolean): Promise<void> {
    const { meta, membership, liveness, metadata } = this.#options;
    const view = {
      members: [...meta.members.values()],
      states: new Map(membership.view().map((node) => [node.id, node.state])),
      alive: liveness.aliveMembers(),
    };
    const signature = repairSignature(view);
    const someoneMissing = meta.activeMembers().length > view.alive.length;
    const stale = signature !== this.#repairSignature ||
      (this.#placementsChanged && someoneMissing);
    if (!sweep && !stale) return;
    this.#repairSignature = undefined;
    this.#placementsChanged = false;
    const repair = planPlacementRepair({ ...view, topics: meta.topics.values() });
    if (repair === undefined) {
      this.#repairSignature = signature;
      return;
    }
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
    // Settled groups are skipped before their status (which copies every
    // follower's progress) is taken.
    if (this.#settled(name, local)) return;
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
        // The metadata first records the membership as it is now: a node
        // added since the last report (a learner about to be promoted) must
        // be in the record before it can vote, or, placed elsewhere later,
        // it would take that stale record for its removal and delete a
        // voter's log (`removedFromGroup`). Only from a membership this
        // leader knows is current: a new leader that has not yet committed
        // an entry of its term may not have applied a change its
        // predecessor committed, and must not put an older one back.
        if (!confCurrent(local.group)) return;
        await this.#reportMembers(name, local);
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

/**
 * True when a leader's applied membership is the group's latest committed
 * one: it committed an entry of its own term (so every earlier entry is
 * committed) and applied everything committed.
 */
function confCurrent(group: ReplicaGroup): boolean {
  const status = group.node.status();
  return status.applied >= status.commit && group.store.term(status.commit) === status.term;
}
