/**
 * The commands a topic's log holds, and their byte encoding. One log entry is
 * one command; a publish command carries a whole batch of messages, so offsets
 * (dense, per topic) and log indices (dense, per replica log) differ, and the
 * topic state maps one to the other.
 *
 * Encoding: one tag byte, then UTF-8 JSON. JSON keeps entries readable in a hex
 * dump and costs little next to the fsync every batch pays.
 *
 * @module
 */

import { noBytes } from "../wire/byte_pool.ts";
import type { Producer } from "./topic.ts";

/** One client publish inside a publish command; with a producer id, sequence dedupes retries. */
export interface PublishPart {
  messages: string[];
  producerId?: string;
  sequence?: number;
}

/**
 * Appends the messages of one or more client publishes. The leader coalesces
 * publishes that arrive together into one entry, so a burst costs one log
 * record, one checksum and one replication message instead of one each.
 */
export interface PublishCommand {
  kind: "publish";
  parts: PublishPart[];
}

/** Stores durable subscriber positions (last acknowledged offset, -1 for none). */
export interface AckCommand {
  kind: "ack";
  offsets: Record<string, number>;
}

/**
 * Retention: offsets below `firstOffset` are deleted. The topic's leader
 * decides it once from its own segments; every replica applies it, so all
 * agree on the first retained offset, and then deletes its whole segments
 * below the entry holding it.
 */
export interface RetainCommand {
  kind: "retain";
  firstOffset: number;
}

/** A command of the topic state machine. */
export type TopicCommand = PublishCommand | AckCommand | RetainCommand;

const publishTag = 1;
const ackTag = 2;
const retainTag = 3;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes a command as entry data.
 *
 * @example
 * ```ts
 * const data = encodeCommand({ kind: "publish", parts: [{ messages: ["hi"] }] });
 * ```
 */
export function encodeCommand(command: TopicCommand): Uint8Array {
  const [tag, body] = encodedBody(command);
  const json = JSON.stringify(body);
  // Worst case UTF-8 is 3 bytes per UTF-16 unit. The entry gets a buffer of
  // its exact size: the log's cache keeps entries, and a 3x buffer behind
  // a view would triple their memory.
  const bound = 1 + json.length * 3;
  const target = bound <= scratchBytesMax ? scratchOf(bound) : new Uint8Array(bound);
  target[0] = tag;
  const { written } = encoder.encodeInto(json, target.subarray(1));
  return target.slice(0, 1 + written);
}

/** Largest reused encoding buffer; bigger commands get one of their own. */
const scratchBytesMax = 4 * 1024 * 1024;
let scratch = new Uint8Array(64 * 1024);

function scratchOf(bytes: number): Uint8Array {
  if (scratch.length < bytes) scratch = new Uint8Array(Math.min(scratchBytesMax, bytes * 2));
  return scratch;
}

function encodedBody(command: TopicCommand): [number, unknown] {
  switch (command.kind) {
    case "publish":
      return [
        publishTag,
        command.parts.map((part) => [part.messages, part.producerId, part.sequence]),
      ];
    case "ack":
      return [ackTag, command.offsets];
    case "retain":
      return [retainTag, command.firstOffset];
  }
}

/** Where a builder's first buffer starts (it doubles as parts arrive). */
const builderBytesMin = 4 * 1024;
/** Free builder buffers kept for the next batch (one per topic with a batch open at once). */
const builderPoolMax = 8;
/**
 * Largest builder buffer returned to the pool (so an idle peer keeps at
 * most 2 MiB of them); bigger ones are left to the collector.
 */
const pooledBytesMax = 256 * 1024;
const builderPool: Uint8Array[] = [];
/**
 * A part at least this large grows the builder to the size it needs, not
 * to the next power of two, and `finish()` then hands that buffer out as
 * the command's data instead of copying it: a 512 KiB message cost a 1 MiB
 * buffer and a 512 KiB copy per entry (three times its bytes in garbage on
 * the leader, session 14). Small parts keep doubling: a batch of many
 * would otherwise copy the buffer at every part.
 */
const largePartBytes = 64 * 1024;
/** Most unused bytes a buffer may keep when `finish()` hands it out without a copy. */
const handedOutSlackMax = 4 * 1024;

const openMessagePart = encoder.encode('[["');
const closeMessage = encoder.encode('"],');
const openArrayPart = encoder.encode("[");
const closeArray = encoder.encode(",");
const noProducer = encoder.encode("null,null]");

/**
 * The data of one publish command, built part by part as its publishes
 * arrive: `finish()` returns exactly what `encodeCommand` returns for the
 * same parts. A part may be given as the bytes of its one message's JSON
 * string body (`addMessageBytes`) or of its messages' JSON array
 * (`addMessagesBytes`), which are copied as they are: the request's bytes
 * go into the entry without being decoded and encoded again. Only bytes
 * that `JSON.stringify` writes for the same strings may be given that way
 * (valid UTF-8, escapes only as it writes them, no whitespace in an array).
 *
 * @example
 * ```ts
 * const builder = new PublishEntryBuilder();
 * builder.addPart({ messages: ["hi"] });
 * builder.addMessageBytes(new TextEncoder().encode("there"), 0, 5);
 * builder.addMessagesBytes(new TextEncoder().encode('["a","b"]'), 0, 9);
 * builder.finish(); // encodeCommand({ kind: "publish", parts: [{ messages: ["hi"] }, { messages: ["there"] }, { messages: ["a", "b"] }] })
 * ```
 */
export class PublishEntryBuilder {
  #buffer: Uint8Array;
  #length = 0;

  constructor() {
    this.#buffer = builderPool.pop() ?? new Uint8Array(builderBytesMin);
    this.#buffer[0] = publishTag;
    this.#buffer[1] = 0x5b; // [
    this.#length = 2;
  }

  /** Adds a part given as strings (JSON-encoded here). */
  addPart(part: PublishPart): void {
    this.#comma();
    this.#putText(JSON.stringify([part.messages, part.producerId, part.sequence]));
  }

  /**
   * Adds a part of one message given as the bytes `source[start..end)` of
   * its JSON string body (see the class comment), with its producer if any.
   */
  addMessageBytes(source: Uint8Array, start: number, end: number, producer?: Producer): void {
    this.#addBytes(openMessagePart, source, start, end, closeMessage, producer);
  }

  /**
   * Adds a part whose messages are given as the bytes `source[start..end)`
   * of their JSON array, brackets included (see the class comment), with
   * its producer if any.
   */
  addMessagesBytes(source: Uint8Array, start: number, end: number, producer?: Producer): void {
    this.#addBytes(openArrayPart, source, start, end, closeArray, producer);
  }

  /** Appends a part: `open`, the bytes `source[start..end)`, `close`, then the producer. */
  #addBytes(
    open: Uint8Array,
    source: Uint8Array,
    start: number,
    end: number,
    close: Uint8Array,
    producer: Producer | undefined,
  ): void {
    this.#reserve(end - start + 32);
    const buffer = this.#buffer;
    let at = this.#length;
    // The few bytes around the messages are stored one by one: cheaper than a set() each.
    if (at > 2) buffer[at++] = 0x2c; // ,
    at = putBytes(buffer, at, open);
    buffer.set(source.subarray(start, end), at);
    at = putBytes(buffer, at + end - start, close);
    if (producer === undefined) {
      this.#length = putBytes(buffer, at, noProducer);
      return;
    }
    this.#length = at;
    this.#putProducer(producer);
  }

  /**
   * Appends `"producerId",sequence]` as `JSON.stringify` writes them: the
   * id's bytes are kept for the next part of the same producer (an
   * idempotent client's every publish), the sequence's digits written here
   * (each `TextEncoder` call is a call into the runtime).
   */
  #putProducer(producer: Producer): void {
    const sequence = producer.sequence;
    if (!Number.isSafeInteger(sequence) || sequence < 0) {
      this.#putText(`${JSON.stringify(producer.producerId)},${JSON.stringify(sequence)}]`);
      return;
    }
    if (producer.producerId !== lastProducer.id) {
      lastProducer = {
        id: producer.producerId,
        json: encoder.encode(`${JSON.stringify(producer.producerId)},`),
      };
    }
    const json = lastProducer.json;
    this.#reserve(json.length + safeIntegerDigitsMax + 1);
    const at = putDigits(this.#buffer, putBytes(this.#buffer, this.#length, json), sequence);
    this.#buffer[at] = 0x5d; // ]
    this.#length = at + 1;
  }

  /** The command's data, in a buffer of its exact size; the builder is done. */
  finish(): Uint8Array {
    this.#reserve(1);
    this.#buffer[this.#length++] = 0x5d; // ]
    // A buffer of its own, not a carved one (see byte_pool.ts): a log's cache keeps it.
    const buffer = this.#buffer;
    const handOut = buffer.length > pooledBytesMax &&
      buffer.length - this.#length <= handedOutSlackMax;
    const data = handOut ? buffer.subarray(0, this.#length) : buffer.slice(0, this.#length);
    if (!handOut && builderPool.length < builderPoolMax && buffer.length <= pooledBytesMax) {
      builderPool.push(buffer);
    }
    this.#buffer = noBytes;
    return data;
  }

  /** Appends `text` as UTF-8. */
  #putText(text: string): void {
    this.#reserve(text.length * 3);
    const { written } = encoder.encodeInto(text, this.#buffer.subarray(this.#length));
    this.#length += written;
  }

  #comma(): void {
    this.#reserve(1);
    if (this.#length > 2) this.#buffer[this.#length++] = 0x2c; // ,
  }

  #reserve(bytes: number): void {
    const needed = this.#length + bytes + 1;
    if (needed <= this.#buffer.length) return;
    let size = Math.max(builderBytesMin, this.#buffer.length * 2);
    while (size < needed) size *= 2;
    // A large part: room for it and what `finish()` and a producer add (see `largePartBytes`).
    if (bytes >= largePartBytes) size = needed + 256;
    const grown = new Uint8Array(size);
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }
}

/** Digits of `Number.MAX_SAFE_INTEGER`. */
const safeIntegerDigitsMax = 16;

/** The producer whose id `#putProducer` encoded last, with its JSON and a comma. */
let lastProducer = { id: "", json: encoder.encode('"",') };

/** Writes the decimal digits of `value` (a non-negative safe integer) at `at`; returns their end. */
function putDigits(buffer: Uint8Array, at: number, value: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  let rest = value;
  for (let index = at + digits - 1; index >= at; index--) {
    buffer[index] = 0x30 + (rest % 10);
    rest = Math.floor(rest / 10);
  }
  return at + digits;
}

/** Writes the few `bytes` at `at` of `buffer`; returns where they end. */
function putBytes(buffer: Uint8Array, at: number, bytes: Uint8Array): number {
  for (let index = 0; index < bytes.length; index++) buffer[at + index] = bytes[index];
  return at + bytes.length;
}

/** The messages of a one-message part whose text is not known (frozen: shared by every such part). */
const oneUnknownText = Object.freeze([""]) as string[];

/**
 * The messages of a part of `count` messages whose texts are not known: an
 * empty placeholder each (a leader's remembered command of request bytes,
 * a follower's command decoded from its counts). Only the count matters to
 * the topic's state.
 *
 * @example
 * ```ts
 * import { placeholderTexts } from "./topic_commands.ts";
 *
 * console.log(placeholderTexts(2)); // ["", ""]
 * ```
 */
export function placeholderTexts(count: number): string[] {
  return count === 1 ? oneUnknownText : new Array<string>(count).fill("");
}

/**
 * `decodeCommand` for a replica that needs only what a publish changes in
 * the topic's state (how many messages each part holds, its producer and
 * sequence), not the texts: each message is an empty placeholder, as in a
 * leader's own remembered commands. A follower with no subscriber waiting at
 * the tail applies every entry so; decoding the texts (`JSON.parse` of the
 * whole entry) cost it 10 µs per small publish and 1 ms per 512 KiB message
 * (session 14). Written by hand: the scan finds each string's end with the
 * array's own `indexOf` and never builds the string. Anything but the shape
 * `encodeCommand` writes is decoded in full instead.
 *
 * @example
 * ```ts
 * import { decodeCommandCounts, encodeCommand } from "./topic_commands.ts";
 *
 * const data = encodeCommand({ kind: "publish", parts: [{ messages: ["a", "b"] }] });
 * decodeCommandCounts(data); // { kind: "publish", parts: [{ messages: ["", ""], ... }] }
 * ```
 */
export function decodeCommandCounts(data: Uint8Array): TopicCommand | undefined {
  if (data.length === 0 || data[0] !== publishTag) return decodeCommand(data);
  const parts = scanPublishParts(data);
  return parts === undefined ? decodeCommand(data) : { kind: "publish", parts };
}

/** The parts of a publish command's data with placeholder texts, or undefined for another shape. */
function scanPublishParts(data: Uint8Array): PublishPart[] | undefined {
  let at = 1;
  if (data[at++] !== 0x5b) return undefined; // [
  const parts: PublishPart[] = [];
  if (data[at] === 0x5d) return at + 1 === data.length ? parts : undefined;
  while (true) {
    if (data[at++] !== 0x5b || data[at++] !== 0x5b) return undefined; // [[
    let count = 0;
    if (data[at] === 0x5d) {
      at++;
    } else {
      while (true) {
        at = skipString(data, at);
        if (at < 0) return undefined;
        count++;
        const next = data[at++];
        if (next === 0x5d) break;
        if (next !== 0x2c) return undefined;
      }
    }
    if (data[at++] !== 0x2c) return undefined;
    let producerId: string | undefined;
    if (isNullAt(data, at)) {
      at += 4;
    } else {
      const end = skipString(data, at);
      if (end < 0) return undefined;
      producerId = JSON.parse(decoder.decode(data.subarray(at, end)));
      at = end;
    }
    if (data[at++] !== 0x2c) return undefined;
    let sequence: number | undefined;
    if (isNullAt(data, at)) {
      at += 4;
    } else {
      const start = at;
      let value = 0;
      while (data[at] >= 0x30 && data[at] <= 0x39) value = value * 10 + (data[at++] - 0x30);
      if (at === start || at - start > 16 || !Number.isSafeInteger(value)) return undefined;
      sequence = value;
    }
    if (data[at++] !== 0x5d) return undefined;
    parts.push({ messages: placeholderTexts(count), producerId, sequence });
    const next = data[at++];
    if (next === 0x5d) return at === data.length ? parts : undefined;
    if (next !== 0x2c) return undefined;
  }
}

/** Where the JSON string starting at `at` ends (after its closing quote), or -1. */
function skipString(data: Uint8Array, at: number): number {
  if (data[at] !== 0x22) return -1;
  let from = at + 1;
  while (true) {
    const quote = data.indexOf(0x22, from);
    if (quote < 0) return -1;
    // Escaped when an odd number of backslashes stands right before it.
    let backslashes = 0;
    while (data[quote - 1 - backslashes] === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

function isNullAt(data: Uint8Array, at: number): boolean {
  return data[at] === 0x6e && data[at + 1] === 0x75 && data[at + 2] === 0x6c &&
    data[at + 3] === 0x6c;
}

/** Decodes entry data; an empty entry (a Raft no-op) is `undefined`. */
export function decodeCommand(data: Uint8Array): TopicCommand | undefined {
  if (data.length === 0) return undefined;
  const body = JSON.parse(decoder.decode(data.subarray(1)));
  switch (data[0]) {
    case publishTag:
      return {
        kind: "publish",
        parts: (body as [string[], string | null, number | null][]).map((
          [messages, producerId, sequence],
        ) => ({
          messages,
          producerId: producerId ?? undefined,
          sequence: sequence ?? undefined,
        })),
      };
    case ackTag:
      return { kind: "ack", offsets: body };
    case retainTag:
      return { kind: "retain", firstOffset: body as number };
    default:
      throw new RangeError(`Cannot decode topic command as tag ${data[0]} is unknown`);
  }
}
