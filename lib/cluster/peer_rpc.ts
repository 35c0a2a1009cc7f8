/**
 * The typed peer RPC of the cluster layer: one message type per `peer_*`
 * action, one builder the sender uses and one validator the receiver runs
 * before anything trusts a field, and validators of the answers the sender
 * reads back. Nothing crosses between peers as an unchecked cast.
 *
 * The membership messages (`peer_heartbeat`, `peer_leave`) are validated in
 * `_peer_messages.ts`; the handshake (`peer_hello`, `peer_auth`) in
 * `peer_auth.ts`; Raft batches here, with `raft_codec.ts` for each message.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Message } from "../raft/types.ts";
import { decodeEntryRecords, encodeEntryRecords } from "../storage/entry_records.ts";
import { describeValue, type ErrorCode, errorCodes, ProtocolError } from "../wire/errors.ts";
import {
  clientIdLengthMax,
  type Request,
  type SubscribeFrom,
  validateRequest,
} from "../wire/requests.ts";
import { type Retention, validateRetention } from "../wire/retention.ts";
import { parseAddress } from "./_address.ts";
import { nodeIdField, PeerMessageError, topicNameField } from "./_peer_messages.ts";
import { decodeMetaCommand, type MetaCommand, type MetaResult, replicasMax } from "./meta_state.ts";
import { directoryIdPattern } from "./node_identity.ts";
import { decodeRaftMessage, type WireMessage } from "./raft_codec.ts";
import {
  type SnapshotChunk,
  snapshotChunkBytesMax,
  type SnapshotChunkRequest,
} from "./snapshot_transfer.ts";

/** Most messages of one peer_raft frame; larger batches are split. */
export const frameMessagesMax = 4096;
/** Longest group id ("meta" or "t:" + a topic name). */
export const groupIdLengthMax = 2 + 249;
/** Longest incarnation id of a peer process. */
export const incarnationLengthMax = 64;
/** Longest a `peer_wait` may hold its answer back. */
export const waitMsMax = 5000;
/** Most relays of one request (non-replica -> replica -> leader -> new leader). */
export const forwardHopsMax = 3;

type Fields = Record<string, unknown>;

// ---- field validators ----------------------------------------------------------

function fields(value: unknown, what: string): Fields {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new PeerMessageError(`A ${what} must be a JSON object`);
  }
  return value as Fields;
}

function integerField(record: Fields, key: string, min: number, max: number): number {
  const value = record[key];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new PeerMessageError(`Field '${key}' must be an integer between ${min} and ${max}`);
  }
  return value;
}

function topicField(record: Fields): string {
  return topicNameField(record.topic_name, "topic_name");
}

function hopsField(record: Fields): number {
  return integerField(record, "hops", 0, forwardHopsMax + 1);
}

// ---- requests ------------------------------------------------------------------

/** One item of a Raft batch: a message for a group, or a leader's quiesce notice. */
export type RaftBatchItem =
  | { groupId: string; message: Message }
  | { groupId: string; quiesceTerm: number };

/** `peer_raft`: Raft messages of many groups from one peer, coalesced. */
export interface RaftFrame {
  from: number;
  /** Changes every time the sending process starts: a restart is visible to its leaders. */
  incarnation: string;
  batch: RaftBatchItem[];
}

/** Builds a `peer_raft` frame from already-encoded items. */
export function raftFrame(
  from: number,
  incarnation: string,
  batch: [string, WireMessage][],
): { action: "peer_raft" } & Fields {
  return { action: "peer_raft", from, incarnation, batch };
}

/**
 * Where `decodeBinaryRaftPayload` leaves the frame it decoded and validated
 * already (raft_binary.ts). A symbol: no JSON text, so no peer, can set it.
 */
export const decodedRaftFrame: unique symbol = Symbol("decodedRaftFrame");

/** Validates a `peer_raft` frame; every message is decoded before any is stepped. */
export function decodeRaftFrame(message: Fields): RaftFrame {
  const decoded = (message as { [decodedRaftFrame]?: RaftFrame })[decodedRaftFrame];
  if (decoded !== undefined) return decoded;
  const from = nodeIdField(message, "from");
  const incarnation = message.incarnation;
  if (
    typeof incarnation !== "string" || incarnation.length === 0 ||
    incarnation.length > incarnationLengthMax
  ) {
    throw new PeerMessageError("Field 'incarnation' must be a short string");
  }
  const batch = message.batch;
  if (!Array.isArray(batch) || batch.length > frameMessagesMax) {
    throw new PeerMessageError(`Field 'batch' must list at most ${frameMessagesMax} messages`);
  }
  const items = batch.map((item, index): RaftBatchItem => {
    if (
      !Array.isArray(item) || item.length !== 2 || typeof item[0] !== "string" ||
      item[0].length === 0 || item[0].length > groupIdLengthMax
    ) {
      throw new PeerMessageError(`Batch item ${index} must be [group id, message]`);
    }
    const body = fields(item[1], `Raft message of batch item ${index}`);
    if (body.quiesce !== undefined) {
      return { groupId: item[0], quiesceTerm: integerField(body, "quiesce", 0, 2 ** 52) };
    }
    let decoded: Message;
    try {
      decoded = decodeRaftMessage(body);
    } catch (error) {
      throw new PeerMessageError(`Batch item ${index}: ${(error as Error).message}`);
    }
    if (decoded.from !== from) {
      throw new PeerMessageError(`Batch item ${index} claims to come from node ${decoded.from}`);
    }
    return { groupId: item[0], message: decoded };
  });
  return { from, incarnation, batch: items };
}

/** `peer_join`: a new peer asks the controller to record it. */
export interface JoinRequest {
  nodeId: number;
  address: string;
  /** The joining peer's data directory id (node_identity.ts). */
  directoryId?: string;
}

/** Builds a `peer_join` (the joining node travels as "node_id": "id" is the link's request id). */
export function joinRequest(join: JoinRequest): { action: "peer_join" } & Fields {
  return {
    action: "peer_join",
    node_id: join.nodeId,
    address: join.address,
    directory_id: join.directoryId,
  };
}

/** Validates a `peer_join`. */
export function decodeJoin(message: Fields): JoinRequest {
  const nodeId = nodeIdField(message, "node_id");
  const address = message.address;
  if (typeof address !== "string" || parseAddress(address) === undefined) {
    throw new PeerMessageError("Field 'address' must be an address \"host:port\"");
  }
  const directoryId = message.directory_id;
  if (directoryId === undefined) return { nodeId, address };
  if (typeof directoryId !== "string" || !directoryIdPattern.test(directoryId)) {
    throw new PeerMessageError("Field 'directory_id' must be a directory id");
  }
  return { nodeId, address, directoryId };
}

/** `peer_forward`: a client request relayed to the peer that can serve it. */
export interface ForwardRequest {
  hops: number;
  request: Request;
}

/** Builds a `peer_forward`. */
export function forwardRequest(forward: ForwardRequest): { action: "peer_forward" } & Fields {
  return { action: "peer_forward", hops: forward.hops, request: forward.request };
}

/** Validates a `peer_forward`; the inner request is validated like a client's. */
export function decodeForward(message: Fields): ForwardRequest {
  const hops = hopsField(message);
  const request = validateRequest(message.request);
  if (request.action === "auth" || request.action === "subscribe") {
    throw new PeerMessageError(`A '${request.action}' request cannot be forwarded`);
  }
  return { hops, request };
}

/** What a metadata request asks the controller. */
export type MetaProposal =
  | { kind: "command"; command: MetaCommand }
  | { kind: "create_topic"; name: string; replicationFactor: number; retention?: Retention };

/** Builds a `peer_meta`. */
export function metaRequest(proposal: MetaProposal): { action: "peer_meta" } & Fields {
  const command = proposal.kind === "command" ? proposal.command : {
    op: "create_topic_auto",
    name: proposal.name,
    replicationFactor: proposal.replicationFactor,
    retention: proposal.retention,
  };
  return { action: "peer_meta", command };
}

/** Validates a `peer_meta`: its command is checked before it is ever proposed. */
export function decodeMeta(message: Fields): MetaProposal {
  const command = fields(message.command, "metadata command");
  if (command.op === "create_topic_auto") {
    const name = topicNameField(command.name, "name");
    const factor = integerField(command, "replicationFactor", 1, replicasMax);
    const proposal: MetaProposal = { kind: "create_topic", name, replicationFactor: factor };
    if (command.retention !== undefined) proposal.retention = validateRetention(command.retention);
    return proposal;
  }
  return { kind: "command", command: decodeMetaCommand(command) };
}

/** `peer_subscribe_start`: where a subscription starts, decided by the topic's leader. */
export interface SubscribeStartRequest {
  topicName: string;
  subscriberId: string;
  from: SubscribeFrom | undefined;
  hops: number;
}

/** Builds a `peer_subscribe_start`. */
export function subscribeStartRequest(
  start: SubscribeStartRequest,
): { action: "peer_subscribe_start" } & Fields {
  return {
    action: "peer_subscribe_start",
    topic_name: start.topicName,
    subscriber_id: start.subscriberId,
    from: start.from,
    hops: start.hops,
  };
}

/** Validates a `peer_subscribe_start` (with the client request's own rules). */
export function decodeSubscribeStart(message: Fields): SubscribeStartRequest {
  const request = validateRequest({
    action: "subscribe",
    topic_name: message.topic_name,
    subscriber_id: message.subscriber_id,
    from: message.from,
  });
  if (request.action !== "subscribe") throw new PeerMessageError("Not a subscription");
  if (request.subscriber_id.length > clientIdLengthMax) {
    throw new PeerMessageError("Field 'subscriber_id' is too long");
  }
  return {
    topicName: request.topic_name,
    subscriberId: request.subscriber_id,
    from: request.from,
    hops: hopsField(message),
  };
}

/** `peer_wait`: long-poll until a replica's log passes an offset (or the wait ends). */
export interface WaitRequest {
  topicName: string;
  offset: number;
  timeoutMs: number;
}

/** Builds a `peer_wait`. */
export function waitRequest(wait: WaitRequest): { action: "peer_wait" } & Fields {
  return {
    action: "peer_wait",
    topic_name: wait.topicName,
    offset: wait.offset,
    timeout_ms: wait.timeoutMs,
  };
}

/** Validates a `peer_wait`. */
export function decodeWait(message: Fields): WaitRequest {
  return {
    topicName: topicField(message),
    offset: integerField(message, "offset", 0, Number.MAX_SAFE_INTEGER),
    timeoutMs: integerField(message, "timeout_ms", 0, waitMsMax),
  };
}

/** Builds a `peer_snapshot_chunk`: one pull of a snapshot transfer (see snapshot_transfer.ts). */
export function snapshotChunkRequest(
  request: SnapshotChunkRequest,
): { action: "peer_snapshot_chunk" } & Fields {
  return {
    action: "peer_snapshot_chunk",
    group_id: request.groupId,
    index: request.index,
    term: request.term,
    part: request.part,
    offset: request.offset,
  };
}

/** Validates a `peer_snapshot_chunk`. */
export function decodeSnapshotChunkRequest(message: Fields): SnapshotChunkRequest {
  const groupId = message.group_id;
  if (typeof groupId !== "string" || groupId.length === 0 || groupId.length > groupIdLengthMax) {
    throw new PeerMessageError("Field 'group_id' must be a group id");
  }
  const part = message.part;
  if (part !== "image" && part !== "entries") {
    throw new PeerMessageError('Field \'part\' must be "image" or "entries"');
  }
  return {
    groupId,
    index: integerField(message, "index", 1, Number.MAX_SAFE_INTEGER),
    term: integerField(message, "term", 0, Number.MAX_SAFE_INTEGER),
    part,
    offset: integerField(message, "offset", 0, Number.MAX_SAFE_INTEGER),
  };
}

/** The `ok` answer carrying a snapshot chunk (entries as CRC-checked records, base64). */
export function snapshotChunkAnswer(chunk: SnapshotChunk): Fields {
  if (chunk.part === "image") {
    return {
      status: "ok",
      part: "image",
      total: chunk.total,
      first_index: chunk.firstIndex,
      data: base64(chunk.data),
    };
  }
  return { status: "ok", part: "entries", data: base64(encodeEntryRecords(chunk.entries)) };
}

/** The answer to `peer_snapshot_chunk` for `request`; a damaged chunk is `unavailable`. */
export function decodeSnapshotChunkAnswer(
  answer: unknown,
  request: SnapshotChunkRequest,
): SnapshotChunk {
  const record = answerFields(answer);
  const text = record.data;
  // Base64 of a chunk plus entry record headers: generously above the chunk limit.
  if (typeof text !== "string" || text.length > 2 * snapshotChunkBytesMax + 1024 * 1024) {
    throw new ProtocolError("unavailable", "A peer sent a snapshot chunk without valid data");
  }
  const buffer = Buffer.from(text, "base64");
  const data = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  if (record.part !== request.part) {
    throw new ProtocolError("unavailable", "A peer sent a snapshot chunk of the wrong part");
  }
  if (request.part === "image") {
    return {
      part: "image",
      total: answerInteger(record, "total"),
      firstIndex: answerInteger(record, "first_index"),
      data,
    };
  }
  try {
    return { part: "entries", entries: decodeEntryRecords(data, request.offset) };
  } catch (error) {
    throw new ProtocolError("unavailable", `A peer sent a damaged snapshot chunk`, {
      cause: error,
    });
  }
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

// ---- answers -------------------------------------------------------------------

/**
 * Checks a peer's answer: `ok` (or the expected status) passes; an error
 * code becomes the same ProtocolError here; anything else is `unavailable`.
 */
export function answerFields(answer: unknown, expected = "ok"): Fields {
  if (typeof answer !== "object" || answer === null || Array.isArray(answer)) {
    throw new ProtocolError("unavailable", "A peer sent an answer that is not an object");
  }
  const record = answer as Fields;
  if (record.status === expected) return record;
  const code = (errorCodes as readonly unknown[]).includes(record.status)
    ? record.status as ErrorCode
    : "unavailable";
  const error = typeof record.error === "string"
    ? record.error
    : `A peer answered '${describeValue(record.status)}'`;
  throw new ProtocolError(code, error);
}

function answerInteger(record: Fields, key: string): number {
  const value = record[key];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ProtocolError("unavailable", `A peer's answer lacks a valid '${key}'`);
  }
  return value;
}

/**
 * The answer to `peer_join`: joined, refused (a `bad_request` saying why:
 * the cluster will not take this peer as it is), unjoined (the peer asked
 * belongs to no cluster yet), or neither (retry).
 */
export function decodeJoinAnswer(
  answer: unknown,
): { joined: boolean; refused?: string; unjoined?: boolean } {
  if (typeof answer !== "object" || answer === null) return { joined: false };
  const record = answer as Fields;
  if (record.status === "joined") return { joined: true };
  if (record.unjoined === true) return { joined: false, unjoined: true };
  if (record.status === "bad_request" && typeof record.error === "string") {
    return { joined: false, refused: record.error.slice(0, 500) };
  }
  return { joined: false };
}

/** The answer to `peer_forward`: the relayed request's own answer (any JSON value). */
export function decodeForwardAnswer(answer: unknown): unknown {
  return answerFields(answer).answer;
}

/** The answer to `peer_meta` with a command. */
export function decodeMetaResult(answer: unknown): MetaResult {
  const result = answerFields(answer).result;
  if (typeof result === "object" && result !== null) {
    const fieldsOf = result as Fields;
    if (fieldsOf.ok === true) return { ok: true };
    if (
      fieldsOf.ok === false && (fieldsOf.reason === "exists" || fieldsOf.reason === "not_found")
    ) {
      return { ok: false, reason: fieldsOf.reason };
    }
  }
  throw new ProtocolError("unavailable", "The controller sent a malformed metadata result");
}

/** The answer to `peer_meta` creating a topic. */
export function decodeCreated(answer: unknown): boolean {
  const created = answerFields(answer).created;
  if (typeof created !== "boolean") {
    throw new ProtocolError("unavailable", "The controller sent a malformed creation result");
  }
  return created;
}

/** The answer to `peer_meta_index`. */
export function decodeMetaIndex(answer: unknown): number {
  return answerInteger(answerFields(answer), "index");
}

/** The answer to `peer_subscribe_start`. */
export function decodeSubscribeStartAnswer(answer: unknown): number {
  return answerInteger(answerFields(answer), "start");
}

/** The answer to `peer_wait`. */
export function decodeWaitAnswer(answer: unknown): number {
  return answerInteger(answerFields(answer), "next_offset");
}
