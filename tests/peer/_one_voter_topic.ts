/**
 * A standalone topic for tests: a one-voter Raft group over a given store
 * (usually a `MemoryLogStore`, to inject disk failures), as `LocalBroker`
 * serves each topic, led by the time it is returned.
 *
 * @module
 */

import { RaftHost } from "../../lib/cluster/raft_host.ts";
import type { RaftTopic } from "../../lib/cluster/raft_topic.ts";
import type { ReplicaGroup } from "../../lib/cluster/replica_group.ts";
import { cryptoRng, systemScheduler } from "../../lib/cluster/runtime.ts";
import { openOneVoterTopic } from "../../lib/peer/local_broker.ts";
import type { LogStore } from "../../lib/storage/types.ts";

/** A led one-voter topic and how to stop it. */
export interface OneVoterTopic {
  topic: RaftTopic;
  group: ReplicaGroup;
  close(): Promise<void>;
}

/** Opens `name` over `store` and waits (at most 5 s) until its group leads. */
export async function oneVoterTopic(name: string, store: LogStore): Promise<OneVoterTopic> {
  const runtime = { rng: cryptoRng, scheduler: systemScheduler };
  const host = new RaftHost(1, { send: () => {} }, { scheduler: systemScheduler });
  const { topic, group } = openOneVoterTopic(name, store, { nodeId: 1, host, runtime });
  const deadline = Date.now() + 5000;
  while (!group.isLeader) {
    if (Date.now() > deadline) throw new Error(`The one-voter group of '${name}' did not lead`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return {
    topic,
    group,
    close: async () => {
      topic.close();
      await host.close();
    },
  };
}
