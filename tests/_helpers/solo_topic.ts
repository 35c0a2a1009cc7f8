/**
 * A one-voter replicated topic over a memory store, for tests of the
 * publish path that need no peers: the group, its store and the topic.
 *
 * @module
 */

import type { Scheduler } from "../../lib/cluster/runtime.ts";
import { RaftTopic, TopicMachine } from "../../lib/cluster/raft_topic.ts";
import { ReplicaGroup } from "../../lib/cluster/replica_group.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";

/** What `soloRaftTopic` builds. */
export interface SoloTopic {
  topic: RaftTopic;
  group: ReplicaGroup;
  store: MemoryLogStore;
}

/**
 * A topic "events" whose group has one voter (node 1), a seeded random
 * source and, when given, `scheduler` for its deferred tasks and timers.
 * Nobody ticks it: the caller does.
 *
 * @example
 * ```ts
 * const { topic, group } = soloRaftTopic({ seed: 7 });
 * setInterval(() => group.tick(), 5);
 * ```
 */
export function soloRaftTopic(options: { seed: number; scheduler?: Scheduler }): SoloTopic {
  const store = new MemoryLogStore();
  const machine = new TopicMachine(store);
  let seed = options.seed;
  const group = new ReplicaGroup({
    groupId: "t:events",
    nodeId: 1,
    store,
    rng: { next: () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 },
    stateMachine: machine,
    send: () => {},
    voters: [1],
    scheduler: options.scheduler,
  });
  return { topic: new RaftTopic("events", group, machine), group, store };
}
