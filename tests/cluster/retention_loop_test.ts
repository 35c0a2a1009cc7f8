/**
 * RetentionLoop's cost for topics without limits: a pass visits only the
 * replicas whose topic has limits once nothing changed, and sets a byte
 * watch once per retention instead of every pass. The replicas are plain
 * followers here (no proposals); tests/cluster/retention_test.ts covers
 * retention on real clusters.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ManualScheduler } from "../../lib/cluster/manual_scheduler.ts";
import type { LocalReplica } from "../../lib/cluster/replica_manager.ts";
import { RetentionLoop } from "../../lib/cluster/retention_loop.ts";
import type { Retention } from "../../lib/wire/retention.ts";

/** A follower replica that records the byte watches set on its topic machine. */
function follower(name: string): { local: LocalReplica; watches: (number | undefined)[] } {
  const watches: (number | undefined)[] = [];
  const local = {
    epoch: 1,
    topic: {
      name,
      state: { firstOffset: 0 },
      machine: {
        watchRetention: (watch: { bytes: number } | undefined) => watches.push(watch?.bytes),
      },
    },
    group: { isLeader: false },
  };
  return { local: local as unknown as LocalReplica, watches };
}

function setup(replicaCount: number, withOnChange: boolean) {
  const replicas = new Map<string, ReturnType<typeof follower>>();
  for (let index = 0; index < replicaCount; index++) {
    replicas.set(`t${index}`, follower(`t${index}`));
  }
  const retention = new Map<string, Retention>();
  const listeners: (() => void)[] = [];
  let lookups = 0;
  const loop = new RetentionLoop({
    retentionOf: (name) => {
      lookups++;
      return retention.get(name);
    },
    replicas: () =>
      [...replicas].map(([name, { local }]) => [name, local] as [string, LocalReplica]),
    onChange: withOnChange ? (listener) => listeners.push(listener) : undefined,
    scheduler: new ManualScheduler(),
  });
  const changed = () => listeners.forEach((listener) => listener());
  const lookupsOf = (pass: () => void) => {
    lookups = 0;
    pass();
    return lookups;
  };
  return { replicas, retention, loop, changed, lookupsOf };
}

Deno.test("RetentionLoop with change notifications visits only replicas with limits between changes", () => {
  const { replicas, retention, loop, changed, lookupsOf } = setup(1000, true);
  retention.set("t1", { max_bytes: 1 << 20 });
  assert.equal(lookupsOf(() => loop.pass()), 1000 + 1, "the first pass looks at every replica");
  assert.equal(loop.visited, 1);
  assert.equal(lookupsOf(() => loop.pass()), 1, "later passes look only at the limited one");
  assert.equal(lookupsOf(() => loop.pass()), 1);
  assert.deepEqual(replicas.get("t1")!.watches, [256 * 1024], "watched once, not every pass");
  assert.deepEqual(replicas.get("t2")!.watches, [], "a topic without limits is never touched");

  // A retention set on another topic is picked up after the notification.
  retention.set("t2", { max_age_ms: 60_000 });
  loop.pass();
  assert.deepEqual(replicas.get("t2")!.watches, [], "no notification yet: not looked at");
  changed();
  loop.pass();
  assert.equal(loop.visited, 2);
  assert.equal(replicas.get("t2")!.watches.length, 1);

  // A changed retention re-arms the watch once; removed limits stop it.
  retention.set("t1", { max_bytes: 4 << 20 });
  changed();
  loop.pass();
  loop.pass();
  assert.deepEqual(replicas.get("t1")!.watches, [256 * 1024, 1024 * 1024]);
  retention.delete("t1");
  changed();
  loop.pass();
  assert.deepEqual(replicas.get("t1")!.watches, [256 * 1024, 1024 * 1024, undefined]);
  assert.equal(loop.visited, 1);
  loop.pass();
  assert.equal(replicas.get("t1")!.watches.length, 3, "unwatched once");
});

Deno.test("RetentionLoop without change notifications looks at every replica each pass but watches once", () => {
  const { replicas, retention, loop, lookupsOf } = setup(100, false);
  retention.set("t7", { max_messages: 10 });
  assert.equal(lookupsOf(() => loop.pass()), 100 + 1);
  retention.set("t8", { max_messages: 10 });
  assert.equal(lookupsOf(() => loop.pass()), 100 + 2, "a new limit is seen at the next pass");
  loop.pass();
  assert.equal(replicas.get("t7")!.watches.length, 1);
  assert.equal(replicas.get("t8")!.watches.length, 1);
});

Deno.test("RetentionLoop looks at every replica at least once a minute even without a change", () => {
  const { retention, loop, lookupsOf } = setup(50, true);
  loop.pass();
  retention.set("t3", { max_bytes: 1 << 20 });
  let rescans = 0;
  for (let pass = 0; pass < 60; pass++) if (lookupsOf(() => loop.pass()) >= 50) rescans++;
  assert.equal(rescans, 1);
  assert.equal(loop.visited, 1);
});
