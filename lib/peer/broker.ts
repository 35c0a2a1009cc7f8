/**
 * What a peer's request handler asks of the node behind it: topic lifecycle,
 * topic handles and cluster views. `LocalBroker` serves one peer alone; the
 * cluster broker serves the same interface over Raft groups.
 *
 * @module
 */

import type { NodeStatus, TopicDescription } from "../wire/responses.ts";
import type { Topic } from "./topic.ts";

/** The answer of `cluster_status` without its `status` key. */
export interface ClusterView {
  nodes: NodeStatus[];
  meta_leader: number | null;
  topics: number;
}

/** A node's topic and cluster operations. Failures throw ProtocolError. */
export interface Broker {
  readonly nodeId: number;
  /** Creates a topic; false when it already exists. */
  createTopic(name: string, replicationFactor?: number): Promise<boolean>;
  /** Deletes a topic; throws topic_not_found when it does not exist. */
  deleteTopic(name: string): Promise<void>;
  /** Every topic name, sorted. */
  topicNames(): Promise<string[]>;
  /** A handle on an existing topic; throws topic_not_found. */
  topic(name: string): Promise<Topic>;
  describeTopic(name: string): Promise<Omit<TopicDescription, "status">>;
  clusterStatus(): Promise<ClusterView>;
  /** Moves a node's replicas away and removes it from the cluster. */
  removeNode(nodeId: number): Promise<void>;
  close(): Promise<void>;
}
