/**
 * Proposal throughput through the pure Raft core: a 3-voter group in memory
 * (MemoryLogStore, synchronous delivery), measuring how fast proposals are
 * batched, replicated, committed and applied, without I/O costs.
 *
 * Run: deno bench -A bench/raft_bench.ts
 */

import { RaftNode } from "../lib/raft/raft_node.ts";
import type { Message } from "../lib/raft/types.ts";
import { Prng } from "../lib/sim/prng.ts";
import { MemoryLogStore } from "../lib/storage/memory_log_store.ts";

const PROPOSALS_PER_ITERATION = 1000;
const PAYLOAD_BYTES = 100;

interface Replica {
  node: RaftNode;
  store: MemoryLogStore;
  applied: number;
}

function createGroup(): Replica[] {
  const voters = [1, 2, 3];
  return voters.map((id) => {
    const store = new MemoryLogStore();
    return { node: new RaftNode({ id, store, rng: new Prng(id), voters }), store, applied: 0 };
  });
}

function pump(replica: Replica, outbox: Message[]): void {
  while (replica.node.hasReady()) {
    const rd = replica.node.ready();
    replica.store.append(rd.entries);
    if (rd.hardState) replica.store.setHardState(rd.hardState);
    if (rd.mustSync) replica.store.syncNow();
    for (const message of rd.messages) outbox.push(message);
    replica.applied += rd.committedEntries.length;
    replica.node.advance();
  }
}

function settle(group: Replica[]): void {
  let outbox: Message[] = [];
  for (const replica of group) pump(replica, outbox);
  while (outbox.length > 0) {
    const delivering = outbox;
    outbox = [];
    for (const message of delivering) {
      const target = group[message.to - 1];
      target.node.step(message);
      pump(target, outbox);
    }
  }
}

const group = createGroup();
group[0].node.campaign();
settle(group);
const payload = new Uint8Array(PAYLOAD_BYTES);

Deno.bench(
  `raft core: ${PROPOSALS_PER_ITERATION} proposals of ${PAYLOAD_BYTES} B committed on 3 voters`,
  () => {
    const leader = group[0].node;
    for (let i = 0; i < PROPOSALS_PER_ITERATION; i++) leader.propose(payload);
    settle(group);
    if (leader.status().commit !== leader.status().lastIndex) {
      throw new Error("Not all proposals committed");
    }
  },
);

Deno.bench(`raft core: ${PROPOSALS_PER_ITERATION} proposals one Ready each (no batching)`, () => {
  const leader = group[0].node;
  for (let i = 0; i < PROPOSALS_PER_ITERATION; i++) {
    leader.propose(payload);
    settle(group);
  }
});
