import assert from "node:assert/strict";
import { SegmentLogStore } from "../../lib/storage/segment_log_store.ts";
import { normalize, withTempDir } from "./_helpers.ts";
import { entriesFrom } from "./_crash_writer.ts";

const writerScript = new URL("./_crash_writer.ts", import.meta.url).pathname;
const reportedIndicesMin = 200;

/** Reads the child's stdout until at least `minimum` synced indices were reported. */
async function readReports(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  minimum: number,
): Promise<number[]> {
  const decoder = new TextDecoder();
  const reported: number[] = [];
  let pending = "";
  while (reported.length < minimum) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) reported.push(Number(line));
  }
  return reported;
}

Deno.test("SegmentLogStore keeps every synced entry of a writer killed with SIGKILL", async () => {
  await withTempDir(async (dir) => {
    for (let round = 0; round < 3; round++) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", writerScript, dir],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = child.stdout.getReader();
      const reported = await readReports(reader, reportedIndicesMin);
      child.kill("SIGKILL");
      await child.status;
      reader.releaseLock();
      await child.stdout.cancel();
      assert.ok(reported.length >= reportedIndicesMin, `only ${reported.length} reports`);

      const store = await SegmentLogStore.open(dir, { segmentBytesMax: 64 * 1024 });
      const highest = Math.max(...reported);
      assert.ok(store.lastIndex() >= highest, `lost ${highest}: last is ${store.lastIndex()}`);
      const entries = store.entries(1, store.lastIndex() + 1);
      assert.equal(entries.length, store.lastIndex());
      assert.deepEqual(normalize(entries), normalize(entriesFrom(1, store.lastIndex())));
      await store.close();
    }
  });
});
