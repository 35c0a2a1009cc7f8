/**
 * The entry point of peer-to-peer messages on this node: the client listener
 * hands it every frame whose action starts with "peer_" (after auth). It
 * validates each message at the edge, serves the membership messages itself,
 * and lets later layers (the Raft transport) register their own actions.
 *
 * @module
 */

import { describeValue, errorResponse, ProtocolError } from "../wire/errors.ts";
import { decodeHeartbeat, decodeLeave, PeerMessageError } from "./_peer_messages.ts";
import { type Membership, membersMaxDefault } from "./membership.ts";

export { PeerMessageError } from "./_peer_messages.ts";

/** Cap on registered actions. */
export const actionsMax = 64;

/** Who sent a peer message: the node id its connection authenticated as, when known. */
export interface PeerContext {
  peerId: number | undefined;
}

/**
 * Serves one peer message; it decodes the message with a typed validator
 * first (lib/cluster/peer_rpc.ts) and throws ProtocolError for bad ones.
 */
export type PeerActionHandler = (
  message: Record<string, unknown>,
  context: PeerContext,
) => unknown | Promise<unknown>;

/**
 * Throws when a message claims to come from another node than the one its
 * connection authenticated as: one member cannot speak for another.
 */
export function checkSender(from: number, context: PeerContext): void {
  if (context.peerId !== undefined && context.peerId !== from) {
    throw new PeerMessageError(
      `The message claims to come from node ${from} but its connection authenticated as node ${context.peerId}`,
    );
  }
}

/** What `ConnectionOptions.peerHandler` receives, plus the extension point. */
export interface PeerHandler {
  (message: Record<string, unknown>, context?: PeerContext): Promise<unknown>;
  /**
   * The same for a one-way message (no answer but an error): the action runs
   * now and its result comes back as it is, a promise only from an async
   * action; it throws what the action throws. The connection's Raft frames
   * take this path: no promise, async frame and callback each (a leader
   * reads two per publish).
   */
  now(message: Record<string, unknown>, context?: PeerContext): unknown;
  /** Adds an action ("peer_..."); throws if it is taken or malformed. */
  register(action: string, handler: PeerActionHandler): void;
}

/** Settings of the peer handler. */
export interface PeerHandlerOptions {
  /** Cap on members listed by one heartbeat (default 1024). */
  membersMax?: number;
}

/**
 * Creates the handler for `peer_heartbeat`, `peer_leave` and registered actions.
 *
 * @example
 * ```ts
 * const handler = createPeerHandler(membership);
 * handler.register("peer_raft", (message) => transport.receive(message));
 * const server = Server.listen({ ...options, peerHandler: handler });
 * ```
 */
export function createPeerHandler(
  membership: Membership,
  options: PeerHandlerOptions = {},
): PeerHandler {
  const membersMax = options.membersMax ?? membersMaxDefault;
  const selfId = membership.self.id;
  const actions = new Map<string, PeerActionHandler>();
  const ok = { status: "ok", from: selfId };
  const rejectSelf = (from: number) => {
    if (from === selfId) {
      throw new PeerMessageError(`Node id ${from} is this node's own id; two peers share it`);
    }
  };
  actions.set("peer_heartbeat", (message, context) => {
    const heartbeat = decodeHeartbeat(message, membersMax);
    rejectSelf(heartbeat.from);
    checkSender(heartbeat.from, context);
    membership.receiveHeartbeat(heartbeat);
    return ok;
  });
  actions.set("peer_leave", (message, context) => {
    const from = decodeLeave(message);
    rejectSelf(from);
    checkSender(from, context);
    membership.receiveLeave(from);
    return ok;
  });
  const now = (
    message: Record<string, unknown>,
    context: PeerContext = { peerId: undefined },
  ): unknown => {
    const action = typeof message === "object" && message !== null ? message.action : undefined;
    const serve = typeof action === "string" ? actions.get(action) : undefined;
    if (serve === undefined) {
      return errorResponse("bad_request", `Unknown peer action '${describeValue(action)}'`);
    }
    return serve(message, context);
  };
  const handler = async (
    message: Record<string, unknown>,
    context: PeerContext = { peerId: undefined },
  ): Promise<unknown> => {
    try {
      return await now(message, context);
    } catch (error) {
      if (error instanceof ProtocolError) return errorResponse(error.code, error.message);
      throw error;
    }
  };
  const register = (action: string, serve: PeerActionHandler): void => {
    if (!/^peer_[a-z0-9_]+$/.test(action)) {
      throw new TypeError(
        `Cannot register peer action '${action}' as it must match peer_[a-z0-9_]+`,
      );
    }
    if (actions.has(action)) {
      throw new Error(`Cannot register peer action '${action}' as it is already registered`);
    }
    if (actions.size >= actionsMax) {
      throw new RangeError(`Cannot register more than ${actionsMax} peer actions`);
    }
    actions.set(action, serve);
  };
  return Object.assign(handler, { now, register });
}
