/**
 * Validation of client requests at the edge: bytes in, a typed `Request` or a
 * `ProtocolError("bad_request", ...)` out. Everything behind this module
 * trusts the types.
 *
 * @module
 */

import { describeValue, ProtocolError } from "./errors.ts";
import {
  type Retention,
  type RetentionPatch,
  validateRetention,
  validateRetentionPatch,
} from "./retention.ts";

/** Longest topic name (PROTOCOL.md section 5). */
export const topicNameLengthMax = 249;
/** Longest subscriber or producer id. */
export const clientIdLengthMax = 256;
/** Most messages in one `publish_batch`. */
export const batchMessagesMax = 10_000;
/** Most messages one `fetch` returns, and its default. */
export const fetchMessagesMax = 10_000;
export const fetchMessagesDefault = 1000;
/** Bounds of a subscription's unacknowledged window, and its default. */
export const inFlightMessagesMax = 100_000;
export const inFlightMessagesDefault = 1000;
/** Longest auth token. */
export const tokenLengthMax = 4096;

const topicNamePattern = /^[A-Za-z0-9._-]+$/;

/** Where a new subscription starts. */
export type SubscribeFrom = "latest" | "earliest" | number;

/** Optional idempotent-producer fields of publish requests. */
export interface ProducerFields {
  producer_id?: string;
  sequence?: number;
}

/**
 * One idempotent publish inside a `publish_parts`: a peer that does not
 * lead the topic relays the idempotent publishes of one turn together, each
 * with its own producer sequence.
 */
export interface RelayedPart {
  message: string;
  producer_id: string;
  sequence: number;
}

/**
 * Every request a client may send, discriminated by `action`, and
 * `publish_parts`, which only peers send (in `peer_forward`).
 */
export type Request =
  & { id?: string | number }
  & (
    | {
      action: "create_topic";
      topic_name: string;
      replication_factor?: number;
      retention?: Retention;
    }
    | { action: "alter_topic"; topic_name: string; retention: RetentionPatch }
    | { action: "publish"; topic_name: string; message: string } & ProducerFields
    | { action: "publish_batch"; topic_name: string; messages: string[] } & ProducerFields
    | { action: "publish_parts"; topic_name: string; parts: RelayedPart[] }
    | { action: "fetch_messages"; topic_name: string }
    | { action: "fetch"; topic_name: string; from_offset: number; max: number }
    | {
      action: "subscribe";
      topic_name: string;
      subscriber_id: string;
      from: SubscribeFrom | undefined;
      max_in_flight: number;
    }
    | { action: "unsubscribe"; topic_name: string; subscriber_id: string }
    | { action: "ack"; topic_name: string; subscriber_id: string; offset: number }
    | { action: "fetch_topics" }
    | { action: "delete_topic"; topic_name: string }
    | { action: "describe_topic"; topic_name: string }
    | { action: "cluster_status" }
    | { action: "ping" }
    | { action: "auth"; token: string }
    | { action: "remove_node"; node_id: number }
  );

/** The action names, for menus and help. */
export type Action = Request["action"];

type Fields = Record<string, unknown>;

function fail(message: string): never {
  throw new ProtocolError("bad_request", message);
}

/** Checks a topic name; returns it or throws bad_request. */
export function validateTopicName(value: unknown, field = "topic_name"): string {
  if (typeof value !== "string") fail(`Field '${field}' must be a string`);
  if (value.length === 0 || value.length > topicNameLengthMax) {
    fail(`Field '${field}' must be 1-${topicNameLengthMax} characters long`);
  }
  if (!topicNamePattern.test(value) || value === "." || value === "..") {
    fail(
      `Field '${field}' may only hold the characters A-Z a-z 0-9 . _ - and may not be '.' or '..'`,
    );
  }
  return value;
}

function string(fields: Fields, name: string, lengthMax: number): string {
  const value = fields[name];
  if (typeof value !== "string") fail(`Field '${name}' must be a string`);
  if (value.length === 0 || value.length > lengthMax) {
    fail(`Field '${name}' must be 1-${lengthMax} characters long`);
  }
  return value;
}

function integer(
  fields: Fields,
  name: string,
  min: number,
  max: number,
  fallback?: number,
): number {
  const value = fields[name];
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(`Field '${name}' must be an integer between ${min} and ${max}`);
  }
  return value;
}

function producerFields(fields: Fields): ProducerFields {
  const hasProducer = fields.producer_id !== undefined;
  const hasSequence = fields.sequence !== undefined;
  if (hasProducer !== hasSequence) {
    fail("Fields 'producer_id' and 'sequence' must be given together");
  }
  if (!hasProducer) return {};
  return {
    producer_id: string(fields, "producer_id", clientIdLengthMax),
    sequence: integer(fields, "sequence", 0, Number.MAX_SAFE_INTEGER),
  };
}

function messageList(fields: Fields): string[] {
  const value = fields.messages;
  if (!Array.isArray(value) || value.length === 0 || value.length > batchMessagesMax) {
    fail(`Field 'messages' must be an array of 1-${batchMessagesMax} strings`);
  }
  for (const message of value) {
    if (typeof message !== "string") fail("Field 'messages' must hold only strings");
  }
  return value as string[];
}

function relayedParts(fields: Fields): RelayedPart[] {
  const value = fields.parts;
  if (!Array.isArray(value) || value.length === 0 || value.length > batchMessagesMax) {
    fail(`Field 'parts' must be an array of 1-${batchMessagesMax} publishes`);
  }
  return value.map((part: unknown) => {
    if (typeof part !== "object" || part === null || Array.isArray(part)) {
      fail("Field 'parts' must hold only objects");
    }
    const partFields = part as Fields;
    if (typeof partFields.message !== "string") fail("Field 'message' must be a string");
    const producer = producerFields(partFields);
    if (producer.producer_id === undefined || producer.sequence === undefined) {
      fail("Each of 'parts' needs 'producer_id' and 'sequence'");
    }
    return {
      message: partFields.message,
      producer_id: producer.producer_id,
      sequence: producer.sequence,
    };
  });
}

function subscribeFrom(fields: Fields): SubscribeFrom | undefined {
  const value = fields.from;
  if (value === undefined || value === "latest" || value === "earliest") return value;
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  fail("Field 'from' must be 'latest', 'earliest' or an offset number");
}

/**
 * True for an id a response can echo. A JSON number too large for a double
 * (`1e999`) parses as Infinity, which JSON writes back as `null`.
 */
function isRequestId(id: unknown): id is string | number {
  return typeof id === "string" || (typeof id === "number" && Number.isFinite(id));
}

function requestId(fields: Fields): string | number | undefined {
  const id = fields.id;
  if (id === undefined || isRequestId(id)) return id;
  fail("Field 'id' must be a string or a number");
}

/**
 * Validates a decoded JSON value into a typed request.
 *
 * @example
 * ```ts
 * const request = validateRequest({ action: "ping" }); // { action: "ping" }
 * ```
 */
export function validateRequest(value: unknown): Request {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail("A request must be a JSON object");
  }
  const fields = value as Fields;
  const id = requestId(fields);
  const request = validateAction(fields);
  if (id !== undefined) request.id = id;
  return request;
}

function validateAction(fields: Fields): Request {
  const action = fields.action;
  const topic = () => validateTopicName(fields.topic_name);
  const subscriber = () => string(fields, "subscriber_id", clientIdLengthMax);
  switch (action) {
    case "create_topic": {
      const factor = fields.replication_factor === undefined
        ? undefined
        : integer(fields, "replication_factor", 1, 7);
      const request: Extract<Request, { action: "create_topic" }> = {
        action,
        topic_name: topic(),
        replication_factor: factor,
      };
      if (fields.retention !== undefined) request.retention = validateRetention(fields.retention);
      return request;
    }
    case "alter_topic":
      if (fields.retention === undefined) fail("Field 'retention' is missing");
      return { action, topic_name: topic(), retention: validateRetentionPatch(fields.retention) };
    case "publish":
      if (typeof fields.message !== "string") fail("Field 'message' must be a string");
      return { action, topic_name: topic(), message: fields.message, ...producerFields(fields) };
    case "publish_batch":
      return {
        action,
        topic_name: topic(),
        messages: messageList(fields),
        ...producerFields(fields),
      };
    case "publish_parts":
      return { action, topic_name: topic(), parts: relayedParts(fields) };
    case "fetch_messages":
    case "delete_topic":
    case "describe_topic":
      return { action, topic_name: topic() };
    case "fetch":
      return {
        action,
        topic_name: topic(),
        from_offset: integer(fields, "from_offset", 0, Number.MAX_SAFE_INTEGER, 0),
        max: integer(fields, "max", 1, fetchMessagesMax, fetchMessagesDefault),
      };
    case "subscribe":
      return {
        action,
        topic_name: topic(),
        subscriber_id: subscriber(),
        from: subscribeFrom(fields),
        max_in_flight: integer(
          fields,
          "max_in_flight",
          1,
          inFlightMessagesMax,
          inFlightMessagesDefault,
        ),
      };
    case "unsubscribe":
      return { action, topic_name: topic(), subscriber_id: subscriber() };
    case "ack":
      return {
        action,
        topic_name: topic(),
        subscriber_id: subscriber(),
        offset: integer(fields, "offset", 0, Number.MAX_SAFE_INTEGER),
      };
    case "fetch_topics":
    case "cluster_status":
    case "ping":
      return { action };
    case "auth":
      return { action, token: string(fields, "token", tokenLengthMax) };
    case "remove_node":
      return { action, node_id: integer(fields, "node_id", 1, 1_000_000) };
    case undefined:
      return fail("Field 'action' is missing");
    default:
      if (typeof action === "string" && action.startsWith("peer_")) {
        // Peer actions reach the cluster layer only through an authenticated
        // peer connection, and only with "action" as the frame's first key.
        throw new ProtocolError(
          "unauthorized",
          "Peer actions need a connection authenticated as a cluster member",
        );
      }
      return fail(`Unknown action '${describeValue(action)}'`);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes a frame payload (UTF-8 JSON) and validates it. Throws
 * `ProtocolError("bad_request")` for invalid UTF-8, invalid JSON or a bad
 * request; the error carries the request id when one could be read.
 */
export function decodeRequest(payload: Uint8Array): Request {
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    fail("The frame is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    fail("The frame is not valid JSON");
  }
  try {
    return validateRequest(value);
  } catch (error) {
    if (error instanceof ProtocolError && typeof value === "object" && value !== null) {
      const id = (value as Fields).id;
      if (isRequestId(id)) throw new RequestError(error, id);
    }
    throw error;
  }
}

/** A bad request whose id is known, so the error response can echo it. */
export class RequestError extends ProtocolError {
  readonly id: string | number;
  constructor(cause: ProtocolError, id: string | number) {
    super(cause.code, cause.message, { cause });
    this.name = "RequestError";
    this.id = id;
  }
}
