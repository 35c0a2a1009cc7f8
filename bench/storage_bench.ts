/**
 * Storage microbenchmarks: `deno bench -A bench/storage_bench.ts`.
 *
 * Each append+sync case appends `batch` entries then awaits one sync, so
 * "1 entry per sync" measures fsync latency and "100 entries per sync"
 * measures group commit throughput. Entries/s = iterations/s * batch.
 */

import { crc32c } from "../lib/storage/crc32c.ts";
import { SegmentLogStore } from "../lib/storage/segment_log_store.ts";
import { type Entry, EntryType } from "../lib/storage/types.ts";

const dir = await Deno.makeTempDir({ prefix: "storage_bench_" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

function benchAppendSync(batch: number, bytes: number): void {
  let store: SegmentLogStore | undefined;
  let next = 1;
  const data = new Uint8Array(bytes).fill(0x5a);
  const entries: Entry[] = Array.from({ length: batch }, () => ({
    term: 1,
    index: 0,
    type: EntryType.Normal,
    data,
  }));
  Deno.bench({
    name: `append+sync ${batch} x ${bytes} B per sync`,
    group: `append+sync ${bytes} B`,
    baseline: batch === 1,
    async fn(context) {
      store ??= await SegmentLogStore.open(`${dir}/${batch}x${bytes}`);
      for (const entry of entries) entry.index = next++;
      context.start();
      // Fresh objects per batch, as Raft hands over new entries every time.
      store.append(entries.map((entry) => ({ ...entry })));
      await store.sync();
      context.end();
    },
  });
}

for (const bytes of [100, 1024]) {
  for (const batch of [1, 100]) benchAppendSync(batch, bytes);
}

for (const bytes of [100, 4096, 1 << 20]) {
  const buffer = Uint8Array.from({ length: bytes }, (_, index) => index * 31);
  Deno.bench({ name: `crc32c ${bytes} B`, group: "crc32c", fn: () => void crc32c(buffer) });
}
