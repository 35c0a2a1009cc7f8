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
export function majorityIndex(matches: number[]): number {
  if (matches.length === 0) return 0;
  const sorted = matches.slice().sort((a, b) => b - a);
  return sorted[Math.floor(sorted.length / 2)];
}

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
