/**
 * Success response shapes (PROTOCOL.md sections 2-4) and the pushed
 * subscription frame. Builders keep the exact seed-compatible key order.
 *
 * @module
 */

import { holdsAt } from "../bytes.ts";
import { RecentTexts } from "./recent_texts.ts";
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

const encoder = new TextEncoder();
const publishedStart = encoder.encode('{"status":"message_published","topic":"');
const batchPublishedStart = encoder.encode('{"status":"messages_published","topic":"');
const offsetKey = encoder.encode('","offset":');
const firstOffsetKey = encoder.encode('","first_offset":');
const countKey = encoder.encode(',"count":');
const idKey = encoder.encode(',"id":');
/** Digits of the largest integer read here: 15 keeps every value a safe integer. */
const digitsMax = 15;
/** Topic names of the last answers: a client publishes to few topics, and each decode is a call into the runtime. */
const answerTopics = new RecentTexts(8, new TextDecoder("utf-8", { fatal: true }), 255);

/**
 * The answer to a publish or publish_batch in `bytes[start, end)` when it
 * has exactly the form the builders above write (numeric id or none, a
 * topic name without escapes), as `JSON.parse` would return it; undefined
 * for anything else, which the caller parses as JSON. The answer every
 * publish gets, recognized byte by byte: `TextDecoder` and `JSON.parse`
 * cost a client 8 µs of its 18 µs from reading an answer to resolving the
 * publish (one publish at a time, 3 peers).
 *
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode(publishedAnswerJson("events", 41, 7));
 * decodePublishedAnswer(bytes, 0, bytes.length); // { status: "message_published", topic: "events", offset: 41, id: 7 }
 * ```
 */
export function decodePublishedAnswer(
  bytes: Uint8Array,
  start: number,
  end: number,
): Record<string, unknown> | undefined {
  const batch = holdsAt(bytes, start, end, batchPublishedStart);
  if (!batch && !holdsAt(bytes, start, end, publishedStart)) return undefined;
  const topicStart = start + (batch ? batchPublishedStart.length : publishedStart.length);
  let at = topicStart;
  while (at < end && bytes[at] !== 0x22) { // "
    // Escapes and control characters: left to JSON.parse.
    if (bytes[at] === 0x5c || bytes[at] < 0x20) return undefined;
    at++;
  }
  if (at === end || at === topicStart) return undefined;
  let topic: string;
  try {
    topic = answerTopics.decode(bytes, topicStart, at - topicStart);
  } catch {
    return undefined;
  }
  const offsetKeyBytes = batch ? firstOffsetKey : offsetKey;
  if (!holdsAt(bytes, at, end, offsetKeyBytes)) return undefined;
  at += offsetKeyBytes.length;
  const offsetEnd = digitsEnd(bytes, at, end);
  if (offsetEnd === undefined) return undefined;
  const offset = digitsValue(bytes, at, offsetEnd);
  at = offsetEnd;
  let count = 0;
  if (batch) {
    if (!holdsAt(bytes, at, end, countKey)) return undefined;
    const countEnd = digitsEnd(bytes, at + countKey.length, end);
    if (countEnd === undefined) return undefined;
    count = digitsValue(bytes, at + countKey.length, countEnd);
    at = countEnd;
  }
  let id: number | undefined;
  if (at < end - 1) {
    if (!holdsAt(bytes, at, end, idKey)) return undefined;
    const idEnd = digitsEnd(bytes, at + idKey.length, end);
    if (idEnd === undefined) return undefined;
    id = digitsValue(bytes, at + idKey.length, idEnd);
    at = idEnd;
  }
  if (at !== end - 1 || bytes[at] !== 0x7d) return undefined; // }
  if (batch) {
    return id === undefined
      ? { status: "messages_published", topic, first_offset: offset, count }
      : { status: "messages_published", topic, first_offset: offset, count, id };
  }
  return id === undefined
    ? { status: "message_published", topic, offset }
    : { status: "message_published", topic, offset, id };
}

/** Where the JSON integer at `at` ends (1 to `digitsMax` digits, no leading zero), or undefined. */
function digitsEnd(bytes: Uint8Array, at: number, end: number): number | undefined {
  let next = at;
  while (next < end && next - at <= digitsMax && bytes[next] >= 0x30 && bytes[next] <= 0x39) next++;
  const digits = next - at;
  if (digits === 0 || digits > digitsMax || (digits > 1 && bytes[at] === 0x30)) return undefined;
  return next;
}

function digitsValue(bytes: Uint8Array, at: number, end: number): number {
  let value = 0;
  for (let index = at; index < end; index++) value = value * 10 + bytes[index] - 0x30;
  return value;
}
