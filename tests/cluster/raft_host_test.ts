import assert from "node:assert/strict";
import { ManualScheduler } from "../../lib/cluster/manual_scheduler.ts";
import { decodeRaftFrame } from "../../lib/cluster/peer_rpc.ts";
import {
  commitNoticeDelayMs,
  commitNoticeStreamDelayMs,
  RaftHost,
} from "../../lib/cluster/raft_host.ts";
import { ReplicaGroup } from "../../lib/cluster/replica_group.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";

const tickMs = 100;

/** Lets the promise continuations of a Ready (store writes, syncs) run; no time passes. */
async function settle(scheduler: ManualScheduler): Promise<void> {
  for (let round = 0; round < 20; round++) {
    await Promise.resolve();
    scheduler.runDeferred();
  }
}

/** Moves virtual time one tick at a time, letting each tick's Ready finish. */
async function runTicks(scheduler: ManualScheduler, ticks: number): Promise<void> {
  for (let tick = 0; tick < ticks; tick++) {
    scheduler.advance(tickMs);
    await settle(scheduler);
  }
}

/** A host of node 1 whose JSON frames (no `sendFrame`) are recorded in `frames`. */
function recordingHost(scheduler: ManualScheduler) {
  const frames: { nodeId: number; frame: { action: string } & Record<string, unknown> }[] = [];
  const host = new RaftHost(1, { send: (nodeId, frame) => frames.push({ nodeId, frame }) }, {
    tickMs,
    scheduler,
    incarnation: "one",
  });
  return { host, frames };
}

function seededRng(seed: number) {
  return { next: () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 };
}

function newGroup(
  scheduler: ManualScheduler,
  host: RaftHost,
  options: { groupId: string; voters: number[] },
): ReplicaGroup {
  return new ReplicaGroup({
    groupId: options.groupId,
    nodeId: host.nodeId,
    store: new MemoryLogStore(),
    rng: seededRng(7),
    stateMachine: { apply: () => undefined },
    send: host.send,
    voters: options.voters,
    scheduler,
  });
}

Deno.test("RaftHost ticks its groups on the injected scheduler: a sole voter elects itself after its election timeout", async () => {
  const scheduler = new ManualScheduler();
  const host = new RaftHost(1, { send: () => {} }, { tickMs, scheduler, incarnation: "one" });
  const group = newGroup(scheduler, host, { groupId: "t:events", voters: [1] });
  host.add(group);
  await runTicks(scheduler, 9);
  assert.equal(group.isLeader, false, "no election before the minimum timeout of 10 ticks");
  await runTicks(scheduler, 12);
  assert.equal(group.isLeader, true);
  await host.close();
  assert.equal(scheduler.pendingTimers, 0, "closing stops the ticker");
});

Deno.test("RaftHost sends the messages of all its groups to one peer as one frame per deferred flush", async () => {
  const scheduler = new ManualScheduler();
  const { host, frames } = recordingHost(scheduler);
  const groups = ["t:a", "t:b", "t:c"].map((groupId) =>
    newGroup(scheduler, host, { groupId, voters: [1, 2] })
  );
  for (const group of groups) host.add(group);
  for (const group of groups) group.campaign();
  // Nothing leaves before the deferred tasks run.
  assert.equal(frames.length, 0);
  await settle(scheduler);
  assert.equal(frames.length, 1);
  const frame = decodeRaftFrame(frames[0].frame);
  assert.equal(frames[0].nodeId, 2);
  assert.equal(frame.incarnation, "one");
  assert.deepEqual(frame.batch.map((item) => item.groupId).sort(), ["t:a", "t:b", "t:c"]);
  await host.close();
});

Deno.test("RaftHost reports a peer that sent Raft traffic as unreachable at the next tick, once", async () => {
  const scheduler = new ManualScheduler();
  let reachable = true;
  const host = new RaftHost(1, { send: () => {} }, {
    tickMs,
    scheduler,
    isReachable: () => reachable,
  });
  const unreachable: number[] = [];
  host.onPeerUnreachable = (nodeId) => unreachable.push(nodeId);
  host.receive({ from: 2, incarnation: "two", batch: [] });
  reachable = false;
  scheduler.advance(tickMs - 1);
  assert.deepEqual(unreachable, []);
  scheduler.advance(1);
  assert.deepEqual(unreachable, [2]);
  scheduler.advance(5 * tickMs);
  assert.deepEqual(unreachable, [2]);
  await host.close();
});

/** An append from node 1 to node 2 in term 2 after `commit`, with `entries` new entries. */
function appendFrom1To2(commit: number, entries: number, commitNotice?: true) {
  return {
    type: "app" as const,
    from: 1,
    to: 2,
    term: 2,
    logTerm: 2,
    index: commit,
    entries: Array.from({ length: entries }, (_, i) => ({
      term: 2,
      index: commit + 1 + i,
      type: 0,
      data: new Uint8Array([1]),
    })),
    commit,
    reject: false,
    rejectHint: 0,
    ...(commitNotice ? { commitNotice } : {}),
  };
}

Deno.test("RaftHost holds a commit notice until another frame to its peer takes it along, or commitNoticeDelayMs pass", async () => {
  const scheduler = new ManualScheduler();
  const { host, frames } = recordingHost(scheduler);
  const message = appendFrom1To2;
  host.send("t:a", [message(5, 0, true)]);
  await settle(scheduler);
  assert.equal(frames.length, 0, "a notice alone waits");
  scheduler.advance(commitNoticeDelayMs);
  await settle(scheduler);
  assert.equal(frames.length, 1, "and leaves once the delay passed");
  assert.equal(decodeRaftFrame(frames[0].frame).batch.length, 1);

  host.send("t:a", [message(6, 0, true)]);
  host.send("t:a", [message(6, 1)]);
  await settle(scheduler);
  assert.equal(frames.length, 2, "an append's frame takes the waiting notice along");
  // ...or drops it: the append carries the same commit index.
  const batch = decodeRaftFrame(frames[1].frame).batch;
  assert.deepEqual(
    batch.map((item) => "message" in item ? item.message.entries.length : undefined),
    [1],
  );
  host.send("t:b", [message(7, 0, true)]);
  host.send("t:a", [message(7, 1)]);
  await settle(scheduler);
  assert.equal(frames.length, 3);
  assert.deepEqual(
    decodeRaftFrame(frames[2].frame).batch.map((item) => item.groupId),
    ["t:b", "t:a"],
    "another group's notice stays",
  );
  scheduler.advance(commitNoticeDelayMs);
  await settle(scheduler);
  assert.equal(frames.length, 3, "nothing is left to send");
  await host.close();
  assert.equal(scheduler.pendingTimers, 0);
});

Deno.test("RaftHost drops exactly the superseded notices in a large batch too", async () => {
  const scheduler = new ManualScheduler();
  const { host, frames } = recordingHost(scheduler);
  const append = appendFrom1To2;
  // Twelve groups hold a notice each (more than the pairwise scan takes);
  // then appends of groups 0 and 5 carry their commit along.
  for (let group = 0; group < 12; group++) host.send(`t:${group}`, [append(5, 0, true)]);
  host.send("t:0", [append(5, 1)]);
  host.send("t:5", [append(5, 1)]);
  await settle(scheduler);
  assert.equal(frames.length, 1);
  const sent = decodeRaftFrame(frames[0].frame).batch.map((item) =>
    "message" in item ? `${item.groupId}/${item.message.entries.length}` : item.groupId
  );
  const notices = Array.from({ length: 12 }, (_, group) => `t:${group}/0`)
    .filter((name) => name !== "t:0/0" && name !== "t:5/0");
  assert.deepEqual(sent, [...notices, "t:0/1", "t:5/1"]);
  await host.close();
});

Deno.test("RaftHost keeps one notice timer across flushes; while appends take notices along, a notice waits commitNoticeStreamDelayMs", async () => {
  const scheduler = new ManualScheduler();
  const { host, frames } = recordingHost(scheduler);
  const message = appendFrom1To2;
  const ticker = scheduler.pendingTimers;
  host.send("t:a", [message(5, 0, true)]);
  await settle(scheduler);
  assert.equal(scheduler.pendingTimers, ticker + 1, "the notice's timer");
  host.send("t:a", [message(5, 1)]);
  await settle(scheduler);
  assert.equal(frames.length, 1, "the append took the notice along");
  assert.equal(scheduler.pendingTimers, ticker + 1, "and left the timer armed");
  scheduler.advance(commitNoticeDelayMs / 2);
  host.send("t:a", [message(6, 0, true)]);
  await settle(scheduler);
  assert.equal(scheduler.pendingTimers, ticker + 1, "the new notice sets no timer of its own");
  scheduler.advance(commitNoticeDelayMs / 2);
  await settle(scheduler);
  assert.equal(frames.length, 1, "the timer went off before the new notice waited its delay");
  // An append took the last notice along: the next one waits the longer delay.
  scheduler.advance(commitNoticeStreamDelayMs - commitNoticeDelayMs);
  await settle(scheduler);
  assert.equal(frames.length, 1, "a stream's notice waits past commitNoticeDelayMs");
  scheduler.advance(commitNoticeDelayMs / 2);
  await settle(scheduler);
  assert.equal(frames.length, 2, "it leaves once it waited commitNoticeStreamDelayMs");
  assert.equal(decodeRaftFrame(frames[1].frame).batch.length, 1);
  // The timer had to send it: the next notice waits the short delay again.
  host.send("t:a", [message(7, 0, true)]);
  await settle(scheduler);
  scheduler.advance(commitNoticeDelayMs);
  await settle(scheduler);
  assert.equal(frames.length, 3, "after a stream ends, a lone notice waits commitNoticeDelayMs");
  await host.close();
  assert.equal(scheduler.pendingTimers, 0);
});
