import assert from "node:assert/strict";
import fc from "fast-check";
import {
  concatFrames,
  encodeFrame,
  FrameDecoder,
  type FrameEvent,
  frameHeaderBytes,
} from "../../lib/wire/frame.ts";

const utf8 = new TextDecoder();

/** Runs per property: enough to find boundary bugs, small enough for CI. */
const numRuns = 300;

/** Feeds `bytes` cut at `cuts` (any positions, any order) and collects every event. */
function decodeSplit(decoder: FrameDecoder, bytes: Uint8Array, cuts: number[]): FrameEvent[] {
  const events: FrameEvent[] = [];
  let start = 0;
  for (const cut of [...cuts].map((cut) => cut % (bytes.length + 1)).sort((a, b) => a - b)) {
    events.push(...decoder.push(bytes.subarray(start, cut)));
    start = cut;
  }
  events.push(...decoder.push(bytes.subarray(start)));
  return events;
}

/** Events as plain values, comparable with deepStrictEqual. */
function plain(events: FrameEvent[]): unknown[] {
  return events.map((event) =>
    event.kind === "frame" ? { kind: "frame", payload: [...event.payload] } : event
  );
}

function header(length: number): Uint8Array {
  const bytes = new Uint8Array(frameHeaderBytes);
  new DataView(bytes.buffer).setUint32(0, length);
  return bytes;
}

const cutsArbitrary = fc.array(fc.nat(), { maxLength: 12 });

Deno.test("every JSON value survives encodeFrame and FrameDecoder cut at any boundaries", () => {
  fc.assert(
    fc.property(
      fc.array(fc.jsonValue(), { minLength: 1, maxLength: 6 }),
      cutsArbitrary,
      (values, cuts) => {
        const bytes = concatFrames(values.map((value) => encodeFrame(value)));
        const decoder = new FrameDecoder({ frameBytesMax: bytes.length });
        const events = decodeSplit(decoder, bytes, cuts);
        assert.equal(events.length, values.length);
        for (const [index, event] of events.entries()) {
          assert.equal(event.kind, "frame");
          if (event.kind !== "frame") continue;
          // JSON itself turns -0 into 0: compare with what JSON round-trips to.
          assert.deepStrictEqual(
            JSON.parse(utf8.decode(event.payload)),
            JSON.parse(JSON.stringify(values[index])),
          );
        }
        assert.equal(decoder.partial, false);
      },
    ),
    { numRuns },
  );
});

Deno.test("every Unicode string survives the frame codec byte for byte", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 200 }), cutsArbitrary, (text, cuts) => {
      const bytes = encodeFrame({ message: text });
      const events = decodeSplit(new FrameDecoder(), bytes, cuts);
      assert.equal(events.length, 1);
      const event = events[0];
      assert.equal(event.kind, "frame");
      if (event.kind === "frame") {
        assert.equal(JSON.parse(utf8.decode(event.payload)).message, text);
        assert.equal(event.payload.length, bytes.length - frameHeaderBytes);
      }
    }),
    { numRuns },
  );
});

Deno.test("a length prefix over frameBytesMax gives frame_too_large once, after the frames before it", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4096 }),
      fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }),
      fc.nat(),
      fc.uint8Array({ maxLength: 64 }),
      cutsArbitrary,
      (frameBytesMax, before, excess, after, cuts) => {
        const frames = before.map((value) => encodeFrame(value)).filter((frame) =>
          frame.length - frameHeaderBytes <= frameBytesMax
        );
        const length = Math.min(frameBytesMax + 1 + excess, 0xffffffff);
        const bytes = concatFrames([...frames, header(length), after, new Uint8Array(1)]);
        const decoder = new FrameDecoder({ frameBytesMax });
        const events = decodeSplit(decoder, bytes, cuts);
        assert.equal(events.length, frames.length + 1);
        assert.deepStrictEqual(events.at(-1), { kind: "too_large", length });
        assert.ok(events.slice(0, -1).every((event) => event.kind === "frame"));
        // The stream cannot be trusted any more: nothing else comes out.
        assert.deepStrictEqual(decoder.push(encodeFrame({ action: "ping" })), []);
      },
    ),
    { numRuns },
  );
});

Deno.test("FrameDecoder never throws on arbitrary bytes and keeps its invariants", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 0xffffffff }),
      fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 16 }),
      (frameBytesMax, chunks) => {
        const decoder = new FrameDecoder({ frameBytesMax: Math.min(frameBytesMax, 1 << 16) });
        const events = chunks.flatMap((chunk) => decoder.push(chunk));
        const tooLarge = events.findIndex((event) => event.kind === "too_large");
        assert.ok(tooLarge === -1 || tooLarge === events.length - 1, "too_large comes last");
        for (const event of events) {
          if (event.kind === "frame") {
            assert.ok(event.payload.length >= 1 && event.payload.length <= decoder.frameBytesMax);
          } else if (event.kind === "too_large") {
            assert.ok(event.length > decoder.frameBytesMax);
          } else assert.equal(event.kind, "empty");
        }
      },
    ),
    { numRuns },
  );
});

Deno.test("FrameDecoder gives the same events for arbitrary bytes however they are chunked", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }),
      fc.array(
        fc.oneof(
          fc.uint8Array({ maxLength: 40 }),
          fc.jsonValue({ maxDepth: 2 }).map((value) => encodeFrame(value)),
          fc.nat(400).map(header),
        ),
        { maxLength: 8 },
      ),
      cutsArbitrary,
      (frameBytesMax, parts, cuts) => {
        const bytes = concatFrames([new Uint8Array(0), ...parts]);
        const whole = new FrameDecoder({ frameBytesMax }).push(bytes);
        const split = decodeSplit(new FrameDecoder({ frameBytesMax }), bytes, cuts);
        assert.deepStrictEqual(plain(split), plain(whole));
      },
    ),
    { numRuns },
  );
});

Deno.test("FrameDecoder reports an empty frame for a zero length and stays usable", () => {
  fc.assert(
    fc.property(fc.nat(5), fc.jsonValue({ maxDepth: 2 }), cutsArbitrary, (empties, value, cuts) => {
      const bytes = concatFrames([
        ...Array.from({ length: empties }, () => header(0)),
        encodeFrame(value),
      ]);
      const events = decodeSplit(new FrameDecoder(), bytes, cuts);
      assert.deepStrictEqual(events.slice(0, empties).map((event) => event.kind), [
        ...Array(empties).fill("empty"),
      ]);
      assert.equal(events.length, empties + 1);
      assert.equal(events[empties].kind, "frame");
    }),
    { numRuns },
  );
});

Deno.test("FrameDecoder refuses a frameBytesMax outside 1..2^32-1 with a RangeError only", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.integer({ max: 0 }), fc.double(), fc.constant(2 ** 32)),
      (frameBytesMax) => {
        if (Number.isInteger(frameBytesMax) && frameBytesMax >= 1 && frameBytesMax <= 0xffffffff) {
          return;
        }
        assert.throws(() => new FrameDecoder({ frameBytesMax }), RangeError);
      },
    ),
    { numRuns },
  );
});
