/**
 * The whole-cluster simulator's invariant checks that watch the peers
 * rather than the clients (those are in `sim_history.ts`):
 * - one leader per term per group, from every leader message that crosses
 *   the network (appends, heartbeats, snapshots), after every delivery;
 * - logs agree: wherever two replicas of a group (on their disks) both
 *   hold an entry at or below both their commit indexes, the entries are
 *   identical (term and bytes), checked incrementally during the run and
 *   in full at its end.
 *
 * The checker only observes: it reads disks and frames, never changes them.
 *
 * @module
 */

import type { History } from "./sim_history.ts";
import type { SimCluster } from "./sim_cluster.ts";
import type { LogStore } from "../../storage/types.ts";
import { decodeRaftFrame, type RaftFrame } from "../../cluster/peer_rpc.ts";
import type { Message } from "../../raft/types.ts";

/** Raft message kinds only a leader sends. */
const leaderTypes = new Set(["app", "heartbeat", "snap"]);

/**
 * Observes frames and disks; reports into the run's history.
 *
 * @example
 * ```ts
 * const checker = new ClusterChecker(history, cluster);
 * network.observer = (from, to, message) => checker.observeFrame(from, message);
 * checker.checkLogs(false);
 * ```
 */
export class ClusterChecker {
  readonly #history: History;
  readonly #cluster: SimCluster;
  /** Leader seen per group and term (see `#voterName`). */
  readonly #leaders = new Map<string, string>();
  /** Per log pair, the index verified so far (incremental checks). */
  readonly #verified = new WeakMap<LogStore, WeakMap<LogStore, number>>();
  /** Vote granted per group, term and voter: the candidate. */
  readonly #votes = new Map<string, number>();
  /** Leaders observed (for the report). */
  leaderTerms = 0;

  constructor(history: History, cluster: SimCluster) {
    this.#history = history;
    this.#cluster = cluster;
  }

  /** A frame was delivered: every leader message in a Raft batch names its term's leader. */
  observeFrame(from: number, message: Record<string, unknown>): void {
    if (message.action !== "peer_raft") return;
    let frame: RaftFrame;
    try {
      frame = decodeRaftFrame(message);
    } catch {
      return; // The receiver refuses it too: nothing was stepped.
    }
    for (const item of frame.batch) {
      if (!("message" in item)) continue;
      const { groupId, message: raft } = item;
      if (raft.type === "voteResp" && !raft.reject) this.#voted(groupId, from, raft);
      if (!leaderTypes.has(raft.type)) continue;
      const key = `${groupId}@${raft.term}`;
      // A replaced disk is another voter under the same id: it must not lead a term its old disk led.
      const leader = this.#voterName(from);
      const known = this.#leaders.get(key);
      if (known === undefined) {
        this.#leaders.set(key, leader);
        this.leaderTerms++;
      } else if (known !== leader) {
        this.#history.violate(
          "two_leaders",
          `Group ${groupId} has two leaders in term ${raft.term}: nodes ${known} and ${leader}`,
        );
      }
    }
  }

  /** Node `id`, with its disk's generation once that was replaced ("2", "2'", "2''"). */
  #voterName(id: number): string {
    return `${id}${"'".repeat(this.#cluster.peer(id).disk.wipes)}`;
  }

  /** A granted vote: a voter grants at most one candidate per term. */
  #voted(group: string, voter: number, vote: Message): void {
    const key = `${group}@${vote.term}#${voter}`;
    const candidate = vote.to;
    const known = this.#votes.get(key);
    if (known === undefined) this.#votes.set(key, candidate);
    else if (known !== candidate) {
      this.#history.violate(
        "double_vote",
        `Node ${voter} granted its vote in group ${group} term ${vote.term} to nodes ${known} and ${candidate}`,
      );
    }
  }

  /**
   * Compares the committed entries of every group's replicas on all disks;
   * `full` re-checks from the start instead of from what was verified.
   */
  checkLogs(full: boolean): void {
    const byDirectory = new Map<string, { node: number; log: LogStore }[]>();
    for (const peer of this.#cluster.peers.values()) {
      for (const [directory, stored] of peer.disk.logs) {
        let list = byDirectory.get(directory);
        if (list === undefined) byDirectory.set(directory, list = []);
        list.push({ node: peer.id, log: stored.medium });
      }
    }
    for (const [directory, replicas] of byDirectory) {
      for (let index = 1; index < replicas.length; index++) {
        this.#compare(directory, replicas[0], replicas[index], full);
      }
    }
  }

  #compare(
    directory: string,
    first: { node: number; log: LogStore },
    second: { node: number; log: LogStore },
    full: boolean,
  ): void {
    let verified = this.#verified.get(first.log);
    if (verified === undefined) this.#verified.set(first.log, verified = new WeakMap());
    const low = Math.max(
      first.log.firstIndex(),
      second.log.firstIndex(),
      full ? 1 : (verified.get(second.log) ?? 0) + 1,
    );
    const high = Math.min(
      first.log.hardState().commit,
      second.log.hardState().commit,
      first.log.lastIndex(),
      second.log.lastIndex(),
    );
    if (high < low) return;
    const left = first.log.entries(low, high + 1);
    const right = second.log.entries(low, high + 1);
    for (let offset = 0; offset < left.length && offset < right.length; offset++) {
      const a = left[offset];
      const b = right[offset];
      if (a.term !== b.term || !sameBytes(a.data, b.data)) {
        this.#history.violate(
          "committed_logs_differ",
          `Log ${directory}: committed entry ${a.index} is term ${a.term} on node ${first.node} and term ${b.term} on node ${second.node}${
            a.term === b.term ? " with other data" : ""
          }`,
        );
        return;
      }
    }
    verified.set(second.log, high);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let index = 0; index < a.byteLength; index++) if (a[index] !== b[index]) return false;
  return true;
}
