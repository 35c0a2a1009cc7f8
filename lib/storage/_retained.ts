/**
 * The rule both stores apply to the entries installed with a snapshot.
 *
 * @module
 */

import type { Entry, Snapshot } from "./types.ts";

/**
 * Checks the entries retained with an installed snapshot: consecutive, and
 * ending at the snapshot's index with its term. Throws RangeError.
 *
 * @example
 * ```ts
 * import { checkRetained } from "./_retained.ts";
 * const data = new Uint8Array();
 * const entries = [{ index: 5, term: 2, type: 0, data }];
 * checkRetained({ index: 5, term: 2, conf: { voters: [1], learners: [] }, data }, entries);
 * ```
 */
export function checkRetained(snapshot: Snapshot, retained: readonly Entry[]): void {
  if (retained.length === 0) return;
  const last = retained[retained.length - 1];
  if (last.index !== snapshot.index || last.term !== snapshot.term) {
    throw new RangeError(
      `Cannot install snapshot ${snapshot.index} (term ${snapshot.term}) with retained entries ending at ${last.index} (term ${last.term})`,
    );
  }
  for (let position = 1; position < retained.length; position++) {
    if (retained[position].index !== retained[position - 1].index + 1) {
      throw new RangeError(
        `Cannot install snapshot ${snapshot.index} as its retained entries skip from ${
          retained[position - 1].index
        } to ${retained[position].index}`,
      );
    }
  }
}
