import assert from "node:assert/strict";
import { openMallocTrim, startMemoryTrim } from "../../lib/peer/memory_trim.ts";

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
