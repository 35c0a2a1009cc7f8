/**
 * The join protocol. A node with an empty (or rebuilt) data directory asks
 * the discovery list's peers to record it as a member (`peer_join`); the
 * controller adds it to the metadata, or refuses an id that is a member
 * with another data directory (its data was lost: it must be removed first).
 *
 * @module
 */

import { ProtocolError } from "../wire/errors.ts";
import type { MemberInfo, MetaCommand, MetaResult } from "./meta_state.ts";
import { decodeJoin, decodeJoinAnswer, joinRequest, type RaftBatchItem } from "./peer_rpc.ts";
import { delay, type Scheduler } from "./runtime.ts";
import type { PeerTransport } from "./transport.ts";

/** How long one peer has to answer a join. */
export const joinAnswerTimeoutMs = 1000;
/** Pause between two rounds over the discovery list. */
export const joinRoundPauseMs = 200;

/**
 * The cluster refused this peer's join (e.g. its id is a member with another
 * data directory): retrying cannot help, the operator must act.
 *
 * @example
 * ```ts
 * throw new JoinRefusedError("Node 3 is a member of this cluster with another data directory");
 * ```
 */
export class JoinRefusedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "JoinRefusedError";
  }
}

/** Who joins, and how it reaches the others. */
export interface JoinerOptions {
  nodeId: number;
  /** The "host:port" other peers reach this one at. */
  address: string;
  directoryId: string;
  transport: PeerTransport;
  scheduler: Scheduler;
  /** True once the joining node is closing: stop asking. */
  isClosed: () => boolean;
}

/** The outcome of {@linkcode tryJoin}. */
export type JoinOutcome = "joined" | "answered" | "nobody";

/**
 * Asks `peers` in turn, for `rounds` rounds, to record this node: "joined"
 * once a member recorded it, "answered" when some peer answered but could
 * not record it yet, "nobody" when no peer answered at all; throws
 * JoinRefusedError when the cluster refuses this node.
 *
 * @example
 * ```ts
 * const outcome = await tryJoin([2, 3], 2, { nodeId: 1, address, directoryId, transport, scheduler, isClosed });
 * ```
 */
export async function tryJoin(
  peers: readonly number[],
  rounds: number,
  options: JoinerOptions,
): Promise<JoinOutcome> {
  let answered = false;
  const message = joinRequest({
    nodeId: options.nodeId,
    address: options.address,
    directoryId: options.directoryId,
  });
  const transport = options.transport;
  for (let round = 0; round < rounds && !options.isClosed(); round++) {
    for (const peer of peers) {
      let answer: unknown;
      try {
        answer = await transport.request(peer, message, { timeoutMs: joinAnswerTimeoutMs });
      } catch {
        // A peer that completed the link handshake exists, even if it is
        // too busy (electing a controller) to answer the join in time.
        if (transport.state(peer) === "connected") answered = true;
        continue; // Unreachable or not a member yet; try the next one.
      }
      const { joined, refused, unjoined } = decodeJoinAnswer(answer);
      // A peer that belongs to no cluster yet is no member that answered:
      // peers started together with empty disks let the first one bootstrap.
      if (unjoined) continue;
      answered = true;
      if (joined) return "joined";
      if (refused !== undefined) throw new JoinRefusedError(refused);
    }
    await delay(options.scheduler, joinRoundPauseMs);
  }
  return answered ? "answered" : "nobody";
}

/** What answering a join needs of the metadata. */
export interface JoinAuthority {
  members(): ReadonlyMap<number, MemberInfo>;
  /** Makes the local metadata at least as new as the controller's. */
  metaBarrier(): Promise<void>;
  proposeMeta(command: MetaCommand): Promise<MetaResult>;
  /** The controller's id as known here (0: none). */
  leader(): number;
  /**
   * True while this node itself waits for its first join with an empty data
   * directory (default: never): it belongs to no cluster, so it says so
   * instead of answering for one.
   */
  unjoined?(): boolean;
  /**
   * True while a group (a topic's placement or recorded membership, or the
   * metadata group) still counts node `id` (default: never).
   */
  stillListed?(id: number): boolean;
}

/**
 * Answers a validated-on-entry `peer_join`: records the node (or its new
 * address or data directory), or refuses an id that is a member with
 * another data directory.
 *
 * @example
 * ```ts
 * handler.register("peer_join", (message) => answerJoin(message, authority));
 * ```
 */
export async function answerJoin(
  message: Record<string, unknown>,
  authority: JoinAuthority,
): Promise<unknown> {
  const { nodeId: id, address, directoryId } = decodeJoin(message);
  if (authority.unjoined?.()) {
    return {
      status: "unavailable",
      error: "This peer has not joined a cluster yet",
      unjoined: true,
    };
  }
  let known = authority.members().get(id);
  if (known !== undefined && !known.left && directoryId !== known.directoryId) {
    // Read the controller's metadata before refusing: a stale view must not.
    await authority.metaBarrier();
    known = authority.members().get(id);
  }
  if (
    known !== undefined && !known.left && known.directoryId !== undefined &&
    directoryId !== known.directoryId
  ) {
    // Its replicas would start empty yet count as the ones that acknowledged
    // and voted before: only a removed id may come back with a new directory.
    throw new ProtocolError(
      "bad_request",
      `Node ${id} is a member of this cluster with another data directory; its data was lost or replaced. Remove it first (pubsub client remove-node ${id}), or start this peer with a new --id`,
    );
  }
  if (
    known?.left === true && directoryId !== known.directoryId && authority.stillListed?.(id)
  ) {
    // A removed id back with a new directory joins only once no group
    // counts it any more: an empty replica in a slot the old directory held
    // would vote (and acknowledge) as if it still had that log.
    throw new ProtocolError(
      "unavailable",
      `Node ${id} was removed but some groups still count it; it can join once they moved its replicas`,
    );
  }
  if (
    known === undefined || known.left || known.address !== address ||
    (directoryId !== undefined && known.directoryId !== directoryId)
  ) {
    const command: MetaCommand = { op: "add_member", id, address };
    if (directoryId !== undefined) command.directoryId = directoryId;
    await authority.proposeMeta(command);
  }
  return { status: "joined", leader: authority.leader() };
}

/** Vote requests (and transfers) are what a node that may have lost its data must not answer. */
export function asksForVote(item: RaftBatchItem): boolean {
  if (!("message" in item)) return false;
  const type = item.message.type;
  return type === "vote" || type === "preVote" || type === "timeoutNow";
}
