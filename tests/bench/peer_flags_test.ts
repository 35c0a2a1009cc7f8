/**
 * `peerDenoFlags`: the flags a benchmark's local peers run with, and the
 * environment variables that add profiling flags to them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { peerDenoFlags } from "../../lib/bench/local_cluster.ts";
import { peerV8Flags } from "../../lib/peer/memory_trim.ts";

Deno.test("peerDenoFlags is the peers' V8 flags alone when nothing is asked for", () => {
  assert.deepEqual(peerDenoFlags(1, {}), [peerV8Flags]);
  assert.deepEqual(peerDenoFlags(1, { PUBSUB_BENCH_PEER_FLAGS: "  " }), [peerV8Flags]);
});

Deno.test("peerDenoFlags adds PUBSUB_BENCH_PEER_FLAGS with {id} as the peer's id", () => {
  const env = { PUBSUB_BENCH_PEER_FLAGS: " --cpu-prof  --cpu-prof-dir=/tmp/prof/{id} " };
  assert.deepEqual(peerDenoFlags(3, env), [
    peerV8Flags,
    "--cpu-prof",
    "--cpu-prof-dir=/tmp/prof/3",
  ]);
  assert.deepEqual(peerDenoFlags(12, { PUBSUB_BENCH_PEER_FLAGS: "--inspect=127.0.0.1:94{id}" }), [
    peerV8Flags,
    "--inspect=127.0.0.1:9412",
  ]);
});

Deno.test("peerDenoFlags appends PUBSUB_BENCH_V8_FLAGS to the peers' own V8 flags", () => {
  assert.deepEqual(peerDenoFlags(1, { PUBSUB_BENCH_V8_FLAGS: "--trace-gc" }), [
    `${peerV8Flags},--trace-gc`,
  ]);
});
