import assert from "node:assert/strict";
import { ManualScheduler } from "../../lib/cluster/manual_scheduler.ts";
import { bootstrapWaitMs, peerActiveTicks, RaftHost } from "../../lib/cluster/raft_host.ts";
import { leaderPatienceTimeouts } from "../../lib/raft/raft.ts";
import {
  newGroupQuiesceTicks,
  quiesceTicks,
  ReplicaGroup,
} from "../../lib/cluster/replica_group.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { virtualHosts } from "../_helpers/virtual_hosts.ts";

const tickMs = 100;
const nodeIds = [1, 2, 3];

/**
 * Three hosts on one virtual clock whose frames travel as deferred tasks;
 * `down` nodes neither send nor receive and are unreachable to the others.
 */
class HostCluster {
  readonly scheduler = new ManualScheduler();
  readonly hosts: Map<number, RaftHost>;
  readonly down: Set<number>;
  framesSent = 0;

  constructor() {
    ({ hosts: this.hosts, down: this.down } = virtualHosts(
      nodeIds,
      this.scheduler,
      tickMs,
      () => this.framesSent++,
    ));
  }

  /** Adds group `groupId` over all three nodes; node 1 campaigns, or leads term 1 with `bootstrap`. */
  addGroup(groupId: string, bootstrap = false): void {
    for (const id of nodeIds) this.addReplica(groupId, id, bootstrap);
    if (!bootstrap) this.group(1, groupId).campaign();
  }

  /** Opens the replica of `groupId` on node `id` only (node 1 is the bootstrap leader). */
  addReplica(groupId: string, id: number, bootstrap = true): void {
    const host = this.hosts.get(id)!;
    host.add(
      new ReplicaGroup({
        groupId,
        nodeId: id,
        store: new MemoryLogStore(),
        rng: seededRng(id * 7919 + groupId.length),
        stateMachine: { apply: (entry) => entry.index },
        send: host.send,
        quiesce: host.quiesce,
        voters: nodeIds,
        bootstrapLeader: bootstrap ? 1 : undefined,
        scheduler: this.scheduler,
      }),
    );
  }

  parked(): number[] {
    return nodeIds.map((id) => this.hosts.get(id)!.parkedGroups);
  }

  group(nodeId: number, groupId: string): ReplicaGroup {
    return this.hosts.get(nodeId)!.groups.get(groupId)!;
  }

  awake(): number[] {
    return nodeIds.map((id) => this.hosts.get(id)!.awakeGroups);
  }

  async settle(): Promise<void> {
    for (let round = 0; round < 30; round++) {
      await Promise.resolve();
      this.scheduler.runDeferred();
    }
  }

  async runTicks(ticks: number): Promise<void> {
    for (let tick = 0; tick < ticks; tick++) {
      this.scheduler.advance(tickMs);
      await this.settle();
    }
  }

  async close(): Promise<void> {
    for (const host of this.hosts.values()) await host.close();
  }
}

function seededRng(seed: number) {
  return { next: () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 };
}

const groupIds = Array.from({ length: 20 }, (_, index) => `t:topic-${index}`);

async function settledCluster(): Promise<HostCluster> {
  const cluster = new HostCluster();
  for (const groupId of groupIds) cluster.addGroup(groupId);
  await cluster.settle();
  await cluster.runTicks(3 * quiesceTicks);
  return cluster;
}

Deno.test("RaftHost: idle fully replicated groups sleep on every replica, and then ticks send nothing and visit no group", async () => {
  const cluster = await settledCluster();
  for (const groupId of groupIds) {
    assert.equal(cluster.group(1, groupId).isLeader, true, groupId);
    for (const id of nodeIds) assert.equal(cluster.group(id, groupId).quiescent, true);
  }
  assert.deepEqual(cluster.awake(), [0, 0, 0]);
  const before = cluster.framesSent;
  await cluster.runTicks(50);
  assert.equal(cluster.framesSent, before, "sleeping groups do not heartbeat");
  assert.deepEqual(cluster.awake(), [0, 0, 0]);
  await cluster.close();
});

Deno.test("RaftHost: a proposal wakes only its group, which commits on every replica and sleeps again", async () => {
  const cluster = await settledCluster();
  const proposal = cluster.group(1, "t:topic-3").propose(new TextEncoder().encode("hello"));
  assert.deepEqual(cluster.awake(), [1, 0, 0], "the leader wakes at the proposal");
  await cluster.settle();
  assert.deepEqual(cluster.awake(), [1, 1, 1], "its append wakes the followers");
  const index = await proposal;
  await cluster.runTicks(3 * quiesceTicks);
  assert.deepEqual(cluster.awake(), [0, 0, 0]);
  for (const id of nodeIds) {
    assert.equal(cluster.group(id, "t:topic-3").node.status().commit, index);
  }
  await cluster.close();
});

Deno.test("RaftHost: sleeping followers wake when their leader's peer becomes unreachable and elect a leader among themselves", async () => {
  const cluster = await settledCluster();
  cluster.down.add(1);
  await cluster.runTicks(1);
  assert.deepEqual(cluster.awake().slice(1), [groupIds.length, groupIds.length]);
  await cluster.runTicks(60);
  for (const groupId of groupIds) {
    const leaders = [2, 3].filter((id) => cluster.group(id, groupId).isLeader);
    assert.equal(leaders.length, 1, `${groupId} has one leader on nodes 2 and 3`);
  }
  await cluster.close();
});

Deno.test("RaftHost: a group removed while asleep is forgotten, and one added awake is ticked", async () => {
  const cluster = await settledCluster();
  const host = cluster.hosts.get(2)!;
  await host.remove("t:topic-0");
  assert.equal(host.groups.has("t:topic-0"), false);
  cluster.down.add(1);
  await cluster.runTicks(1);
  assert.equal(host.awakeGroups, groupIds.length - 1, "the removed group is not woken");
  await cluster.close();
});

Deno.test("RaftHost: new groups led by their bootstrap leader sleep within a few ticks, long before idle groups with history", async () => {
  const cluster = new HostCluster();
  for (const groupId of groupIds) cluster.addGroup(groupId, true);
  await cluster.settle();
  await cluster.runTicks(2 * newGroupQuiesceTicks + 2);
  assert.ok(2 * newGroupQuiesceTicks + 2 < quiesceTicks);
  for (const groupId of groupIds) {
    assert.equal(cluster.group(1, groupId).isLeader, true);
    assert.equal(cluster.group(1, groupId).node.term, 1, "no election");
  }
  assert.deepEqual(cluster.awake(), [0, 0, 0]);
  await cluster.close();
});

Deno.test("RaftHost parks new followers of a bootstrap-led group until their leader's replica opens, so a late leader leads term 1 without an election", async () => {
  const cluster = new HostCluster();
  cluster.addReplica("t:late", 2);
  cluster.addReplica("t:late", 3);
  await cluster.settle();
  assert.deepEqual(cluster.parked(), [0, 1, 1]);
  // Five seconds: well past every election timeout (1-2 s) of a ticked follower.
  await cluster.runTicks(50);
  for (const id of [2, 3]) {
    assert.equal(cluster.group(id, "t:late").node.term, 1);
    assert.equal(cluster.group(id, "t:late").leader, 0);
  }
  cluster.addReplica("t:late", 1);
  await cluster.settle();
  await cluster.runTicks(2);
  for (const id of nodeIds) {
    assert.equal(cluster.group(id, "t:late").leader, 1, `node ${id}`);
    assert.equal(cluster.group(id, "t:late").node.term, 1, `node ${id}`);
  }
  assert.deepEqual(cluster.parked(), [0, 0, 0]);
  await cluster.close();
});

Deno.test("RaftHost unparks new followers whose bootstrap leader's peer is unreachable, and they elect a leader", async () => {
  const cluster = new HostCluster();
  cluster.down.add(1);
  cluster.addReplica("t:orphan", 2);
  cluster.addReplica("t:orphan", 3);
  await cluster.settle();
  await cluster.runTicks(1);
  assert.deepEqual(cluster.parked(), [0, 0, 0]);
  await cluster.runTicks(50);
  const leaders = [2, 3].map((id) => cluster.group(id, "t:orphan").leader);
  assert.ok(leaders[0] !== 0 && leaders[0] !== 1, `leaders ${leaders}`);
  assert.equal(leaders[0], leaders[1]);
  assert.ok(cluster.group(2, "t:orphan").node.term >= 2);
  await cluster.close();
});

Deno.test("RaftHost unparks new followers after bootstrapWaitMs when their leader's replica never opens", async () => {
  const cluster = new HostCluster();
  cluster.addReplica("t:never", 2);
  cluster.addReplica("t:never", 3);
  await cluster.settle();
  await cluster.runTicks(bootstrapWaitMs / tickMs - 5);
  assert.deepEqual(cluster.parked(), [0, 1, 1]);
  await cluster.runTicks(60);
  assert.deepEqual(cluster.parked(), [0, 0, 0]);
  const leader = cluster.group(2, "t:never").leader;
  assert.ok(leader === 2 || leader === 3, `leader ${leader}`);
  assert.equal(cluster.group(3, "t:never").leader, leader);
  await cluster.close();
});

/** Node 1 leads `t:alone`, whose followers' replicas never open; with `heard`, nodes 2 and 3 send frames every tick. */
async function leaderWithoutFollowers(heard: boolean): Promise<boolean> {
  const cluster = new HostCluster();
  cluster.addReplica("t:alone", 1);
  await cluster.settle();
  assert.equal(cluster.group(1, "t:alone").isLeader, true);
  for (let tick = 0; tick < 3 * peerActiveTicks; tick++) {
    if (heard) {
      for (const from of [2, 3]) {
        cluster.hosts.get(1)!.receive({ from, incarnation: `node-${from}`, batch: [] });
      }
    }
    await cluster.runTicks(1);
  }
  const leads = cluster.group(1, "t:alone").isLeader;
  await cluster.close();
  return leads;
}

Deno.test("RaftHost keeps a leader whose followers' replicas are not open while their processes send Raft frames", async () => {
  assert.equal(await leaderWithoutFollowers(true), true);
});

Deno.test("RaftHost lets CheckQuorum depose a leader whose followers' processes are silent", async () => {
  assert.equal(await leaderWithoutFollowers(false), false);
});

Deno.test("RaftHost: followers whose leader's process still sends frames wait longer before they campaign, then elect", async () => {
  const cluster = new HostCluster();
  cluster.addGroup("t:busy", true);
  await cluster.settle();
  await cluster.runTicks(1);
  assert.equal(cluster.group(2, "t:busy").leader, 1);
  // Node 1 falls silent in this group only (as a process too busy to
  // answer in time would), while its other traffic reaches nodes 2 and 3.
  cluster.hosts.get(1)!.remove("t:busy");
  const heardFromNode1 = async (ticks: number) => {
    for (let tick = 0; tick < ticks; tick++) {
      for (const to of [2, 3]) {
        cluster.hosts.get(to)!.receive({ from: 1, incarnation: "node-1", batch: [] });
      }
      await cluster.runTicks(1);
    }
  };
  await heardFromNode1(3 * 10);
  for (const id of [2, 3]) assert.equal(cluster.group(id, "t:busy").node.term, 1, `node ${id}`);
  await heardFromNode1((leaderPatienceTimeouts + 2) * 10);
  const leader = cluster.group(2, "t:busy").leader;
  assert.ok(leader === 2 || leader === 3, `leader ${leader}`);
  assert.ok(cluster.group(2, "t:busy").node.term >= 2);
  await cluster.close();
});

Deno.test("RaftHost: followers do not wait for a leader whose peer is unreachable, however recently it was heard from", async () => {
  const cluster = new HostCluster();
  cluster.addGroup("t:gone", true);
  await cluster.settle();
  await cluster.runTicks(1);
  assert.equal(cluster.group(2, "t:gone").leader, 1);
  cluster.hosts.get(1)!.remove("t:gone");
  cluster.down.add(1);
  // Frames from node 1 still arrive (sent before it went away), but its link is down.
  for (let tick = 0; tick < 3 * 10; tick++) {
    for (const to of [2, 3]) {
      cluster.hosts.get(to)!.receive({ from: 1, incarnation: "node-1", batch: [] });
    }
    await cluster.runTicks(1);
  }
  const leader = cluster.group(2, "t:gone").leader;
  assert.ok(leader === 2 || leader === 3, `leader ${leader}`);
  await cluster.close();
});
