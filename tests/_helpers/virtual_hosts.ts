/**
 * RaftHosts of nodes 1..n on one virtual clock (`ManualScheduler`), whose
 * frames travel as deferred tasks: what the RaftHost and ReplicaGroup tests
 * run their groups on.
 *
 * @module
 */

import type { ManualScheduler } from "../../lib/cluster/manual_scheduler.ts";
import { decodeRaftFrame } from "../../lib/cluster/peer_rpc.ts";
import { RaftHost } from "../../lib/cluster/raft_host.ts";

/** Virtual hosts: `down` nodes neither send nor receive and are unreachable to the others. */
export interface VirtualHosts {
  hosts: Map<number, RaftHost>;
  down: Set<number>;
}

/**
 * One RaftHost per id in `nodeIds`, ticking every `tickMs` on `scheduler`;
 * `onFrame` hears every frame that leaves a live node for a live one.
 */
export function virtualHosts(
  nodeIds: readonly number[],
  scheduler: ManualScheduler,
  tickMs: number,
  onFrame: () => void = () => {},
): VirtualHosts {
  const hosts = new Map<number, RaftHost>();
  const down = new Set<number>();
  for (const id of nodeIds) {
    const host = new RaftHost(id, {
      send: (to, frame) => {
        if (down.has(id) || down.has(to)) return;
        onFrame();
        scheduler.defer(() => {
          if (!down.has(to)) hosts.get(to)!.receive(decodeRaftFrame(frame));
        });
      },
    }, {
      tickMs,
      scheduler,
      incarnation: `node-${id}`,
      isReachable: (nodeId) => !down.has(nodeId),
    });
    hosts.set(id, host);
  }
  return { hosts, down };
}
