/**
 * The cluster layer of one peer, wired: links to the other members, the
 * membership view with its heartbeat timer, and the handler the client
 * listener passes peer frames to. The `--peers` discovery list seeds the
 * member list; members that are not running simply stay suspect, then dead.
 *
 * @module
 */

import { formatAddress } from "./_address.ts";
import { nodeIdMax } from "./_peer_messages.ts";
import { type Clock, deadAfterMsDefault, heartbeatMsDefault, Membership } from "./membership.ts";
import { createPeerHandler, type PeerHandler } from "./peer_handler.ts";
import type { ClusterSecret } from "./peer_auth.ts";
import type { PeerLinkOptions } from "./peer_link.ts";
import { PeerLinks } from "./peer_links.ts";
import type { Scheduler } from "./runtime.ts";
import type { PeerTransport } from "./transport.ts";

/** Default time `leave` waits for the members to acknowledge. */
export const leaveTimeoutMsDefault = 1000;

/** One entry of the discovery list (`--peers id@host:port`). */
export interface DiscoveryPeer {
  id: number;
  host: string;
  port: number;
}

/** Settings of a cluster node. */
export interface ClusterNodeOptions {
  id: number;
  host: string;
  /** The port this peer listens on (clients and peers alike). */
  port: number;
  /** The discovery list; entries with this node's id are skipped. */
  peers: readonly DiscoveryPeer[];
  /** Default 3000 ms. */
  heartbeatMs?: number;
  /** Default 30000 ms. */
  deadAfterMs?: number;
  /** The cluster secret every link proves it knows (see peer_auth.ts). */
  secret?: ClusterSecret;
  /** Dial peers over TLS, verifying them against these CA certificates. */
  tls?: { caCerts?: string[] };
  /** Address other peers reach this one at (default host:port). */
  advertiseAddress?: string;
  clock?: Clock;
  /** Heartbeat and link timers (default: the host's timers); also the clock unless `clock` is set. */
  scheduler?: Scheduler;
  /** How to reach other members (default: PeerLinks over TCP/TLS; a simulator passes its own). */
  transport?: PeerTransport;
  /** Extra settings of every link (limits, backoff, jitter source). */
  link?: Omit<PeerLinkOptions, "host" | "port" | "nodeId" | "secret" | "tls">;
}

/**
 * A running cluster layer.
 *
 * @example
 * ```ts
 * const cluster = ClusterNode.start({ id: 1, host: "127.0.0.1", port: 5001, peers });
 * const server = Server.listen({ ...options, peerHandler: cluster.peerHandler });
 * cluster.membership.view();
 * await cluster.close();
 * ```
 */
export class ClusterNode {
  readonly id: number;
  readonly membership: Membership;
  readonly links: PeerTransport;
  /** Pass to `ConnectionOptions.peerHandler`; `register` adds actions. */
  readonly peerHandler: PeerHandler;
  readonly #unsubscribe: () => void;
  #closed = false;

  private constructor(options: ClusterNodeOptions) {
    validate(options);
    this.id = options.id;
    const address = options.advertiseAddress ?? formatAddress(options.host, options.port);
    this.membership = new Membership({
      self: { id: options.id, address },
      seeds: options.peers.map((peer) => ({
        id: peer.id,
        address: formatAddress(peer.host, peer.port),
      })),
      heartbeatMs: options.heartbeatMs ?? heartbeatMsDefault,
      deadAfterMs: options.deadAfterMs ?? deadAfterMsDefault,
      clock: options.clock,
      scheduler: options.scheduler,
    });
    this.links = options.transport ?? new PeerLinks({
      link: {
        scheduler: options.scheduler,
        ...options.link,
        nodeId: options.id,
        secret: options.secret,
        tls: options.tls,
      },
    });
    this.peerHandler = createPeerHandler(this.membership);
    this.links.update(this.membership.targets());
    // Learned members, changed addresses and leaves all change whom we link to.
    this.#unsubscribe = this.membership.onChange(() => {
      this.links.update(this.membership.targets());
    });
  }

  /** Creates the node and starts heartbeating the discovery list. */
  static start(options: ClusterNodeOptions): ClusterNode {
    const node = new ClusterNode(options);
    node.membership.start((target, message) => node.links.send(target.id, message));
    return node;
  }

  /**
   * Announces a graceful leave to every member and waits (at most
   * `timeoutMs`) for their acknowledgements; unreachable members will see
   * this node go dead instead.
   */
  async leave(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? leaveTimeoutMsDefault;
    this.membership.stop();
    const message = { action: "peer_leave", from: this.id };
    await Promise.allSettled(
      this.membership.targets().map((target) =>
        this.links.request(target.id, message, { timeoutMs })
      ),
    );
  }

  /** Stops heartbeats and closes every link. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.membership.stop();
    this.#unsubscribe();
    await this.links.close();
  }
}

function validate(options: ClusterNodeOptions): void {
  if (!Number.isInteger(options.id) || options.id < 1 || options.id > nodeIdMax) {
    throw new RangeError(
      `Cannot start cluster node as 'id' must be between 1 and ${nodeIdMax}: current value is ${options.id}`,
    );
  }
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    throw new RangeError(
      `Cannot start cluster node as 'port' must be between 1 and 65535: current value is ${options.port}`,
    );
  }
  if (options.host.length === 0) {
    throw new RangeError("Cannot start cluster node as 'host' must not be empty");
  }
  const ids = new Set<number>();
  for (const peer of options.peers) {
    if (ids.has(peer.id)) {
      throw new RangeError(
        `Cannot start cluster node as 'peers' lists node id ${peer.id} twice`,
      );
    }
    ids.add(peer.id);
  }
}
