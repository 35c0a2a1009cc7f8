/**
 * Lazy followers through `ReplicaGroup` (`lazySyncMs`): on three hosts on one
 * virtual clock, a publish commits with the leader and one follower while
 * the other gathers the appends of `lazySyncMs` into one fsync, and a lost
 * eager follower hands its part to the lazy one.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ManualScheduler } from "../../lib/cluster/manual_scheduler.ts";
import type { RaftHost } from "../../lib/cluster/raft_host.ts";
import { ReplicaGroup } from "../../lib/cluster/replica_group.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { virtualHosts } from "../_helpers/virtual_hosts.ts";

const tickMs = 100;
const lazySyncMs = 20;
const nodeIds = [1, 2, 3];
const groupId = "t:events";

/** Three hosts whose frames travel as deferred tasks; `down` nodes hear and send nothing. */
class LazyCluster {
  readonly scheduler = new ManualScheduler();
  readonly hosts: Map<number, RaftHost>;
  readonly stores = new Map<number, MemoryLogStore>();
  readonly syncs = new Map<number, number>();
  readonly down: Set<number>;

  constructor() {
    ({ hosts: this.hosts, down: this.down } = virtualHosts(nodeIds, this.scheduler, tickMs));
    for (const id of nodeIds) {
      const host = this.hosts.get(id)!;
      const store = new MemoryLogStore();
      const sync = store.sync.bind(store);
      this.syncs.set(id, 0);
      store.sync = () => {
        this.syncs.set(id, this.syncs.get(id)! + 1);
        return sync();
      };
      this.stores.set(id, store);
      let seed = id * 7919;
      host.add(
        new ReplicaGroup({
          groupId,
          nodeId: id,
          store,
          rng: { next: () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 },
          stateMachine: { apply: (entry) => entry.index },
          send: host.send,
          voters: nodeIds,
          bootstrapLeader: 1,
          scheduler: this.scheduler,
          lazySyncMs,
        }),
      );
    }
  }

  group(id: number): ReplicaGroup {
    return this.hosts.get(id)!.groups.get(groupId)!;
  }

  /** Runs every deferred task and microtask there is, without moving the clock. */
  async settle(): Promise<void> {
    for (let round = 0; round < 50; round++) {
      await Promise.resolve();
      this.scheduler.runDeferred();
    }
  }

  async advance(ms: number): Promise<void> {
    this.scheduler.advance(ms);
    await this.settle();
  }

  /** Proposes on the leader; resolves with the committed index, or "pending" after `settle`. */
  async publish(): Promise<number | "pending"> {
    let index: number | undefined;
    this.group(1).propose(new TextEncoder().encode("m")).then((result) => {
      index = result as number;
    }, () => {}); // a publish left pending is refused at close
    await this.settle();
    return index ?? "pending";
  }

  async close(): Promise<void> {
    for (const host of this.hosts.values()) await host.close();
  }
}

/** A cluster whose leader (node 1) replicated a first entry to both followers. */
async function startedCluster(): Promise<LazyCluster> {
  const cluster = new LazyCluster();
  await cluster.settle();
  await cluster.advance(lazySyncMs);
  assert.equal(cluster.group(1).isLeader, true);
  await cluster.publish();
  await cluster.advance(lazySyncMs);
  return cluster;
}

/** Counts the appends with entries that node `id`'s Raft node is handed. */
function countAppends(cluster: LazyCluster, id: number): { appends: number } {
  const counter = { appends: 0 };
  const node = cluster.group(id).node;
  const step = node.step.bind(node);
  node.step = (message) => {
    if (message.type === "app" && message.entries.length > 0) counter.appends++;
    step(message);
  };
  return counter;
}

Deno.test("a publish commits with the leader and follower 2; follower 3 gets five entries in two appends and two fsyncs", async () => {
  const cluster = await startedCluster();
  try {
    const syncsBefore = cluster.syncs.get(3)!;
    const received = countAppends(cluster, 3);
    const indexes: (number | "pending")[] = [];
    for (let publish = 0; publish < 5; publish++) indexes.push(await cluster.publish());
    assert.ok(indexes.every((index) => typeof index === "number"), `${indexes}`);
    const first = indexes[0] as number;
    const last = indexes.at(-1) as number;
    assert.equal(cluster.stores.get(2)!.syncedIndex(), last, "the eager follower wrote each one");
    assert.ok(cluster.stores.get(3)!.syncedIndex() < first, "the lazy follower waits");
    assert.equal(received.appends, 1, "the leader holds the rest while the first is unanswered");
    assert.equal(cluster.syncs.get(3), syncsBefore);
    await cluster.advance(lazySyncMs);
    assert.equal(cluster.stores.get(3)!.syncedIndex(), first, "its wait over, it writes the first");
    assert.equal(received.appends, 2, "its answer brings the other four in one append");
    await cluster.advance(lazySyncMs);
    assert.equal(cluster.stores.get(3)!.syncedIndex(), last, "which it writes after its next wait");
    assert.equal(cluster.syncs.get(3), syncsBefore + 2, "two fsyncs for five publishes");
    assert.equal(cluster.group(1).node.status().progress[3].match, last);
  } finally {
    await cluster.close();
  }
});

Deno.test("with follower 2 lost, a publish commits once follower 3's wait ends, and the next at once", async () => {
  const cluster = await startedCluster();
  try {
    cluster.down.add(2);
    assert.equal(await cluster.publish(), "pending", "the leader waits for the lost follower");
    await cluster.advance(lazySyncMs);
    const index = cluster.group(1).node.status().commit;
    assert.equal(cluster.stores.get(3)!.syncedIndex(), index, "committed with the lazy follower");
    // Follower 3 is ahead of 2 now: the leader needs it, and it answers at once.
    const next = await cluster.publish();
    assert.equal(next, index + 1);
  } finally {
    await cluster.close();
  }
});

Deno.test("with follower 2 lost after five publishes, the next commits within two of follower 3's waits, and the one after at once", async () => {
  const cluster = await startedCluster();
  try {
    for (let publish = 0; publish < 5; publish++) await cluster.publish();
    cluster.down.add(2);
    assert.equal(await cluster.publish(), "pending", "the leader waits for the lost follower");
    const pending = cluster.group(1).node.status().lastIndex;
    // Follower 3 answers its one lazy append in flight after its wait, then
    // the entries the leader held meanwhile after the next.
    await cluster.advance(lazySyncMs);
    assert.ok(cluster.group(1).node.status().commit < pending);
    await cluster.advance(lazySyncMs);
    assert.equal(cluster.group(1).node.status().commit, pending, "committed with follower 3");
    // Follower 3 is ahead of 2 now: the leader needs it, and it answers at once.
    assert.equal(await cluster.publish(), pending + 1);
  } finally {
    await cluster.close();
  }
});
