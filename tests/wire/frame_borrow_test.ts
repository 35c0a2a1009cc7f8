/**
 * `FrameDecoder` with `borrow`: the same events as the copying decoder for
 * any frames cut at any boundaries (empty and oversized frames included),
 * each read as it is produced, before the chunk's memory is reused, which
 * the test does on purpose.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { FrameDecoder, type FrameEvent, frameHeaderBytes } from "../../lib/wire/frame.ts";

/** Events as plain values, read at once (a borrowed payload is valid only until then). */
function plain(events: FrameEvent[]): unknown[] {
  return events.map((event) =>
    event.kind === "frame" ? { kind: "frame", payload: [...event.payload] } : event
  );
}

/** Feeds `bytes` in pieces through one reused buffer, as a connection's reads do. */
function decodeThroughBuffer(decoder: FrameDecoder, bytes: Uint8Array, cuts: number[]): unknown[] {
  const buffer = new Uint8Array(bytes.length + 1);
  const seen: unknown[] = [];
  let start = 0;
  const ends = [...cuts.map((cut) => cut % (bytes.length + 1)).sort((a, b) => a - b), bytes.length];
  for (const end of ends) {
    if (end < start) continue;
    buffer.set(bytes.subarray(start, end));
    seen.push(...plain(decoder.push(buffer.subarray(0, end - start))));
    buffer.fill(0xee);
    start = end;
  }
  return seen;
}

function frameOf(length: number, fill: number): Uint8Array {
  const bytes = new Uint8Array(frameHeaderBytes + length).fill(fill, frameHeaderBytes);
  new DataView(bytes.buffer).setUint32(0, length);
  return bytes;
}

Deno.test("a borrowing FrameDecoder yields what a copying one does", () => {
  fc.assert(
    fc.property(
      fc.array(fc.nat({ max: 40 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      fc.integer({ min: 1, max: 30 }),
      (lengths, cuts, frameBytesMax) => {
        const frames = lengths.map((length, index) => frameOf(length, index + 1));
        const bytes = new Uint8Array(frames.reduce((sum, frame) => sum + frame.length, 0));
        let at = 0;
        for (const frame of frames) {
          bytes.set(frame, at);
          at += frame.length;
        }
        const copied = decodeThroughBuffer(new FrameDecoder({ frameBytesMax }), bytes, cuts);
        const borrowed = decodeThroughBuffer(
          new FrameDecoder({ frameBytesMax, borrow: true }),
          bytes,
          cuts,
        );
        assert.deepStrictEqual(borrowed, copied);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("a borrowed payload is a view of the chunk, not a copy", () => {
  const chunk = frameOf(5, 7);
  const [event] = new FrameDecoder({ borrow: true }).push(chunk);
  assert.equal(event.kind, "frame");
  if (event.kind !== "frame") return;
  assert.equal(event.payload.buffer, chunk.buffer);
  assert.deepStrictEqual([...event.payload], [7, 7, 7, 7, 7]);
});

Deno.test("a frame is owned when it is an array of its own: always without borrow, split across chunks with it", () => {
  const frame = frameOf(10, 7);
  const whole = new FrameDecoder({ borrow: true }).push(frame);
  assert.deepEqual(whole.map((event) => event.kind === "frame" && event.owned), [undefined]);
  const borrowing = new FrameDecoder({ borrow: true });
  assert.deepEqual(borrowing.push(frame.subarray(0, 6)), []);
  const [split] = borrowing.push(frame.subarray(6));
  assert.ok(split.kind === "frame" && split.owned === true, "split: owned");
  assert.notEqual(split.payload.buffer, frame.buffer);
  const [copied] = new FrameDecoder().push(frame);
  assert.ok(copied.kind === "frame" && copied.owned === true, "without borrow: owned");
  assert.notEqual(copied.payload.buffer, frame.buffer);
});
