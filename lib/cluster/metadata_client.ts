/**
 * How a peer reads and changes the cluster metadata: proposals run on the
 * controller (the metadata group's leader), here or relayed to it with
 * `peer_meta`; a linearizable read first makes the local metadata at least
 * as new as the controller's (`peer_meta_index`, then wait until applied).
 *
 * @module
 */

import { ProtocolError } from "../wire/errors.ts";
import { type Changes, waitUntil } from "./_changes.ts";
import type { LivenessView } from "./liveness.ts";
import {
  decodeMetaCommand,
  encodeMetaCommand,
  type MetaCommand,
  type MetaResult,
  type MetaState,
  type TopicPlacement,
} from "./meta_state.ts";
import { PeerUnavailableError } from "./peer_link.ts";
import { decodeMetaIndex, decodeMetaResult, metaRequest } from "./peer_rpc.ts";
import type { ReplicaGroup } from "./replica_group.ts";
import type { Cancel, Scheduler } from "./runtime.ts";
import type { PeerMessage, PeerTransport } from "./transport.ts";

/**
 * How long a request waits, when a majority of a group's voters cannot be
 * reached, before it answers `unavailable` naming them (links that are only
 * reconnecting come back within it).
 */
export const quorumLostGraceMs = 1000;

/** What a metadata client works with. */
export interface MetadataClientOptions {
  nodeId: number;
  meta: MetaState;
  /** The local replica of the metadata group (opened after the client is made). */
  metaGroup: () => ReplicaGroup;
  transport: PeerTransport;
  liveness: LivenessView;
  changes: Changes;
  scheduler: Scheduler;
  requestTimeoutMs: number;
  isClosed: () => boolean;
}

/**
 * Metadata reads and proposals, and the peer requests and leader waits they need.
 *
 * @example
 * ```ts
 * const metadata = new MetadataClient({ nodeId: 1, meta, metaGroup: () => group, ... });
 * await metadata.propose({ op: "delete_topic", name: "events" });
 * ```
 */
export class MetadataClient {
  readonly #options: MetadataClientOptions;

  constructor(options: MetadataClientOptions) {
    this.#options = options;
  }

  /** Proposes a metadata change on the controller (here, or relayed to it). */
  async propose(command: MetaCommand): Promise<MetaResult> {
    // Validated here too: a malformed command must never enter the metadata log.
    decodeMetaCommand(command);
    return await this.atController(
      async () => await this.#options.metaGroup().propose(encodeMetaCommand(command)) as MetaResult,
      async (leader) => {
        const answer = await this.request(leader, metaRequest({ kind: "command", command }));
        return decodeMetaResult(answer);
      },
    );
  }

  /** Runs `local` when this node is the controller, else `remote` with the controller's id. */
  async atController<T>(
    local: () => Promise<T>,
    remote: (leader: number) => Promise<T>,
  ): Promise<T> {
    const group = this.#options.metaGroup();
    const leader = await this.waitForLeader(group, "the cluster controller");
    if (leader === this.#options.nodeId && group.isLeader) return await local();
    if (leader === this.#options.nodeId) {
      throw new ProtocolError("unavailable", "The controller is changing; retry");
    }
    return await remote(leader);
  }

  /** Makes the local metadata at least as new as the controller's (a linearizable meta read). */
  async barrier(): Promise<void> {
    const group = this.#options.metaGroup();
    // A sole voter whose disk refuses writes cannot lead, and applied its
    // whole log (`Raft` commits it at start-up): no metadata is newer.
    if (group.soleVoterDown) return;
    await this.atController(
      () => group.readBarrier(),
      async (leader) => {
        const index = decodeMetaIndex(await this.request(leader, { action: "peer_meta_index" }));
        await this.withTimeout(group.waitApplied(index), "The metadata did not catch up in time");
      },
    );
  }

  /** A topic's placement, read linearizably when it is not known here. */
  async placement(name: string): Promise<TopicPlacement> {
    const meta = this.#options.meta;
    let placement = meta.topics.get(name);
    if (placement === undefined) {
      await this.barrier();
      placement = meta.topics.get(name);
    }
    if (placement === undefined) {
      throw new ProtocolError("topic_not_found", `Topic '${name}' does not exist`);
    }
    return placement;
  }

  /**
   * The leader of `group` once one is known and reachable; `unavailable`
   * (naming the missing peers when that is why) at the request timeout, or
   * sooner when a quorum of its voters stays unreachable past the grace period.
   */
  async waitForLeader(group: ReplicaGroup, what: string): Promise<number> {
    const { nodeId, liveness } = this.#options;
    const leader = await waitUntil(() => {
      // Nobody else can lead it: say why at once rather than at the timeout.
      if (group.soleVoterDown) throw group.storageFailure;
      const leader = group.leader;
      return leader !== 0 && (leader === nodeId || liveness.reachable(leader)) ? leader : undefined;
    }, {
      scheduler: this.#options.scheduler,
      changes: this.#options.changes,
      timeoutMs: this.#options.requestTimeoutMs,
      graceMs: quorumLostGraceMs,
      quorumLost: () => liveness.quorumLost(group.node.status().conf.voters),
      closed: this.#options.isClosed,
    });
    if (leader !== undefined) return leader;
    const voters = group.node.status().conf.voters;
    throw new ProtocolError("unavailable", `No leader of ${what}${liveness.whyNoLeader(voters)}`);
  }

  /** A peer request with the request timeout; an unreachable peer answers `unavailable`. */
  async request(nodeId: number, message: PeerMessage): Promise<unknown> {
    try {
      return await this.#options.transport.request(nodeId, message, {
        timeoutMs: this.#options.requestTimeoutMs,
      });
    } catch (error) {
      if (error instanceof PeerUnavailableError) {
        throw new ProtocolError("unavailable", `Node ${nodeId} cannot be reached`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  /** `promise`, or `unavailable` with `message` after one request timeout. */
  async withTimeout<T>(promise: Promise<T>, message: string): Promise<T> {
    let cancel: Cancel | undefined;
    const timeout = new Promise<never>((_, reject) => {
      cancel = this.#options.scheduler.schedule(
        this.#options.requestTimeoutMs,
        () => reject(new ProtocolError("unavailable", message)),
      );
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      cancel?.();
    }
  }
}
