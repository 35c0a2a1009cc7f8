/**
 * The broker of a cluster peer: topics are Raft groups placed on
 * `replicationFactor` peers by the controller (the metadata group's leader),
 * any peer routes any request to the topic's leader, and background
 * reconciliation moves every group toward the placement the metadata holds
 * (join as learner, catch up, promote, then remove: one change at a time).
 *
 * @module
 */

import { getLogger } from "../logging.ts";
import type { Broker, ClusterView, RouteOptions } from "../peer/broker.ts";
import { TopicElsewhereError } from "../peer/broker.ts";
import { Session } from "../peer/session.ts";
import { subscriptionStart } from "../peer/subscription.ts";
import type { MessageSource, ReadResult, Topic } from "../peer/topic.ts";
import { topicsMaxDefault } from "../peer/local_broker.ts";
import { ProtocolError } from "../wire/errors.ts";
import type { Request, SubscribeFrom } from "../wire/requests.ts";
import type { TopicDescription } from "../wire/responses.ts";
import { ClusterNode, type DiscoveryPeer } from "./cluster_node.ts";
import { MetaState, type TopicPlacement } from "./meta_state.ts";
import type { ClusterSecret } from "./peer_auth.ts";
import { checkSender } from "./peer_handler.ts";
import {
  decodeCreated,
  decodeForward,
  decodeForwardAnswer,
  decodeMeta,
  decodeRaftFrame,
  decodeSubscribeStart,
  decodeSubscribeStartAnswer,
  decodeWait,
  decodeWaitAnswer,
  forwardHopsMax,
  forwardRequest,
  metaRequest,
  subscribeStartRequest,
  waitRequest,
} from "./peer_rpc.ts";
import { answerJoin, asksForVote, type JoinOutcome, tryJoin } from "./join.ts";
import { LivenessView } from "./liveness.ts";
import { MetadataClient, quorumLostGraceMs } from "./metadata_client.ts";
import { loadOf, placeReplicas } from "./placement.ts";
import { planGroup, planMetaGroup, planPlacementRepair } from "./reconcile_plan.ts";
import { type GroupStats, groupStats } from "./stats.ts";
import { RaftHost } from "./raft_host.ts";
import { backoffDelayMs } from "./_backoff.ts";
import { Changes, waitUntil } from "./_changes.ts";
import {
  type Cancel,
  type ClusterRuntime,
  delay,
  type OpenedLog,
  type Scheduler,
  systemRuntime,
} from "./runtime.ts";
import type { PeerTransport } from "./transport.ts";
import { RaftTopic, TopicMachine } from "./raft_topic.ts";
import { ReplicaGroup } from "./replica_group.ts";

export { forwardHopsMax } from "./peer_rpc.ts";
export { JoinRefusedError } from "./join.ts";
export { metaVotersMax } from "./reconcile_plan.ts";
export type { GroupStats } from "./stats.ts";
/** How often the controller and the group leaders reconcile. */
const reconcileMs = 300;
/** Retry delays for a replica that cannot be opened (each cause is logged once). */
const openRetryBounds = { backoffMinMs: reconcileMs, backoffMaxMs: 30_000 };
/**
 * A voter is in sync while its acknowledged log reached the commit index
 * within this many ticks (one minimum election timeout, 1 s by default).
 */
export const inSyncTicksMax = 10;
const metaGroupId = "meta";

/** Settings of a cluster broker (the cluster flags of `pubsub peer`). */
export interface ClusterBrokerOptions {
  nodeId: number;
  host: string;
  port: number;
  dataDir: string;
  /** The discovery list; its first entry bootstraps a new cluster. */
  peers: DiscoveryPeer[];
  replicationFactor: number;
  heartbeatMs: number;
  deadAfterMs: number;
  requestTimeoutMs: number;
  /** The cluster secret peer links prove they know; without it links are unauthenticated. */
  clusterSecret?: ClusterSecret;
  /** Dial peers over TLS, verifying them against these CA certificates. */
  tls?: { caCerts?: string[] };
  /**
   * The "host:port" other peers dial to reach this one (default host:port),
   * e.g. a proxy in front of it; clients still connect to host:port.
   */
  advertiseAddress?: string;
  /** Raft tick length; elections take 10-20 ticks. Default 100 ms. */
  tickMs?: number;
  /** Most topics in the cluster; creating more answers `overloaded`. Default 10,000. */
  topicsMax?: number;
  /** Clock and timers, randomness and replica logs. Default: `systemRuntime(dataDir)`. */
  runtime?: ClusterRuntime;
  /** How to reach other members. Default: `PeerLinks` over TCP or TLS. */
  transport?: PeerTransport;
}

interface LocalReplica {
  epoch: number;
  topic: RaftTopic;
  group: ReplicaGroup;
  /** Placement generation and term at which the group's membership last matched it. */
  settled?: { generation: number; term: number };
}

/**
 * A replicated broker.
 *
 * @example
 * ```ts
 * const broker = await ClusterBroker.open({ nodeId: 1, host: "127.0.0.1", port: 5001, ... });
 * const server = Server.listen({ ..., broker, peerHandler: broker.peerHandler });
 * ```
 */
export class ClusterBroker implements Broker {
  readonly nodeId: number;
  readonly #options: ClusterBrokerOptions;
  readonly #node: ClusterNode;
  readonly #host: RaftHost;
  readonly #liveness: LivenessView;
  readonly #metadata: MetadataClient;
  readonly #meta = new MetaState();
  #metaGroup!: ReplicaGroup;
  readonly #replicas = new Map<string, LocalReplica>();
  readonly #sessions = new Map<number, Session>();
  readonly #logger = getLogger("cluster");
  readonly #runtime: ClusterRuntime;
  /** Wakes requests waiting for a leader, a reachable peer or an opened replica. */
  readonly #changes: Changes;
  #timer: Cancel | undefined;
  #leaderChanges = 0;
  #localScheduled = false;
  #reconciling = false;
  #closed = false;
  #joining: Promise<void> | undefined;
  #directoryId!: string;
  /**
   * True while a node with an empty data directory waits for the cluster to
   * accept its join. Until then it answers no vote: if its id was a voter
   * whose data was lost, a vote from its empty log could elect a leader that
   * lacks entries the old directory acknowledged (the join is then refused).
   */
  #awaitingJoin = false;
  readonly #fatal = Promise.withResolvers<Error>();
  /** Last durable index of each log at the previous clean stop (see `replica_repair.ts`). */
  #closedLogs = new Map<string, number>();
  /** Replicas that could not be opened: the cause last logged and when to try again. */
  readonly #openFailures = new Map<string, { cause: string; attempts: number; retryAt: number }>();

  private constructor(options: ClusterBrokerOptions) {
    this.nodeId = options.nodeId;
    this.#options = options;
    this.#runtime = options.runtime ?? systemRuntime(options.dataDir);
    this.#changes = new Changes(this.#runtime.scheduler);
    this.#node = ClusterNode.start({
      id: options.nodeId,
      host: options.host,
      port: options.port,
      peers: options.peers,
      heartbeatMs: options.heartbeatMs,
      deadAfterMs: options.deadAfterMs,
      secret: options.clusterSecret,
      tls: options.tls,
      advertiseAddress: options.advertiseAddress,
      scheduler: this.#runtime.scheduler,
      transport: options.transport,
      link: { random: () => this.#runtime.rng.next() },
    });
    this.#liveness = new LivenessView({
      nodeId: options.nodeId,
      transport: this.#node.links,
      membership: this.#node.membership,
      clock: this.#runtime.scheduler,
      activeMembers: () => this.#meta.activeMembers(),
    });
    this.#metadata = new MetadataClient({
      nodeId: options.nodeId,
      meta: this.#meta,
      metaGroup: () => this.#metaGroup,
      transport: this.#node.links,
      liveness: this.#liveness,
      changes: this.#changes,
      scheduler: this.#runtime.scheduler,
      requestTimeoutMs: options.requestTimeoutMs,
      isClosed: () => this.#closed,
    });
    this.#host = new RaftHost(options.nodeId, {
      send: (nodeId, frame) => this.#node.links.send(nodeId, frame),
    }, {
      tickMs: options.tickMs,
      isReachable: (nodeId) => this.#liveness.awake(nodeId),
      scheduler: this.#runtime.scheduler,
    });
    this.#node.membership.onChange(() => this.#changes.notify());
    this.#node.links.onStateChange(() => this.#changes.notify());
    this.#host.onPeerRestart = (nodeId) => this.#forgetFollower(nodeId, "restarted");
    this.#host.onPeerUnreachable = (nodeId) => this.#forgetFollower(nodeId, "is unreachable");
    this.#registerPeerActions();
  }

  /** Opens the data directory, joins or bootstraps the cluster, and starts reconciling. */
  static async open(options: ClusterBrokerOptions): Promise<ClusterBroker> {
    const broker = new ClusterBroker(options);
    try {
      await broker.#startMeta();
    } catch (error) {
      await broker.close();
      throw error;
    }
    broker.#timer = broker.#runtime.scheduler.every(reconcileMs, () => broker.#reconcile());
    return broker;
  }

  /** Pass to the listener so peer frames reach this broker. */
  get peerHandler() {
    return this.#node.peerHandler;
  }

  // ---- startup ----------------------------------------------------------

  async #startMeta(): Promise<void> {
    const stores = this.#runtime.stores;
    this.#directoryId = (await stores.prepare(this.nodeId)).directoryId;
    this.#closedLogs = await stores.takeClosedLogs();
    const directory = stores.metaDirectory;
    const opened = await this.#openLog(directory, "meta", "meta");
    const store = opened.store;
    // A rebuilt metadata replica is not new: it never bootstraps, and joins
    // only to make sure it is a member (a no-op for a known one).
    const recovering = opened.recoveringTerm !== undefined;
    const fresh = store.lastIndex() === 0 && store.snapshot() === undefined && !recovering;
    const others = this.#options.peers.filter((peer) => peer.id !== this.nodeId);
    const first = this.#options.peers.length === 0 || this.#options.peers[0].id === this.nodeId;
    // The first listed peer bootstraps only when no other listed peer answers
    // at all: a restarted first peer with a wiped disk must not found a
    // second cluster beside the existing one, even while that one has no
    // quorum to take it back (it then keeps trying to join).
    const bootstrap = fresh && first && (await this.#tryJoin(others, 2)) === "nobody";
    this.#metaGroup = new ReplicaGroup({
      groupId: metaGroupId,
      nodeId: this.nodeId,
      store,
      rng: this.#runtime.rng,
      scheduler: this.#runtime.scheduler,
      stateMachine: this.#meta,
      send: this.#host.send,
      // The one metadata group stays awake: it is cheap, and the controller's
      // view of the cluster should never wait for a wake-up.
      voters: bootstrap ? [this.nodeId] : undefined,
      onLeaderChange: () => this.#leaderChanged(),
      onStorageFailure: () => this.#changes.notify(),
      recoveringTerm: opened.recoveringTerm,
      onRecovered: () => this.#recovered("the metadata", directory),
    });
    this.#host.add(this.#metaGroup);
    // Many metadata entries apply in one Ready: reconcile once after them.
    this.#meta.onChange(() => {
      if (this.#localScheduled) return;
      this.#localScheduled = true;
      this.#runtime.scheduler.defer(() => {
        this.#localScheduled = false;
        this.#reconcileLocal();
      });
    });
    if (bootstrap) {
      this.#logger.info("Node {id} bootstraps a new cluster", { id: this.nodeId });
      this.#metaGroup.campaign();
    } else if (fresh || recovering) {
      this.#awaitingJoin = true;
      this.#joining = this.#joinLoop(others);
    }
  }

  /**
   * Opens the log in `directory` (`key` names it in the clean-shutdown
   * record), quarantining and rebuilding it when it is damaged; says so once.
   */
  async #openLog(directory: string, key: string, label: string): Promise<OpenedLog> {
    const closedIndex = this.#closedLogs.get(key);
    // The record holds for the first open after the restart only.
    this.#closedLogs.delete(key);
    const opened = await this.#runtime.stores.open(directory, { label, closedIndex });
    if (opened.quarantined !== undefined) {
      this.#logger.error(
        "Quarantined the damaged replica {directory} in {path} ({reason}); it is rebuilt from the other replicas and neither votes nor campaigns until it caught up",
        { directory, path: opened.quarantined.path, reason: opened.quarantined.reason },
      );
    } else if (opened.recoveringTerm !== undefined) {
      this.#logger.warn("Replica {directory} is still rebuilding a lost log", { directory });
    }
    return opened;
  }

  /** Clears a rebuilt replica's recovering flag: its Raft core caught up. */
  async #recovered(what: string, directory: string): Promise<void> {
    try {
      await this.#runtime.stores.clearRecovering(directory);
      this.#logger.info("The rebuilt replica of {what} caught up and votes again", { what });
    } catch (error) {
      // The flag stays on disk: after a restart the replica recovers again, which is safe.
      this.#logger.warn("Cannot clear the recovering flag of {directory}: {error}", {
        directory,
        error: (error as Error).message,
      });
    }
  }

  /** See `tryJoin` of `join.ts`. */
  #tryJoin(peers: DiscoveryPeer[], rounds: number): Promise<JoinOutcome> {
    return tryJoin(peers.map((peer) => peer.id), rounds, {
      nodeId: this.nodeId,
      address: this.#address,
      directoryId: this.#directoryId,
      transport: this.#node.links,
      scheduler: this.#runtime.scheduler,
      isClosed: () => this.#closed,
    });
  }

  async #joinLoop(peers: DiscoveryPeer[]): Promise<void> {
    try {
      while (!this.#closed && (await this.#tryJoin(peers, 1)) !== "joined") {
        await delay(this.#runtime.scheduler, 500);
      }
    } catch (error) {
      this.#logger.error("Node {id} cannot join the cluster: {error}", {
        id: this.nodeId,
        error: (error as Error).message,
      });
      this.#fatal.resolve(error as Error);
      return;
    }
    this.#awaitingJoin = false;
    if (!this.#closed) this.#logger.info("Node {id} joined the cluster", { id: this.nodeId });
  }

  /**
   * Settles with the reason when this peer cannot go on (the cluster refused
   * its join): the process should say so and exit.
   */
  get fatal(): Promise<Error> {
    return this.#fatal.promise;
  }

  get #address(): string {
    return this.#options.advertiseAddress ?? `${this.#options.host}:${this.#options.port}`;
  }

  // ---- peer actions -----------------------------------------------------

  #registerPeerActions(): void {
    const handler = this.#node.peerHandler;
    handler.register("peer_raft", (message, context) => {
      const frame = decodeRaftFrame(message);
      checkSender(frame.from, context);
      if (this.#awaitingJoin) frame.batch = frame.batch.filter((item) => !asksForVote(item));
      return this.#host.receive(frame);
    });
    handler.register("peer_join", (message) =>
      answerJoin(message, {
        members: () => this.#meta.members,
        metaBarrier: () => this.#metadata.barrier(),
        proposeMeta: (command) => this.#metadata.propose(command),
        leader: () => this.#metaGroup.leader,
      }));
    handler.register("peer_forward", (message) => this.#handleForward(message));
    handler.register("peer_meta", (message) => this.#handleMeta(message));
    handler.register("peer_meta_index", () => this.#handleMetaIndex());
    handler.register("peer_subscribe_start", (message) => this.#handleSubscribeStart(message));
    handler.register("peer_wait", (message) => this.#handleWait(message));
  }

  async #handleForward(message: Record<string, unknown>): Promise<unknown> {
    const { hops, request } = decodeForward(message);
    if (hops > forwardHopsMax) {
      throw new ProtocolError(
        "unavailable",
        "The request was relayed too often; no leader is settled",
      );
    }
    let session = this.#sessions.get(hops);
    if (session === undefined) {
      session = new Session({ broker: this, hops });
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

  /** Metadata changes proposed by other peers run on the controller, validated first. */
  async #handleMeta(message: Record<string, unknown>): Promise<unknown> {
    const proposal = decodeMeta(message);
    if (proposal.kind === "create_topic") {
      const created = await this.#createAsController(proposal.name, proposal.replicationFactor);
      return { status: "ok", created };
    }
    return { status: "ok", result: await this.#metadata.propose(proposal.command) };
  }

  async #handleMetaIndex(): Promise<unknown> {
    await this.#metaGroup.readBarrier();
    return { status: "ok", index: this.#metaGroup.node.status().applied };
  }

  async #handleSubscribeStart(message: Record<string, unknown>): Promise<unknown> {
    const request = decodeSubscribeStart(message);
    const start = await this.subscribeStart(
      request.topicName,
      request.subscriberId,
      request.from,
      { hops: request.hops },
    );
    return { status: "ok", start };
  }

  async #handleWait(message: Record<string, unknown>): Promise<unknown> {
    const { topicName: name, offset, timeoutMs } = decodeWait(message);
    const local = this.#replicas.get(name);
    if (local === undefined) throw new ProtocolError("unavailable", `No replica of '${name}' here`);
    await local.topic.waitForOffset(offset, AbortSignal.timeout(timeoutMs));
    return { status: "ok", next_offset: local.topic.localBounds().nextOffset };
  }

  // ---- Broker: topics -------------------------------------------------

  async createTopic(name: string, replicationFactor?: number): Promise<boolean> {
    this.#refuseIfRemoved();
    const factor = replicationFactor ?? this.#options.replicationFactor;
    return await this.#metadata.atController(
      () => this.#createAsController(name, factor),
      async (leader) => {
        const answer = await this.#metadata.request(
          leader,
          metaRequest({ kind: "create_topic", name, replicationFactor: factor }),
        );
        return decodeCreated(answer);
      },
    );
  }

  async #createAsController(name: string, replicationFactor: number): Promise<boolean> {
    if (this.#meta.topics.has(name)) return false;
    const topicsMax = this.#options.topicsMax ?? topicsMaxDefault;
    if (this.#meta.topics.size >= topicsMax) {
      throw new ProtocolError(
        "overloaded",
        `The cluster already holds its maximum of ${topicsMax} topics`,
      );
    }
    await this.#registerSelf();
    const alive = this.#liveness.aliveMembers();
    const replicas = placeReplicas(alive, loadOf(this.#meta.topics.values()), replicationFactor);
    if (replicas.length === 0) {
      throw new ProtocolError("unavailable", "No live peer can hold the topic's replicas");
    }
    const result = await this.#metadata.propose({
      op: "create_topic",
      name,
      replicas,
      replicationFactor,
    });
    return result.ok;
  }

  async deleteTopic(name: string): Promise<void> {
    this.#refuseIfRemoved();
    const result = await this.#metadata.propose({ op: "delete_topic", name });
    if (!result.ok) throw new ProtocolError("topic_not_found", `Topic '${name}' does not exist`);
  }

  async topicNames(): Promise<string[]> {
    this.#refuseIfRemoved();
    await this.#metadata.barrier();
    return [...this.#meta.topics.keys()].sort();
  }

  async topic(name: string, options: RouteOptions = {}): Promise<Topic> {
    this.#refuseIfRemoved();
    const placement = await this.#metadata.placement(name);
    const leading = await waitUntil(() => this.#routeStep(placement, options), {
      scheduler: this.#runtime.scheduler,
      changes: this.#changes,
      timeoutMs: this.#options.requestTimeoutMs,
      // Without a majority of its replicas no leader can be elected: say so
      // (after a moment for links that are only reconnecting) instead of
      // making the client wait for the whole request timeout.
      graceMs: quorumLostGraceMs,
      quorumLost: () => this.#liveness.quorumLost(placement.replicas),
      closed: () => this.#closed,
    });
    if (leading !== undefined) return leading;
    throw this.#replicas.get(name)?.group.storageFailure ??
      new ProtocolError(
        "unavailable",
        `Topic '${name}' has no leader${this.#liveness.whyNoLeader(placement.replicas)}`,
      );
  }

  /**
   * One look at where a topic's requests go: the local replica when it
   * leads, TopicElsewhereError naming the peer that does (or knows), the
   * storage failure a sole replica answers with, or undefined to wait.
   */
  #routeStep(placement: TopicPlacement, options: RouteOptions): Topic | undefined {
    const name = placement.name;
    const local = this.#replicas.get(name);
    if (local?.group.isLeader) return local.topic;
    const leader = local?.group.leader ?? 0;
    // A leader this node cannot reach is most likely dead: wait for the
    // election that replaces it rather than fail the request at once.
    if (
      leader !== 0 && leader !== this.nodeId && (options.hops ?? 0) < forwardHopsMax &&
      this.#liveness.reachable(leader)
    ) {
      throw new TopicElsewhereError(name, leader);
    }
    const hostsReplica = placement.replicas.includes(this.nodeId);
    const cannotOpen = this.#openFailures.has(replicaKey(placement));
    if (
      local === undefined && (!hostsReplica || cannotOpen) && (options.hops ?? 0) < forwardHopsMax
    ) {
      // No replica here (none placed here, or it cannot be opened): another
      // replica knows (or will soon know) the leader.
      const other = this.#liveness.pickReplica(placement.replicas);
      if (other !== undefined) throw new TopicElsewhereError(name, other);
    }
    // A replica whose disk failed knows no leader until it restarts; the
    // other replicas do (or elect one), so a client's request goes there.
    // A relayed one is answered at once instead: sent on again it could
    // go around the replicas back to a peer link that answers in order
    // and wait on itself. A sole replica answers at once too.
    const storageFailure = local?.group.storageFailure;
    if (storageFailure !== undefined && leader === 0) {
      const other = (options.hops ?? 0) === 0
        ? this.#liveness.pickReplica(placement.replicas)
        : undefined;
      if (other !== undefined) throw new TopicElsewhereError(name, other);
      throw storageFailure;
    }
    return undefined;
  }

  /**
   * A peer removed from the cluster stops serving: its metadata is no longer
   * kept current, so it sends clients to the peers that remain.
   */
  #refuseIfRemoved(): void {
    if (this.#meta.members.get(this.nodeId)?.left) {
      throw new ProtocolError(
        "unavailable",
        `Peer ${this.nodeId} was removed from the cluster; connect to another peer`,
      );
    }
  }

  async forward(nodeId: number, request: Request, options: RouteOptions = {}): Promise<unknown> {
    const reply = await this.#metadata.request(
      nodeId,
      forwardRequest({ hops: options.hops ?? 1, request }),
    );
    return decodeForwardAnswer(reply);
  }

  async source(name: string): Promise<MessageSource> {
    this.#refuseIfRemoved();
    const placement = await this.#metadata.placement(name);
    const scheduler = this.#runtime.scheduler;
    // A replica placed here is a moment away (unless it cannot be opened);
    // reading it beats streaming.
    await waitUntil(
      () =>
        !placement.replicas.includes(this.nodeId) || this.#replicas.has(name) ||
        this.#openFailures.has(replicaKey(placement)) || undefined,
      {
        scheduler,
        changes: this.#changes,
        timeoutMs: this.#options.requestTimeoutMs,
        closed: () => this.#closed,
      },
    );
    const local = this.#replicas.get(name);
    // A rebuilding replica's committed log is still behind: stream from the leader.
    const usable = local !== undefined && local.epoch === placement.epoch;
    if (usable && !local.group.recovering) return local.topic;
    const other = this.#liveness.pickReplica(placement.replicas);
    if (other === undefined) {
      if (usable) return local.topic;
      throw new ProtocolError("unavailable", `Replica of '${name}' is not open yet`);
    }
    return new RemoteSource(
      name,
      this,
      scheduler,
      (message) =>
        this.#metadata.request(this.#liveness.pickReplica(placement.replicas) ?? other, message),
    );
  }

  async subscribeStart(
    name: string,
    subscriberId: string,
    from: SubscribeFrom | undefined,
    options: RouteOptions = {},
  ): Promise<number> {
    try {
      return await subscriptionStart(await this.topic(name, options), subscriberId, from);
    } catch (error) {
      if (!(error instanceof TopicElsewhereError)) throw error;
      const answer = await this.#metadata.request(
        error.leader,
        subscribeStartRequest({
          topicName: name,
          subscriberId,
          from,
          hops: (options.hops ?? 0) + 1,
        }),
      );
      return decodeSubscribeStartAnswer(answer);
    }
  }

  async describeTopic(
    name: string,
    options: RouteOptions = {},
  ): Promise<Omit<TopicDescription, "status">> {
    try {
      await this.topic(name, options);
    } catch (error) {
      if (!(error instanceof TopicElsewhereError)) throw error;
      const answer = await this.forward(error.leader, {
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
    const placement = await this.#metadata.placement(name);
    const local = this.#replicas.get(name)!;
    const { firstOffset, nextOffset } = await local.topic.bounds();
    return {
      topic: name,
      replicas: placement.replicas,
      leader: this.nodeId,
      in_sync: this.#inSync(local.group),
      first_offset: firstOffset,
      next_offset: nextOffset,
    };
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
      if (id === this.nodeId) return group.storageFailure === undefined;
      return this.#liveness.awake(id);
    }).sort((a, b) => a - b);
  }

  clusterStatus(): Promise<ClusterView> {
    const view = this.#node.membership.view();
    const seen = new Set(view.map((node) => node.id));
    for (const member of this.#meta.members.values()) {
      const node = view.find((candidate) => candidate.id === member.id);
      if (member.left && node) node.state = "left";
      if (!seen.has(member.id)) {
        view.push({
          id: member.id,
          address: member.address,
          state: member.left ? "left" : "suspect",
          last_heartbeat_ms_ago: 0,
        });
      }
    }
    view.sort((a, b) => a.id - b.id);
    for (const node of view) {
      if (node.id === this.nodeId || node.state === "left") continue;
      // Why this peer cannot link to that one (TLS, cluster secret, refused), if it cannot.
      const linkError = this.#node.links.lastError(node.id);
      if (linkError !== undefined) node.link_error = linkError;
    }
    return Promise.resolve({
      nodes: view,
      meta_leader: this.#metaGroup.leader || null,
      meta_voters: [...this.#metaGroup.node.status().conf.voters].sort((a, b) => a - b),
      topics: this.#meta.topics.size,
    });
  }

  async removeNode(nodeId: number): Promise<void> {
    const member = this.#meta.members.get(nodeId);
    if (member === undefined || member.left) {
      await this.#metadata.barrier();
      const again = this.#meta.members.get(nodeId);
      if (again === undefined || again.left) {
        throw new ProtocolError("bad_request", `Node ${nodeId} is not a member of this cluster`);
      }
    }
    await this.#metadata.propose({ op: "remove_member", id: nodeId });
  }

  /** Removes this node from the cluster and waits (bounded) until its replicas moved away. */
  async leave(timeoutMs = 30_000): Promise<void> {
    await this.removeNode(this.nodeId);
    const scheduler = this.#runtime.scheduler;
    const deadline = scheduler.now() + timeoutMs;
    // Every topic placed here must have moved, whether or not its replica was
    // open yet (a peer restarted just before leaving may not have reopened it).
    const pending = new Set([
      ...this.#replicas.keys(),
      ...[...this.#meta.topics.values()]
        .filter((topic) => topic.replicas.includes(this.nodeId))
        .map((topic) => topic.name),
    ]);
    while (scheduler.now() < deadline && pending.size > 0) {
      await delay(scheduler, 200);
      for (const name of [...pending]) {
        if (!(await this.#movedAway(name))) continue;
        pending.delete(name);
        await this.#dropReplica(name);
      }
    }
    if (pending.size > 0) {
      this.#logger.warn("Left with replicas of {topics} not yet moved", { topics: [...pending] });
    }
    await this.#node.leave();
  }

  /**
   * Whether a topic's current leader no longer counts this node among its
   * replicas (asked of another peer: this node's own metadata may be stale).
   */
  async #movedAway(name: string): Promise<boolean> {
    const other = this.#liveness.aliveMembers().find((id) =>
      id !== this.nodeId && this.#liveness.reachable(id)
    );
    if (other === undefined) return false;
    try {
      const answer = await this.forward(other, { action: "describe_topic", topic_name: name }) as {
        status?: string;
        replicas?: number[];
        in_sync?: number[];
      };
      if (answer.status === "topic_not_found") return true;
      return answer.status === "topic" && !answer.replicas!.includes(this.nodeId) &&
        !answer.in_sync!.includes(this.nodeId);
    } catch {
      return false;
    }
  }

  // ---- reconciliation --------------------------------------------------

  async #reconcile(): Promise<void> {
    if (this.#reconciling || this.#closed) return;
    this.#reconciling = true;
    try {
      this.#reconcileLocal();
      if (this.#metaGroup.isLeader) await this.#reconcileController();
      for (const [name, local] of this.#replicas) {
        if (local.group.isLeader) await this.#reconcileGroup(name, local);
      }
    } catch (error) {
      this.#logger.debug("Reconciliation deferred: {error}", { error: (error as Error).message });
    } finally {
      this.#reconciling = false;
    }
  }

  /** The controller's duties: register itself, shape the metadata group, repair placements. */
  /**
   * Waits for a reconciliation step at most one request timeout: a proposal
   * lost with a leadership change must not stall every later round.
   */
  #bounded<T>(step: Promise<T>): Promise<T> {
    return this.#metadata.withTimeout(step, "A reconciliation step timed out");
  }

  /** The controller records itself as a member (a bootstrapped cluster starts empty). */
  async #registerSelf(): Promise<boolean> {
    const self = this.#meta.members.get(this.nodeId);
    if (self?.left) return false;
    if (
      self === undefined || self.address !== this.#address ||
      self.directoryId !== this.#directoryId
    ) {
      await this.#bounded(
        this.#metadata.propose({
          op: "add_member",
          id: this.nodeId,
          address: this.#address,
          directoryId: this.#directoryId,
        }),
      );
    }
    return true;
  }

  /** The controller's duties: register itself, shape the metadata group, repair placements. */
  async #reconcileController(): Promise<void> {
    const status = this.#metaGroup.node.status();
    const plan = planMetaGroup({
      nodeId: this.nodeId,
      self: this.#meta.members.get(this.nodeId),
      address: this.#address,
      directoryId: this.#directoryId,
      active: this.#meta.activeMembers().map((member) => member.id),
      status,
    });
    if (plan.kind === "hand_over") {
      // This node was removed: hand the controller role to a remaining voter.
      if (plan.target !== undefined) this.#metaGroup.transferLeadership(plan.target);
      return;
    }
    if (plan.register) await this.#registerSelf();
    if (plan.change !== undefined) {
      await this.#bounded(this.#metaGroup.proposeConfChange(plan.change));
      return;
    }
    await this.#repairPlacements();
  }

  async #repairPlacements(): Promise<void> {
    const repair = planPlacementRepair({
      topics: this.#meta.topics.values(),
      members: this.#meta.members.values(),
      states: new Map(this.#node.membership.view().map((node) => [node.id, node.state])),
      alive: this.#liveness.aliveMembers(),
    });
    if (repair === undefined) return;
    this.#logger.info("Moving replicas of {topic} from {from} to {to}", {
      topic: repair.name,
      from: repair.from,
      to: repair.replicas,
    });
    await this.#bounded(
      this.#metadata.propose({ op: "set_replicas", name: repair.name, replicas: repair.replicas }),
    );
  }

  /** A group leader moves its group's membership one step toward the placement. */
  async #reconcileGroup(name: string, local: LocalReplica): Promise<void> {
    const placement = this.#meta.topics.get(name);
    if (placement === undefined) return;
    const plan = planGroup({
      nodeId: this.nodeId,
      placement,
      epoch: local.epoch,
      removed: this.#meta.members.get(this.nodeId)?.left === true,
      settled: local.settled,
      status: local.group.node.status(),
    });
    switch (plan.kind) {
      case "none":
        return;
      case "transfer":
        local.group.transferLeadership(plan.target);
        return;
      case "settle":
        if (plan.report) await this.#reportMembers(name, local);
        local.settled = { generation: plan.generation, term: plan.term };
        return;
      case "change":
        await this.#bounded(local.group.proposeConfChange(plan.change));
        if (plan.report) await this.#reportMembers(name, local);
        return;
    }
  }

  /**
   * Records the group's committed membership in the metadata. A removed
   * replica deletes its data only once this committed record leaves it out
   * (never because a message asked it to), so the report follows the conf
   * change's commit, and is repeated by the next leader if this one failed.
   */
  async #reportMembers(name: string, local: LocalReplica): Promise<void> {
    const conf = local.group.node.status().conf;
    const members = [...conf.voters, ...conf.learners].sort((a, b) => a - b);
    const recorded = this.#meta.topics.get(name)?.members;
    if (recorded !== undefined && recorded.join() === members.join()) return;
    await this.#bounded(
      this.#metadata.propose({ op: "group_members", name, epoch: local.epoch, members }),
    );
  }

  /** Creates replicas this node should hold and drops those of deleted topics. */
  #reconcileLocal(): void {
    if (this.#closed) return;
    for (const placement of this.#meta.topics.values()) {
      const local = this.#replicas.get(placement.name);
      if (local !== undefined && local.epoch !== placement.epoch) {
        this.#dropReplica(placement.name).catch(() => {});
        continue;
      }
      if (local !== undefined && removedFromGroup(placement, this.nodeId)) {
        this.#dropReplica(placement.name).catch(() => {});
        continue;
      }
      if (local === undefined && placement.replicas.includes(this.nodeId)) {
        const failure = this.#openFailures.get(replicaKey(placement));
        if (failure !== undefined && this.#runtime.scheduler.now() < failure.retryAt) continue;
        this.#openReplica(placement).catch((error) => this.#openFailed(placement, error as Error));
      }
    }
    for (const name of this.#replicas.keys()) {
      if (!this.#meta.topics.has(name)) this.#dropReplica(name).catch(() => {});
    }
  }

  #opening = new Set<string>();

  /**
   * A replica that cannot be opened (a damaged one is quarantined and
   * rebuilt instead, so this is the disk refusing: permissions, no space) is
   * retried with backoff; each cause is logged once, not at every retry.
   * Meanwhile this peer forwards the topic's requests to its leader.
   */
  #openFailed(placement: TopicPlacement, error: Error): void {
    const key = replicaKey(placement);
    const previous = this.#openFailures.get(key);
    const attempts = (previous?.attempts ?? 0) + 1;
    const cause = error.message;
    const random = () => this.#runtime.rng.next();
    const retryAt = this.#runtime.scheduler.now() +
      backoffDelayMs(attempts - 1, openRetryBounds, random);
    this.#openFailures.set(key, { cause, attempts, retryAt });
    this.#changes.notify();
    if (previous?.cause === cause) return;
    this.#logger.error(
      "Cannot open the replica of {topic}: {error}; its requests go to the leader meanwhile, and the open is retried",
      { topic: placement.name, error: cause },
    );
  }

  async #openReplica(placement: TopicPlacement): Promise<void> {
    if (this.#opening.has(placement.name)) return;
    this.#opening.add(placement.name);
    try {
      const key = replicaKey(placement);
      const directory = this.#topicDir(placement.name, placement.epoch);
      const opened = await this.#openLog(directory, key, `${placement.name}.${placement.epoch}`);
      const store = opened.store;
      if (this.#closed) {
        await store.close();
        return;
      }
      const fresh = store.lastIndex() === 0 && store.snapshot() === undefined;
      // Founding replicas bootstrap the group together; a replica added later
      // starts empty and learns the membership from the leader's log, and so
      // does a rebuilt one (its group exists: bootstrapping again would be
      // voting as a member that never lost anything).
      const founding = fresh && placement.generation === 0 && opened.recoveringTerm === undefined;
      if (this.#openFailures.delete(key)) {
        this.#logger.info("Opened the replica of {topic}", { topic: placement.name });
      }
      const machine = new TopicMachine(store);
      const group = new ReplicaGroup({
        groupId: `t:${placement.name}`,
        nodeId: this.nodeId,
        store,
        rng: this.#runtime.rng,
        scheduler: this.#runtime.scheduler,
        stateMachine: machine,
        send: this.#host.send,
        quiesce: this.#host.quiesce,
        voters: founding ? placement.replicas : undefined,
        onLeaderChange: () => this.#leaderChanged(),
        onStorageFailure: () => this.#changes.notify(),
        explainNoQuorum: (voters) => this.#liveness.explainNoQuorum(voters),
        recoveringTerm: opened.recoveringTerm,
        onRecovered: () => this.#recovered(`topic '${placement.name}'`, directory),
      });
      const topic = new RaftTopic(placement.name, group, machine);
      this.#replicas.set(placement.name, { epoch: placement.epoch, topic, group });
      this.#host.add(group);
      this.#changes.notify();
      // The preferred leader campaigns at once, so a new topic takes
      // writes after one round trip instead of a whole election timeout.
      if (founding && placement.replicas[0] === this.nodeId) group.campaign();
    } finally {
      this.#opening.delete(placement.name);
    }
  }

  async #dropReplica(name: string): Promise<void> {
    const local = this.#replicas.get(name);
    if (local === undefined) return;
    this.#replicas.delete(name);
    this.#changes.notify();
    local.topic.close();
    await this.#host.remove(local.group.groupId);
    await this.#runtime.stores.remove(this.#topicDir(name, local.epoch));
  }

  #topicDir(name: string, epoch: number): string {
    return this.#runtime.stores.topicDirectory(name, epoch);
  }

  /** A hosted group's leader or role changed: count it and wake the requests waiting. */
  #leaderChanged(): void {
    this.#leaderChanges++;
    this.#changes.notify();
  }

  /**
   * Replication figures for metrics: per hosted group its Raft term and, on
   * the leader, how many entries its slowest voter lags; and the number of
   * leader changes this peer has seen.
   */
  stats(): { groups: GroupStats[]; leaderChanges: number } {
    return {
      groups: groupStats(this.#host.groups.values(), this.nodeId),
      leaderChanges: this.#leaderChanges,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#timer?.();
    this.#changes.notify();
    for (const local of this.#replicas.values()) local.topic.close();
    await this.#joining?.catch(() => {});
    await this.#host.close();
    await this.#recordClosedLogs();
    await this.#node.close();
  }

  /**
   * Writes the clean-shutdown record: the durable end of every log, so that
   * the next start finds a log that lost synced entries meanwhile (a cut or
   * deleted file) instead of taking it for a torn tail.
   */
  async #recordClosedLogs(): Promise<void> {
    if (this.#metaGroup === undefined) return;
    const logs = new Map<string, number>([["meta", this.#metaGroup.store.syncedIndex()]]);
    for (const [name, local] of this.#replicas) {
      logs.set(`topics/${name}.${local.epoch}`, local.group.store.syncedIndex());
    }
    try {
      await this.#runtime.stores.writeClosedLogs(logs);
    } catch (error) {
      this.#logger.warn("Cannot write the clean-shutdown record: {error}", {
        error: (error as Error).message,
      });
    }
  }

  /**
   * A peer restarted (its Raft frames carry a new incarnation), or is
   * unreachable and may be restarting: every group this peer leads forgets
   * what it recorded of that follower's log and probes it again, since a
   * restart may have cut or rebuilt its replica. Until it acknowledges anew
   * it does not count toward commits or `in_sync`.
   */
  #forgetFollower(nodeId: number, why: string): void {
    let groups = 0;
    for (const group of this.#host.groups.values()) {
      if (!group.isLeader) continue;
      group.resetProgress(nodeId);
      groups++;
    }
    if (groups > 0) {
      this.#logger.info("Node {id} {why}: the {groups} groups led here probe its log again", {
        id: nodeId,
        why,
        groups,
      });
    }
  }
}

/**
 * Messages of a topic this node holds no replica of: committed messages are
 * fetched from the leader, and the tail is watched by long-polling a replica.
 */
class RemoteSource implements MessageSource {
  readonly name: string;
  readonly #broker: ClusterBroker;
  readonly #scheduler: Scheduler;
  readonly #ask: (message: { action: string } & Record<string, unknown>) => Promise<unknown>;

  constructor(
    name: string,
    broker: ClusterBroker,
    scheduler: Scheduler,
    ask: (message: { action: string } & Record<string, unknown>) => Promise<unknown>,
  ) {
    this.name = name;
    this.#broker = broker;
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
    let answer: unknown;
    try {
      answer = await this.#broker.topic(this.name).then((topic) => topic.read(fromOffset, max));
      return answer as ReadResult;
    } catch (error) {
      if (!(error instanceof TopicElsewhereError)) throw error;
      answer = await this.#broker.forward(error.leader, request);
    }
    const body = answer as {
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

/** A topic replica's key in the clean-shutdown record: its directory under the data directory. */
function replicaKey(placement: TopicPlacement): string {
  return `topics/${placement.name}.${placement.epoch}`;
}

/**
 * True once the committed metadata says this node's replica left the group:
 * the placement no longer lists it and the group's reported membership (a
 * committed conf change) does not either.
 */
function removedFromGroup(placement: TopicPlacement, nodeId: number): boolean {
  return !placement.replicas.includes(nodeId) && placement.members !== undefined &&
    !placement.members.includes(nodeId);
}
