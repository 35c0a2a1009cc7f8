/**
 * What a peer's request handler asks of the node behind it: topic lifecycle,
 * topic handles and cluster views. `LocalBroker` serves one peer alone; the
 * cluster broker serves the same interface over Raft groups.
 *
 * @module
 */

import type { NodeStatus, TopicDescription } from "../wire/responses.ts";
import type { Request, SubscribeFrom } from "../wire/requests.ts";
import type { Retention, RetentionPatch } from "../wire/retention.ts";
import type { MessageSource, Topic } from "./topic.ts";

/**
 * Thrown by `Broker.topic` when another node leads the topic: the handler
 * forwards the whole request there and relays the answer.
 */
export class TopicElsewhereError extends Error {
  readonly leader: number;
  constructor(topic: string, leader: number) {
    super(`Topic '${topic}' is led by node ${leader}`);
    this.name = "TopicElsewhereError";
    this.leader = leader;
  }
}

/**
 * Where a topic's requests go: served here by `topic`, or relayed to node
 * `elsewhere` (the leader, or a replica that knows it).
 */
export type Route =
  | { readonly topic: Topic; readonly elsewhere?: undefined }
  | { readonly topic?: undefined; readonly elsewhere: number };

/** The answer of `cluster_status` without its `status` key. */
export interface ClusterView {
  nodes: NodeStatus[];
  meta_leader: number | null;
  /**
   * Voters of the metadata group as this peer knows them: the cluster
   * survives losing a minority of these (up to 5; other members are learners).
   */
  meta_voters?: number[];
  topics: number;
}

/** How far a request has travelled between peers, to bound forwarding chains. */
export interface RouteOptions {
  hops?: number;
}

/** A node's topic and cluster operations. Failures throw ProtocolError. */
export interface Broker {
  readonly nodeId: number;
  /**
   * Creates a topic; false when it already exists. Limits `retention` leaves
   * out come from this node's defaults (the peer's `--retention-*` flags).
   */
  createTopic(name: string, replicationFactor?: number, retention?: Retention): Promise<boolean>;
  /**
   * Changes a topic's retention (set limits replaced, `null` ones removed)
   * and resolves with the retention now in force; topic_not_found when the
   * topic does not exist.
   */
  alterTopic?(name: string, patch: RetentionPatch): Promise<Retention>;
  /** Deletes a topic; throws topic_not_found when it does not exist. */
  deleteTopic(name: string): Promise<void>;
  /** Every topic name, sorted. */
  topicNames(): Promise<string[]>;
  /**
   * The topic when this node leads it; throws TopicElsewhereError when
   * another node does, ProtocolError topic_not_found when it does not exist.
   */
  topic(name: string, options?: RouteOptions): Promise<Topic>;
  /**
   * Like `topic`, but another node leading the topic is a value
   * (`{ elsewhere: id }`), not a thrown error: the hot path of every
   * forwarded request. Brokers without it are asked with `topic`.
   */
  route?(name: string, options?: RouteOptions): Promise<Route>;
  /**
   * The topic, without waiting, when this node leads it right now (or its
   * disk failed, which the topic answers itself); undefined when it takes
   * waiting or another node (then `route`/`topic` decide). The hot path of
   * requests on a leader. Brokers without it always go through `route`.
   */
  leadingTopic?(name: string): Topic | undefined;
  /** Sends a client request to another node and resolves with its raw answer. */
  forward(nodeId: number, request: Request, options?: RouteOptions): Promise<unknown>;
  /** What a subscription on this node reads from (local replica or the leader). */
  source(name: string): Promise<MessageSource>;
  /**
   * Where a subscription starts, decided by the topic's leader: an explicit
   * offset wins, a known subscriber resumes after its last ack, a new one
   * starts at `from` (default latest) and is registered there at once.
   */
  subscribeStart(
    name: string,
    subscriberId: string,
    from: SubscribeFrom | undefined,
    options?: RouteOptions,
  ): Promise<number>;
  describeTopic(name: string, options?: RouteOptions): Promise<Omit<TopicDescription, "status">>;
  clusterStatus(): Promise<ClusterView>;
  /** Moves a node's replicas away and removes it from the cluster. */
  removeNode(nodeId: number): Promise<void>;
  close(): Promise<void>;
}
