/**
 * Small byte arrays carved out of shared chunks, as Node's `Buffer` pool
 * does for `Buffer.allocUnsafe`. Every `new Uint8Array(n)` (and `slice()`)
 * in Deno creates an ArrayBuffer with its own backing store: about 0.5 µs
 * in a hot loop and 3-5 µs right after the thread slept (a peer wakes for
 * each frame), against 0.1 and 0.5-1 µs for a view of an existing buffer
 * (`deno run`, 200,000 allocations and 2,000 after a 0.3 ms sleep each).
 * A publish allocates several such arrays on every peer it crosses.
 *
 * Memory is never reused: a chunk is only ever handed out once, front to
 * back, and the garbage collector frees it when no view of it is left. So a
 * carved array is as safe to keep as a fresh one; it only keeps its whole
 * chunk alive, which bounds the overhead at one chunk per long-lived array
 * (entries kept together, as a log's cache keeps them, share their chunks).
 *
 * A carved array is a view: its `buffer` is the chunk. Code that needs the
 * underlying ArrayBuffer must use `byteOffset`/`byteLength` (as `dataViewOf`
 * does), and must never transfer it.
 *
 * @module
 */

/** Bytes per chunk. */
export const chunkBytes = 64 * 1024;
/** Larger arrays get their own ArrayBuffer: they would waste a chunk's tail. */
export const carvedBytesMax = 4 * 1024;

/**
 * The one empty array everybody can share: it has no bytes to change, and
 * keeps nothing alive (an empty blob, a builder that gave its buffer back).
 */
export const noBytes = new Uint8Array(0);

let chunk = new Uint8Array(chunkBytes);
let used = 0;
let chunkView = new DataView(chunk.buffer);

/**
 * A zero-filled array of `length` bytes, carved from the current chunk when
 * it is small.
 *
 * @example
 * ```ts
 * import { allocBytes } from "./byte_pool.ts";
 *
 * const bytes = allocBytes(16);
 * bytes[0] = 1;
 * ```
 */
export function allocBytes(length: number): Uint8Array {
  if (length > carvedBytesMax) return new Uint8Array(length);
  if (used + length > chunkBytes) {
    chunk = new Uint8Array(chunkBytes);
    chunkView = new DataView(chunk.buffer);
    used = 0;
  }
  const bytes = chunk.subarray(used, used + length);
  // Eight-byte steps keep every array aligned for whoever reads it as words.
  used += (length + 7) & ~7;
  return bytes;
}

/**
 * A DataView over the whole ArrayBuffer of `bytes` (index it at
 * `bytes.byteOffset + at`): for carved arrays the chunk's own view, made
 * once per chunk, since each `new DataView` is another object the runtime
 * builds.
 *
 * @example
 * ```ts
 * import { allocBytes, dataViewOf } from "./byte_pool.ts";
 *
 * const bytes = allocBytes(4);
 * dataViewOf(bytes).setUint32(bytes.byteOffset, 7);
 * ```
 */
export function dataViewOf(bytes: Uint8Array): DataView {
  return bytes.buffer === chunkView.buffer ? chunkView : new DataView(bytes.buffer);
}
