/**
 * Raft messages on the wire: plain JSON with binary fields (entry data,
 * snapshot data, read contexts) as base64 and default fields left out, so a
 * heartbeat costs a few dozen bytes. The binary frame form
 * (`raft_binary.ts`) writes the same message with each binary field as its
 * length and the bytes raw after the JSON; decoding takes both forms. Decoding validates at the edge: a peer
 * frame that does not hold a well-formed message is refused, never stepped.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Message, MessageType } from "../raft/types.ts";
import { MESSAGE_TYPES } from "../raft/types.ts";
import type { ConfState, Entry, Snapshot } from "../storage/types.ts";
import { describeValue } from "../wire/errors.ts";

/** A message as it travels: short keys, optional fields omitted. */
export type WireMessage = Record<string, unknown>;

const messageTypes = new Set<string>(MESSAGE_TYPES);

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

function bytesOf(text: unknown): Uint8Array {
  // The binary frame form puts its raw bytes in place (JSON never yields these).
  if (text instanceof Uint8Array) return text;
  if (typeof text !== "string") throw new TypeError("Expected base64 text");
  const buffer = Buffer.from(text, "base64");
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/**
 * Encodes a Raft message for a peer frame. `blob` writes each binary field
 * (context, then entry data in order, then snapshot data): base64 text by
 * default; the binary frame form passes one that sets the bytes aside and
 * writes their length.
 *
 * @example
 * ```ts
 * const wire = encodeRaftMessage(message);
 * const back = decodeRaftMessage(JSON.parse(JSON.stringify(wire)));
 * ```
 */
export function encodeRaftMessage(
  message: Message,
  blob: (bytes: Uint8Array) => string | number = base64,
): WireMessage {
  const wire: WireMessage = { t: message.type, f: message.from, o: message.to, m: message.term };
  if (message.logTerm) wire.lt = message.logTerm;
  if (message.index) wire.i = message.index;
  if (message.commit) wire.c = message.commit;
  if (message.reject) wire.r = 1;
  if (message.rejectHint) wire.h = message.rejectHint;
  if (message.transfer) wire.x = 1;
  if (message.commitNotice) wire.n = 1;
  if (message.lazySync) wire.l = 1;
  if (message.context) wire.ctx = blob(message.context);
  if (message.entries.length > 0) {
    wire.e = message.entries.map((
      entry,
    ) => [entry.term, entry.index, entry.type, blob(entry.data)]);
  }
  if (message.snapshot) wire.s = encodeSnapshot(message.snapshot, blob);
  return wire;
}

function encodeSnapshot(
  snapshot: Snapshot,
  blob: (bytes: Uint8Array) => string | number,
): WireMessage {
  return { i: snapshot.index, m: snapshot.term, conf: snapshot.conf, d: blob(snapshot.data) };
}

function integer(value: unknown, name: string): number {
  if (value === undefined) return 0;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`Field '${name}' of a Raft message must be a non-negative integer`);
  }
  return value;
}

function ids(value: unknown): number[] {
  if (!Array.isArray(value) || !value.every((id) => Number.isSafeInteger(id) && id > 0)) {
    throw new TypeError("A conf state must list positive node ids");
  }
  return value;
}

/** Decodes and validates a wire message; throws TypeError when malformed. */
export function decodeRaftMessage(wire: WireMessage): Message {
  const type = wire.t;
  if (typeof type !== "string" || !messageTypes.has(type)) {
    throw new TypeError(`Unknown Raft message type '${describeValue(type)}'`);
  }
  const message: Message = {
    type: type as MessageType,
    from: integer(wire.f, "f"),
    to: integer(wire.o, "o"),
    term: integer(wire.m, "m"),
    logTerm: integer(wire.lt, "lt"),
    index: integer(wire.i, "i"),
    entries: wire.e === undefined ? [] : decodeEntries(wire.e),
    commit: integer(wire.c, "c"),
    reject: wire.r === 1,
    rejectHint: integer(wire.h, "h"),
  };
  if (wire.x === 1) message.transfer = true;
  if (wire.n === 1) message.commitNotice = true;
  if (wire.l === 1) message.lazySync = true;
  if (wire.ctx !== undefined) message.context = bytesOf(wire.ctx);
  if (wire.s !== undefined) message.snapshot = decodeSnapshot(wire.s as WireMessage);
  return message;
}

function decodeEntries(value: unknown): Entry[] {
  if (!Array.isArray(value)) throw new TypeError("Field 'e' of a Raft message must be an array");
  return value.map((item) => {
    if (!Array.isArray(item) || item.length !== 4) {
      throw new TypeError("A Raft entry must have 4 fields");
    }
    return {
      term: integer(item[0], "term"),
      index: integer(item[1], "index"),
      type: integer(item[2], "type"),
      data: bytesOf(item[3]),
    };
  });
}

function decodeSnapshot(wire: WireMessage): Snapshot {
  const conf = wire.conf as ConfState;
  if (typeof conf !== "object" || conf === null) {
    throw new TypeError("A snapshot needs a conf state");
  }
  return {
    index: integer(wire.i, "i"),
    term: integer(wire.m, "m"),
    conf: { voters: ids(conf.voters), learners: ids(conf.learners) },
    data: bytesOf(wire.d),
  };
}
