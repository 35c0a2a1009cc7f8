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
import type { Broker, ClusterView, Route, RouteOptions } from "../peer/broker.ts";
import type { MessageSource, Topic } from "../peer/topic.ts";
import { ProtocolError } from "../wire/errors.ts";
import type { Request, SubscribeFrom } from "../wire/requests.ts";
import type { TopicDescription } from "../wire/responses.ts";
import { hasLimits, type Retention, type RetentionPatch, withDefaults } from "../wire/retention.ts";
import { ClusterNode, type DiscoveryPeer } from "./cluster_node.ts";
import { type MetaCommand, MetaState } from "./meta_state.ts";
import type { ClusterSecret } from "./peer_auth.ts";
import {
  decodeCreated,
  decodeSnapshotChunkAnswer,
  metaRequest,
  snapshotChunkRequest,
} from "./peer_rpc.ts";
import type { SnapshotChunk, SnapshotChunkRequest } from "./snapshot_transfer.ts";
import { type JoinOutcome, tryJoin } from "./join.ts";
import { LivenessView } from "./liveness.ts";
import { MetadataClient } from "./metadata_client.ts";
import { registerPeerActions } from "./peer_actions.ts";
import { placeReplicas } from "./placement.ts";
import { clusterTopicsMax, PlacementLoad } from "./placement_load.ts";
import { Reconciler } from "./reconciler.ts";
import { RetentionLoop } from "./retention_loop.ts";
import { removedFromGroup, ReplicaManager } from "./replica_manager.ts";
import { TopicRouter } from "./router.ts";
import { type GroupStats, groupStats } from "./stats.ts";
import { RaftHost } from "./raft_host.ts";
import { Changes } from "./_changes.ts";
import { type ClusterRuntime, delay, randomId, systemRuntime } from "./runtime.ts";
import type { PeerTransport } from "./transport.ts";
import { ReplicaGroup } from "./replica_group.ts";

/** Longest one chunk of a snapshot transfer (at most 1 MiB) may take. */
const snapshotChunkTimeoutMs = 10_000;

export { forwardHopsMax } from "./peer_rpc.ts";
export { JoinRefusedError } from "./join.ts";
export { metaVotersMax } from "./reconcile_plan.ts";
export { inSyncTicksMax } from "./router.ts";
export type { GroupStats } from "./stats.ts";

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
  /**
   * Most topics in the cluster; creating more answers `overloaded`.
   * Default: what its members hold (`clusterTopicsMax`), at least 10,000.
   */
  topicsMax?: number;
  /** Limits of a topic created through this peer that its `create_topic` leaves out. Default: none. */
  retentionDefaults?: Retention;
  /** Entries a Raft group applies between two snapshots. Default 10,000. */
  snapshotEntries?: number;
  /** Clock and timers, randomness and replica logs. Default: `systemRuntime(dataDir)`. */
  runtime?: ClusterRuntime;
  /** How to reach other members. Default: `PeerLinks` over TCP or TLS. */
  transport?: PeerTransport;
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
  /** Replicas per node for placing new topics, kept as metadata applies. */
  readonly #load = new PlacementLoad(this.#meta);
  #metaGroup!: ReplicaGroup;
  readonly #replicas: ReplicaManager;
  readonly #router: TopicRouter;
  readonly #reconciler: Reconciler;
  readonly #retention: RetentionLoop;
  readonly #logger = getLogger("cluster");
  readonly #runtime: ClusterRuntime;
  /** Wakes requests waiting for a leader, a reachable peer or an opened replica. */
  readonly #changes: Changes;
  #leaderChanges = 0;
  #localScheduled = false;
  #closed = false;
  #joining: Promise<void> | undefined;
  /** Set by `leave`: the join loop stops. */
  #leaving = false;
  #directoryId!: string;
  /**
   * True while a node with an empty data directory waits for the cluster to
   * accept its join. Until then it answers no vote: if its id was a voter
   * whose data was lost, a vote from its empty log could elect a leader that
   * lacks entries the old directory acknowledged (the join is then refused).
   */
  #awaitingJoin = false;
  /**
   * True while this node waits for its first join with an empty data
   * directory: it belongs to no cluster yet and tells peers that ask it to
   * take them in (`answerJoin`), so that peers started together find that
   * no member answered and the first listed one bootstraps.
   */
  #unjoined = false;
  readonly #fatal = Promise.withResolvers<Error>();

  private constructor(options: ClusterBrokerOptions) {
    this.nodeId = options.nodeId;
    this.#options = options;
    this.#runtime = options.runtime ?? systemRuntime(options.dataDir);
    this.#changes = new Changes();
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
    const links = this.#node.links;
    this.#host = new RaftHost(options.nodeId, {
      send: (nodeId, frame) => links.send(nodeId, frame),
      // Entry data travels raw where the transport takes prebuilt frames.
      sendFrame: links.sendFrame === undefined
        ? undefined
        : (nodeId, frame) => links.sendFrame!(nodeId, frame),
    }, {
      tickMs: options.tickMs,
      isReachable: (nodeId) => this.#liveness.awake(nodeId),
      scheduler: this.#runtime.scheduler,
      incarnation: randomId(this.#runtime.rng),
    });
    this.#node.membership.onChange(() => this.#changes.notify());
    this.#node.links.onStateChange(() => this.#changes.notify());
    const isClosed = () => this.#closed;
    this.#replicas = new ReplicaManager({
      nodeId: options.nodeId,
      runtime: this.#runtime,
      host: this.#host,
      meta: this.#meta,
      liveness: this.#liveness,
      changes: this.#changes,
      onLeaderChange: () => this.#leaderChanged(),
      isClosed,
      fetchSnapshotChunk: (leader, request) => this.#fetchSnapshotChunk(leader, request),
      snapshotEntries: options.snapshotEntries,
      directoryId: () => this.#directoryId,
    });
    this.#retention = new RetentionLoop({
      retentionOf: (name) => this.#meta.topics.get(name)?.retention,
      replicas: () => this.#replicas.entries(),
      // Retention or placement changed, or a replica opened here.
      onChange: (listener) => {
        this.#meta.onChange(listener);
        this.#replicas.onGroupChange(listener);
      },
      scheduler: this.#runtime.scheduler,
    });
    this.#router = new TopicRouter({
      nodeId: options.nodeId,
      meta: this.#meta,
      metadata: this.#metadata,
      replicas: this.#replicas,
      liveness: this.#liveness,
      changes: this.#changes,
      scheduler: this.#runtime.scheduler,
      requestTimeoutMs: options.requestTimeoutMs,
      isClosed,
    });
    this.#reconciler = new Reconciler({
      nodeId: options.nodeId,
      address: this.#address,
      directoryId: () => this.#directoryId,
      meta: this.#meta,
      metaGroup: () => this.#metaGroup,
      metadata: this.#metadata,
      membership: this.#node.membership,
      liveness: this.#liveness,
      replicas: this.#replicas,
      scheduler: this.#runtime.scheduler,
      isClosed,
    });
    this.#host.onPeerRestart = (nodeId) => this.#forgetFollower(nodeId, "restarted");
    this.#host.onPeerUnreachable = (nodeId) => this.#forgetFollower(nodeId, "is unreachable");
    registerPeerActions(this.#node.peerHandler, {
      broker: this,
      host: this.#host,
      meta: this.#meta,
      metaGroup: () => this.#metaGroup,
      metadata: this.#metadata,
      router: this.#router,
      replicas: this.#replicas,
      awaitingJoin: () => this.#awaitingJoin,
      unjoined: () => this.#unjoined,
      createAsController: (name, factor, retention) =>
        this.#createAsController(name, factor, retention),
    });
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
    broker.#reconciler.start();
    broker.#retention.start();
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
    await this.#replicas.loadClosedLogs();
    const directory = stores.metaDirectory;
    const opened = await this.#replicas.openLog(directory, "meta", "meta");
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
      fetchSnapshotChunk: (leader, request) => this.#fetchSnapshotChunk(leader, request),
      snapshotEntries: this.#options.snapshotEntries,
      onRecovered: () => this.#replicas.recovered("the metadata", directory),
    });
    this.#host.add(this.#metaGroup);
    // Many metadata entries apply in one Ready: reconcile once after them.
    this.#meta.onChange(() => {
      if (this.#localScheduled) return;
      this.#localScheduled = true;
      this.#runtime.scheduler.defer(() => {
        this.#localScheduled = false;
        this.#replicas.reconcile();
      });
    });
    if (bootstrap) {
      this.#logger.info("Node {id} bootstraps a new cluster", { id: this.nodeId });
      this.#metaGroup.campaign();
    } else if (fresh || recovering) {
      this.#awaitingJoin = true;
      this.#unjoined = fresh;
      this.#joining = this.#joinLoop(others);
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
      while (
        !this.#closed && !this.#leaving && (await this.#tryJoin(peers, 1)) !== "joined"
      ) {
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
    this.#unjoined = false;
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

  // ---- Broker: topics -------------------------------------------------

  async createTopic(
    name: string,
    replicationFactor?: number,
    retention?: Retention,
  ): Promise<boolean> {
    this.#router.refuseIfRemoved();
    const factor = replicationFactor ?? this.#options.replicationFactor;
    // This peer's defaults fill the limits left out, as its replication factor does.
    const limits = withDefaults(retention, this.#options.retentionDefaults ?? {});
    return await this.#metadata.atController(
      () => this.#createAsController(name, factor, limits),
      async (leader) => {
        const answer = await this.#metadata.request(
          leader,
          metaRequest({ kind: "create_topic", name, replicationFactor: factor, retention: limits }),
        );
        return decodeCreated(answer);
      },
    );
  }

  /**
   * Changes a topic's retention through the metadata log, and answers the
   * retention in force once this peer's metadata shows the change.
   */
  async alterTopic(name: string, patch: RetentionPatch): Promise<Retention> {
    this.#router.refuseIfRemoved();
    const result = await this.#metadata.propose({ op: "alter_retention", name, patch });
    if (!result.ok) throw new ProtocolError("topic_not_found", `Topic '${name}' does not exist`);
    await this.#metadata.barrier();
    const placement = this.#meta.topics.get(name);
    if (placement === undefined) {
      throw new ProtocolError("topic_not_found", `Topic '${name}' was deleted meanwhile`);
    }
    return placement.retention ?? {};
  }

  async #createAsController(
    name: string,
    replicationFactor: number,
    retention?: Retention,
  ): Promise<boolean> {
    if (this.#meta.topics.has(name)) return false;
    const topicsMax = this.#options.topicsMax ??
      clusterTopicsMax(this.#meta.activeMembers().length, this.#options.replicationFactor);
    if (this.#meta.topics.size >= topicsMax) {
      throw new ProtocolError(
        "overloaded",
        `The cluster already holds its maximum of ${topicsMax} topics`,
      );
    }
    await this.#reconciler.registerSelf();
    const alive = this.#liveness.aliveMembers();
    const replicas = placeReplicas(alive, this.#load.current(), replicationFactor);
    if (replicas.length === 0) {
      throw new ProtocolError("unavailable", "No live peer can hold the topic's replicas");
    }
    const command: MetaCommand = { op: "create_topic", name, replicas, replicationFactor };
    if (hasLimits(retention)) command.retention = retention;
    const release = this.#load.reserve(name, replicas);
    try {
      return (await this.#metadata.propose(command)).ok;
    } finally {
      release();
    }
  }

  async deleteTopic(name: string): Promise<void> {
    this.#router.refuseIfRemoved();
    const result = await this.#metadata.propose({ op: "delete_topic", name });
    if (!result.ok) throw new ProtocolError("topic_not_found", `Topic '${name}' does not exist`);
  }

  async topicNames(): Promise<string[]> {
    this.#router.refuseIfRemoved();
    await this.#metadata.barrier();
    return [...this.#meta.topics.keys()].sort();
  }

  topic(name: string, options: RouteOptions = {}): Promise<Topic> {
    return this.#router.topic(name, options);
  }

  route(name: string, options: RouteOptions = {}): Promise<Route> {
    return this.#router.route(name, options);
  }

  leadingTopic(name: string): Topic | undefined {
    return this.#router.leadingTopic(name);
  }

  forward(nodeId: number, request: Request, options: RouteOptions = {}): Promise<unknown> {
    return this.#router.forward(nodeId, request, options);
  }

  source(name: string): Promise<MessageSource> {
    return this.#router.source(name);
  }

  subscribeStart(
    name: string,
    subscriberId: string,
    from: SubscribeFrom | undefined,
    options: RouteOptions = {},
  ): Promise<number> {
    return this.#router.subscribeStart(name, subscriberId, from, options);
  }

  describeTopic(
    name: string,
    options: RouteOptions = {},
  ): Promise<Omit<TopicDescription, "status">> {
    return this.#router.describeTopic(name, options);
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
    // A join still retrying (its answer lost) would add this node back after
    // its removal (whole-cluster seed 306143): it stops first.
    this.#leaving = true;
    await this.#joining;
    await this.removeNode(this.nodeId);
    const scheduler = this.#runtime.scheduler;
    const deadline = scheduler.now() + timeoutMs;
    // Every topic placed here must have moved, whether or not its replica was
    // open yet (a peer restarted just before leaving may not have reopened it).
    const pending = new Set([
      ...this.#replicas.names(),
      ...[...this.#meta.topics.values()]
        .filter((topic) => topic.replicas.includes(this.nodeId))
        .map((topic) => topic.name),
    ]);
    while (scheduler.now() < deadline && pending.size > 0) {
      await delay(scheduler, 200);
      for (const name of [...pending]) {
        if (!(await this.#movedAway(name))) continue;
        pending.delete(name);
        // Its files may go only once the committed metadata here records the
        // group without this node: a voter that merely lags is not in sync
        // either, and deleting its log would let an empty replica vote in its
        // place. (Removed from the metadata group, this node may never learn
        // that record: then the files stay, as after a crash.)
        const placement = this.#meta.topics.get(name);
        if (placement === undefined || removedFromGroup(placement, this.nodeId)) {
          await this.#replicas.drop(name);
        }
      }
    }
    if (pending.size > 0) {
      this.#logger.warn("Left with replicas of {topics} not yet moved", { topics: [...pending] });
    }
    await this.#node.leave();
  }

  /**
   * Whether a topic's current leader places it elsewhere, with every new
   * replica in sync and this node not (asked of another peer: once the
   * controller removed this node from the metadata group, its own metadata
   * no longer follows, so waiting for it to show the move waited the whole
   * timeout on every leave).
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
      if (answer.status !== "topic") return false;
      const inSync = answer.in_sync!;
      return !answer.replicas!.includes(this.nodeId) && !inSync.includes(this.nodeId) &&
        answer.replicas!.every((id) => inSync.includes(id));
    } catch {
      return false;
    }
  }

  /** One pull of a snapshot transfer from `leader` (`peer_snapshot_chunk`). */
  async #fetchSnapshotChunk(
    leader: number,
    request: SnapshotChunkRequest,
  ): Promise<SnapshotChunk> {
    const answer = await this.#node.links.request(leader, snapshotChunkRequest(request), {
      timeoutMs: snapshotChunkTimeoutMs,
    });
    return decodeSnapshotChunkAnswer(answer, request);
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

  /**
   * Asks this peer's replica of group `groupId` (`meta`, or `t:<topic>`) to
   * hand its leadership to node `to`: Raft's leadership transfer, in which
   * `to` campaigns at once (past the voters' leases) when its log caught up,
   * and proposals wait meanwhile. Returns false, doing nothing, unless this
   * peer leads the group and `to` is another of its voters.
   *
   * @example
   * ```ts
   * if (!broker.transferLeadership("t:events", 2)) console.log("not the leader here");
   * ```
   */
  transferLeadership(groupId: string, to: number): boolean {
    const group = this.#host.groups.get(groupId);
    if (group === undefined || !group.isLeader || to === this.nodeId) return false;
    if (!group.node.status().conf.voters.includes(to)) return false;
    group.transferLeadership(to);
    return true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#reconciler.stop();
    this.#retention.stop();
    this.#changes.notify();
    await this.#replicas.closeTopics();
    await this.#joining?.catch(() => {});
    await this.#host.close();
    await this.#replicas.recordClosedLogs(this.#metaGroup);
    await this.#node.close();
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
