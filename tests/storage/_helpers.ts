/** Shared helpers for the storage tests (private). */

import { type Entry, EntryType } from "../../lib/storage/types.ts";
import { SegmentLogStore } from "../../lib/storage/segment_log_store.ts";

/** Deterministic data for an entry, so any process can check what it reads. */
export function dataFor(index: number, term: number, bytes: number): Uint8Array {
  const data = new Uint8Array(bytes);
  let state = (index * 2654435761 + term * 40503) >>> 0;
  for (let position = 0; position < bytes; position++) {
    state = (state * 1103515245 + 12345) >>> 0;
    data[position] = state >>> 24;
  }
  return data;
}

/** Entries `[first, first + count)` of `term` with `bytes` of data each. */
export function makeEntries(first: number, count: number, term: number, bytes = 100): Entry[] {
  return Array.from({ length: count }, (_, offset) => ({
    term,
    index: first + offset,
    type: (first + offset) % 7 === 0 ? EntryType.ConfChange : EntryType.Normal,
    data: dataFor(first + offset, term, bytes),
  }));
}

/** Plain objects with copied data, for deep equality across reads. */
export function normalize(entries: Entry[]): Entry[] {
  return entries.map((entry) => ({
    term: entry.term,
    index: entry.index,
    type: entry.type,
    data: new Uint8Array(entry.data),
  }));
}

export async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "segment_log_store_test_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Names of the segment files in `dir`, sorted. */
export function segmentNames(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((entry) => entry.name).filter((name) =>
    name.endsWith(".log")
  ).sort();
}

/**
 * Bytes of the records held in the segment files of `dir`, walked by their
 * length fields up to the zero padding that ends a preallocated segment
 * (a check independent of the store's own accounting).
 */
export function segmentRecordBytes(dir: string): number {
  let total = 0;
  for (const name of segmentNames(dir)) {
    const bytes = Deno.readFileSync(`${dir}/${name}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let offset = 0;
    while (offset + 24 <= bytes.length) {
      const payloadBytes = view.getUint32(offset) & 0xffffff;
      if (payloadBytes === 0) break;
      offset += 24 + payloadBytes;
    }
    total += offset;
  }
  return total;
}

/**
 * Writes `count` entries (term 1, from index 1) to a new log in `dir`,
 * syncs and closes it; returns the path of its one segment file, to damage.
 */
export async function closedLogSegment(dir: string, count: number): Promise<string> {
  const store = await SegmentLogStore.open(dir);
  store.append(makeEntries(1, count, 1));
  await store.sync();
  await store.close();
  const [name] = segmentNames(dir);
  return `${dir}/${name}`;
}
