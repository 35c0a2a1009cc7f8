/**
 * Where a peer keeps its topic replicas on disk, and how to read one back
 * without the peer running (for consistency checks of a stopped or killed
 * peer: the benchmark's fault suite and the multi-process tests).
 *
 * @module
 */

import { TopicReader } from "../peer/topic_reader.ts";
import { TopicState } from "../peer/topic_state.ts";
import { SegmentLogStore } from "../storage/segment_log_store.ts";
import { EntryType } from "../storage/types.ts";

/**
 * The directory of one replica: `<dataDir>/topics/<name>.<epoch>`; the epoch
 * keeps a re-created topic from ever reading an old replica's log.
 */
export function topicReplicaDir(dataDir: string, name: string, epoch: number): string {
  return `${dataDir}/topics/${name}.${epoch}`;
}

/**
 * Every message the replica of `topic` under `dataDir` retains, in offset
 * order from its first retained offset (0 unless retention deleted older
 * ones). Opening the log repairs a torn tail exactly as a restart would.
 * Throws when there is not exactly one replica of the topic there.
 *
 * @example
 * ```ts
 * const messages = await readReplicaMessages("./data/2", "orders");
 * ```
 */
export async function readReplicaMessages(dataDir: string, topic: string): Promise<string[]> {
  const directories = [];
  for await (const entry of Deno.readDir(`${dataDir}/topics`)) {
    if (entry.isDirectory && entry.name.startsWith(`${topic}.`)) directories.push(entry.name);
  }
  if (directories.length !== 1) {
    throw new Error(`Expected one replica of ${topic} in ${dataDir}, found ${directories.length}`);
  }
  const store = await SegmentLogStore.open(`${dataDir}/topics/${directories[0]}`);
  try {
    // A compacted replica (retention, or installed by snapshot transfer)
    // starts from its snapshot; the entries after it are applied on top.
    const state = new TopicState();
    const snapshot = store.snapshot();
    let first = store.firstIndex();
    if (snapshot !== undefined) {
      state.restore(snapshot.data, snapshot.index);
      first = snapshot.index + 1;
    } else if (first > 1) {
      throw new Error(`The replica of ${topic} was compacted without a snapshot`);
    }
    for (const entry of store.entries(first, store.lastIndex() + 1)) {
      if (entry.type === EntryType.ConfChange) state.skip(entry.index);
      else state.apply(entry.index, entry.data);
    }
    const reader = new TopicReader(store, state);
    return reader.read(state.firstOffset, Number.MAX_SAFE_INTEGER, state.nextOffset).messages.map((
      item,
    ) => item.message);
  } finally {
    await store.close();
  }
}
