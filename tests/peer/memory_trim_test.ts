import assert from "node:assert/strict";
import {
  busyCpuShare,
  openMallocTrim,
  startMemoryTrim,
  TrimCadence,
} from "../../lib/peer/memory_trim.ts";

Deno.test("openMallocTrim gives glibc's malloc_trim on Linux with FFI allowed, and it returns memory", () => {
  const library = openMallocTrim();
  if (Deno.build.os !== "linux") {
    assert.equal(library, undefined);
    return;
  }
  assert.ok(library !== undefined, "tests run with -A on glibc Linux");
  try {
    // Free pages in the middle of the heap: allocate and drop many buffers.
    let buffers: Uint8Array[] = Array.from({ length: 2000 }, () => new Uint8Array(64 * 1024));
    buffers = [];
    assert.equal(buffers.length, 0);
    const result = library.symbols.malloc_trim(0n);
    assert.ok(result === 0 || result === 1, `malloc_trim answers 0 or 1, not ${result}`);
  } finally {
    library.close();
  }
});

Deno.test("startMemoryTrim refuses a non-positive interval and stops cleanly", () => {
  assert.throws(() => startMemoryTrim(0), /'intervalMs' must be positive/);
  const stop = startMemoryTrim(60_000);
  stop();
});

Deno.test("TrimCadence trims while busy and once after, then not while quiet", () => {
  const cadence = new TrimCadence();
  const looks = [0.5, 0.3, 0, 0, 0, busyCpuShare, 0, 0.001, 0];
  assert.deepEqual(
    looks.map((busy) => cadence.shouldTrim(busy)),
    [true, true, true, false, false, true, true, false, false],
  );
});

Deno.test("startMemoryTrim trims after busy intervals and stops trimming a quiet process", async () => {
  if (openMallocTrim() === undefined) return;
  let trims = 0;
  const stop = startMemoryTrim(50, () => trims++);
  try {
    // Busy: 200 ms of work.
    const busyUntil = Date.now() + 200;
    while (Date.now() < busyUntil) Math.sqrt(Math.random());
    await new Promise((resolve) => setTimeout(resolve, 120));
    const afterBusy = trims;
    assert.ok(afterBusy >= 1, `trimmed after work (${afterBusy} trims)`);
    // Quiet: at most one more trim (the one after the work), then none.
    await new Promise((resolve) => setTimeout(resolve, 400));
    const settled = trims;
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(trims, settled, "no trims while the process is quiet");
  } finally {
    stop();
  }
});
