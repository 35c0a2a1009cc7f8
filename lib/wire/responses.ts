/**
 * Success response shapes (PROTOCOL.md sections 2-4) and the pushed
 * subscription frame. Builders keep the exact seed-compatible key order.
 *
 * @module
 */

/** A message pushed to a subscriber; it has `event` and never `status`. */
export interface MessageEvent {
  event: "message";
  topic: string;
  subscriber_id: string;
  offset: number;
  message: string;
}

/** One message with its offset, as `fetch` returns it. */
export interface OffsetMessage {
  offset: number;
  message: string;
}

/** A node as `cluster_status` reports it. */
export interface NodeStatus {
  id: number;
  address: string;
  state: "alive" | "suspect" | "dead" | "left";
  last_heartbeat_ms_ago: number;
  /** Why the answering peer cannot link to this one (TLS, cluster secret, refused), if it cannot. */
  link_error?: string;
}

/** The answer of `describe_topic`. */
export interface TopicDescription {
  status: "topic";
  topic: string;
  replicas: number[];
  leader: number | null;
  in_sync: number[];
  first_offset: number;
  next_offset: number;
}

/** True for a pushed frame (an object with `event` and no `status`). */
export function isPushedEvent(value: unknown): value is MessageEvent {
  return typeof value === "object" && value !== null && "event" in value && !("status" in value);
}
