/**
 * What a peer must answer to a byte stream sent on a fresh, unauthenticated
 * connection of a peer that has a cluster secret: the oracle of the live
 * fuzz. It runs the same frame decoder and request validator as the peer,
 * and the handshake rules of PROTOCOL.md section 5, so the expected answer
 * of every frame is exact: its status, its id, and whether the peer closes
 * the connection after it.
 *
 * @module
 */

import { nodeIdMax } from "../lib/cluster/_peer_messages.ts";
import { ProtocolError } from "../lib/wire/errors.ts";
import { FrameDecoder, type FrameEvent } from "../lib/wire/frame.ts";
import { decodeRequest, type Request, RequestError } from "../lib/wire/requests.ts";
import { isBinaryRaftPayload } from "../lib/cluster/raft_binary.ts";

/** One answer the peer owes, and what it must look like. */
export interface Expectation {
  /** What was sent, for failure reports. */
  sent: string;
  /** Returns why `answer` is wrong, or undefined when it is right. */
  check(answer: unknown): string | undefined;
}

/** Everything a stream must produce. */
export interface StreamExpectation {
  /** The answers in order, each with the index of the segment that completed its frame. */
  answers: { expectation: Expectation; segment: number }[];
  /**
   * Where the peer closes the connection (after frame_too_large or a failed
   * peer_auth): the segment, and the bytes of it the peer reads before.
   */
  closedAt: { segment: number; offset: number } | undefined;
  /** The stream ends inside a frame (the idle timeout closes it when the sender stays silent). */
  partial: boolean;
  /** Segments holding a frame that would change the cluster (a valid publish...): never send them. */
  mutating: Set<number>;
}

/** Bytes of a stream, sent with one write; `bytewise` ones are checked a byte at a time. */
export interface Segment {
  bytes: Uint8Array;
  /** Find exactly where in it the peer would close (random bytes; keep them short). */
  bytewise?: boolean;
}

/** Client actions that change nothing: the fuzzer may send them valid. */
const readOnlyActions = new Set([
  "ping",
  "fetch_topics",
  "cluster_status",
  "auth",
  "describe_topic",
  "fetch",
  "fetch_messages",
  "unsubscribe",
]);

type Fields = Record<string, unknown>;
type Handshake = { challenged: false } | { challenged: true; nodeId: number };

const peerPrefix = new TextEncoder().encode('{"action":"peer_');
const lenientUtf8 = new TextDecoder();

function isPeerFrame(payload: Uint8Array): boolean {
  if (payload.length < peerPrefix.length) return false;
  return peerPrefix.every((byte, index) => payload[index] === byte);
}

function preview(payload: Uint8Array): string {
  const text = lenientUtf8.decode(payload.subarray(0, 160));
  return payload.length > 160 ? `${text}... (${payload.length} bytes)` : text;
}

function isObject(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An error answer with `status` and an `id` exactly as given (absent when undefined). */
function errorAnswer(sent: string, status: string, id: unknown): Expectation {
  return {
    sent,
    check: (answer) => {
      if (!isObject(answer)) return `expected ${status}, got a non-object`;
      if (answer.status !== status) return `expected ${status}, got ${String(answer.status)}`;
      if (typeof answer.error !== "string") return "an error answer without an error sentence";
      if (answer.id !== id) return `expected id ${String(id)}, got ${String(answer.id)}`;
      return undefined;
    },
  };
}

/** A success answer of a read-only request (or its documented refusal). */
function readOnlyAnswer(sent: string, request: Request): Expectation {
  const statuses: Record<string, string[]> = {
    ping: ["pong"],
    cluster_status: ["cluster"],
    auth: ["authenticated"],
    describe_topic: ["topic", "topic_not_found"],
    fetch: ["messages", "topic_not_found"],
    fetch_messages: ["topic_not_found"],
    fetch_topics: [],
    unsubscribe: ["bad_request"],
  };
  const arrays = request.action === "fetch_topics" || request.action === "fetch_messages";
  return {
    sent,
    check: (answer) => {
      if (Array.isArray(answer)) return arrays ? undefined : "an unexpected array";
      if (!isObject(answer)) return "a non-object answer";
      if (!statuses[request.action].includes(String(answer.status))) {
        return `${request.action} answered ${String(answer.status)}`;
      }
      if (answer.id !== request.id) return `expected id ${String(request.id)}, got ${answer.id}`;
      return undefined;
    },
  };
}

function validNodeId(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= nodeIdMax;
}

function validNonce(value: unknown): boolean {
  return typeof value === "string" && value.length > 0 && value.length <= 128;
}

/** A frame whose first key is a peer action: the handshake, or `unauthorized`. */
function expectPeerFrame(
  payload: Uint8Array,
  handshake: { value: Handshake },
): { expectation: Expectation; closes: boolean } {
  const sent = preview(payload);
  let message: unknown;
  try {
    message = JSON.parse(lenientUtf8.decode(payload));
  } catch {
    return { expectation: errorAnswer(sent, "bad_request", undefined), closes: false };
  }
  const fields = message as Fields;
  const id = typeof fields.id === "string" || typeof fields.id === "number" ? fields.id : undefined;
  if (fields.action === "peer_hello") {
    if (!validNodeId(fields.node_id) || !validNonce(fields.nonce)) {
      return { expectation: errorAnswer(sent, "bad_request", id), closes: false };
    }
    handshake.value = { challenged: true, nodeId: fields.node_id };
    return { expectation: challengeAnswer(sent, id), closes: false };
  }
  if (fields.action === "peer_auth") {
    if (!handshake.value.challenged) {
      return { expectation: errorAnswer(sent, "unauthorized", id), closes: false };
    }
    if (!validNodeId(fields.node_id)) {
      return { expectation: errorAnswer(sent, "bad_request", id), closes: false };
    }
    // The fuzzer never knows the proof: a failed proof closes the connection.
    handshake.value = { challenged: false };
    return { expectation: errorAnswer(sent, "unauthorized", id), closes: true };
  }
  return { expectation: errorAnswer(sent, "unauthorized", id), closes: false };
}

function challengeAnswer(sent: string, id: unknown): Expectation {
  return {
    sent,
    check: (answer) => {
      if (!isObject(answer) || answer.status !== "challenge") return "expected a challenge";
      if (typeof answer.nonce !== "string" || typeof answer.proof !== "string") {
        return "a challenge without nonce and proof";
      }
      return answer.id === id ? undefined : `expected id ${String(id)}, got ${answer.id}`;
    },
  };
}

/** Any other frame: exactly what the request validator decides. */
function expectClientFrame(payload: Uint8Array): { expectation: Expectation; mutating: boolean } {
  const sent = preview(payload);
  let request: Request;
  try {
    request = decodeRequest(payload);
  } catch (error) {
    if (!(error instanceof ProtocolError)) {
      // The validator itself failed: the property tests report that; expect the peer's answer.
      return { expectation: errorAnswer(sent, "bad_request", undefined), mutating: false };
    }
    const id = error instanceof RequestError ? error.id : undefined;
    return { expectation: errorAnswer(sent, error.code, id), mutating: false };
  }
  return {
    expectation: readOnlyAnswer(sent, request),
    mutating: !readOnlyActions.has(request.action),
  };
}

/**
 * The answers a peer owes for `segments` sent in order on a new connection.
 *
 * @example
 * ```ts
 * const expected = expectStream([{ bytes: encodeFrame({ action: "ping" }) }], 1024 * 1024);
 * ```
 */
export function expectStream(segments: Segment[], frameBytesMax: number): StreamExpectation {
  const decoder = new FrameDecoder({ frameBytesMax });
  const handshake = { value: { challenged: false } as Handshake };
  const result: StreamExpectation = {
    answers: [],
    closedAt: undefined,
    partial: false,
    mutating: new Set(),
  };
  for (const [index, segment] of segments.entries()) {
    const step = segment.bytewise ? 1 : Math.max(segment.bytes.length, 1);
    for (let at = 0; at < segment.bytes.length && result.closedAt === undefined; at += step) {
      const events = decoder.push(segment.bytes.subarray(at, at + step));
      for (const event of events) {
        const closes = expectEvent(event, index, handshake, result);
        if (closes) {
          result.closedAt = { segment: index, offset: Math.min(at + step, segment.bytes.length) };
        }
      }
    }
    if (result.closedAt !== undefined) break;
  }
  result.partial = decoder.partial && result.closedAt === undefined;
  return result;
}

/** Records what one decoded event owes; true when the peer closes after it. */
function expectEvent(
  event: FrameEvent,
  segment: number,
  handshake: { value: Handshake },
  result: StreamExpectation,
): boolean {
  if (result.closedAt !== undefined) return false;
  if (event.kind === "too_large") {
    const expectation = errorAnswer(`<length ${event.length}>`, "frame_too_large", undefined);
    result.answers.push({ expectation, segment });
    return true;
  }
  if (event.kind === "empty") {
    result.answers.push({ expectation: errorAnswer("<empty>", "bad_request", undefined), segment });
    return false;
  }
  if (isBinaryRaftPayload(event.payload)) {
    // The binary form of peer_raft (PROTOCOL.md section 5): peer powers only.
    const expectation = errorAnswer(preview(event.payload), "unauthorized", undefined);
    result.answers.push({ expectation, segment });
    return false;
  }
  if (isPeerFrame(event.payload)) {
    const { expectation, closes } = expectPeerFrame(event.payload, handshake);
    result.answers.push({ expectation, segment });
    return closes;
  }
  const { expectation, mutating } = expectClientFrame(event.payload);
  result.answers.push({ expectation, segment });
  if (mutating) result.mutating.add(segment);
  return false;
}
