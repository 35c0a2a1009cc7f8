/**
 * The live fuzz: streams from `_live_inputs.ts` sent over real TCP to the
 * peers, each answer checked against `_live_oracle.ts`, with bounded waits
 * so that a peer that stops answering shows up as a hang, not as a stuck
 * fuzzer. A slow lane meanwhile leaves partial frames idle (the peer must
 * close them after its idle timeout) and writes frames a byte at a time.
 *
 * @module
 */

import fc from "fast-check";
import { FrameDecoder } from "../lib/wire/frame.ts";
import { idleTimeoutMs, maxFrameBytes } from "./_cluster.ts";
import { expectStream, type StreamExpectation } from "./_live_oracle.ts";
import { frame, type LiveSegment, streamArbitrary } from "./_live_inputs.ts";
import { type FuzzFailure, seedFor, type Tally } from "./_tally.ts";
import { writeAll } from "../lib/write_all.ts";

/** Longest a peer may take to answer one frame, or to close after the last. */
export const answerTimeoutMs = 10_000;
/** How often the idle sweeper of a peer runs (lib/peer/server.ts), plus scheduling slack. */
const sweepSlackMs = 1_000 + 4_000;
/** Streams generated per batch. */
const streamsPerBatch = 32;
/** Connections fuzzed at once. */
export const connectionsMax = 6;
/** Failures after which the live fuzz stops early. */
const failuresMax = 1000;

type Received = { kind: "answer"; value: unknown } | { kind: "closed" } | { kind: "timeout" };

/** Reads frames from a connection; `next` waits at most a bound. */
class AnswerReader {
  readonly #conn: Deno.Conn;
  readonly #decoder = new FrameDecoder({ frameBytesMax: 64 * 1024 * 1024 });
  readonly #queue: Received[] = [];
  #wake: (() => void) | undefined;
  #closed = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#read();
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const read = await this.#conn.read(buffer);
        if (read === null) break;
        for (const event of this.#decoder.push(buffer.subarray(0, read))) {
          const value = event.kind === "frame"
            ? parseAnswer(event.payload)
            : `<${event.kind} from the peer>`;
          this.#queue.push({ kind: "answer", value });
        }
        this.#wake?.();
      }
    } catch {
      // A reset ends the connection like a close.
    }
    this.#closed = true;
    this.#wake?.();
  }

  async next(timeoutMs: number): Promise<Received> {
    const deadline = performance.now() + timeoutMs;
    while (this.#queue.length === 0 && !this.#closed) {
      const left = deadline - performance.now();
      if (left <= 0) return { kind: "timeout" };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    return this.#queue.shift() ?? { kind: "closed" };
  }
}

function parseAnswer(payload: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(payload));
  } catch {
    return "<an answer that is not JSON>";
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

function preview(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

/** Drops segments that would change the cluster, and everything after the peer closes. */
function prepare(
  segments: LiveSegment[],
): { segments: LiveSegment[]; expected: StreamExpectation } | undefined {
  let kept = segments;
  for (let round = 0; round < 3; round++) {
    const expected = expectStream(kept, maxFrameBytes);
    if (expected.mutating.size > 0) {
      kept = kept.filter((_, index) => !expected.mutating.has(index));
      continue;
    }
    const closedAt = expected.closedAt;
    if (closedAt === undefined) return { segments: kept, expected };
    const last = kept[closedAt.segment];
    const cut = { ...last, bytes: last.bytes.subarray(0, closedAt.offset) };
    return { segments: [...kept.slice(0, closedAt.segment), cut], expected };
  }
  return undefined;
}

/** Sends one stream on a new connection, checks every answer and the end; returns what was sent. */
async function runStream(
  port: number,
  stream: LiveSegment[],
  report: (failure: FuzzFailure) => void,
): Promise<LiveSegment[]> {
  const prepared = prepare(stream);
  if (prepared === undefined) return [];
  const { segments, expected } = prepared;
  await checkStream(port, segments, expected, report);
  return segments;
}

async function checkStream(
  port: number,
  segments: LiveSegment[],
  expected: StreamExpectation,
  report: (failure: FuzzFailure) => void,
): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new AnswerReader(conn);
  const fail = (kind: FuzzFailure["kind"], detail: string, sent: string) =>
    report({ target: segments.at(-1)!.target, kind, detail, input: sent });
  try {
    const writing = (async () => {
      for (const segment of segments) await writeAll(conn, segment.bytes);
    })().catch((error) => error as Error);
    for (const { expectation, segment } of expected.answers) {
      const target = segments[segment]?.target ?? "unknown";
      const received = await reader.next(answerTimeoutMs);
      if (received.kind === "timeout") {
        return report({ target, kind: "hang", detail: "no answer", input: expectation.sent });
      }
      if (received.kind === "closed") {
        return report({
          target,
          kind: "unexpected",
          detail: "closed before answering",
          input: expectation.sent,
        });
      }
      const problem = expectation.check(received.value);
      if (problem !== undefined) {
        report({
          target,
          kind: "unexpected",
          detail: `${problem}: ${preview(received.value)}`,
          input: expectation.sent,
        });
      }
    }
    const writeError = await writing;
    if (writeError !== undefined && expected.closedAt === undefined) {
      return fail("unexpected", `writing failed: ${writeError.message}`, "");
    }
    if (expected.closedAt === undefined) await conn.closeWrite();
    const end = await reader.next(answerTimeoutMs);
    if (end.kind === "timeout") fail("hang", "the connection was not closed", "");
    if (end.kind === "answer") fail("unexpected", `an extra answer ${preview(end.value)}`, "");
  } finally {
    closeQuietly(conn);
  }
}

/** Options of {@linkcode runLive}. */
export interface LiveOptions {
  ports: number[];
  cases: number;
  seed: number;
  tally: Tally;
  /** Called after each stream with the live cases run so far. */
  progress?: (cases: number) => void;
}

/**
 * Sends streams until `cases` segments were sent and checked, from
 * `connectionsMax` connections at once, plus the slow lane.
 *
 * @example
 * ```ts
 * await runLive({ ports: [5001], cases: 1000, seed: 1, tally: new Tally() });
 * ```
 */
export async function runLive(options: LiveOptions): Promise<void> {
  const { tally } = options;
  const arbitrary = streamArbitrary(maxFrameBytes);
  const pending: LiveSegment[][] = [];
  let batch = 0;
  let done = 0;
  const nextStream = () => {
    if (pending.length === 0) {
      const seed = seedFor(options.seed, "live", batch++);
      pending.push(...fc.sample(arbitrary, { seed, numRuns: streamsPerBatch }));
    }
    return pending.shift()!;
  };
  let finished = false;
  const worker = async (index: number) => {
    while (done < options.cases) {
      const stream = nextStream();
      const port = options.ports[index % options.ports.length];
      const report = (failure: FuzzFailure) =>
        tally.fail({ ...failure, target: `live_${failure.target}` });
      const sent = await runStream(port, stream, report).catch((error) => {
        report({ target: "connection", kind: "unexpected", detail: String(error), input: "" });
        return stream;
      });
      for (const segment of sent) tally.count(`live_${segment.target}`);
      done += sent.length;
      // A broken peer fails every case: stop early instead of piling up reports.
      if (tally.failures > failuresMax) break;
      options.progress?.(done);
    }
  };
  const slow = slowLane(options.ports, tally, () => finished);
  await Promise.all(Array.from({ length: connectionsMax }, (_, index) => worker(index)));
  finished = true;
  await slow;
}

/** Partial frames left idle, and frames written a byte at a time, until `stop()`. */
async function slowLane(ports: number[], tally: Tally, stop: () => boolean): Promise<void> {
  for (let round = 0; !stop(); round++) {
    const port = ports[round % ports.length];
    const target = round % 2 === 0 ? "live_idle_partial_frame" : "live_byte_at_a_time";
    try {
      if (round % 2 === 0) await idlePartial(port, round, tally);
      else await slowWriter(port, round, tally);
    } catch (error) {
      tally.fail({ target, kind: "unexpected", detail: String(error), input: "" });
    }
    tally.count(target);
  }
}

/** A partial frame, then silence: the peer must close it after its idle timeout, not before. */
async function idlePartial(port: number, round: number, tally: Tally): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new AnswerReader(conn);
  const partial = round % 4 === 0
    ? new Uint8Array([0, 0])
    : frame(new Uint8Array(16)).subarray(0, 9);
  const started = performance.now();
  try {
    await writeAll(conn, partial);
    const end = await reader.next(idleTimeoutMs + sweepSlackMs);
    const waited = performance.now() - started;
    const fail = (kind: FuzzFailure["kind"], detail: string) =>
      tally.fail({
        target: "live_idle_partial_frame",
        kind,
        detail,
        input: `${partial.length} bytes`,
      });
    if (end.kind === "timeout") fail("hang", `not closed after ${Math.round(waited)} ms`);
    else if (end.kind === "answer") fail("unexpected", `answered ${preview(end.value)}`);
    else if (waited < idleTimeoutMs - 200) {
      fail("unexpected", `closed after ${Math.round(waited)} ms`);
    }
  } finally {
    closeQuietly(conn);
  }
}

/** A ping written one byte at a time (each gap well within the idle timeout). */
async function slowWriter(port: number, round: number, tally: Tally): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new AnswerReader(conn);
  const bytes = frame(new TextEncoder().encode(JSON.stringify({ action: "ping", id: round })));
  try {
    for (const byte of bytes) {
      await writeAll(conn, new Uint8Array([byte]));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const answer = await reader.next(answerTimeoutMs);
    const value = answer.kind === "answer" ? answer.value as Record<string, unknown> : undefined;
    if (value?.status !== "pong" || value?.id !== round) {
      tally.fail({
        target: "live_byte_at_a_time",
        kind: answer.kind === "timeout" ? "hang" : "unexpected",
        detail: `expected a pong with id ${round}, got ${answer.kind} ${preview(value)}`,
        input: "a ping, one byte per write",
      });
    }
  } finally {
    closeQuietly(conn);
  }
}
