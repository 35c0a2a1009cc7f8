/**
 * Replication figures of the groups a peer hosts, for metrics.
 *
 * @module
 */

import type { ReplicaGroup } from "./replica_group.ts";

/** Replication figures of one hosted Raft group. */
export interface GroupStats {
  group: string;
  term: number;
  leader: number;
  /** Entries the slowest voter (the leader's own durable log included) is behind (leader only). */
  lag?: number;
}

/**
 * Per hosted group its Raft term and leader and, on the leader, how many
 * entries its slowest voter lags.
 *
 * @example
 * ```ts
 * const stats = groupStats(host.groups.values(), 1);
 * ```
 */
export function groupStats(groups: Iterable<ReplicaGroup>, nodeId: number): GroupStats[] {
  const stats: GroupStats[] = [];
  for (const group of groups) {
    if (!group.isLeader) {
      stats.push({ group: group.groupId, term: group.node.term, leader: group.node.leader });
      continue;
    }
    const status = group.node.status();
    let lag: number | undefined;
    if (status.role === "leader") {
      // The leader's own entry counts too: its match is what it has made
      // durable, which may trail its last index while its fsync runs (the
      // appends leave first). A replica read from disk then misses that tail.
      const matches = status.conf.voters.map((id) =>
        status.progress[id]?.match ?? (id === nodeId ? status.lastIndex : 0)
      );
      lag = status.lastIndex - Math.min(...matches);
    }
    stats.push({ group: group.groupId, term: status.term, leader: status.leader, lag });
  }
  return stats;
}
