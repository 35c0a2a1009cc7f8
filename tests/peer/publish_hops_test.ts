/**
 * The publish path of a replicated topic takes no deferred task when the
 * group is idle: a lone publish is proposed, persisted, committed and
 * answered in the turn it arrived (microtasks only), while publishes that
 * arrive under load still gather into one entry. Deferred tasks run only
 * when the test says so (`ManualScheduler`), so a hop shows as a publish
 * that does not settle.
 *
 * @module
 */

import { equal } from "node:assert/strict";
import { ManualScheduler } from "../../lib/cluster/manual_scheduler.ts";
import type { RaftTopic } from "../../lib/cluster/raft_topic.ts";
import type { ReplicaGroup } from "../../lib/cluster/replica_group.ts";
import type { PublishResult } from "../../lib/peer/topic.ts";
import type { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { soloRaftTopic } from "../_helpers/solo_topic.ts";

interface Solo {
  topic: RaftTopic;
  group: ReplicaGroup;
  store: MemoryLogStore;
  scheduler: ManualScheduler;
}

/** A one-voter topic on a manual clock, led and idle. */
async function soloTopic(): Promise<Solo> {
  const scheduler = new ManualScheduler();
  const { topic, group, store } = soloRaftTopic({ seed: 11, scheduler });
  for (let tick = 0; tick < 40 && !group.isLeader; tick++) {
    group.tick();
    await settle(scheduler);
  }
  equal(group.isLeader, true);
  await settle(scheduler);
  return { topic, group, store, scheduler };
}

/** Runs microtasks and deferred tasks until none is left. */
async function settle(scheduler: ManualScheduler): Promise<void> {
  for (let round = 0; round < 50; round++) {
    await microtasks();
    if (scheduler.runDeferred() === 0) return;
  }
}

/** Lets the microtask chains started so far run to their end, without any deferred task. */
async function microtasks(): Promise<void> {
  for (let round = 0; round < 50; round++) await Promise.resolve();
}

function track(promise: Promise<PublishResult>): { result: PublishResult | undefined } {
  const state: { result: PublishResult | undefined } = { result: undefined };
  promise.then((result) => state.result = result);
  return state;
}

Deno.test("A lone publish on an idle group is committed and answered without a deferred task", async () => {
  const { topic, group, store, scheduler } = await soloTopic();
  const entriesBefore = store.lastIndex();
  const publish = track(topic.publish(["hello"]));
  await microtasks();
  equal(publish.result?.firstOffset, 0, "answered in the turn it arrived");
  equal(store.lastIndex(), entriesBefore + 1);
  await settle(scheduler);
  await group.close();
});

Deno.test("Publishes of one turn on an idle group share one entry", async () => {
  const { topic, group, store, scheduler } = await soloTopic();
  const entriesBefore = store.lastIndex();
  const publishes = ["a", "b", "c"].map((message) => track(topic.publish([message])));
  await microtasks();
  equal(store.lastIndex(), entriesBefore + 1, "one entry for the turn");
  equal(publishes.map((publish) => publish.result?.firstOffset).join(","), "0,1,2");
  await settle(scheduler);
  await group.close();
});

Deno.test("Publishes that arrive while a proposal is in flight gather for a later task", async () => {
  const { topic, group, store, scheduler } = await soloTopic();
  const entriesBefore = store.lastIndex();
  // A proposal of the group is in flight (an ack write, say): the group is busy.
  const inFlight = group.propose(new Uint8Array(0));
  equal(group.busy, true);
  const later = ["x", "y"].map((message) => track(topic.publish([message])));
  await microtasks();
  await inFlight;
  equal(later[0].result, undefined, "gathering until a deferred task");
  await settle(scheduler);
  equal(later.map((publish) => publish.result?.firstOffset).join(","), "0,1");
  equal(store.lastIndex(), entriesBefore + 2, "the empty entry, then one entry for both");
  await group.close();
});
