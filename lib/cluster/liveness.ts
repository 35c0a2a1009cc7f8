/**
 * Which peers this node can count on now, from its links (reachable:
 * connected or connecting) and the failure detector (awake: reachable and
 * heard from lately), and the sentences that explain a missing quorum.
 *
 * @module
 */

import type { Membership } from "./membership.ts";
import { memberState } from "./membership.ts";
import type { MemberInfo } from "./meta_state.ts";
import type { Clock } from "./runtime.ts";
import type { PeerTransport } from "./transport.ts";

/** Settings of a liveness view. */
export interface LivenessViewOptions {
  nodeId: number;
  transport: PeerTransport;
  membership: Membership;
  clock: Clock;
  /** The members the metadata lists and that have not left. */
  activeMembers: () => readonly MemberInfo[];
}

/**
 * This node's judgement of the other peers.
 *
 * @example
 * ```ts
 * const liveness = new LivenessView({ nodeId: 1, transport, membership, clock, activeMembers });
 * if (liveness.quorumLost([1, 2, 3])) throw new Error(`No leader${liveness.whyNoLeader([1, 2, 3])}`);
 * ```
 */
export class LivenessView {
  readonly nodeId: number;
  readonly #options: LivenessViewOptions;

  constructor(options: LivenessViewOptions) {
    this.nodeId = options.nodeId;
    this.#options = options;
  }

  /** A link to `nodeId` works or is being established. */
  reachable(nodeId: number): boolean {
    const state = this.#options.transport.state(nodeId);
    return state === "connected" || state === "connecting";
  }

  /** Reachable by link and not yet given up on by the failure detector. */
  awake(nodeId: number): boolean {
    if (!this.reachable(nodeId)) return false;
    const membership = this.#options.membership;
    const record = membership.record(nodeId);
    if (record === undefined) return true;
    return memberState(record, this.#options.clock.now(), membership.timing) === "alive";
  }

  /**
   * Peers among `voters` (this one counts as reachable) without a working
   * link or not heard from lately: a leader cannot count on them now.
   */
  unreachable(voters: readonly number[]): number[] {
    return voters.filter((id) =>
      id !== this.nodeId && (this.#options.transport.state(id) !== "connected" || !this.awake(id))
    );
  }

  /** True when fewer than a majority of `voters` can be reached: no leader can be elected. */
  quorumLost(voters: readonly number[]): boolean {
    return voters.length > 0 &&
      voters.length - this.unreachable(voters).length < Math.floor(voters.length / 2) + 1;
  }

  /** ": peers ... are not reachable, ..." when a quorum of `voters` is lost, else "". */
  explainNoQuorum(voters: readonly number[]): string {
    return this.quorumLost(voters) ? this.whyNoLeader(voters) : "";
  }

  /** The end of an "unavailable" sentence: which peers are missing, when that is why. */
  whyNoLeader(voters: readonly number[]): string {
    const missing = this.unreachable(voters);
    if (missing.length === 0) return " elected yet; retry";
    const majority = Math.floor(voters.length / 2) + 1;
    const names = missing.length === 1
      ? `peer ${missing[0]} is`
      : `peers ${missing.slice(0, -1).join(", ")} and ${missing.at(-1)} are`;
    return `: ${names} not reachable, and ${majority} of its ${voters.length} voters (${
      voters.join(", ")
    }) must be up to elect one; retry once they are back`;
  }

  /** Active members the failure detector finds alive (this node always is). */
  aliveMembers(): number[] {
    const view = this.#options.membership.view();
    const states = new Map(view.map((node) => [node.id, node.state]));
    return this.#options.activeMembers()
      .filter((member) => member.id === this.nodeId || states.get(member.id) === "alive")
      .map((member) => member.id);
  }

  /** A replica among `replicas` on another peer, preferably a live and reachable one. */
  pickReplica(replicas: readonly number[]): number | undefined {
    const alive = new Set(this.aliveMembers());
    const others = replicas.filter((node) => node !== this.nodeId);
    return others.find((node) => alive.has(node) && this.reachable(node)) ??
      others.find((node) => alive.has(node)) ?? others[0];
  }
}
