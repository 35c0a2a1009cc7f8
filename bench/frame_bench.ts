/**
 * Microbenchmarks of the frame codec: `deno bench -A bench/frame_bench.ts`.
 * Results and the command are in bench/RESULTS_frame.md.
 */

import { concatFrames, encodeFrame, FrameDecoder } from "../lib/wire/frame.ts";

const small = { action: "publish", topic_name: "events", message: "hello", id: 1 };
const kibibyte = { action: "publish", topic_name: "events", message: "x".repeat(960), id: 1 };
const smallFrame = encodeFrame(small);
const kibibyteFrame = encodeFrame(kibibyte);

/** A 64 KiB chunk packed with small frames, as a busy connection delivers them. */
const chunkBytes = 64 * 1024;
const packed = (() => {
  const frames: Uint8Array[] = [];
  let bytes = 0;
  while (bytes + smallFrame.length <= chunkBytes) {
    frames.push(smallFrame);
    bytes += smallFrame.length;
  }
  return concatFrames(frames);
})();
const framesPerChunk = packed.length / smallFrame.length;

Deno.bench("encode a small frame", { group: "encode", baseline: true }, () => {
  encodeFrame(small);
});

Deno.bench("encode a 1 KiB frame", { group: "encode" }, () => {
  encodeFrame(kibibyte);
});

Deno.bench("decode a small frame", { group: "decode", baseline: true }, () => {
  new FrameDecoder().push(smallFrame);
});

Deno.bench("decode a 1 KiB frame", { group: "decode" }, () => {
  new FrameDecoder().push(kibibyteFrame);
});

Deno.bench(`decode a 64 KiB chunk of ${framesPerChunk} small frames`, { group: "chunk" }, () => {
  const events = new FrameDecoder().push(packed);
  if (events.length !== framesPerChunk) throw new Error(`Decoded ${events.length} frames`);
});

Deno.bench(`decode a 64 KiB chunk of ${framesPerChunk} small frames and parse the JSON`, {
  group: "chunk",
}, () => {
  const utf8 = new TextDecoder();
  for (const event of new FrameDecoder().push(packed)) {
    if (event.kind === "frame") JSON.parse(utf8.decode(event.payload));
  }
});
