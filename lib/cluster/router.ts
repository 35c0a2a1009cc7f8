/**
 * Where a topic's requests go. The local replica serves them when it leads;
 * otherwise the router names the peer that leads (or knows who does) as
 * `{ elsewhere: id }` (`route`; `topic` throws `TopicElsewhereError`), and
 * the session forwards the request there.
 * Subscriptions read the local replica's committed log when there is one,
 * and otherwise stream from another replica (`RemoteSource`).
 *
 * @module
 */

import type { Route, RouteOptions } from "../peer/broker.ts";
import { TopicElsewhereError } from "../peer/broker.ts";
import { subscriptionStart } from "../peer/subscription.ts";
import type { MessageSource, ReadResult, Topic } from "../peer/topic.ts";
import { ProtocolError } from "../wire/errors.ts";
import type { Request, SubscribeFrom } from "../wire/requests.ts";
import type { TopicDescription } from "../wire/responses.ts";
import { type Changes, waitUntil } from "./_changes.ts";
import type { LivenessView } from "./liveness.ts";
import type { MetaState, TopicPlacement } from "./meta_state.ts";
import { type MetadataClient, quorumLostGraceMs } from "./metadata_client.ts";
import {
  decodeForwardAnswer,
  decodeSubscribeStartAnswer,
  decodeWaitAnswer,
  forwardHopsMax,
  forwardRequest,
  subscribeStartRequest,
  waitRequest,
} from "./peer_rpc.ts";
import type { ReplicaGroup } from "./replica_group.ts";
import type { ReplicaManager } from "./replica_manager.ts";
import { delay, type Scheduler } from "./runtime.ts";

/**
 * A voter is in sync while its acknowledged log reached the commit index
 * within this many ticks (one minimum election timeout, 1 s by default).
 */
export const inSyncTicksMax = 10;

/** What a {@linkcode TopicRouter} works with. */
export interface TopicRouterOptions {
  nodeId: number;
  meta: MetaState;
  metadata: MetadataClient;
  replicas: ReplicaManager;
  liveness: LivenessView;
  changes: Changes;
  scheduler: Scheduler;
  requestTimeoutMs: number;
  isClosed(): boolean;
}

/**
 * Routes topic requests.
 *
 * @example
 * ```ts
 * const router = new TopicRouter({ nodeId: 1, meta, metadata, replicas, ... });
 * const topic = await router.topic("events"); // or throws TopicElsewhereError
 * ```
 */
export class TopicRouter {
  readonly #options: TopicRouterOptions;

  constructor(options: TopicRouterOptions) {
    this.#options = options;
  }

  /**
   * The local replica of `name` once it leads; throws TopicElsewhereError
   * naming the peer to ask, or `unavailable` when no leader emerges in time.
   */
  async topic(name: string, options: RouteOptions = {}): Promise<Topic> {
    const route = await this.route(name, options);
    if (route.topic !== undefined) return route.topic;
    throw new TopicElsewhereError(name, route.elsewhere);
  }

  /**
   * The local replica of `name` when it leads right now, without waiting
   * (the hot path of requests on a leader); undefined whenever `route`
   * must decide: no such topic here, a removed peer, another leader, or
   * none yet.
   */
  leadingTopic(name: string): Topic | undefined {
    const { meta, nodeId, replicas } = this.#options;
    if (!meta.topics.has(name) || meta.members.get(nodeId)?.left) return undefined;
    const local = replicas.get(name);
    return local?.group.isLeader ? local.topic : undefined;
  }

  /**
   * Where `name`'s requests go once that is known: the local replica when
   * it leads, else the peer to ask; `unavailable` when no leader emerges in
   * time.
   */
  async route(name: string, options: RouteOptions = {}): Promise<Route> {
    this.refuseIfRemoved();
    const { metadata, scheduler, changes, liveness, replicas } = this.#options;
    const placement = await metadata.placement(name);
    const leading = await waitUntil(() => this.#routeStep(placement, options), {
      scheduler,
      changes,
      timeoutMs: this.#options.requestTimeoutMs,
      // Without a majority of its replicas no leader can be elected: say so
      // (after a moment for links that are only reconnecting) instead of
      // making the client wait for the whole request timeout.
      graceMs: quorumLostGraceMs,
      quorumLost: () => liveness.quorumLost(placement.replicas),
      closed: () => this.#options.isClosed(),
    });
    if (leading !== undefined) return leading;
    throw replicas.get(name)?.group.storageFailure ??
      new ProtocolError(
        "unavailable",
        `Topic '${name}' has no leader${liveness.whyNoLeader(placement.replicas)}`,
      );
  }

  /**
   * A peer removed from the cluster stops serving: its metadata is no longer
   * kept current, so it sends clients to the peers that remain.
   */
  refuseIfRemoved(): void {
    const { meta, nodeId } = this.#options;
    if (meta.members.get(nodeId)?.left) {
      throw new ProtocolError(
        "unavailable",
        `Peer ${nodeId} was removed from the cluster; connect to another peer`,
      );
    }
  }

  /** Sends `request` to peer `nodeId` and returns its answer. */
  async forward(nodeId: number, request: Request, options: RouteOptions = {}): Promise<unknown> {
    const reply = await this.#options.metadata.request(
      nodeId,
      forwardRequest({ hops: options.hops ?? 1, request }),
    );
    return decodeForwardAnswer(reply);
  }

  /** The committed messages of `name`, from the local replica or streamed from another. */
  async source(name: string): Promise<MessageSource> {
    this.refuseIfRemoved();
    const { metadata, scheduler, changes, replicas, liveness, nodeId } = this.#options;
    const placement = await metadata.placement(name);
    // A replica placed here is a moment away (unless it cannot be opened);
    // reading it beats streaming.
    await waitUntil(
      () =>
        !placement.replicas.includes(nodeId) || replicas.has(name) ||
        replicas.cannotOpen(placement) || undefined,
      {
        scheduler,
        changes,
        timeoutMs: this.#options.requestTimeoutMs,
        closed: () => this.#options.isClosed(),
      },
    );
    const local = replicas.get(name);
    // A rebuilding replica's committed log is still behind: stream from the leader.
    const usable = local !== undefined && local.epoch === placement.epoch;
    if (usable && !local.group.recovering) return local.topic;
    const other = liveness.pickReplica(placement.replicas);
    if (other === undefined) {
      if (usable) return local.topic;
      throw new ProtocolError("unavailable", `Replica of '${name}' is not open yet`);
    }
    return new RemoteSource(
      name,
      this,
      scheduler,
      (message) => metadata.request(liveness.pickReplica(placement.replicas) ?? other, message),
    );
  }

  /** Registers (or moves) a durable subscriber at the topic's leader. */
  async subscribeStart(
    name: string,
    subscriberId: string,
    from: SubscribeFrom | undefined,
    options: RouteOptions = {},
  ): Promise<number> {
    const route = await this.route(name, options);
    if (route.topic !== undefined) return await subscriptionStart(route.topic, subscriberId, from);
    const answer = await this.#options.metadata.request(
      route.elsewhere,
      subscribeStartRequest({
        topicName: name,
        subscriberId,
        from,
        hops: (options.hops ?? 0) + 1,
      }),
    );
    return decodeSubscribeStartAnswer(answer);
  }

  /** The topic as its leader sees it now. */
  async describeTopic(
    name: string,
    options: RouteOptions = {},
  ): Promise<Omit<TopicDescription, "status">> {
    const route = await this.route(name, options);
    if (route.elsewhere !== undefined) {
      const answer = await this.forward(route.elsewhere, {
        action: "describe_topic",
        topic_name: name,
      }, {
        hops: (options.hops ?? 0) + 1,
      }) as Record<string, unknown>;
      if (answer.status !== "topic") {
        throw new ProtocolError(answer.status as ProtocolError["code"], String(answer.error));
      }
      const { status: _status, ...description } = answer;
      return description as unknown as Omit<TopicDescription, "status">;
    }
    const placement = await this.#options.metadata.placement(name);
    const local = this.#options.replicas.get(name)!;
    const { firstOffset, nextOffset } = await local.topic.bounds();
    return {
      topic: name,
      replicas: placement.replicas,
      leader: this.#options.nodeId,
      in_sync: this.#inSync(local.group),
      first_offset: firstOffset,
      next_offset: nextOffset,
      bytes: local.topic.bytes(),
      messages: nextOffset - firstOffset,
      retention: placement.retention ?? {},
    };
  }

  /**
   * One look at where a topic's requests go: the local replica when it
   * leads, the peer that does (or knows), the storage failure a sole
   * replica answers with (thrown), or undefined to wait.
   */
  #routeStep(placement: TopicPlacement, options: RouteOptions): Route | undefined {
    const { nodeId, replicas, liveness } = this.#options;
    const local = replicas.get(placement.name);
    if (local?.group.isLeader) return { topic: local.topic };
    const leader = local?.group.leader ?? 0;
    const hops = options.hops ?? 0;
    // A leader this node cannot reach is most likely dead: wait for the
    // election that replaces it rather than fail the request at once.
    if (leader !== 0 && leader !== nodeId && hops < forwardHopsMax && liveness.reachable(leader)) {
      return { elsewhere: leader };
    }
    const hostsReplica = placement.replicas.includes(nodeId);
    if (
      local === undefined && (!hostsReplica || replicas.cannotOpen(placement)) &&
      hops < forwardHopsMax
    ) {
      // No replica here (none placed here, or it cannot be opened): another
      // replica knows (or will soon know) the leader.
      const other = liveness.pickReplica(placement.replicas);
      if (other !== undefined) return { elsewhere: other };
    }
    // A replica whose disk failed knows no leader until it restarts; the
    // other replicas do (or elect one), so a client's request goes there.
    // A relayed one is answered at once instead: sent on again it could
    // go around the replicas back to a peer link that answers in order
    // and wait on itself. A sole replica answers at once too.
    const storageFailure = local?.group.storageFailure;
    if (storageFailure !== undefined && leader === 0) {
      // A sole voter serves what it applied, which is its whole log
      // (`Raft` commits it at start-up), and refuses writes with its
      // storage failure (`RaftTopic`).
      if (local!.group.soleVoter) return { topic: local!.topic };
      const other = hops === 0 ? liveness.pickReplica(placement.replicas) : undefined;
      if (other !== undefined) return { elsewhere: other };
      throw storageFailure;
    }
    return undefined;
  }

  /**
   * Voters in sync, measured by the leader now rather than remembered: a
   * voter whose answer showed its log matching the leader's up to the
   * commit index within the last `inSyncTicksMax` ticks (so an entry in
   * flight under load does not count as falling behind, as with Kafka's
   * in-sync replicas) and whose peer is alive (a sleeping group does not
   * tick, so its ages stand still). A follower whose process restarted or
   * whose log went backwards counts again only once it caught up anew
   * (`#peerRestarted`), so a wiped, cut or silent replica drops out. The
   * leader counts while its own log is durable up to the commit index, by
   * the same measure, and its disk takes writes.
   */
  #inSync(group: ReplicaGroup): number[] {
    const status = group.node.status();
    return status.conf.voters.filter((id) => {
      const caughtUpTicksAgo = status.progress[id]?.caughtUpTicksAgo ?? Infinity;
      if (caughtUpTicksAgo > inSyncTicksMax) return false;
      if (id === this.#options.nodeId) return group.storageFailure === undefined;
      return this.#options.liveness.awake(id);
    }).sort((a, b) => a - b);
  }
}

/**
 * Messages of a topic this node holds no replica of: committed messages are
 * fetched from the leader, and the tail is watched by long-polling a replica.
 */
class RemoteSource implements MessageSource {
  readonly name: string;
  readonly #router: TopicRouter;
  readonly #scheduler: Scheduler;
  readonly #ask: (message: { action: string } & Record<string, unknown>) => Promise<unknown>;

  constructor(
    name: string,
    router: TopicRouter,
    scheduler: Scheduler,
    ask: (message: { action: string } & Record<string, unknown>) => Promise<unknown>,
  ) {
    this.name = name;
    this.#router = router;
    this.#scheduler = scheduler;
    this.#ask = ask;
  }

  async readCommitted(fromOffset: number, max: number): Promise<ReadResult> {
    const request: Request = {
      action: "fetch",
      topic_name: this.name,
      from_offset: fromOffset,
      max,
    };
    const route = await this.#router.route(this.name);
    if (route.topic !== undefined) return await route.topic.read(fromOffset, max);
    const body = await this.#router.forward(route.elsewhere, request) as {
      status: string;
      messages?: ReadResult["messages"];
      next_offset?: number;
    };
    if (body.status !== "messages") {
      throw new ProtocolError("unavailable", "The leader did not answer the fetch");
    }
    return { messages: body.messages!, nextOffset: body.next_offset! };
  }

  async waitForOffset(offset: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const answer = await this.#ask(
          waitRequest({ topicName: this.name, offset, timeoutMs: 1000 }),
        );
        if (decodeWaitAnswer(answer) > offset) return;
      } catch {
        await delay(this.#scheduler, 200);
      }
    }
  }
}
