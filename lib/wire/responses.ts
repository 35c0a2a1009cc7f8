/**
 * Success response shapes (PROTOCOL.md sections 2-4) and the pushed
 * subscription frame. Builders keep the exact seed-compatible key order.
 *
 * @module
 */

import type { Retention } from "./retention.ts";

/** A message pushed to a subscriber; it has `event` and never `status`. */
export interface MessageEvent {
  event: "message";
  topic: string;
  subscriber_id: string;
  offset: number;
  message: string;
  /**
   * How many offsets before this one the subscription skipped because
   * retention had deleted them (its saved position, or the next offset it
   * expected, fell below the topic's first retained offset). Absent when
   * nothing was skipped.
   */
  skipped?: number;
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
  /** The earliest retained offset. */
  first_offset: number;
  next_offset: number;
  /** Bytes of the leader's replica log on disk (segment files). */
  bytes?: number;
  /** Messages retained: `next_offset - first_offset`. */
  messages?: number;
  /** The retention in force; `{}` keeps everything. */
  retention?: Retention;
}

/** True for a pushed frame (an object with `event` and no `status`). */
export function isPushedEvent(value: unknown): value is MessageEvent {
  return typeof value === "object" && value !== null && "event" in value && !("status" in value);
}

/**
 * The JSON text of a `publish` answer with the request's id, the same as
 * `answerJson({ status: "message_published", topic, offset }, id)` (lib/wire/frame.ts)
 * without building the object: the answer every plain publish gets.
 *
 * @example
 * ```ts
 * publishedAnswerJson("events", 41, 7); // '{"status":"message_published","topic":"events","offset":41,"id":7}'
 * ```
 */
export function publishedAnswerJson(
  topic: string,
  offset: number,
  id: string | number | undefined,
): string {
  if (publishedHead?.topic !== topic) {
    publishedHead = {
      topic,
      json: `{"status":"message_published","topic":${JSON.stringify(topic)},"offset":`,
    };
  }
  const head = publishedHead.json + JSON.stringify(offset);
  return id === undefined ? `${head}}` : `${head},"id":${JSON.stringify(id)}}`;
}

/** The start of the last topic's publish answer: a connection's publishes mostly name one topic. */
let publishedHead: { topic: string; json: string } | undefined;

/**
 * The JSON text of a `publish_batch` answer with the request's id, the same
 * as `answerJson({ status: "messages_published", topic, first_offset, count }, id)`
 * (lib/wire/frame.ts) without building the object.
 *
 * @example
 * ```ts
 * batchPublishedAnswerJson("events", 41, 3, 7); // '{"status":"messages_published","topic":"events","first_offset":41,"count":3,"id":7}'
 * ```
 */
export function batchPublishedAnswerJson(
  topic: string,
  firstOffset: number,
  count: number,
  id: string | number | undefined,
): string {
  if (batchPublishedHead?.topic !== topic) {
    batchPublishedHead = {
      topic,
      json: `{"status":"messages_published","topic":${JSON.stringify(topic)},"first_offset":`,
    };
  }
  const head = `${batchPublishedHead.json}${JSON.stringify(firstOffset)},"count":${
    JSON.stringify(count)
  }`;
  return id === undefined ? `${head}}` : `${head},"id":${JSON.stringify(id)}}`;
}

/** The start of the last topic's `publish_batch` answer (see `publishedHead`). */
let batchPublishedHead: { topic: string; json: string } | undefined;
