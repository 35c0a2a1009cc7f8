/**
 * The binary form of a `peer_raft` frame: Raft messages as fixed binary
 * fields, entry data raw. Still one length-prefixed frame of the peer codec;
 * its payload is
 *
 *     [0xB2][head length u32][head][blobs]
 *
 * and the head, big-endian throughout (f64 for terms and indexes, which
 * stay safe integers), is
 *
 *     from u32, incarnation (length u8, UTF-8), item count u16, then per item:
 *       group id (length u16, UTF-8), kind u8 (0 quiesce, 1 message)
 *       quiesce: term f64
 *       message: type u8 (index in MESSAGE_TYPES), flags u8 (1 reject,
 *         2 transfer, 4 commit notice, 8 context, 16 snapshot, 32 lazy
 *         sync), from u32,
 *         to u32, term, logTerm, index, commit, rejectHint (f64 each),
 *         entry count u32 and per entry term f64, index f64, type u8,
 *         data length u32; context length u32; snapshot index f64,
 *         term f64, voter count u16 + ids u32, learner count u16 + ids u32,
 *         data length u32
 *
 * The blobs (entry data, context, snapshot data) follow the head in the
 * order their lengths stand, so entry data leaves as it is stored, without
 * a copy. It replaced a JSON header in front of the blobs (`0xB1`): the
 * JSON encoding and parsing of that header was the largest JavaScript cost
 * of a Raft message on both ends (CPU profile of a 3-peer cluster, one
 * publish at a time: 6% of the leader's JavaScript).
 *
 * Peer input is untrusted even after the handshake: decoding checks every
 * field as `decodeRaftFrame` checks the JSON form (ranges, lengths, UTF-8,
 * each message's sender, bytes left over) and throws PeerMessageError. The
 * validated frame travels inside the returned record under a symbol, which
 * no JSON text can produce, so `decodeRaftFrame` takes it as it is.
 *
 * @module
 */

import { readUint32 } from "../bytes.ts";
import { allocBytes, dataViewOf, noBytes } from "../wire/byte_pool.ts";
import { RecentTexts } from "../wire/recent_texts.ts";
import { type Message, MESSAGE_TYPES, type MessageType } from "../raft/types.ts";
import type { Entry, Snapshot } from "../storage/types.ts";
import { concatFrames, frameHeaderBytes } from "../wire/frame.ts";
import { nodeIdMax, PeerMessageError } from "./_peer_messages.ts";
import {
  decodedRaftFrame,
  frameMessagesMax,
  groupIdLengthMax,
  incarnationLengthMax,
  type RaftBatchItem,
  type RaftFrame,
} from "./peer_rpc.ts";

/** First payload byte of a binary Raft frame (never the first byte of JSON). */
export const binaryRaftMagic = 0xb2;
/** Bytes between the frame's length prefix and its head: magic and head length. */
const preludeBytes = 5;
/** Largest term or index a frame may carry (as the JSON form allows). */
const integerMax = Number.MAX_SAFE_INTEGER;
/** Largest quiesce term (as the JSON form allows). */
const quiesceTermMax = 2 ** 52;

const flagReject = 1;
const flagTransfer = 2;
const flagCommitNotice = 4;
const flagContext = 8;
const flagSnapshot = 16;
const flagLazySync = 32;

/** One outgoing item: a Raft message of a group, or a leader's quiesce notice. */
export type RaftOutItem = [groupId: string, body: Message | { quiesce: number }];

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A frame's incarnation and group ids, nearly always those of the last frames (see `RecentTexts`). */
const recentTexts = new RecentTexts(16, decoder);
const typeCodes = new Map<MessageType, number>(MESSAGE_TYPES.map((type, code) => [type, code]));

/** Bytes of the head without its strings (bounded above: UTF-8 takes at most 3 bytes per unit). */
function headBytesBound(incarnation: string, batch: readonly RaftOutItem[]): number {
  let bytes = preludeBytes + frameHeaderBytes + 4 + 1 + incarnation.length * 3 + 2;
  // Indexed loops: destructuring an item runs an array iterator per item.
  for (let at = 0; at < batch.length; at++) {
    const groupId = batch[at][0];
    const body = batch[at][1];
    bytes += 2 + groupId.length * 3 + 1;
    if ("quiesce" in body) {
      bytes += 8;
      continue;
    }
    bytes += 2 + 4 + 4 + 5 * 8 + 4 + body.entries.length * (8 + 8 + 1 + 4);
    if (body.context !== undefined) bytes += 4;
    if (body.snapshot !== undefined) {
      const conf = body.snapshot.conf;
      bytes += 8 + 8 + 2 + conf.voters.length * 4 + 2 + conf.learners.length * 4 + 4;
    }
  }
  return bytes;
}

/**
 * Writes `value` at `at` when it is all ASCII (group ids and incarnations
 * are) and returns its length; `undefined` (nothing written) otherwise.
 * Saves the view `encodeInto` needs per string.
 */
function writeAscii(value: string, bytes: Uint8Array, at: number): number | undefined {
  for (let index = 0; index < value.length; index++) {
    if (value.charCodeAt(index) >= 0x80) return undefined;
  }
  for (let index = 0; index < value.length; index++) bytes[at + index] = value.charCodeAt(index);
  return value.length;
}

/** Writes the head of a frame, collecting its blobs in order. */
class HeadWriter {
  readonly bytes: Uint8Array;
  /** A view of the whole buffer under `bytes` (carved: see `allocBytes`), at `#base`. */
  readonly view: DataView;
  readonly #base: number;
  at: number;
  readonly blobs: Uint8Array[] = [];
  blobBytes = 0;

  constructor(capacity: number, start: number) {
    this.bytes = allocBytes(capacity);
    this.view = dataViewOf(this.bytes);
    this.#base = this.bytes.byteOffset;
    this.at = start;
  }

  u8(value: number): void {
    this.bytes[this.at++] = value;
  }

  u16(value: number): void {
    this.view.setUint16(this.#base + this.at, value);
    this.at += 2;
  }

  u32(value: number): void {
    this.view.setUint32(this.#base + this.at, value);
    this.at += 4;
  }

  f64(value: number): void {
    this.view.setFloat64(this.#base + this.at, value);
    this.at += 8;
  }

  /** A string with its UTF-8 length first, in `lengthBytes` (1 or 2). */
  text(value: string, lengthBytes: 1 | 2): void {
    const lengthAt = this.at;
    this.at += lengthBytes;
    const written = writeAscii(value, this.bytes, this.at) ??
      encoder.encodeInto(value, this.bytes.subarray(this.at)).written;
    if (lengthBytes === 1) this.bytes[lengthAt] = written;
    else this.view.setUint16(this.#base + lengthAt, written);
    this.at += written;
  }

  /** A blob's length here, its bytes after the head. */
  blob(bytes: Uint8Array): void {
    this.u32(bytes.length);
    if (bytes.length > 0) this.blobs.push(bytes);
    this.blobBytes += bytes.length;
  }
}

function writeMessage(head: HeadWriter, message: Message): void {
  const code = typeCodes.get(message.type);
  if (code === undefined) throw new TypeError(`Unknown Raft message type '${message.type}'`);
  // Fields narrower than a number: refused here rather than wrapped on the wire.
  if (message.to > nodeIdMax || message.from > nodeIdMax) {
    throw new RangeError(`A Raft message names a node id above ${nodeIdMax}`);
  }
  head.u8(code);
  head.u8(
    (message.reject ? flagReject : 0) | (message.transfer ? flagTransfer : 0) |
      (message.commitNotice ? flagCommitNotice : 0) |
      (message.context !== undefined ? flagContext : 0) |
      (message.snapshot !== undefined ? flagSnapshot : 0) |
      (message.lazySync ? flagLazySync : 0),
  );
  head.u32(message.from);
  head.u32(message.to);
  head.f64(message.term);
  head.f64(message.logTerm);
  head.f64(message.index);
  head.f64(message.commit);
  head.f64(message.rejectHint);
  head.u32(message.entries.length);
  for (const entry of message.entries) {
    if (entry.type > 255) throw new RangeError(`Entry type ${entry.type} does not fit a byte`);
    head.f64(entry.term);
    head.f64(entry.index);
    head.u8(entry.type);
    head.blob(entry.data);
  }
  if (message.context !== undefined) head.blob(message.context);
  if (message.snapshot !== undefined) writeSnapshot(head, message.snapshot);
}

function writeSnapshot(head: HeadWriter, snapshot: Snapshot): void {
  head.f64(snapshot.index);
  head.f64(snapshot.term);
  for (const ids of [snapshot.conf.voters, snapshot.conf.learners]) {
    head.u16(ids.length);
    for (const id of ids) head.u32(id);
  }
  head.blob(snapshot.data);
}

/**
 * Encodes a frame carrying `batch` from node `from` as consecutive parts:
 * the length prefix, prelude and head, then every blob as it is (entry
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
  const head = new HeadWriter(headBytesBound(incarnation, batch), frameHeaderBytes + preludeBytes);
  head.u32(from);
  head.text(incarnation, 1);
  head.u16(batch.length);
  for (let at = 0; at < batch.length; at++) {
    const body = batch[at][1];
    head.text(batch[at][0], 2);
    if ("quiesce" in body) {
      head.u8(0);
      head.f64(body.quiesce);
    } else {
      head.u8(1);
      writeMessage(head, body);
    }
  }
  const headBytes = head.at - frameHeaderBytes - preludeBytes;
  const base = head.bytes.byteOffset;
  head.view.setUint32(base, preludeBytes + headBytes + head.blobBytes);
  head.bytes[frameHeaderBytes] = binaryRaftMagic;
  head.view.setUint32(base + frameHeaderBytes + 1, headBytes);
  return [head.bytes.subarray(0, head.at), ...head.blobs];
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

/** Reads a head, refusing anything out of range or past its end. */
class HeadReader {
  readonly #bytes: Uint8Array;
  /** A view of the whole buffer under the payload, which starts at `#base` in it. */
  readonly #view: DataView;
  readonly #base: number;
  #at: number;
  readonly #end: number;
  #blobAt: number;
  /** The blob area after the head, copied on the first blob that has bytes (unless owned). */
  #blobs: Uint8Array | undefined;
  /** The payload is an array nobody reuses: blobs are views of it, not of a copy. */
  readonly #owned: boolean;

  constructor(payload: Uint8Array, headEnd: number, owned: boolean) {
    this.#bytes = payload;
    this.#owned = owned;
    this.#view = dataViewOf(payload);
    this.#base = payload.byteOffset;
    this.#at = preludeBytes;
    this.#end = headEnd;
    this.#blobAt = headEnd;
  }

  #need(bytes: number, what: string): number {
    const at = this.#at;
    if (at + bytes > this.#end) {
      throw new PeerMessageError(`The ${what} runs past the frame's head`);
    }
    this.#at = at + bytes;
    return at;
  }

  u8(what: string): number {
    return this.#bytes[this.#need(1, what)];
  }

  u16(what: string): number {
    return this.#view.getUint16(this.#base + this.#need(2, what));
  }

  u32(what: string): number {
    return this.#view.getUint32(this.#base + this.#need(4, what));
  }

  /** A term or index: a non-negative safe integer. */
  integer(what: string): number {
    const value = this.#view.getFloat64(this.#base + this.#need(8, what));
    if (!Number.isSafeInteger(value) || value < 0 || value > integerMax) {
      throw new PeerMessageError(`The ${what} must be a non-negative integer`);
    }
    return value;
  }

  nodeId(what: string, min: number): number {
    const value = this.u32(what);
    if (value < min || value > nodeIdMax) {
      throw new PeerMessageError(`The ${what} must be a node id between ${min} and ${nodeIdMax}`);
    }
    return value;
  }

  /** A string of 1 to `unitsMax` UTF-16 units, its UTF-8 length in `lengthBytes`. */
  text(lengthBytes: 1 | 2, unitsMax: number, what: string): string {
    const length = lengthBytes === 1 ? this.u8(what) : this.u16(what);
    const at = this.#need(length, what);
    let value: string;
    try {
      value = recentTexts.decode(this.#bytes, at, length);
    } catch {
      throw new PeerMessageError(`The ${what} is not UTF-8`);
    }
    if (value.length === 0 || value.length > unitsMax) {
      throw new PeerMessageError(`The ${what} must have 1 to ${unitsMax} characters`);
    }
    return value;
  }

  /**
   * The next blob, by the length that stands here: a view of one copy of the
   * frame's blob area, in a buffer of its own. The payload may be a view of a
   * read buffer that is reused once the frame is decoded, and entries keep
   * their bytes for as long as a log's cache keeps them: a frame's entries
   * keep their own area alive and nothing else. An owned payload (an array
   * of its own that nobody reuses) is viewed as it is: its head is the only
   * extra it keeps alive, and a 512 KiB entry is not copied once more.
   */
  blob(what: string): Uint8Array {
    const length = this.u32(what);
    const left = this.#bytes.length - this.#blobAt;
    if (length > left) {
      throw new PeerMessageError(
        `A binary field of ${length} bytes runs past the end of its frame (${left} left)`,
      );
    }
    if (length === 0) return noBytes;
    this.#blobs ??= this.#owned ? this.#bytes.subarray(this.#end) : this.#bytes.slice(this.#end);
    const at = this.#blobAt - this.#end;
    this.#blobAt += length;
    return this.#blobs.subarray(at, at + length);
  }

  finish(): void {
    if (this.#at !== this.#end) {
      throw new PeerMessageError(`A binary Raft frame has ${this.#end - this.#at} head bytes left`);
    }
    const left = this.#bytes.length - this.#blobAt;
    if (left !== 0) {
      throw new PeerMessageError(`A binary Raft frame has ${left} bytes no field claims`);
    }
  }
}

function readMessage(head: HeadReader, from: number, index: number): Message {
  const code = head.u8("message type");
  const type = MESSAGE_TYPES[code];
  if (type === undefined) throw new PeerMessageError(`Unknown Raft message type ${code}`);
  const flags = head.u8("message flags");
  if (flags >= 64) throw new PeerMessageError(`Unknown Raft message flags ${flags}`);
  const sender = head.nodeId("message sender", 0);
  if (sender !== from) {
    throw new PeerMessageError(`Batch item ${index} claims to come from node ${sender}`);
  }
  const message: Message = {
    type,
    from: sender,
    to: head.u32("message receiver"),
    term: head.integer("message term"),
    logTerm: head.integer("message log term"),
    index: head.integer("message index"),
    entries: [],
    commit: head.integer("message commit"),
    reject: (flags & flagReject) !== 0,
    rejectHint: head.integer("message reject hint"),
  };
  const entries = head.u32("entry count");
  for (let at = 0; at < entries; at++) message.entries.push(readEntry(head));
  if ((flags & flagTransfer) !== 0) message.transfer = true;
  if ((flags & flagCommitNotice) !== 0) message.commitNotice = true;
  if ((flags & flagContext) !== 0) message.context = head.blob("read context");
  if ((flags & flagSnapshot) !== 0) message.snapshot = readSnapshot(head);
  if ((flags & flagLazySync) !== 0) message.lazySync = true;
  return message;
}

function readQuiesceTerm(head: HeadReader): number {
  const term = head.integer("quiesce term");
  if (term > quiesceTermMax) {
    throw new PeerMessageError(`A quiesce term must be at most ${quiesceTermMax}`);
  }
  return term;
}

function readEntry(head: HeadReader): Entry {
  return {
    term: head.integer("entry term"),
    index: head.integer("entry index"),
    type: head.u8("entry type"),
    data: head.blob("entry data"),
  };
}

function readSnapshot(head: HeadReader): Snapshot {
  const index = head.integer("snapshot index");
  const term = head.integer("snapshot term");
  const ids = (what: string) => {
    const count = head.u16(`${what} count`);
    const list: number[] = [];
    for (let at = 0; at < count; at++) list.push(head.nodeId(what, 1));
    return list;
  };
  const voters = ids("snapshot voter");
  const learners = ids("snapshot learner");
  return { index, term, conf: { voters, learners }, data: head.blob("snapshot data") };
}

/**
 * Decodes and validates a binary payload into a `peer_raft` record whose
 * validated frame `decodeRaftFrame` returns as it is; binary fields are
 * views into one copy of the payload's blob area (none for a frame without
 * blobs, such as an acknowledgement), so `payload` may be reused after.
 * With `owned` (the payload is an array of its own that its caller never
 * reuses or changes, as `FrameEvent.owned` says), they are views of
 * `payload` itself. Throws PeerMessageError when any field is out of range,
 * runs past the end or leaves bytes over.
 *
 * @example
 * ```ts
 * const frame = decodeRaftFrame(decodeBinaryRaftPayload(payload));
 * ```
 */
export function decodeBinaryRaftPayload(
  payload: Uint8Array,
  owned = false,
): Record<string, unknown> {
  if (!isBinaryRaftPayload(payload) || payload.length < preludeBytes) {
    throw new PeerMessageError("A binary Raft frame must start with its magic byte and head");
  }
  const headBytes = readUint32(payload, 1);
  if (headBytes > payload.length - preludeBytes) {
    throw new PeerMessageError(
      `The head of a binary Raft frame claims ${headBytes} bytes of ${
        payload.length - preludeBytes
      }`,
    );
  }
  const head = new HeadReader(payload, preludeBytes + headBytes, owned);
  const from = head.nodeId("sender", 1);
  const incarnation = head.text(1, incarnationLengthMax, "incarnation");
  const count = head.u16("item count");
  if (count > frameMessagesMax) {
    throw new PeerMessageError(`A Raft frame may carry at most ${frameMessagesMax} messages`);
  }
  const batch: RaftBatchItem[] = [];
  for (let index = 0; index < count; index++) {
    const groupId = head.text(2, groupIdLengthMax, `group id of batch item ${index}`);
    const kind = head.u8("item kind");
    if (kind === 0) batch.push({ groupId, quiesceTerm: readQuiesceTerm(head) });
    else if (kind === 1) batch.push({ groupId, message: readMessage(head, from, index) });
    else throw new PeerMessageError(`Batch item ${index} has unknown kind ${kind}`);
  }
  head.finish();
  const frame: RaftFrame = { from, incarnation, batch };
  return { action: "peer_raft", [decodedRaftFrame]: frame };
}
