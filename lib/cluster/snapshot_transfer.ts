/**
 * Snapshot catch-up: a follower that needs an entry below its leader's
 * first held index gets the leader's snapshot (the state machine image) and
 * only the entries the leader still retains up to the snapshot's index (the
 * topic's retained messages), never the whole history.
 *
 * The leader's `snap` Raft message travels without its image; the receiver
 * pulls the transfer in chunks of at most `snapshotChunkBytesMax`, one chunk
 * in flight (its own flow control): first the image by byte offset, then
 * the retained entries by index. Everything is staged, then installed as
 * one unit by the replica (`LogStore.applySnapshot(snapshot, retained)`).
 * When the leader moved on meanwhile (a newer snapshot, or it compacted
 * past the next entry), its answer says so and the transfer starts over
 * with the leader's next `snap` message.
 *
 * `serveSnapshotChunk` (leader) and `SnapshotPull` (receiver) do no I/O,
 * so the simulator runs the same code as the peers.
 *
 * @module
 */

import type { Entry, LogStore, Snapshot } from "../storage/types.ts";
import { ProtocolError } from "../wire/errors.ts";

/** Most bytes of image or entry data in one chunk. */
export const snapshotChunkBytesMax = 1024 * 1024;
/** Largest snapshot image a replica accepts. */
export const snapshotImageBytesMax = 1024 * 1024 * 1024;
/** Most bytes of retained entry data staged for one install. */
export const retainedBytesMax = 4 * 1024 * 1024 * 1024;
/** Most snapshot transfers a process runs at once (each stages its image and entries in memory). */
export const transfersRunningMax = 4;

/**
 * Slots for transfers running at once: a `snap` message that finds none
 * free is dropped, and its leader sends it again later.
 *
 * @example
 * ```ts
 * if (transferSlots.acquire()) {
 *   try { await pullSnapshot(pull, fetch); } finally { transferSlots.release(); }
 * }
 * ```
 */
export class TransferSlots {
  readonly #max: number;
  #running = 0;

  constructor(max = transfersRunningMax) {
    this.#max = max;
  }

  /** Takes a slot; false when all are taken. */
  acquire(): boolean {
    if (this.#running >= this.#max) return false;
    this.#running++;
    return true;
  }

  release(): void {
    this.#running = Math.max(0, this.#running - 1);
  }

  /** Transfers running now. */
  get running(): number {
    return this.#running;
  }
}

/** The slots every replica of this process shares. */
export const transferSlots = new TransferSlots();

/** One pull of a snapshot transfer. */
export interface SnapshotChunkRequest {
  groupId: string;
  /** The snapshot being transferred (from the leader's `snap` message). */
  index: number;
  term: number;
  /** "image": bytes of the image from byte `offset`; "entries": entries from index `offset`. */
  part: "image" | "entries";
  offset: number;
}

/** The answer to one pull. */
export type SnapshotChunk =
  | {
    part: "image";
    /** Bytes of the whole image. */
    total: number;
    data: Uint8Array;
    /** First entry the leader retains (snapshot index + 1 when none at or below it). */
    firstIndex: number;
  }
  | { part: "entries"; entries: Entry[] };

/**
 * Serves one chunk of `store`'s current snapshot. Throws ProtocolError
 * `unavailable` when the snapshot is not the one asked for any more or
 * the entries asked for were compacted meanwhile (the receiver starts over).
 *
 * @example
 * ```ts
 * const chunk = serveSnapshotChunk(store, { groupId: "t:a", index: 9, term: 2, part: "image", offset: 0 });
 * ```
 */
export function serveSnapshotChunk(
  store: LogStore,
  request: SnapshotChunkRequest,
  bytesMax = snapshotChunkBytesMax,
): SnapshotChunk {
  const snapshot = store.snapshot();
  if (
    snapshot === undefined || snapshot.index !== request.index || snapshot.term !== request.term
  ) {
    throw new ProtocolError(
      "unavailable",
      `The snapshot of ${request.groupId} at index ${request.index} was replaced by a newer one`,
    );
  }
  if (request.part === "image") {
    return {
      part: "image",
      total: snapshot.data.length,
      data: snapshot.data.subarray(request.offset, request.offset + bytesMax),
      firstIndex: Math.min(store.firstIndex(), snapshot.index + 1),
    };
  }
  if (request.offset < store.firstIndex() || request.offset > snapshot.index) {
    throw new ProtocolError(
      "unavailable",
      `The entries of ${request.groupId} from index ${request.offset} are no longer held here`,
    );
  }
  return { part: "entries", entries: store.entries(request.offset, snapshot.index + 1, bytesMax) };
}

/**
 * The receiving side of one transfer: which chunk to pull next, and the
 * staged image and entries. Throws RangeError for a chunk that does not
 * continue the transfer (a confused or malicious peer).
 *
 * @example
 * ```ts
 * const pull = new SnapshotPull("t:a", message.snapshot!);
 * for (let request = pull.next(); request; request = pull.next()) {
 *   pull.accept(await fetchChunk(leader, request));
 * }
 * const { snapshot, retained } = pull.result();
 * ```
 */
export class SnapshotPull {
  readonly groupId: string;
  readonly #target: Snapshot;
  #image: Uint8Array | undefined;
  #imageBytes = 0;
  /** Next entry to pull; undefined until the image's first chunk names the first one. */
  #nextIndex: number | undefined;
  readonly #retained: Entry[] = [];
  #retainedBytes = 0;

  constructor(groupId: string, target: Snapshot) {
    this.groupId = groupId;
    this.#target = target;
  }

  /** The snapshot this transfer installs (index, term and conf of the `snap` message). */
  get index(): number {
    return this.#target.index;
  }

  /** The next chunk to ask for; undefined once everything is staged. */
  next(): SnapshotChunkRequest | undefined {
    const base = { groupId: this.groupId, index: this.#target.index, term: this.#target.term };
    if (this.#image === undefined || this.#imageBytes < this.#image.length) {
      return { ...base, part: "image", offset: this.#imageBytes };
    }
    if (this.#nextIndex! <= this.#target.index) {
      return { ...base, part: "entries", offset: this.#nextIndex! };
    }
    return undefined;
  }

  /** Stages the answer to the request `next()` returned. */
  accept(chunk: SnapshotChunk): void {
    const request = this.next();
    if (request === undefined || request.part !== chunk.part) {
      throw new RangeError(`A ${chunk.part} chunk of ${this.groupId} arrived out of turn`);
    }
    if (chunk.part === "image") this.#acceptImage(chunk);
    else this.#acceptEntries(chunk.entries);
  }

  #acceptImage(chunk: Extract<SnapshotChunk, { part: "image" }>): void {
    if (this.#image === undefined) {
      if (chunk.total > snapshotImageBytesMax) {
        throw new RangeError(
          `A snapshot image of ${chunk.total} bytes exceeds snapshotImageBytesMax (${snapshotImageBytesMax})`,
        );
      }
      if (chunk.firstIndex < 1 || chunk.firstIndex > this.#target.index + 1) {
        throw new RangeError(`A snapshot transfer cannot start at entry ${chunk.firstIndex}`);
      }
      this.#image = new Uint8Array(chunk.total);
      this.#nextIndex = chunk.firstIndex;
    }
    const image = this.#image;
    if (
      chunk.total !== image.length || this.#imageBytes + chunk.data.length > image.length ||
      (chunk.data.length === 0 && this.#imageBytes < image.length)
    ) {
      throw new RangeError(`A snapshot image chunk of ${this.groupId} does not fit the image`);
    }
    image.set(chunk.data, this.#imageBytes);
    this.#imageBytes += chunk.data.length;
  }

  #acceptEntries(entries: Entry[]): void {
    if (entries.length === 0) throw new RangeError(`An empty entries chunk of ${this.groupId}`);
    for (const entry of entries) {
      if (entry.index !== this.#nextIndex || entry.index > this.#target.index) {
        throw new RangeError(
          `Entry ${entry.index} of ${this.groupId} arrived where ${this.#nextIndex} was expected`,
        );
      }
      this.#retainedBytes += entry.data.length;
      if (this.#retainedBytes > retainedBytesMax) {
        throw new RangeError(`The retained entries of ${this.groupId} exceed retainedBytesMax`);
      }
      this.#retained.push(entry);
      this.#nextIndex++;
    }
  }

  /** The complete snapshot (with its image) and retained entries; only once `next()` is undefined. */
  result(): { snapshot: Snapshot; retained: Entry[] } {
    if (this.next() !== undefined) throw new RangeError("The snapshot transfer is not complete");
    const last = this.#retained.at(-1);
    if (last !== undefined && last.term !== this.#target.term) {
      throw new RangeError(
        `The retained entry ${last.index} of ${this.groupId} has term ${last.term}, not the snapshot's ${this.#target.term}`,
      );
    }
    return { snapshot: { ...this.#target, data: this.#image! }, retained: this.#retained };
  }
}

/**
 * Runs a whole transfer with one chunk in flight at a time.
 *
 * @example
 * ```ts
 * const { snapshot, retained } = await pullSnapshot(new SnapshotPull("t:a", target), fetchChunk);
 * ```
 */
export async function pullSnapshot(
  pull: SnapshotPull,
  fetch: (request: SnapshotChunkRequest) => Promise<SnapshotChunk>,
): Promise<{ snapshot: Snapshot; retained: Entry[] }> {
  for (let request = pull.next(); request !== undefined; request = pull.next()) {
    pull.accept(await fetch(request));
  }
  return pull.result();
}
