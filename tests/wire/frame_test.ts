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

/** Turns events into comparable values: decoded JSON for frames, markers otherwise. */
function describe(events: FrameEvent[]): unknown[] {
  return events.map((event) => {
    if (event.kind === "frame") return JSON.parse(utf8.decode(event.payload));
    if (event.kind === "empty") return "<empty>";
    return `<too_large ${event.length}>`;
  });
}

/** Feeds `bytes` cut at the given positions and collects every event. */
function decodeSplit(decoder: FrameDecoder, bytes: Uint8Array, cuts: number[]): FrameEvent[] {
  const events: FrameEvent[] = [];
  let start = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    events.push(...decoder.push(bytes.subarray(start, cut)));
    start = cut;
  }
  events.push(...decoder.push(bytes.subarray(start)));
  return events;
}

function header(length: number): Uint8Array {
  const bytes = new Uint8Array(frameHeaderBytes);
  new DataView(bytes.buffer).setUint32(0, length);
  return bytes;
}

Deno.test("encodeFrame writes a big-endian length prefix followed by the UTF-8 JSON", () => {
  const bytes = encodeFrame({ action: "ping" });
  const json = '{"action":"ping"}';
  assert.equal(bytes.length, frameHeaderBytes + json.length);
  assert.deepEqual([...bytes.subarray(0, 4)], [0, 0, 0, json.length]);
  assert.equal(utf8.decode(bytes.subarray(4)), json);
});

Deno.test("encodeFrame counts bytes, not characters, for multi-byte UTF-8", () => {
  const bytes = encodeFrame("é😀");
  // '"' + 2 bytes + 4 bytes + '"'
  assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint32(0), 8);
  assert.equal(JSON.parse(utf8.decode(bytes.subarray(4))), "é😀");
});

Deno.test("FrameDecoder decodes one frame split at every possible chunk boundary", () => {
  const value = { action: "publish", topic_name: "events", message: "héllo" };
  const bytes = encodeFrame(value);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const events = decodeSplit(new FrameDecoder(), bytes, [cut]);
    assert.deepEqual(describe(events), [value], `cut at ${cut}`);
  }
});

Deno.test("FrameDecoder decodes frames split at every pair of chunk boundaries", () => {
  const values = [{ a: 1 }, "two", [3]];
  const bytes = concatFrames(values.map(encodeFrame));
  for (let first = 0; first <= bytes.length; first++) {
    for (let second = first; second <= bytes.length; second++) {
      const events = decodeSplit(new FrameDecoder(), bytes, [first, second]);
      assert.deepEqual(describe(events), values, `cuts at ${first} and ${second}`);
    }
  }
});

Deno.test("FrameDecoder decodes frames fed one byte at a time", () => {
  const values = [{ action: "ping", id: 1 }, { action: "fetch_topics", id: "x" }];
  const frames = values.map(encodeFrame);
  const bytes = concatFrames(frames);
  const frameEnds = new Set([frames[0].length - 1, bytes.length - 1]);
  const decoder = new FrameDecoder();
  const events: FrameEvent[] = [];
  for (let at = 0; at < bytes.length; at++) {
    events.push(...decoder.push(bytes.subarray(at, at + 1)));
    assert.equal(decoder.partial, !frameEnds.has(at), `partial after byte ${at}`);
  }
  assert.deepEqual(describe(events), values);
  assert.equal(decoder.partial, false);
});

Deno.test("FrameDecoder returns every frame of a chunk that holds several", () => {
  const values = Array.from({ length: 50 }, (_, index) => ({ index }));
  const events = new FrameDecoder().push(concatFrames(values.map(encodeFrame)));
  assert.deepEqual(describe(events), values);
});

Deno.test("FrameDecoder reports an empty frame and keeps decoding after it", () => {
  const bytes = concatFrames([header(0), encodeFrame("after"), header(0)]);
  assert.deepEqual(describe(new FrameDecoder().push(bytes)), ["<empty>", "after", "<empty>"]);
});

Deno.test("FrameDecoder accepts a frame of exactly frameBytesMax", () => {
  const bytes = encodeFrame("x".repeat(8)); // 10 payload bytes with the quotes
  const events = new FrameDecoder({ frameBytesMax: 10 }).push(bytes);
  assert.deepEqual(describe(events), ["x".repeat(8)]);
});

Deno.test("FrameDecoder refuses a frame over frameBytesMax from its header alone", () => {
  const decoder = new FrameDecoder({ frameBytesMax: 10 });
  // Only the header arrives: the refusal must not wait for (or buffer) the payload.
  const events = decoder.push(header(11));
  assert.deepEqual(events, [{ kind: "too_large", length: 11 }]);
});

Deno.test("FrameDecoder refuses a 4 GiB length without allocating it", () => {
  const decoder = new FrameDecoder();
  const events = decoder.push(header(0xffffffff));
  assert.deepEqual(events, [{ kind: "too_large", length: 0xffffffff }]);
});

Deno.test("FrameDecoder refuses an oversize header split across chunks", () => {
  const decoder = new FrameDecoder({ frameBytesMax: 100 });
  const bytes = header(101);
  assert.deepEqual(decoder.push(bytes.subarray(0, 3)), []);
  assert.deepEqual(decoder.push(bytes.subarray(3)), [{ kind: "too_large", length: 101 }]);
});

Deno.test("FrameDecoder ignores every byte after a too_large event", () => {
  const decoder = new FrameDecoder({ frameBytesMax: 10 });
  const bytes = concatFrames([encodeFrame(1), header(11), encodeFrame(2)]);
  assert.deepEqual(describe(decoder.push(bytes)), [1, "<too_large 11>"]);
  assert.deepEqual(decoder.push(encodeFrame(3)), []);
});

Deno.test("FrameDecoder rejects a frameBytesMax that is not a positive 32-bit integer", () => {
  for (const frameBytesMax of [0, -1, 1.5, 2 ** 32, Number.NaN]) {
    assert.throws(() => new FrameDecoder({ frameBytesMax }), RangeError, String(frameBytesMax));
  }
});

Deno.test("FrameDecoder is partial while a header or payload is incomplete", () => {
  const decoder = new FrameDecoder();
  const bytes = encodeFrame("abc");
  assert.equal(decoder.partial, false);
  decoder.push(bytes.subarray(0, 2));
  assert.equal(decoder.partial, true);
  decoder.push(bytes.subarray(2, 6));
  assert.equal(decoder.partial, true);
  decoder.push(bytes.subarray(6));
  assert.equal(decoder.partial, false);
});

Deno.test("concatFrames joins frames in order", () => {
  const joined = concatFrames([new Uint8Array([1, 2]), new Uint8Array([]), new Uint8Array([3])]);
  assert.deepEqual([...joined], [1, 2, 3]);
});

Deno.test("random frames split at random boundaries decode to the same values", () => {
  const json = fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.parse(JSON.stringify(value)));
  fc.assert(
    fc.property(
      fc.array(json, { minLength: 1, maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (values, rawCuts) => {
        const bytes = concatFrames(values.map(encodeFrame));
        const cuts = rawCuts.map((cut) => cut % (bytes.length + 1));
        const events = decodeSplit(new FrameDecoder(), bytes, cuts);
        assert.deepEqual(describe(events), values);
      },
    ),
    { numRuns: 500 },
  );
});
