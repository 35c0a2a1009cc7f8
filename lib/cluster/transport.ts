/**
 * The peer transport: how the cluster layer reaches other members. The
 * production implementation is `PeerLinks` (one TCP or TLS `PeerLink` per
 * member, authenticated with the cluster secret); a simulator passes its own
 * through `ClusterNodeOptions.transport`, so the cluster layer's code runs
 * unchanged over a simulated network.
 *
 * @module
 */

import type { PeerLinkState, PeerMessage, RequestOptions } from "./peer_link.ts";

export type { PeerLinkState, PeerMessage, RequestOptions } from "./peer_link.ts";

/** A member as the transport needs it. */
export interface LinkTarget {
  id: number;
  /** "host:port". */
  address: string;
}

/**
 * Sends messages to members by node id.
 *
 * @example
 * ```ts
 * const transport: PeerTransport = new PeerLinks({ link: { nodeId: 1, secret } });
 * transport.update([{ id: 2, address: "127.0.0.1:5002" }]);
 * const answer = await transport.request(2, { action: "peer_meta_index" }, { timeoutMs: 1000 });
 * ```
 */
export interface PeerTransport {
  /** Replaces the member list: unlisted members are no longer linked. */
  update(targets: readonly LinkTarget[]): void;
  /** Queues a one-way message; false when it was dropped (unknown member, link down, queue full). */
  send(nodeId: number, message: PeerMessage): boolean;
  /**
   * Queues a prebuilt one-way frame (length prefix included), such as a
   * binary Raft frame, whole or in consecutive parts; false when it was
   * dropped. Optional: a transport without it (the simulator's network)
   * gets Raft traffic through `send`.
   */
  sendFrame?(nodeId: number, frame: Uint8Array | readonly Uint8Array[]): boolean;
  /**
   * Sends a request; resolves with the answer (error answers included),
   * rejects with PeerUnavailableError (or PeerTimeoutError) when no answer can come.
   */
  request(nodeId: number, message: PeerMessage, options?: RequestOptions): Promise<unknown>;
  /** Where the link to `nodeId` is (undefined for an unknown member). */
  state(nodeId: number): PeerLinkState | undefined;
  /** Why the link to `nodeId` cannot be established, if it cannot. */
  lastError(nodeId: number): string | undefined;
  /**
   * Calls `listener` whenever the link to a member changes state (so
   * waiters for a reachable leader need not poll); returns an unsubscribe.
   */
  onStateChange(listener: (nodeId: number, state: PeerLinkState) => void): () => void;
  /** Closes every link; pending requests reject. */
  close(): Promise<void>;
}
