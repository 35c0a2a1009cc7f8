/**
 * Retiring a replica whose group lives on: the log goes, a tombstone stays.
 *
 * A replica removed from its group (a committed conf change) may be placed
 * on this peer again later. Its new incarnation starts empty: without a
 * record of the old one it would have forgotten the votes it granted and
 * the entries it acknowledged, and could vote a second time in a term (two
 * leaders) or for a candidate missing a committed entry. CockroachDB keeps
 * a range tombstone for the same reason. Here the tombstone is the
 * `recovering` flag of `replica_repair.ts`, holding the dropped replica's
 * last term: a replica opened in that directory again is a rebuilt one,
 * which starts in the next term and neither votes nor campaigns until it
 * caught up (see `RaftOptions.recoveringTerm`).
 *
 * The swap is crash-safe with the rename protocol `openReplicaLog` already
 * completes: the empty replica with its flag is prepared in
 * `<dir>.rebuild`, the old log is renamed to `<dir>.retired`, the new one
 * renamed in, and only then the old files are deleted. A crash leaves
 * either the old log (its hard state intact) or the flagged empty one.
 *
 * @module
 */

import { ignoreNotFound, parentDirectory, syncDirectory } from "../storage/atomic_file.ts";
import { prepareRebuild } from "./replica_repair.ts";

/** Where the retired log waits for deletion once the tombstone is in place. */
const retiredSuffix = ".retired";

/**
 * Replaces the replica log in `directory` with an empty one flagged
 * recovering at `term` (the retired replica's last term, at least), then
 * deletes the old files.
 *
 * @example
 * ```ts
 * await retireReplicaLog(`${dataDir}/topics/events.3`, 7);
 * // openReplicaLog(`${dataDir}/topics/events.3`, ...) now returns recoveringTerm 7
 * ```
 */
export async function retireReplicaLog(directory: string, term: number): Promise<void> {
  if (!Number.isSafeInteger(term) || term < 0) {
    throw new RangeError(
      `Cannot retire a replica log as 'term' must be a non-negative integer: current value is ${term}`,
    );
  }
  const retired = directory + retiredSuffix;
  await removeRetiredLog(directory);
  const rebuild = await prepareRebuild(directory, term);
  const parent = parentDirectory(directory);
  await syncDirectory(parent);
  await Deno.rename(directory, retired).catch(ignoreNotFound);
  await Deno.rename(rebuild, directory);
  await syncDirectory(parent);
  await removeRetiredLog(directory);
}

/**
 * Deletes what a retirement interrupted by a crash left of the old log
 * (nothing reads it: the flagged replica is in place or the old log still is).
 *
 * @example
 * ```ts
 * await removeRetiredLog(`${dataDir}/topics/events.3`);
 * ```
 */
export async function removeRetiredLog(directory: string): Promise<void> {
  await Deno.remove(directory + retiredSuffix, { recursive: true }).catch(ignoreNotFound);
}
