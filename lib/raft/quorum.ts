/**
 * Majority-quorum arithmetic over plain values (`majorityIndex` sorts its
 * input in place; nothing else here changes what it is given).
 *
 * @module
 */

/**
 * The highest index acknowledged by a majority of the first `count` of
 * `matches` (one per voter). It sorts them in place, descending (insertion
 * sort: a group has a handful of voters), so that a caller that passes its
 * own scratch buffer allocates nothing per acknowledgement.
 *
 * @example
 * ```ts
 * majorityIndex([5, 3, 9]); // 5
 * ```
 */
export function majorityIndex(
  matches: { [index: number]: number; readonly length: number },
  count: number = matches.length,
): number {
  if (count === 0) return 0;
  for (let sorted = 1; sorted < count; sorted++) {
    const match = matches[sorted];
    let at = sorted;
    while (at > 0 && matches[at - 1] < match) {
      matches[at] = matches[at - 1];
      at--;
    }
    matches[at] = match;
  }
  return matches[Math.floor(count / 2)];
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
