import assert from "node:assert/strict";
import {
  openCollector,
  openMallocTrim,
  startMemoryTrim,
  TrimCadence,
  type TrimStep,
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
  assert.throws(() => startMemoryTrim({ lookMs: 0 }), /'lookMs' must be positive/);
  const stop = startMemoryTrim({ lookMs: 60_000 });
  stop();
});

/** Looks every 2 s; `cpu` lists the CPU milliseconds used in each interval. */
function looker(cadence: TrimCadence): (cpu: number[]) => TrimStep[] {
  let now = 0;
  let total = 0;
  return (cpu) => cpu.map((used) => cadence.look(now += 2_000, total += used));
}

Deno.test("TrimCadence trims at most every 10 s while busy and collects once at the first quiet look", () => {
  const steps = looker(new TrimCadence(0, 0));
  // 12 s busy (half a core), then quiet (5 ms per 2 s: a quarter of 1%).
  assert.deepEqual(steps([1000, 1000, 1000, 1000, 1000, 1000, 5, 5, 5, 5]), [
    "trim",
    "none",
    "none",
    "none",
    "none",
    "trim",
    "collect",
    "none",
    "none",
    "none",
  ]);
});

Deno.test("TrimCadence trims without collecting after little work, and never while idle", () => {
  const steps = looker(new TrimCadence(0, 0));
  // 200 ms of work: owed one trim, not a collection.
  assert.deepEqual(steps([200, 5, 5, 5]), ["trim", "trim", "none", "none"]);
  // The work adds up: the next burst brings it past 1 s.
  assert.deepEqual(steps([900, 0, 0]), ["none", "collect", "none"]);
  assert.deepEqual(steps(Array(100).fill(20)), Array(100).fill("none"));
});

Deno.test("TrimCadence collects at most every 30 s, catching up once quiet", () => {
  const steps = looker(new TrimCadence(0, 0));
  // Bursts of 2 s every 8 s: busy, quiet, quiet, quiet.
  const cpu = Array.from({ length: 24 }, (_, index) => index % 4 === 0 ? 1500 : 0);
  const collections = steps(cpu).flatMap((step, index) =>
    step === "collect" ? [(index + 1) * 2] : []
  );
  assert.deepEqual(collections, [4, 36]);
});

Deno.test("TrimCadence does not count the CPU time of its own collection as work", () => {
  const cadence = new TrimCadence(0, 0);
  assert.equal(cadence.look(2_000, 1_500), "trim");
  assert.equal(cadence.look(4_000, 1_510), "collect");
  // The collection took 600 ms of CPU time.
  cadence.rebase(2_110);
  assert.equal(cadence.look(6_000, 2_115), "none");
  assert.equal(cadence.look(8_000, 2_120), "none");
});

Deno.test("openCollector gives V8's full collection, which frees unreachable buffers", () => {
  const collect = openCollector();
  assert.ok(collect !== undefined, "V8's gc can be exposed at run time");
  let buffers: Uint8Array[] | undefined = Array.from(
    { length: 500 },
    () => new Uint8Array(64 * 1024),
  );
  const before = Deno.memoryUsage().external;
  assert.ok(before >= 500 * 64 * 1024, `the buffers count as external memory (${before})`);
  buffers = undefined;
  collect();
  const after = Deno.memoryUsage().external;
  assert.equal(buffers, undefined);
  assert.ok(after < before - 400 * 64 * 1024, `external memory ${before} -> ${after}`);
});

Deno.test("startMemoryTrim collects once when work ends, then stays quiet", async () => {
  if (openMallocTrim() === undefined) return;
  const taken: TrimStep[] = [];
  // The CPU time it sees is ours to set: the process's own would count the
  // test files running beside this one (deno test --parallel).
  let cpu = 0;
  let busy = true;
  const stop = startMemoryTrim({
    lookMs: 50,
    trimMs: 200,
    collectWorkMs: 100,
    onStep: (step) => taken.push(step),
    cpuMs: () => busy ? cpu += 200 : cpu,
  });
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    busy = false;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(taken.includes("collect"), `collected after the work: ${taken}`);
    const settled = taken.length;
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(taken.length, settled, `nothing while quiet: ${taken}`);
  } finally {
    stop();
  }
});
