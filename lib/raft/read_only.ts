/**
 * ReadIndex bookkeeping on the leader (etcd-io/raft's `readOnly`): each
 * request remembers the commit index when it arrived and which voters
 * acknowledged a heartbeat carrying its context. Once a quorum did, that
 * request and every earlier one are confirmed: no other leader could have
 * committed anything the reader would miss.
 *
 * @module
 */

import { ProposalDroppedError } from "./errors.ts";
import type { ReadState } from "./types.ts";

interface PendingRead {
  index: number;
  context: Uint8Array;
  key: string;
  acks: Set<number>;
}

/**
 * Pending ReadIndex requests, in arrival order, at most `readsPendingMax`.
 *
 * @example
 * ```ts
 * const reads = new ReadOnly(1024);
 * reads.add(7, context, 1);
 * ```
 */
export class ReadOnly {
  readonly #pending: PendingRead[] = [];
  readonly #byKey = new Map<string, PendingRead>();
  readonly #readsPendingMax: number;

  constructor(readsPendingMax: number) {
    this.#readsPendingMax = readsPendingMax;
  }

  /** Queues a request at commit index `index`, acknowledged by the leader itself. */
  add(index: number, context: Uint8Array, self: number): void {
    const key = contextKey(context);
    if (this.#byKey.has(key)) return;
    if (this.#pending.length >= this.#readsPendingMax) {
      throw new ProposalDroppedError(
        `Cannot queue read as readsPendingMax (${this.#readsPendingMax}) is reached`,
      );
    }
    const read = { index, context, key, acks: new Set([self]) };
    this.#pending.push(read);
    this.#byKey.set(key, read);
  }

  /** Context to attach to the next heartbeat: the newest request confirms all earlier ones. */
  lastContext(): Uint8Array | undefined {
    return this.#pending.at(-1)?.context;
  }

  /**
   * Records `from`'s acknowledgement of `context`; when `hasQuorum(acks)`,
   * removes and returns that request and all earlier ones.
   */
  acknowledge(
    from: number,
    context: Uint8Array,
    hasQuorum: (acks: Set<number>) => boolean,
  ): ReadState[] {
    const read = this.#byKey.get(contextKey(context));
    if (!read) return [];
    read.acks.add(from);
    if (!hasQuorum(read.acks)) return [];
    const position = this.#pending.indexOf(read);
    const released = this.#pending.splice(0, position + 1);
    for (const done of released) this.#byKey.delete(done.key);
    return released.map((done) => ({ index: done.index, context: done.context }));
  }

  /** Contexts of every pending request, oldest first. */
  contexts(): Uint8Array[] {
    return this.#pending.map((read) => read.context);
  }

  clear(): void {
    this.#pending.length = 0;
    this.#byKey.clear();
  }

  get size(): number {
    return this.#pending.length;
  }
}

function contextKey(context: Uint8Array): string {
  let key = "";
  for (const byte of context) key += String.fromCharCode(byte);
  return key;
}
