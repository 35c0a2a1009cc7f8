/**
 * Hosts every Raft group replica of this peer: one clock drives all their
 * ticks, and their outgoing messages are coalesced per destination peer into
 * one `peer_raft` frame per flush, so heartbeats of many groups between two
 * peers cost one frame (as CockroachDB coalesces them).
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { Message } from "../raft/types.ts";
import { decodeRaftMessage, encodeRaftMessage, type WireMessage } from "./raft_codec.ts";
import type { ReplicaGroup } from "./replica_group.ts";

/** Raft tick interval (DESIGN.md: 100 ms). */
export const tickMsDefault = 100;
/** Most messages of one peer_raft frame; larger batches are split. */
export const frameMessagesMax = 4096;

/** How frames reach other peers (PeerLinks in production). */
export interface RaftTransport {
  send(nodeId: number, frame: { action: string } & Record<string, unknown>): void;
}

/**
 * Replica registry, ticker and message router.
 *
 * @example
 * ```ts
 * const host = new RaftHost(1, transport);
 * host.add(group);
 * peerHandler.register("peer_raft", (message) => host.receive(message));
 * ```
 */
export class RaftHost {
  readonly nodeId: number;
  readonly #transport: RaftTransport;
  readonly #groups = new Map<string, ReplicaGroup>();
  #outbox = new Map<number, [string, WireMessage][]>();
  #flushScheduled = false;
  #ticker: ReturnType<typeof setInterval> | undefined;
  /** Called for messages of a group this peer does not host (yet). */
  onUnknownGroup: ((groupId: string, message: Message) => void) | undefined;

  readonly #isReachable: (nodeId: number) => boolean;

  constructor(
    nodeId: number,
    transport: RaftTransport,
    options: { tickMs?: number; isReachable?: (nodeId: number) => boolean } = {},
  ) {
    this.nodeId = nodeId;
    this.#transport = transport;
    this.#isReachable = options.isReachable ?? (() => true);
    this.#ticker = setInterval(() => this.#tick(), options.tickMs ?? tickMsDefault);
  }

  get groups(): ReadonlyMap<string, ReplicaGroup> {
    return this.#groups;
  }

  add(group: ReplicaGroup): void {
    this.#groups.set(group.groupId, group);
  }

  /** Stops hosting a group and closes its replica. */
  async remove(groupId: string): Promise<void> {
    const group = this.#groups.get(groupId);
    if (group === undefined) return;
    this.#groups.delete(groupId);
    await group.close();
  }

  /** Queues messages of one group; they leave together with those of the other groups. */
  send = (groupId: string, messages: Message[]): void => {
    for (const message of messages) this.#queue(message.to, [groupId, encodeRaftMessage(message)]);
  };

  /** Tells follower `to` that the leader of `groupId` let the group sleep at `term`. */
  quiesce = (groupId: string, to: number, term: number): void => {
    this.#queue(to, [groupId, { quiesce: term }]);
  };

  #queue(to: number, item: [string, WireMessage]): void {
    let batch = this.#outbox.get(to);
    if (batch === undefined) this.#outbox.set(to, batch = []);
    batch.push(item);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // Groups handle their Readys in separate macrotasks (one per group after
      // a tick); flushing in the next one sends all their messages together.
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const outbox = this.#outbox;
    this.#outbox = new Map();
    for (const [nodeId, batch] of outbox) {
      for (let start = 0; start < batch.length; start += frameMessagesMax) {
        this.#transport.send(nodeId, {
          action: "peer_raft",
          from: this.nodeId,
          batch: batch.slice(start, start + frameMessagesMax),
        });
      }
    }
  }

  /** Handles an incoming `peer_raft` frame: steps each message into its group. */
  receive(frame: Record<string, unknown>): { status: "ok" } {
    const batch = frame.batch;
    if (!Array.isArray(batch) || batch.length > frameMessagesMax) {
      throw new TypeError(
        `A peer_raft frame needs a batch of at most ${frameMessagesMax} messages`,
      );
    }
    const from = typeof frame.from === "number" ? frame.from : 0;
    for (const item of batch) {
      if (!Array.isArray(item) || typeof item[0] !== "string") continue;
      const quiesce = (item[1] as { quiesce?: unknown })?.quiesce;
      if (typeof quiesce === "number") {
        this.#groups.get(item[0])?.quiesceFollower(quiesce, from);
        continue;
      }
      const message = decodeRaftMessage(item[1] as WireMessage);
      if (message.to !== this.nodeId) continue;
      const group = this.#groups.get(item[0]);
      if (group) group.step(message);
      else this.onUnknownGroup?.(item[0], message);
    }
    return { status: "ok" };
  }

  #tick(): void {
    const reachable = new Map<number, boolean>();
    const isReachable = (nodeId: number) => {
      let known = reachable.get(nodeId);
      if (known === undefined) reachable.set(nodeId, known = this.#isReachable(nodeId));
      return known;
    };
    for (const group of this.#groups.values()) {
      if (!group.quiescent) group.tick();
      // A sleeping follower whose leader went away wakes so that it can elect another.
      else if (!group.isLeader && !isReachable(group.leader)) group.wake();
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    await Promise.all([...this.#groups.values()].map((group) => group.close()));
    this.#groups.clear();
  }
}
