/**
 * The invariant checker: it only observes what replicas report (leaders,
 * applied entries, acknowledgements, reads, log contents) and records the
 * first violation. It never influences the simulation.
 *
 * Invariants: at most one leader per term; log matching; committed entries
 * agree on every replica (state machine safety); acknowledged entries are
 * never lost, duplicated or reordered; linearizable reads are not stale;
 * committed logs are prefixes of the newest leader's log; convergence.
 *
 * @module
 */

import type { Entry } from "../storage/types.ts";

/** The first invariant that failed, with a human-readable detail. */
export interface Violation {
  invariant: string;
  detail: string;
}

/** What the checker may read of a replica's log. */
export interface LogView {
  id: number;
  firstIndex(): number;
  lastIndex: number;
  commit: number;
  termAt(index: number): number | undefined;
  entries(low: number, high: number): Entry[];
}

/**
 * Observes a simulation and remembers the first violated invariant.
 *
 * @example
 * ```ts
 * const checker = new InvariantChecker();
 * checker.observeLeader(3, 1);
 * checker.observeLeader(3, 2);
 * checker.violation?.invariant; // "at most one leader per term"
 * ```
 */
export class InvariantChecker {
  violation: Violation | undefined;
  /** Signature (term/kind/key) of the entry applied at each index, from the first replica applying it. */
  readonly #history: (string | undefined)[] = [];
  readonly #indexOfKey = new Map<string, number>();
  readonly #leaderOfTerm = new Map<number, number>();
  readonly #acked = new Map<string, number>();
  ackedIndexMax = 0;
  leaderTermMax = 0;
  readsServed = 0;
  elections = 0;

  get ackCount(): number {
    return this.#acked.size;
  }

  get historyLength(): number {
    return this.#history.length - 1;
  }

  fail(invariant: string, detail: string): void {
    this.violation ??= { invariant, detail };
  }

  observeLeader(term: number, id: number): void {
    const known = this.#leaderOfTerm.get(term);
    if (known === undefined) {
      this.#leaderOfTerm.set(term, id);
      this.elections++;
      this.leaderTermMax = Math.max(this.leaderTermMax, term);
    } else if (known !== id) {
      this.fail("at most one leader per term", `n${known} and n${id} both lead term ${term}`);
    }
  }

  /** A replica applied `entry`; `key` is the workload payload ("" for internal entries). */
  observeApply(node: number, index: number, signature: string, key: string): void {
    const known = this.#history[index];
    if (known === undefined) {
      this.#history[index] = signature;
    } else if (known !== signature) {
      this.fail(
        "committed entries agree on every replica",
        `n${node} applied ${signature} at index ${index} where ${known} was applied before`,
      );
      return;
    }
    if (key === "") return;
    const seen = this.#indexOfKey.get(key);
    if (seen === undefined) this.#indexOfKey.set(key, index);
    else if (seen !== index) {
      this.fail(
        "acknowledged entries are not duplicated",
        `payload ${key} committed at ${seen} and ${index}`,
      );
    }
  }

  /** A replica restored `key` at `index` from a snapshot: it must match what was applied there. */
  observeRestored(node: number, index: number, key: string): void {
    const known = this.#history[index];
    if (known !== undefined && !known.endsWith(`/${key}`)) {
      this.fail(
        "committed entries agree on every replica",
        `n${node} restored ${key} at index ${index} from a snapshot where ${known} was applied`,
      );
    }
  }

  /** A client was told that `key` is durable at `index`. */
  observeAck(key: string, index: number): void {
    const previous = this.#acked.get(key);
    if (previous !== undefined && previous !== index) {
      this.fail(
        "acknowledged entries are not duplicated",
        `payload ${key} acknowledged at ${previous} and ${index}`,
      );
    }
    this.#acked.set(key, index);
    this.ackedIndexMax = Math.max(this.ackedIndexMax, index);
  }

  /** A linearizable read issued when `requiredIndex` was acknowledged was served at `servedIndex`. */
  observeRead(node: number, requiredIndex: number, servedIndex: number): void {
    this.readsServed++;
    if (servedIndex < requiredIndex) {
      this.fail(
        "linearizable reads are not stale",
        `n${node} served a read at index ${servedIndex} after index ${requiredIndex} was acknowledged`,
      );
    }
  }

  /** Log matching: logs that share (index, term) hold the same entries up to it. */
  checkLogMatching(views: LogView[]): void {
    for (let a = 0; a < views.length && !this.violation; a++) {
      for (let b = a + 1; b < views.length && !this.violation; b++) {
        this.#checkPair(views[a], views[b]);
      }
    }
  }

  #checkPair(left: LogView, right: LogView): void {
    const low = Math.max(left.firstIndex(), right.firstIndex());
    let high = Math.min(left.lastIndex, right.lastIndex);
    while (high >= low && left.termAt(high) !== right.termAt(high)) high--;
    if (high < low) return;
    const leftEntries = left.entries(low, high + 1);
    const rightEntries = right.entries(low, high + 1);
    for (let offset = 0; offset < leftEntries.length; offset++) {
      const one = leftEntries[offset];
      const other = rightEntries[offset];
      if (one.term !== other.term || !sameBytes(one.data, other.data)) {
        this.fail(
          "log matching",
          `n${left.id} and n${right.id} agree at (${high}, ${
            left.termAt(high)
          }) but differ at index ${one.index}`,
        );
        return;
      }
    }
  }

  /** Every replica's committed prefix is in the log of the leader of the newest term. */
  checkCommittedPrefix(leader: LogView, views: LogView[]): void {
    for (const view of views) {
      if (view.commit > leader.lastIndex) {
        this.fail(
          "committed logs are prefixes of the leader's",
          `n${view.id} committed ${view.commit} beyond leader n${leader.id}'s last index ${leader.lastIndex}`,
        );
        return;
      }
      const low = Math.max(view.firstIndex(), leader.firstIndex());
      for (let index = view.commit; index >= low; index--) {
        if (view.termAt(index) !== leader.termAt(index)) {
          this.fail(
            "committed logs are prefixes of the leader's",
            `n${view.id}'s committed entry ${index} (term ${
              view.termAt(index)
            }) differs from leader n${leader.id}'s`,
          );
          return;
        }
      }
    }
  }

  /** After convergence: every acknowledged payload is applied at its index on every live member. */
  checkAcknowledged(node: number, applied: Map<number, string>): void {
    for (const [key, index] of this.#acked) {
      const found = applied.get(index);
      if (found !== key) {
        this.fail(
          "acknowledged entries are never lost",
          `payload ${key} acknowledged at index ${index} but n${node} applied ${
            found ?? "nothing"
          } there`,
        );
        return;
      }
    }
  }
}

function sameBytes(left: Uint8Array, right: Uint8Array): boolean {
  if (left === right) return true;
  if (left.byteLength !== right.byteLength) return false;
  for (let i = 0; i < left.byteLength; i++) if (left[i] !== right[i]) return false;
  return true;
}
