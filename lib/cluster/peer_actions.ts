/**
 * The cluster's peer actions: what a peer serves to the other members once
 * their link is authenticated. Each handler decodes its message with the
 * typed validators of `peer_rpc.ts` before anything else, and checks that a
 * message speaks only for the node its link authenticated as.
 *
 * - `peer_raft`: Raft messages for the groups hosted here;
 * - `peer_join`: a node asks to join (answered by the controller);
 * - `peer_forward`: a client request relayed by a peer that does not lead the topic;
 * - `peer_meta`, `peer_meta_index`: metadata proposals and read barriers run on the controller;
 * - `peer_subscribe_start`: a durable subscriber registered at the topic's leader;
 * - `peer_wait`: a long poll for a topic's next offset on a replica held here;
 * - `peer_snapshot_chunk`: one chunk of a snapshot transfer from a group led here.
 *
 * @module
 */

import type { Retention } from "../wire/retention.ts";
import type { Broker } from "../peer/broker.ts";
import { Session } from "../peer/session.ts";
import { ProtocolError } from "../wire/errors.ts";
import { answerJoin, asksForVote } from "./join.ts";
import type { MetaState } from "./meta_state.ts";
import type { MetadataClient } from "./metadata_client.ts";
import { checkSender, type PeerHandler } from "./peer_handler.ts";
import {
  decodeForward,
  decodeMeta,
  decodeRaftFrame,
  decodeSnapshotChunkRequest,
  decodeSubscribeStart,
  decodeWait,
  forwardHopsMax,
  snapshotChunkAnswer,
} from "./peer_rpc.ts";
import type { RaftHost } from "./raft_host.ts";
import type { ReplicaGroup } from "./replica_group.ts";
import type { ReplicaManager } from "./replica_manager.ts";
import type { TopicRouter } from "./router.ts";
import { timeoutSignal } from "./runtime.ts";

/** What the peer actions are served with. */
export interface PeerActionsOptions {
  /** The broker relayed client requests run against. */
  broker: Broker;
  host: RaftHost;
  meta: MetaState;
  metaGroup(): ReplicaGroup;
  metadata: MetadataClient;
  router: TopicRouter;
  replicas: ReplicaManager;
  /** True while this node waits to be accepted: it answers no vote. */
  awaitingJoin(): boolean;
  /** True while this node waits for its first join with an empty data directory. */
  unjoined(): boolean;
  /** Creates a topic as the controller (placement decided here). */
  createAsController(
    name: string,
    replicationFactor: number,
    retention: Retention | undefined,
  ): Promise<boolean>;
}

/**
 * Registers every cluster peer action on `handler`.
 *
 * @example
 * ```ts
 * registerPeerActions(node.peerHandler, { broker, host, meta, metaGroup: () => group, ... });
 * ```
 */
export function registerPeerActions(handler: PeerHandler, options: PeerActionsOptions): void {
  const { host, meta, metadata } = options;
  handler.register("peer_raft", (message, context) => {
    const frame = decodeRaftFrame(message);
    checkSender(frame.from, context);
    if (options.awaitingJoin()) frame.batch = frame.batch.filter((item) => !asksForVote(item));
    return host.receive(frame);
  });
  handler.register("peer_join", (message) =>
    answerJoin(message, {
      members: () => meta.members,
      metaBarrier: () => metadata.barrier(),
      proposeMeta: (command) => metadata.propose(command),
      leader: () => options.metaGroup().leader,
      unjoined: () => options.unjoined(),
      stillListed: (id) => stillListed(meta, options.metaGroup(), id),
    }));
  const forwards = new ForwardedRequests(options.broker);
  handler.register("peer_forward", (message) => forwards.serve(message));
  handler.register("peer_meta", async (message) => {
    // Metadata changes proposed by other peers run on the controller, validated first.
    const proposal = decodeMeta(message);
    if (proposal.kind === "create_topic") {
      const created = await options.createAsController(
        proposal.name,
        proposal.replicationFactor,
        proposal.retention,
      );
      return { status: "ok", created };
    }
    return { status: "ok", result: await metadata.propose(proposal.command) };
  });
  handler.register("peer_meta_index", async () => {
    const metaGroup = options.metaGroup();
    await metaGroup.readBarrier();
    return { status: "ok", index: metaGroup.node.status().applied };
  });
  handler.register("peer_subscribe_start", async (message) => {
    const request = decodeSubscribeStart(message);
    const start = await options.router.subscribeStart(
      request.topicName,
      request.subscriberId,
      request.from,
      { hops: request.hops },
    );
    return { status: "ok", start };
  });
  handler.register("peer_snapshot_chunk", (message) => {
    const request = decodeSnapshotChunkRequest(message);
    const group = host.groups.get(request.groupId);
    if (group === undefined) {
      throw new ProtocolError("unavailable", `No replica of group ${request.groupId} here`);
    }
    return snapshotChunkAnswer(group.serveSnapshotChunk(request));
  });
  handler.register("peer_wait", async (message) => {
    const { topicName: name, offset, timeoutMs } = decodeWait(message);
    const local = options.replicas.get(name);
    if (local === undefined) throw new ProtocolError("unavailable", `No replica of '${name}' here`);
    await local.topic.waitForOffset(offset, timeoutSignal(local.group.scheduler, timeoutMs));
    return { status: "ok", next_offset: local.topic.localBounds().nextOffset };
  });
}

/**
 * Client requests relayed by other peers, served by one session per hop
 * count (a relayed request may be relayed again, at most `forwardHopsMax`
 * times, so a lost leader cannot bounce a request around forever).
 */
class ForwardedRequests {
  readonly #broker: Broker;
  readonly #sessions = new Map<number, Session>();

  constructor(broker: Broker) {
    this.#broker = broker;
  }

  async serve(message: Record<string, unknown>): Promise<unknown> {
    const { hops, request } = decodeForward(message);
    if (hops > forwardHopsMax) {
      throw new ProtocolError(
        "unavailable",
        "The request was relayed too often; no leader is settled",
      );
    }
    let session = this.#sessions.get(hops);
    if (session === undefined) {
      session = new Session({ broker: this.#broker, hops });
      this.#sessions.set(hops, session);
    }
    // The answer travels wrapped: a bare array (fetch_messages) carries no
    // request id for the link to match it by.
    try {
      return { status: "ok", answer: (await session.handle(request)).response };
    } catch (error) {
      if (error instanceof ProtocolError) {
        return { status: "ok", answer: { status: error.code, error: error.message } };
      }
      throw error;
    }
  }
}

/** Whether a topic's placement or recorded membership, or the metadata group, still counts `id`. */
function stillListed(meta: MetaState, metaGroup: ReplicaGroup, id: number): boolean {
  const conf = metaGroup.node.status().conf;
  if (conf.voters.includes(id) || conf.learners.includes(id)) return true;
  for (const placement of meta.topics.values()) {
    if (placement.replicas.includes(id) || placement.members?.includes(id)) return true;
  }
  return false;
}
