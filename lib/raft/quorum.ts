/**
 * Majority-quorum arithmetic, pure functions over plain values.
 *
 * @module
 */

/**
 * The highest index acknowledged by a majority of `matches` (one per voter).
 *
 * @example
 * ```ts
 * majorityIndex([5, 3, 9]); // 5
 * ```
 */
export function majorityIndex(
  matches: ArrayLike<number>,
  count: number = matches.length,
): number {
  if (count === 0) return 0;
  // Insertion sort (descending) into a reused typed array: a group has a
  // handful of voters, and a copy sorted with a comparator was an
  // allocation per acknowledgement on the leader.
  if (sortScratch.length < count) sortScratch = new Float64Array(count * 2);
  const sorted = sortScratch;
  for (let filled = 0; filled < count; filled++) {
    const match = matches[filled];
    let at = filled;
    while (at > 0 && sorted[at - 1] < match) {
      sorted[at] = sorted[at - 1];
      at--;
    }
    sorted[at] = match;
  }
  return sorted[Math.floor(count / 2)];
}

let sortScratch = new Float64Array(16);

/** Outcome of an election or of a read confirmation. */
export type VoteResult = "won" | "lost" | "pending";

/**
 * Tallies `votes` (granted or refused by voter id) against `voters`.
 *
 * @example
 * ```ts
 * voteResult([1, 2, 3], new Map([[1, true], [2, true]])); // "won"
 * ```
 */
export function voteResult(voters: number[], votes: Map<number, boolean>): VoteResult {
  const quorum = Math.floor(voters.length / 2) + 1;
  let granted = 0;
  let refused = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) refused++;
  }
  if (granted >= quorum) return "won";
  if (voters.length - refused < quorum) return "lost";
  return "pending";
}
