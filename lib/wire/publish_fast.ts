/**
 * The hot requests read straight from their bytes: a `publish` or a
 * `publish_batch` in the flat shape clients and the benchmarks send
 * (`JSON.stringify` output: no whitespace, keys among `action`,
 * `topic_name`, `message` (publish) or `messages` (batch), `producer_id`,
 * `sequence` and `id`, each once). It skips the UTF-8 decoding of the
 * whole frame, `JSON.parse` and the generic validation: only the topic,
 * producer and id strings are decoded, and the messages are only checked
 * (valid UTF-8, no raw control characters, escapes only where and as
 * `JSON.stringify` writes them), so that their bytes are what
 * `JSON.stringify` writes for them and may go into a log entry as they
 * are. Anything else (another action, another escape such as `\/` or
 * `\u0041`, a duplicate key, a value out of range, invalid UTF-8) is
 * declined, and `decodeRequest` then decodes or refuses it as before, so
 * errors and their sentences do not change. Whenever a request is
 * returned, `decodeRequest` returns an equal one (fast-check properties in
 * tests/wire/publish_fast_property_test.ts).
 *
 * @module
 */

import { holdsAt } from "../bytes.ts";
import { RecentTexts } from "./recent_texts.ts";
import {
  batchMessagesMax,
  clientIdLengthMax,
  type Request,
  topicNameLengthMax,
} from "./requests.ts";

/** A `publish` or `publish_batch` request as `decodeRequest` returns it. */
export type PublishRequest = Extract<Request, { action: "publish" | "publish_batch" }>;

/**
 * A plain `publish` or `publish_batch` read from its bytes, its messages
 * not decoded yet: they are `payload[messageStart..messageEnd)`, for a
 * `publish` the body of its message's JSON string (without the quotes),
 * for a `publish_batch` the whole JSON array of its messages (brackets
 * included). Either is valid UTF-8 without raw control characters, whose
 * escapes are those `JSON.stringify` writes: the bytes it writes for those
 * strings.
 */
export interface PublishScan {
  action: "publish" | "publish_batch";
  topic_name: string;
  producer_id?: string;
  sequence?: number;
  id?: string | number;
  messageStart: number;
  messageEnd: number;
  /** How many messages: 1 for a `publish`. */
  messageCount: number;
}

/** String values are decoded alone: a BOM at their start is a character, not a marker. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

const quote = 0x22;
const backslash = 0x5c;
const colon = 0x3a;
const comma = 0x2c;
const openBrace = 0x7b;
const closeBrace = 0x7d;
const openBracket = 0x5b;
const closeBracket = 0x5d;
const minus = 0x2d;
const digit0 = 0x30;
const digit9 = 0x39;

/** Longest JSON integer read here: 16 digits stay exact below 2^53 once range-checked. */
const digitsMax = 16;

const keyNames = [
  "action",
  "topic_name",
  "message",
  "messages",
  "producer_id",
  "sequence",
  "id",
] as const;
const keyCodes = keyNames.map((key) => new TextEncoder().encode(key));
const keyAction = 0;
const keyTopic = 1;
const keyMessage = 2;
const keyMessages = 3;
const keyProducer = 4;
const keySequence = 5;
const keyId = 6;

const publishBytes = new TextEncoder().encode("publish");
const publishBatchBytes = new TextEncoder().encode("publish_batch");

/** Bytes allowed in a topic name (PROTOCOL.md section 5: A-Z a-z 0-9 . _ -). */
const topicByte = new Uint8Array(128);
for (const char of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") {
  topicByte[char.charCodeAt(0)] = 1;
}

/** Where a scanned JSON value ended, whether its bytes were all ASCII, and whether it had escapes. */
interface Scan {
  end: number;
  ascii: boolean;
  escaped: boolean;
}

/** The `Scan` of `scanPublish`, which runs to its end before it is called again. */
const scanScratch: Scan = { end: 0, ascii: true, escaped: false };

/**
 * The `publish` or `publish_batch` request of `payload` when it has the
 * plain shape (see the module comment), else undefined (then
 * `decodeRequest` decides).
 *
 * @example
 * ```ts
 * const payload = new TextEncoder().encode('{"action":"publish","topic_name":"t","message":"hi"}');
 * decodePublish(payload); // { action: "publish", topic_name: "t", message: "hi" }
 * ```
 */
export function decodePublish(payload: Uint8Array): PublishRequest | undefined {
  const scanned = scanPublish(payload);
  return scanned === undefined ? undefined : publishRequestOf(scanned, payload);
}

/**
 * The request `scanned` was read from (`decodePublish` of `payload`): its
 * messages decoded.
 *
 * @example
 * ```ts
 * const payload = new TextEncoder().encode('{"action":"publish","topic_name":"t","message":"hi"}');
 * publishRequestOf(scanPublish(payload)!, payload); // { action: "publish", topic_name: "t", message: "hi" }
 * ```
 */
export function publishRequestOf(scanned: PublishScan, payload: Uint8Array): PublishRequest {
  const { topic_name, messageStart, messageEnd } = scanned;
  // JSON text as `JSON.parse` reads it: a publish's message with its quotes, a batch's array.
  const batch = scanned.action === "publish_batch";
  const json = batch
    ? payload.subarray(messageStart, messageEnd)
    : payload.subarray(messageStart - 1, messageEnd + 1);
  const value = JSON.parse(utf8.decode(json));
  const request: PublishRequest = batch
    ? { action: "publish_batch", topic_name, messages: value as string[] }
    : { action: "publish", topic_name, message: value as string };
  if (scanned.producer_id !== undefined) {
    request.producer_id = scanned.producer_id;
    request.sequence = scanned.sequence;
  }
  if (scanned.id !== undefined) request.id = scanned.id;
  return request;
}

/**
 * `decodePublish` without decoding the messages: where they lie in
 * `payload` and how many there are; undefined when `decodePublish` would
 * decline.
 *
 * @example
 * ```ts
 * const payload = new TextEncoder().encode('{"action":"publish","topic_name":"t","message":"hi"}');
 * scanPublish(payload); // { action: "publish", topic_name: "t", messageStart: 48, messageEnd: 50, messageCount: 1 }
 * ```
 */
export function scanPublish(payload: Uint8Array): PublishScan | undefined {
  const length = payload.length;
  if (length < 2 || payload[0] !== openBrace || payload[length - 1] !== closeBrace) {
    return undefined;
  }
  const scan = scanScratch;
  const fields: Fields = { seen: 0, batch: false, messageStart: -1, messageEnd: -1, count: 0 };
  let at = 1;
  while (true) {
    if (payload[at] !== quote || !scanString(payload, at + 1, scan) || !scan.ascii) {
      return undefined;
    }
    const key = keyOf(payload, at + 1, scan.end);
    if (key < 0 || (fields.seen & (1 << key)) !== 0) return undefined;
    fields.seen |= 1 << key;
    at = scan.end + 1;
    if (payload[at] !== colon) return undefined;
    at = readValue(payload, at + 1, key, fields, scan);
    if (at < 0) return undefined;
    if (payload[at] === comma) {
      at++;
      continue;
    }
    if (payload[at] !== closeBrace || at !== length - 1) return undefined;
    return scanOf(fields);
  }
}

/** What `scanPublish` read so far. */
interface Fields {
  /** A bit per key of `keyCodes` met already. */
  seen: number;
  /** The action read: true for `publish_batch`, false for `publish` (or none yet). */
  batch: boolean;
  topic?: string;
  messageStart: number;
  messageEnd: number;
  count: number;
  producerId?: string;
  sequence?: number;
  id?: string | number;
}

/** Reads the value of `key` at `at` into `fields`; returns where it ends, or -1 to decline. */
function readValue(
  payload: Uint8Array,
  at: number,
  key: number,
  fields: Fields,
  scan: Scan,
): number {
  if (key === keySequence || (key === keyId && payload[at] !== quote)) {
    const value = readInteger(payload, at, scan);
    if (value === undefined) return -1;
    if (key === keyId) fields.id = value;
    else if (value < 0 || Object.is(value, -0)) return -1;
    else fields.sequence = value;
    return scan.end;
  }
  if (key === keyMessages) return readMessages(payload, at, fields, scan);
  if (payload[at] !== quote || !scanString(payload, at + 1, scan)) return -1;
  const start = at + 1;
  if (key === keyAction) {
    fields.batch = equalBytes(payload, start, scan.end, publishBatchBytes);
    if (!fields.batch && !equalBytes(payload, start, scan.end, publishBytes)) return -1;
  } else if (key === keyTopic) {
    fields.topic = topicName(payload, start, scan.end);
    if (fields.topic === undefined) return -1;
  } else if (key === keyMessage) {
    fields.messageStart = start;
    fields.messageEnd = scan.end;
    fields.count = 1;
  } else if (key === keyProducer && !scan.escaped) {
    const length = scan.end - start;
    try {
      // An idempotent client names the same producer in every publish.
      fields.producerId = recentTexts.decode(payload, start, length);
    } catch {
      return -1;
    }
  } else {
    const text = decodeString(payload, start, scan);
    if (text === undefined) return -1;
    if (key === keyProducer) fields.producerId = text;
    else fields.id = text;
  }
  return scan.end + 1;
}

/**
 * Reads a `messages` array at `at`: 1 to `batchMessagesMax` strings, no
 * whitespace; returns where it ends, or -1 to decline.
 */
function readMessages(payload: Uint8Array, at: number, fields: Fields, scan: Scan): number {
  if (payload[at] !== openBracket) return -1;
  let count = 0;
  let index = at + 1;
  while (true) {
    if (payload[index] !== quote || !scanString(payload, index + 1, scan)) return -1;
    if (++count > batchMessagesMax) return -1;
    index = scan.end + 1;
    if (payload[index] === comma) {
      index++;
      continue;
    }
    if (payload[index] !== closeBracket) return -1;
    fields.messageStart = at;
    fields.messageEnd = index + 1;
    fields.count = count;
    return index + 1;
  }
}

/** The scan of a whole object's `fields`, or undefined when they do not make a publish. */
function scanOf(fields: Fields): PublishScan | undefined {
  const { seen, batch, topic, messageStart, messageEnd, producerId, sequence, id } = fields;
  if ((seen & (1 << keyAction)) === 0 || topic === undefined) return undefined;
  // A publish has `message` and no `messages`; a batch the other way round.
  const messageKey = batch ? keyMessages : keyMessage;
  const otherKey = batch ? keyMessage : keyMessages;
  if ((seen & (1 << messageKey)) === 0 || (seen & (1 << otherKey)) !== 0) return undefined;
  const scanned: PublishScan = {
    action: batch ? "publish_batch" : "publish",
    topic_name: topic,
    messageStart,
    messageEnd,
    messageCount: fields.count,
  };
  if (producerId !== undefined || sequence !== undefined) {
    if (producerId === undefined || sequence === undefined) return undefined;
    if (producerId.length === 0 || producerId.length > clientIdLengthMax) return undefined;
    scanned.producer_id = producerId;
    scanned.sequence = sequence;
  }
  if (id !== undefined) scanned.id = id;
  return scanned;
}

/**
 * Finds the closing quote of the string starting at `at` (after its opening
 * quote) into `scan.end`; false when it has an escape `JSON.stringify` does
 * not write, a raw control character, invalid UTF-8 or no end (those go
 * the general way).
 */
function scanString(payload: Uint8Array, at: number, scan: Scan): boolean {
  let ascii = true;
  let escaped = false;
  let index = at;
  while (index < payload.length) {
    const byte = payload[index];
    if (byte === quote) {
      scan.end = index;
      scan.ascii = ascii;
      scan.escaped = escaped;
      return true;
    }
    if (byte >= 0x20 && byte < 0x80 && byte !== backslash) {
      index++;
      continue;
    }
    if (byte < 0x20) return false;
    if (byte === backslash) {
      escaped = true;
      index = escapeEnd(payload, index);
    } else {
      ascii = false;
      index = utf8SequenceEnd(payload, index);
    }
    if (index < 0) return false;
  }
  return false;
}

/** The escapes `JSON.stringify` writes with two characters: \" \\ \b \f \n \r \t. */
const shortEscapes = new Uint8Array(128);
for (const char of '"\\bfnrt') shortEscapes[char.charCodeAt(0)] = 1;

/**
 * Where the escape at `at` (a backslash) ends when `JSON.stringify` writes
 * it so, else -1: a short escape, or `\u00xx` (lowercase hex) for a
 * control character without one. Other escapes (`\/`, `\u0041`, `\u000a`,
 * surrogates) decode to text `JSON.stringify` writes otherwise.
 */
function escapeEnd(payload: Uint8Array, at: number): number {
  const kind = payload[at + 1];
  if (kind < 0x80 && shortEscapes[kind] === 1) return at + 2;
  if (kind !== 0x75 || payload[at + 2] !== digit0 || payload[at + 3] !== digit0) return -1; // u00
  const high = payload[at + 4];
  const low = lowerHexValue(payload[at + 5]);
  if ((high !== digit0 && high !== digit0 + 1) || low < 0) return -1;
  const code = (high - digit0) * 16 + low;
  // Backspace, tab, line feed, form feed and carriage return have short escapes.
  if (code === 0x08 || code === 0x09 || code === 0x0a || code === 0x0c || code === 0x0d) {
    return -1;
  }
  return at + 6;
}

/** The value of a lowercase hex digit, else -1. */
function lowerHexValue(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= digit0 && byte <= digit9) return byte - digit0;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  return -1;
}

/**
 * Where the UTF-8 sequence of the non-ASCII character at `at` ends, or -1
 * when it is not one (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF; the table of well-formed sequences in Unicode 15 section
 * 3.9). Bytes past the end of `payload` read as undefined, which fails.
 */
function utf8SequenceEnd(payload: Uint8Array, at: number): number {
  const lead = payload[at];
  const second = payload[at + 1];
  if (lead >= 0xc2 && lead <= 0xdf) return isContinuation(second) ? at + 2 : -1;
  if (lead >= 0xe0 && lead <= 0xef) {
    const low = lead === 0xe0 ? 0xa0 : 0x80;
    const high = lead === 0xed ? 0x9f : 0xbf;
    if (!(second >= low && second <= high) || !isContinuation(payload[at + 2])) return -1;
    return at + 3;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    const low = lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xf4 ? 0x8f : 0xbf;
    if (!(second >= low && second <= high)) return -1;
    if (!isContinuation(payload[at + 2]) || !isContinuation(payload[at + 3])) return -1;
    return at + 4;
  }
  return -1;
}

function isContinuation(byte: number | undefined): boolean {
  return byte !== undefined && byte >= 0x80 && byte <= 0xbf;
}

/** The position of the key in `keyCodes`, or -1. */
function keyOf(payload: Uint8Array, start: number, end: number): number {
  for (let key = 0; key < keyCodes.length; key++) {
    if (equalBytes(payload, start, end, keyCodes[key])) return key;
  }
  return -1;
}

/** Whether `payload[start, end)` is exactly `bytes`. */
function equalBytes(payload: Uint8Array, start: number, end: number, bytes: Uint8Array): boolean {
  return end - start === bytes.length && holdsAt(payload, start, end, bytes);
}

/** A valid topic name (as `validateTopicName` checks it), else undefined. */
function topicName(payload: Uint8Array, start: number, end: number): string | undefined {
  const length = end - start;
  if (length === 0 || length > topicNameLengthMax) return undefined;
  for (let index = start; index < end; index++) {
    const byte = payload[index];
    if (byte >= 0x80 || topicByte[byte] === 0) return undefined;
  }
  const name = recentTexts.decode(payload, start, length);
  return name === "." || name === ".." ? undefined : name;
}

/**
 * Topic names and producer ids decoded lately: a connection's publishes
 * mostly repeat them. Only short texts are kept (one copy of their bytes each).
 */
const recentTexts = new RecentTexts(16, utf8, Math.max(topicNameLengthMax, clientIdLengthMax * 3));

/**
 * The string from `start` to `scan.end` (escapes decoded), or undefined
 * when it is not valid UTF-8.
 */
function decodeString(payload: Uint8Array, start: number, scan: Scan): string | undefined {
  try {
    if (!scan.escaped) return utf8.decode(payload.subarray(start, scan.end));
    return JSON.parse(utf8.decode(payload.subarray(start - 1, scan.end + 1)));
  } catch {
    return undefined;
  }
}

/**
 * A JSON integer (`-?(0|[1-9][0-9]*)`, at most `digitsMax` digits, not
 * beyond `Number.MAX_SAFE_INTEGER`) at `at`; its end goes to `scan.end`.
 * Fractions, exponents and longer numbers are left to `JSON.parse`.
 */
function readInteger(payload: Uint8Array, at: number, scan: Scan): number | undefined {
  let index = at;
  const negative = payload[index] === minus;
  if (negative) index++;
  const first = index;
  let value = 0;
  while (index < payload.length && payload[index] >= digit0 && payload[index] <= digit9) {
    value = value * 10 + (payload[index] - digit0);
    index++;
  }
  const digits = index - first;
  if (digits === 0 || digits > digitsMax || (digits > 1 && payload[first] === digit0)) {
    return undefined;
  }
  if (value > Number.MAX_SAFE_INTEGER) return undefined;
  const next = payload[index];
  if (next !== comma && next !== closeBrace) return undefined;
  scan.end = index;
  return negative ? -value : value;
}
