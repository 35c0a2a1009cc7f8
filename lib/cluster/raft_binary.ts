/**
 * The binary form of a `peer_raft` frame: Raft messages whose entry data
 * travels raw instead of as base64 inside JSON. Still one length-prefixed
 * frame of the peer codec; its payload is
 *
 *     [0xB1][header length u32 BE][header: UTF-8 JSON][blobs]
 *
 * The header is the JSON `peer_raft` frame (`raftFrame` in `peer_rpc.ts`)
 * with every binary field (an entry's data, a read context, a snapshot's
 * data) replaced by its length in bytes; the blobs follow in the order
 * those fields appear (per message: context, entries, snapshot). A JSON
 * payload starts with `{`, so the first byte tells the forms apart.
 *
 * Decoding puts the blobs back in place as `Uint8Array`s and hands the
 * result to the same validator as the JSON form (`decodeRaftFrame`): every
 * length is bounds-checked here, every other field there, and bytes left
 * over refuse the frame. Peer input is untrusted even after the handshake.
 *
 * @module
 */

import type { Message } from "../raft/types.ts";
import { concatFrames, frameHeaderBytes } from "../wire/frame.ts";
import { PeerMessageError } from "./_peer_messages.ts";
import { encodeRaftMessage } from "./raft_codec.ts";

/** First payload byte of a binary Raft frame (never the first byte of JSON). */
export const binaryRaftMagic = 0xb1;
/** Bytes between the frame's length prefix and its JSON header: magic and header length. */
const preludeBytes = 5;

/** One outgoing item: a Raft message of a group, or a leader's quiesce notice. */
export type RaftOutItem = [groupId: string, body: Message | { quiesce: number }];

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes a frame carrying `batch` from node `from` as consecutive parts:
 * the length prefix, prelude and header, then every blob as it is (entry
 * data is not copied; stored entries are never modified). Their
 * concatenation is the frame.
 *
 * @example
 * ```ts
 * const parts = encodeBinaryRaftFrameParts(1, "a1b2", [["t:events", message]]);
 * link.sendFrame(parts);
 * ```
 */
export function encodeBinaryRaftFrameParts(
  from: number,
  incarnation: string,
  batch: readonly RaftOutItem[],
): Uint8Array[] {
  const parts: Uint8Array[] = [new Uint8Array(0)];
  let blobBytes = 0;
  const blob = (bytes: Uint8Array): number => {
    if (bytes.length > 0) parts.push(bytes);
    blobBytes += bytes.length;
    return bytes.length;
  };
  const items = batch.map(([groupId, body]) => [
    groupId,
    "quiesce" in body ? body : encodeRaftMessage(body, blob),
  ]);
  const header = encoder.encode(
    JSON.stringify({ action: "peer_raft", from, incarnation, batch: items }),
  );
  const payloadBytes = preludeBytes + header.length + blobBytes;
  const head = new Uint8Array(frameHeaderBytes + preludeBytes + header.length);
  const view = new DataView(head.buffer);
  view.setUint32(0, payloadBytes);
  head[frameHeaderBytes] = binaryRaftMagic;
  view.setUint32(frameHeaderBytes + 1, header.length);
  head.set(header, frameHeaderBytes + preludeBytes);
  parts[0] = head;
  return parts;
}

/**
 * Encodes a whole frame (length prefix included) in one buffer: the parts
 * of {@linkcode encodeBinaryRaftFrameParts}, concatenated.
 *
 * @example
 * ```ts
 * const frame = encodeBinaryRaftFrame(1, "a1b2", [["t:events", message]]);
 * ```
 */
export function encodeBinaryRaftFrame(
  from: number,
  incarnation: string,
  batch: readonly RaftOutItem[],
): Uint8Array {
  return concatFrames(encodeBinaryRaftFrameParts(from, incarnation, batch));
}

/** True when a frame payload is in the binary form. */
export function isBinaryRaftPayload(payload: Uint8Array): boolean {
  return payload.length > 0 && payload[0] === binaryRaftMagic;
}

/**
 * Turns a binary payload back into the fields of a `peer_raft` message,
 * with binary fields as `Uint8Array`s (views into `payload`), for
 * `decodeRaftFrame` to validate. Throws PeerMessageError when the payload
 * is malformed: a header that does not fit or is not a JSON object, a
 * length beyond the blobs, or blob bytes no field claims.
 *
 * @example
 * ```ts
 * const frame = decodeRaftFrame(decodeBinaryRaftPayload(payload));
 * ```
 */
export function decodeBinaryRaftPayload(payload: Uint8Array): Record<string, unknown> {
  if (!isBinaryRaftPayload(payload) || payload.length < preludeBytes) {
    throw new PeerMessageError("A binary Raft frame must start with its magic byte and header");
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const headerBytes = view.getUint32(1);
  if (headerBytes > payload.length - preludeBytes) {
    throw new PeerMessageError(
      `The header of a binary Raft frame claims ${headerBytes} bytes of ${
        payload.length - preludeBytes
      }`,
    );
  }
  const headerEnd = preludeBytes + headerBytes;
  let header: unknown;
  try {
    header = JSON.parse(decoder.decode(payload.subarray(preludeBytes, headerEnd)));
  } catch {
    throw new PeerMessageError("The header of a binary Raft frame is not UTF-8 JSON");
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new PeerMessageError("The header of a binary Raft frame must be a JSON object");
  }
  const fields = header as Record<string, unknown>;
  if (fields.action !== "peer_raft") {
    throw new PeerMessageError("A binary frame must be a 'peer_raft' frame");
  }
  const blobs = new BlobReader(payload, headerEnd);
  if (Array.isArray(fields.batch)) {
    for (const item of fields.batch) {
      if (Array.isArray(item) && item.length === 2 && isRecord(item[1])) blobs.fill(item[1]);
    }
  }
  blobs.finish();
  return fields;
}

/** Hands out the blob area of a payload, in order, never past its end. */
class BlobReader {
  readonly #payload: Uint8Array;
  #at: number;

  constructor(payload: Uint8Array, start: number) {
    this.#payload = payload;
    this.#at = start;
  }

  /** Puts the blobs of one wire message back where their lengths stand. */
  fill(body: Record<string, unknown>): void {
    if (body.ctx !== undefined) body.ctx = this.#take(body.ctx);
    if (Array.isArray(body.e)) {
      for (const entry of body.e) {
        if (Array.isArray(entry) && entry.length === 4) entry[3] = this.#take(entry[3]);
      }
    }
    if (isRecord(body.s) && body.s.d !== undefined) body.s.d = this.#take(body.s.d);
  }

  finish(): void {
    const left = this.#payload.length - this.#at;
    if (left !== 0) {
      throw new PeerMessageError(`A binary Raft frame has ${left} bytes no field claims`);
    }
  }

  #take(length: unknown): Uint8Array {
    const left = this.#payload.length - this.#at;
    if (typeof length !== "number" || !Number.isSafeInteger(length) || length < 0) {
      throw new PeerMessageError("A binary field of a Raft frame must be given by its length");
    }
    if (length > left) {
      throw new PeerMessageError(
        `A binary field of ${length} bytes runs past the end of its frame (${left} left)`,
      );
    }
    const bytes = this.#payload.subarray(this.#at, this.#at + length);
    this.#at += length;
    return bytes;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
