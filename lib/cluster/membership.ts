/**
 * This node's view of the cluster and its failure detector. Every member is
 * heartbeaten every `heartbeatMs`; a member heard within 2 × heartbeatMs is
 * `alive`, silent longer is `suspect`, silent for `deadAfterMs` is `dead`, and
 * one that announced a graceful leave (or was removed) is `left`. Heartbeats
 * carry the sender's member list, so a peer that joins through any member is
 * learned by all (gossip of addresses).
 *
 * States are computed from the injected clock by the pure `memberState`; only
 * `start` uses a timer, from the injected scheduler.
 *
 * @module
 */

import { getLogger } from "../logging.ts";
import type { NodeStatus } from "../wire/responses.ts";
import { type Cancel, type Clock, type Scheduler, systemScheduler } from "./runtime.ts";

export type { Clock } from "./runtime.ts";

/** A member's liveness as `cluster_status` reports it. */
export type MemberState = NodeStatus["state"];

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** Default heartbeat interval (the prototype's). */
export const heartbeatMsDefault = 3000;
/** Default silence after which a member is dead. */
export const deadAfterMsDefault = 30_000;
/** Default cap on members (gossip beyond it is ignored). */
export const membersMaxDefault = 1024;
/** Cap on change listeners. */
export const listenersMax = 64;

/** A member's identity: id and advertised "host:port". */
export interface MemberAddress {
  id: number;
  address: string;
}

/** What this node knows about one other member. */
export interface MemberRecord extends MemberAddress {
  /** When a heartbeat from it last arrived; undefined if none ever did. */
  heardAt: number | undefined;
  /** When this node learned of it (start, gossip), for members never heard. */
  knownSince: number;
  /** Announced a graceful leave, or was removed. */
  left: boolean;
  /** Removed by the cluster: its own heartbeats do not bring it back. */
  removed: boolean;
}

/** Failure-detector timing. */
export interface MembershipTiming {
  heartbeatMs: number;
  deadAfterMs: number;
}

/** A heartbeat as received, already validated. */
export interface Heartbeat {
  from: number;
  address: string;
  members: readonly MemberAddress[];
}

/** A member's state or address changed (`previous` undefined: just learned). */
export interface MemberChange {
  id: number;
  address: string;
  previous: MemberState | undefined;
  state: MemberState;
}

/** The message a heartbeat round sends to every member. */
export type HeartbeatMessage = {
  action: "peer_heartbeat";
  from: number;
  address: string;
  members: MemberAddress[];
  sent_at: number;
};

/**
 * The state of a member at time `now`. Pure: the whole failure detector's
 * judgement, tested with plain numbers.
 *
 * @example
 * ```ts
 * const record = { id: 2, address: "h:1", heardAt: 0, knownSince: 0, left: false, removed: false };
 * memberState(record, 7000, { heartbeatMs: 3000, deadAfterMs: 30000 }); // "suspect"
 * ```
 */
export function memberState(
  record: MemberRecord,
  now: number,
  timing: MembershipTiming,
): MemberState {
  if (record.left) return "left";
  const silentMs = silenceMs(record, now);
  if (record.heardAt !== undefined && silentMs <= 2 * timing.heartbeatMs) return "alive";
  return silentMs < timing.deadAfterMs ? "suspect" : "dead";
}

/** How long a member has been silent (since it was learned, if never heard). */
export function silenceMs(record: MemberRecord, now: number): number {
  return Math.max(0, now - (record.heardAt ?? record.knownSince));
}

/** Settings of a membership view. */
export interface MembershipOptions {
  self: MemberAddress;
  /** Other members known at start (the discovery list); they start suspect. */
  seeds?: readonly MemberAddress[];
  /** Default 3000 ms. */
  heartbeatMs?: number;
  /** Default 30000 ms; must exceed 2 × heartbeatMs. */
  deadAfterMs?: number;
  /** Default 1024. */
  membersMax?: number;
  /** The time source (default: the scheduler's, else the wall clock). */
  clock?: Clock;
  /** Runs the heartbeat timer of `start` (default: the host's timers). */
  scheduler?: Scheduler;
}

/**
 * The member list and failure detector of one node.
 *
 * @example
 * ```ts
 * const membership = new Membership({ self: { id: 1, address: "127.0.0.1:5001" } });
 * membership.onChange((change) => console.log(change.id, change.state));
 * membership.receiveHeartbeat({ from: 2, address: "127.0.0.1:5002", members: [] });
 * membership.view(); // [{ id: 1, ..., state: "alive" }, { id: 2, ..., state: "alive" }]
 * ```
 */
export class Membership {
  readonly self: MemberAddress;
  readonly timing: MembershipTiming;
  readonly #clock: Clock;
  readonly #membersMax: number;
  readonly #records = new Map<number, MemberRecord>();
  /** The state (and address) last announced to listeners, per member. */
  readonly #announced = new Map<number, { state: MemberState; address: string }>();
  readonly #listeners = new Set<(change: MemberChange) => void>();
  readonly #scheduler: Scheduler;
  #timer: Cancel | undefined;

  constructor(options: MembershipOptions) {
    this.self = { ...options.self };
    this.timing = {
      heartbeatMs: options.heartbeatMs ?? heartbeatMsDefault,
      deadAfterMs: options.deadAfterMs ?? deadAfterMsDefault,
    };
    this.#membersMax = options.membersMax ?? membersMaxDefault;
    this.#scheduler = options.scheduler ?? systemScheduler;
    this.#clock = options.clock ?? options.scheduler ?? systemClock;
    validateTiming(this.timing, this.#membersMax);
    const now = this.#clock.now();
    for (const seed of options.seeds ?? []) {
      if (seed.id === this.self.id || this.#records.has(seed.id)) continue;
      if (this.#records.size >= this.#membersMax) break;
      this.#records.set(seed.id, newRecord(seed, now));
    }
    for (const record of this.#records.values()) {
      this.#announced.set(record.id, {
        state: memberState(record, now, this.timing),
        address: record.address,
      });
    }
  }

  /** What is known about member `id` (not self), or undefined. */
  record(id: number): Readonly<MemberRecord> | undefined {
    return this.#records.get(id);
  }

  /** Every node (self included) as `cluster_status` reports it, sorted by id. */
  view(): NodeStatus[] {
    const now = this.#clock.now();
    const nodes: NodeStatus[] = [{
      id: this.self.id,
      address: this.self.address,
      state: "alive",
      last_heartbeat_ms_ago: 0,
    }];
    for (const record of this.#records.values()) {
      nodes.push({
        id: record.id,
        address: record.address,
        state: memberState(record, now, this.timing),
        last_heartbeat_ms_ago: silenceMs(record, now),
      });
    }
    return nodes.sort((a, b) => a.id - b.id);
  }

  /** Members to heartbeat and link to: every other member that has not left. */
  targets(): MemberAddress[] {
    return [...this.#records.values()]
      .filter((record) => !record.left)
      .map(({ id, address }) => ({ id, address }));
  }

  /** The heartbeat this node sends now, listing the members it knows. */
  heartbeatMessage(): HeartbeatMessage {
    return {
      action: "peer_heartbeat",
      from: this.self.id,
      address: this.self.address,
      members: this.targets(),
      sent_at: this.#clock.now(),
    };
  }

  /**
   * Records a heartbeat: the sender is alive now (at the address it
   * advertises) and the unknown members it lists are learned, in state
   * suspect until they are heard from themselves.
   */
  receiveHeartbeat(heartbeat: Heartbeat): void {
    const now = this.#clock.now();
    this.#learn({ id: heartbeat.from, address: heartbeat.address }, now);
    const sender = this.#records.get(heartbeat.from);
    if (sender !== undefined && !sender.removed) {
      // A heartbeat after a graceful leave is the member rejoining.
      sender.left = false;
      sender.heardAt = now;
      sender.address = heartbeat.address;
    }
    for (const member of heartbeat.members) this.#learn(member, now);
    this.#announceChanges(now);
  }

  /** Records a graceful leave announced by member `from`. */
  receiveLeave(from: number): void {
    const record = this.#records.get(from);
    if (record === undefined) return;
    record.left = true;
    this.#announceChanges(this.#clock.now());
  }

  /** Marks member `id` as removed from the cluster: left, for good. */
  remove(id: number): void {
    const record = this.#records.get(id);
    if (record === undefined) return;
    record.left = true;
    record.removed = true;
    this.#announceChanges(this.#clock.now());
  }

  /** Re-evaluates every member at the clock's time; returns (and emits) the changes. */
  tick(): MemberChange[] {
    return this.#announceChanges(this.#clock.now());
  }

  /** Calls `listener` on every state or address change; returns an unsubscribe function. */
  onChange(listener: (change: MemberChange) => void): () => void {
    if (this.#listeners.size >= listenersMax) {
      throw new RangeError(`Cannot add a membership listener beyond the ${listenersMax} allowed`);
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Every `heartbeatMs`: re-evaluates states, then hands a heartbeat for each
   * target to `send`. The first round runs at once so peers meet quickly.
   */
  start(send: (target: MemberAddress, message: HeartbeatMessage) => void): void {
    if (this.#timer !== undefined) throw new Error("Membership heartbeats already started");
    const round = () => {
      this.tick();
      const message = this.heartbeatMessage();
      for (const target of this.targets()) send(target, message);
    };
    this.#timer = this.#scheduler.every(this.timing.heartbeatMs, round);
    round();
  }

  /** Stops the heartbeat timer. */
  stop(): void {
    this.#timer?.();
    this.#timer = undefined;
  }

  #learn(member: MemberAddress, now: number): void {
    if (member.id === this.self.id || this.#records.has(member.id)) return;
    if (this.#records.size >= this.#membersMax) return;
    this.#records.set(member.id, newRecord(member, now));
  }

  #announceChanges(now: number): MemberChange[] {
    const changes: MemberChange[] = [];
    for (const record of this.#records.values()) {
      const state = memberState(record, now, this.timing);
      const last = this.#announced.get(record.id);
      if (last?.state === state && last.address === record.address) continue;
      this.#announced.set(record.id, { state, address: record.address });
      changes.push({ id: record.id, address: record.address, previous: last?.state, state });
    }
    for (const change of changes) this.#emit(change);
    return changes;
  }

  #emit(change: MemberChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (error) {
        // One faulty listener must not stop the failure detector.
        getLogger("cluster").error("Membership listener failed: {error}", { error });
      }
    }
  }
}

function newRecord(member: MemberAddress, now: number): MemberRecord {
  return {
    id: member.id,
    address: member.address,
    heardAt: undefined,
    knownSince: now,
    left: false,
    removed: false,
  };
}

function validateTiming(timing: MembershipTiming, membersMax: number): void {
  if (!Number.isInteger(timing.heartbeatMs) || timing.heartbeatMs < 1) {
    throw new RangeError(
      `Cannot create membership as 'heartbeatMs' must be a positive integer: current value is ${timing.heartbeatMs}`,
    );
  }
  if (!Number.isInteger(timing.deadAfterMs) || timing.deadAfterMs <= 2 * timing.heartbeatMs) {
    throw new RangeError(
      `Cannot create membership as 'deadAfterMs' must be an integer above 2 × heartbeatMs (${
        2 * timing.heartbeatMs
      }): current value is ${timing.deadAfterMs}`,
    );
  }
  if (!Number.isInteger(membersMax) || membersMax < 1) {
    throw new RangeError(
      `Cannot create membership as 'membersMax' must be a positive integer: current value is ${membersMax}`,
    );
  }
}
