/**
 * Child process for the crash test: appends batches to a SegmentLogStore and
 * prints each index once `sync()` has made it durable, until it is killed.
 *
 * Usage: deno run -A tests/storage/_crash_writer.ts <dir>
 */

import { SegmentLogStore } from "../../lib/storage/segment_log_store.ts";
import type { Entry } from "../../lib/storage/types.ts";
import { makeEntries } from "./_helpers.ts";

/** Entry sizes depend on the index only, so the parent can recompute every entry. */
export function entriesFrom(first: number, count: number): Entry[] {
  return Array.from(
    { length: count },
    (_, offset) => makeEntries(first + offset, 1, 1, 50 + ((first + offset) % 300))[0],
  );
}

if (import.meta.main) await main(Deno.args[0]);

async function main(dir: string): Promise<void> {
  const store = await SegmentLogStore.open(dir, { segmentBytesMax: 64 * 1024 });
  const encoder = new TextEncoder();
  let next = store.lastIndex() + 1;
  for (;;) {
    // Several syncs in flight at once, as Raft with pipelining would issue them.
    const syncs: Promise<number>[] = [];
    for (let batch = 0; batch < 4; batch++) {
      const count = 1 + (next % 7);
      store.append(entriesFrom(next, count));
      next += count;
      const last = next - 1;
      syncs.push(store.sync().then(() => last));
    }
    for (const synced of await Promise.all(syncs)) {
      Deno.stdout.writeSync(encoder.encode(`${synced}\n`));
    }
  }
}
