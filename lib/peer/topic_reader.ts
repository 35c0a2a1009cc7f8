/**
 * Reads messages by offset out of a replica log: the topic state says which
 * entry holds an offset, the log gives the entry, and a small cache of
 * decoded batches keeps tail readers (subscribers) off the JSON decoder.
 *
 * @module
 */

import type { LogStore } from "../storage/types.ts";
import type { OffsetMessage } from "../wire/responses.ts";
import { decodeCommand } from "./topic_commands.ts";
import type { TopicState } from "./topic_state.ts";
import type { ReadResult } from "./topic.ts";

/** Decoded batches kept per topic. */
export const decodedBatchesMax = 256;
/** Bytes of log read per fetch step. */
const readBytesMax = 1024 * 1024;

/**
 * Reader over one replica's log.
 *
 * @example
 * ```ts
 * const reader = new TopicReader(store, state);
 * const { messages, nextOffset } = reader.read(0, 100, state.nextOffset);
 * ```
 */
export class TopicReader {
  readonly #store: LogStore;
  readonly #state: TopicState;
  #cache = new Map<number, string[]>();

  constructor(store: LogStore, state: TopicState) {
    this.#store = store;
    this.#state = state;
  }

  /** Messages in `[fromOffset, committedEnd)`, at most `max`. */
  read(fromOffset: number, max: number, committedEnd: number): ReadResult {
    const messages: OffsetMessage[] = [];
    let offset = Math.max(fromOffset, this.#state.firstOffset);
    while (messages.length < max && offset < committedEnd) {
      const batch = this.#state.locate(offset);
      if (batch === undefined) break;
      const batchMessages = this.#batch(batch.index);
      const end = Math.min(
        batch.firstOffset + batchMessages.length,
        committedEnd,
        offset + max - messages.length,
      );
      for (; offset < end; offset++) {
        messages.push({ offset, message: batchMessages[offset - batch.firstOffset] });
      }
    }
    return { messages, nextOffset: Math.max(offset, fromOffset) };
  }

  /** Forgets every decoded batch (the state was restored from a snapshot). */
  reset(): void {
    this.#cache.clear();
  }

  /** Remembers a batch just appended, so the first readers skip decoding. */
  remember(index: number, messages: string[]): void {
    this.#cache.set(index, messages);
    if (this.#cache.size > decodedBatchesMax) {
      this.#cache.delete(this.#cache.keys().next().value!);
    }
  }

  #batch(index: number): string[] {
    const cached = this.#cache.get(index);
    if (cached !== undefined) return cached;
    const [entry] = this.#store.entries(index, index + 1, readBytesMax);
    const command = decodeCommand(entry.data);
    if (command?.kind !== "publish") {
      throw new Error(`Entry ${index} is not a publish batch; the offset index is corrupt`);
    }
    const skipped = this.#state.skippedParts(index);
    const messages = command.parts
      .filter((_, position) => !skipped?.includes(position))
      .flatMap((part) => part.messages);
    this.remember(index, messages);
    return messages;
  }
}
