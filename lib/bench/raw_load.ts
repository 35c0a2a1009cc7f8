/**
 * A raw-protocol publisher for benchmarks: one TCP connection, frames built
 * by hand, `inFlight` plain publishes outstanding (closed loop: each answer
 * sends the next), no client library in between. It is the yardstick the
 * `PubSubClient` rows are compared with, and what a seed-compatible client
 * that talks to any peer (and is forwarded) gets.
 *
 * @module
 */

import { encodeFrame, FrameDecoder } from "../wire/frame.ts";
import type { LatencyHistogram } from "./histogram.ts";
import { writeAll } from "../write_all.ts";

/** Largest answer frame the raw publisher accepts. */
const answerBytesMax = 1024 * 1024;
/** Most publishes the raw publisher keeps outstanding. */
export const rawInFlightMax = 4096;

/** Options of {@linkcode rawPublishLoad}. */
export interface RawLoadOptions {
  /** "host:port" of the peer to connect to. */
  address: string;
  topic: string;
  /** Publishes outstanding at once (1 = sequential). */
  inFlight: number;
  /** Stop sending after this long. */
  durationMs: number;
  /** The message of every publish. */
  message: string;
  /** Records the latency of every acknowledged publish. */
  histogram?: LatencyHistogram;
  /** Sent first when the peer requires a token. */
  token?: string;
}

/** What {@linkcode rawPublishLoad} did. */
export interface RawLoadResult {
  acked: number;
  failed: number;
  elapsedMs: number;
  throughputPerSecond: number;
  /** The first error answer, if any. */
  firstError: string | undefined;
}

/**
 * Publishes `message` to `topic` with `inFlight` publishes outstanding until
 * `durationMs` passed, then waits for the outstanding answers.
 *
 * @example
 * ```ts
 * import { rawPublishLoad } from "./raw_load.ts";
 *
 * const result = await rawPublishLoad({
 *   address: "127.0.0.1:5001",
 *   topic: "events",
 *   inFlight: 256,
 *   durationMs: 5000,
 *   message: "x".repeat(100),
 * });
 * console.log(result.throughputPerSecond);
 * ```
 */
export async function rawPublishLoad(options: RawLoadOptions): Promise<RawLoadResult> {
  if (!Number.isInteger(options.inFlight) || options.inFlight < 1) {
    throw new RangeError(
      `Cannot run the raw load as 'inFlight' must be an integer between 1 and ${rawInFlightMax}: current value is ${options.inFlight}`,
    );
  }
  const inFlight = Math.min(options.inFlight, rawInFlightMax);
  const [hostname, port] = splitAddress(options.address);
  const conn = await Deno.connect({ hostname, port });
  conn.setNoDelay(true);
  try {
    if (options.token !== undefined) await authenticate(conn, options.token);
    return await closedLoop(conn, options, inFlight);
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the peer already.
    }
  }
}

async function closedLoop(
  conn: Deno.Conn,
  options: RawLoadOptions,
  inFlight: number,
): Promise<RawLoadResult> {
  const frame = encodeFrame({
    action: "publish",
    topic_name: options.topic,
    message: options.message,
  });
  const frames = repeatFrame(frame, inFlight);
  const answers = new AnswerCheck(options.topic);
  // Answers are checked before the next read reuses the buffer: no copy per frame.
  const decoder = new FrameDecoder({ frameBytesMax: answerBytesMax, borrow: true });
  const sentAt: number[] = [];
  let sentHead = 0;
  const startedMs = performance.now();
  const stopAt = startedMs + options.durationMs;
  const send = async (count: number) => {
    const now = performance.now();
    for (let index = 0; index < count; index++) sentAt.push(now);
    // A window's worth of the frame, built once: a send writes its first `count` copies.
    await writeAll(conn, frames.subarray(0, count * frame.length));
  };
  await send(inFlight);
  const buffer = new Uint8Array(64 * 1024);
  while (sentHead < sentAt.length) {
    const read = await conn.read(buffer);
    if (read === null) throw new Error(`Peer ${options.address} closed the connection`);
    let answered = 0;
    const now = performance.now();
    for (const event of decoder.push(buffer.subarray(0, read))) {
      if (event.kind !== "frame") throw new Error(`Peer ${options.address} sent an unusable frame`);
      if (answers.check(event.payload)) {
        options.histogram?.recordMilliseconds(now - sentAt[sentHead]);
      }
      sentHead++;
      answered++;
    }
    // Keep the queue of send times short: drop what was answered.
    if (sentHead > 65_536) {
      sentAt.splice(0, sentHead);
      sentHead = 0;
    }
    if (answered > 0 && now < stopAt) await send(answered);
  }
  const elapsedMs = performance.now() - startedMs;
  return {
    acked: answers.acked,
    failed: answers.failed,
    elapsedMs,
    throughputPerSecond: answers.acked / (elapsedMs / 1000),
    firstError: answers.firstError,
  };
}

/**
 * Counts the answers to the load's publishes. The usual success is
 * recognized by its bytes, `{"status":"message_published","topic":<topic>,"offset":<digits>}`
 * (the peer's exact answer, PROTOCOL.md section 2), so the loop that sends
 * the next request decodes no text and parses no JSON for it; any other
 * answer (rare) is parsed, and counts as a success only with the status
 * `message_published`.
 *
 * @example
 * ```ts
 * const answers = new AnswerCheck("events");
 * answers.check(new TextEncoder().encode('{"status":"message_published","topic":"events","offset":7}')); // true
 * ```
 */
export class AnswerCheck {
  acked = 0;
  failed = 0;
  /** The first failure, as "status: sentence". */
  firstError: string | undefined;
  readonly #prefix: Uint8Array;

  constructor(topic: string) {
    this.#prefix = new TextEncoder().encode(
      `{"status":"message_published","topic":${JSON.stringify(topic)},"offset":`,
    );
  }

  /** Counts `payload` (one answer frame's payload); true when it is a success. */
  check(payload: Uint8Array): boolean {
    if (isPublished(payload, this.#prefix)) {
      this.acked++;
      return true;
    }
    const answer = parseAnswer(payload);
    if (answer.status === "message_published") {
      this.acked++;
      return true;
    }
    this.failed++;
    this.firstError ??= `${answer.status}: ${answer.error ?? ""}`;
    return false;
  }
}

/** True when `payload` is `prefix`, one or more digits and `}`. */
function isPublished(payload: Uint8Array, prefix: Uint8Array): boolean {
  const length = payload.length;
  if (length < prefix.length + 2 || payload[length - 1] !== 0x7d) return false; // }
  for (let index = 0; index < prefix.length; index++) {
    if (payload[index] !== prefix[index]) return false;
  }
  for (let index = prefix.length; index < length - 1; index++) {
    const byte = payload[index];
    if (byte < 0x30 || byte > 0x39) return false;
  }
  return true;
}

/** The status and sentence of an answer (an unreadable one gets its own status). */
function parseAnswer(payload: Uint8Array): { status?: unknown; error?: unknown } {
  try {
    const answer = JSON.parse(new TextDecoder().decode(payload));
    if (typeof answer === "object" && answer !== null && !Array.isArray(answer)) return answer;
  } catch {
    // Described below, as any answer that is not an object.
  }
  return { status: "unreadable", error: "The answer is not a JSON object" };
}

function repeatFrame(frame: Uint8Array, count: number): Uint8Array {
  const bytes = new Uint8Array(frame.length * count);
  for (let index = 0; index < count; index++) bytes.set(frame, index * frame.length);
  return bytes;
}

async function authenticate(conn: Deno.Conn, token: string): Promise<void> {
  await writeAll(conn, encodeFrame({ action: "auth", token }));
  const decoder = new FrameDecoder({ frameBytesMax: answerBytesMax });
  const buffer = new Uint8Array(4096);
  while (true) {
    const read = await conn.read(buffer);
    if (read === null) throw new Error("The peer closed the connection during 'auth'");
    for (const event of decoder.push(buffer.subarray(0, read))) {
      if (event.kind !== "frame") {
        throw new Error("The peer answered 'auth' with an unusable frame");
      }
      const answer = JSON.parse(new TextDecoder().decode(event.payload)) as { status?: string };
      if (answer.status !== "authenticated") throw new Error(`'auth' answered ${answer.status}`);
      return;
    }
  }
}

function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(":");
  const port = Number(address.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(
      `Cannot connect as the address must be 'host:port': current value is '${address}'`,
    );
  }
  return [address.slice(0, at), port];
}
