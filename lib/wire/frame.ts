/**
 * Length-prefixed frames: a 4-byte unsigned big-endian length `N`, then `N`
 * bytes of UTF-8 JSON. The decoder is an incremental state machine that
 * accepts arbitrary chunk boundaries and enforces `frameBytesMax` before it
 * buffers a single payload byte, so a hostile length cannot make it allocate.
 *
 * Written by hand: the codec is the protocol itself and sits on the hot path.
 *
 * @module
 */
import { readUint32, writeUint32 } from "../bytes.ts";
import { allocBytes } from "./byte_pool.ts";

/** Default largest payload accepted (PROTOCOL.md: `--max-frame`, 1 MiB). */
export const frameBytesMaxDefault = 1024 * 1024;

/**
 * Largest frame between peers (Raft catch-up appends carry up to 1 MiB of
 * entries, base64-encoded). A connection gets it after it says `peer_hello`.
 */
export const peerFrameBytesMax = 64 * 1024 * 1024;

/** Bytes of the length prefix. */
export const frameHeaderBytes = 4;

/** What the decoder produced from the bytes seen so far. */
export type FrameEvent =
  /**
   * `owned`: the payload is an array of its own, which the decoder never
   * touches again, so views of it may be kept (every frame without
   * `borrow`; with it, a frame that came in more than one chunk); otherwise
   * it is a view of the chunk pushed, which its reader reuses.
   */
  | { kind: "frame"; payload: Uint8Array; owned?: boolean }
  | { kind: "empty" }
  | { kind: "too_large"; length: number };

const encoder = new TextEncoder();

/**
 * Encodes one JSON value as a frame.
 *
 * @example
 * ```ts
 * const bytes = encodeFrame({ action: "ping" });
 * ```
 */
export function encodeFrame(value: unknown): Uint8Array {
  return encodeJson(JSON.stringify(value));
}

/**
 * Encodes an answer with the request's `id` added, as
 * `encodeFrame({ ...answer, id })` does (see `answerJson`).
 *
 * @example
 * ```ts
 * const bytes = encodeAnswerFrame({ status: "pong", node: 1 }, 7); // {"status":"pong","node":1,"id":7}
 * ```
 */
export function encodeAnswerFrame(answer: unknown, id: string | number | undefined): Uint8Array {
  return encodeJson(answerJson(answer, id));
}

/**
 * The JSON text of an answer with the request's `id` added, the same as
 * `JSON.stringify({ ...answer, id })`, without copying the answer: a plain
 * object's JSON gets the id appended. Arrays carry no id; an answer without
 * an id (one-way requests) is encoded as it is.
 *
 * @example
 * ```ts
 * answerJson({ status: "pong", node: 1 }, 7); // '{"status":"pong","node":1,"id":7}'
 * ```
 */
export function answerJson(answer: unknown, id: string | number | undefined): string {
  if (id === undefined || typeof answer !== "object" || answer === null || Array.isArray(answer)) {
    return JSON.stringify(answer);
  }
  const plain = Object.getPrototypeOf(answer) === Object.prototype &&
    !Object.hasOwn(answer, "id") &&
    !Object.hasOwn(answer, "toJSON");
  if (!plain) return JSON.stringify({ ...answer, id });
  const json = JSON.stringify(answer);
  const idJson = JSON.stringify(id);
  return json === "{}" ? `{"id":${idJson}}` : `${json.slice(0, -1)},"id":${idJson}}`;
}

/**
 * Frames as one buffer for one write: encoded frames are copied, frames
 * given as JSON text are encoded in place with their length header, so a
 * burst of answers costs one allocation instead of one per answer. A run
 * of JSON texts is encoded with one `encodeInto` when it is all ASCII (the
 * usual answer), one per text otherwise. The bytes go into `scratch` when
 * it is large enough (the result is then a view of it).
 *
 * @example
 * ```ts
 * const bytes = encodeFrames([encodeFrame({ a: 1 }), '{"b":2}']);
 * ```
 */
export function encodeFrames(
  frames: readonly (Uint8Array | string)[],
  scratch?: Uint8Array,
): Uint8Array {
  if (frames.length === 1 && typeof frames[0] !== "string") return frames[0];
  let bound = 0;
  for (const frame of frames) {
    bound += typeof frame === "string" ? frameHeaderBytes + frame.length * 3 : frame.length;
  }
  const out = scratch !== undefined && scratch.length >= bound ? scratch : allocBytes(bound);
  let at = 0;
  let index = 0;
  while (index < frames.length) {
    const frame = frames[index];
    if (typeof frame !== "string") {
      out.set(frame, at);
      at += frame.length;
      index++;
      continue;
    }
    let end = index + 1;
    while (end < frames.length && typeof frames[end] === "string") end++;
    at = encodeTexts(frames as readonly string[], index, end, out, at);
    index = end;
  }
  return out.subarray(0, at);
}

/** Four NULs: the place of a length header in a run of texts encoded at once. */
const headerGap = "\u0000".repeat(frameHeaderBytes);

/** Encodes the texts `frames[start..end)` as frames at `at` of `out`; returns the new end. */
function encodeTexts(
  frames: readonly string[],
  start: number,
  end: number,
  out: Uint8Array,
  at: number,
): number {
  if (end - start > 1) {
    const run = start === 0 && end === frames.length ? frames : frames.slice(start, end);
    const joined = headerGap + run.join(headerGap);
    const { written } = encoder.encodeInto(joined, out.subarray(at));
    // As many bytes as UTF-16 units: all ASCII, so every header sits where its gap was.
    if (written === joined.length) {
      let header = at;
      for (let index = start; index < end; index++) {
        writeUint32(out, header, frames[index].length);
        header += frameHeaderBytes + frames[index].length;
      }
      return at + written;
    }
  }
  for (let index = start; index < end; index++) {
    // Worst case UTF-8 is 3 bytes per UTF-16 unit, which the caller's bound reserved.
    const { written } = encoder.encodeInto(frames[index], out.subarray(at + frameHeaderBytes));
    writeUint32(out, at, written);
    at += frameHeaderBytes + written;
  }
  return at;
}

function encodeJson(json: string): Uint8Array {
  // Worst case UTF-8 is 3 bytes per UTF-16 unit; encodeInto avoids a second copy.
  const buffer = allocBytes(frameHeaderBytes + json.length * 3);
  const { written } = encoder.encodeInto(json, buffer.subarray(frameHeaderBytes));
  writeUint32(buffer, 0, written);
  return buffer.subarray(0, frameHeaderBytes + written);
}

/** Concatenates frames into one buffer so a burst costs one write. */
export function concatFrames(frames: readonly Uint8Array[]): Uint8Array {
  if (frames.length === 1) return frames[0];
  let total = 0;
  for (const frame of frames) total += frame.length;
  const out = allocBytes(total);
  let at = 0;
  for (const frame of frames) {
    out.set(frame, at);
    at += frame.length;
  }
  return out;
}

/**
 * Incremental frame decoder.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder({ frameBytesMax: 1024 });
 * for (const event of decoder.push(chunk)) console.log(event.kind);
 * ```
 */
export class FrameDecoder {
  #frameBytesMax: number;
  readonly #borrow: boolean;
  #header = new Uint8Array(frameHeaderBytes);
  #headerFilled = 0;
  #payload: Uint8Array | undefined;
  #payloadFilled = 0;
  #failed = false;

  /**
   * With `borrow`, a payload that lies wholly inside one pushed chunk is a
   * view of that chunk instead of a copy: the caller must be done with it
   * (or copy it) before it reuses the chunk's memory.
   */
  constructor(options: { frameBytesMax?: number; borrow?: boolean } = {}) {
    const frameBytesMax = options.frameBytesMax ?? frameBytesMaxDefault;
    if (!Number.isInteger(frameBytesMax) || frameBytesMax < 1 || frameBytesMax > 0xffffffff) {
      throw new RangeError(
        `Cannot create decoder as 'frameBytesMax' must be an integer between 1 and 4294967295: current value is ${frameBytesMax}`,
      );
    }
    this.#frameBytesMax = frameBytesMax;
    this.#borrow = options.borrow ?? false;
  }

  /** Largest payload accepted. */
  get frameBytesMax(): number {
    return this.#frameBytesMax;
  }

  /** Accepts larger frames from now on (a peer connection); never lowers the limit. */
  raiseLimit(frameBytesMax: number): void {
    this.#frameBytesMax = Math.max(this.#frameBytesMax, frameBytesMax);
  }

  /** True while part of a frame has arrived and the rest has not. */
  get partial(): boolean {
    return this.#headerFilled > 0 || this.#payload !== undefined;
  }

  /**
   * Feeds bytes and returns every event they complete. After a `too_large`
   * event the stream is unusable (the length cannot be trusted) and further
   * pushes return nothing.
   */
  push(chunk: Uint8Array): FrameEvent[] {
    const events: FrameEvent[] = [];
    let at = 0;
    while (at < chunk.length && !this.#failed) {
      if (this.#payload === undefined) {
        at = this.#readHeader(chunk, at, events);
      } else {
        at = this.#readPayload(chunk, at, events);
      }
    }
    return events;
  }

  #readHeader(chunk: Uint8Array, at: number, events: FrameEvent[]): number {
    // Fast path: a whole header in this chunk and nothing buffered.
    if (this.#headerFilled === 0 && chunk.length - at >= frameHeaderBytes) {
      const length = readUint32(chunk, at);
      const start = at + frameHeaderBytes;
      if (this.#borrow && length > 0 && length <= this.#frameBytesMax) {
        if (chunk.length - start >= length) {
          events.push({ kind: "frame", payload: chunk.subarray(start, start + length) });
          return start + length;
        }
      }
      this.#startPayload(length, events);
      return start;
    }
    const take = Math.min(frameHeaderBytes - this.#headerFilled, chunk.length - at);
    this.#header.set(chunk.subarray(at, at + take), this.#headerFilled);
    this.#headerFilled += take;
    if (this.#headerFilled === frameHeaderBytes) {
      this.#headerFilled = 0;
      this.#startPayload(readUint32(this.#header, 0), events);
    }
    return at + take;
  }

  #startPayload(length: number, events: FrameEvent[]): void {
    if (length === 0) {
      events.push({ kind: "empty" });
    } else if (length > this.#frameBytesMax) {
      this.#failed = true;
      events.push({ kind: "too_large", length });
    } else {
      this.#payload = allocBytes(length);
      this.#payloadFilled = 0;
    }
  }

  #readPayload(chunk: Uint8Array, at: number, events: FrameEvent[]): number {
    const payload = this.#payload!;
    const take = Math.min(payload.length - this.#payloadFilled, chunk.length - at);
    payload.set(chunk.subarray(at, at + take), this.#payloadFilled);
    this.#payloadFilled += take;
    if (this.#payloadFilled === payload.length) {
      this.#payload = undefined;
      events.push({ kind: "frame", payload, owned: true });
    }
    return at + take;
  }
}
