import assert from "node:assert/strict";
import { MetaState } from "../../lib/cluster/meta_state.ts";
import { removedFromGroup } from "../../lib/cluster/replica_manager.ts";

Deno.test("MetaState records a new topic's founding replicas as its group's membership", () => {
  const meta = new MetaState();
  meta.applyCommand({
    op: "create_topic",
    name: "events",
    replicas: [4, 5, 1],
    replicationFactor: 3,
  });
  assert.deepEqual(meta.topics.get("events")?.members, [1, 4, 5]);
});

Deno.test("A founder moved away before its group changed membership keeps its replica (whole-cluster seed 102303)", () => {
  // The placement moved twice while the group had no leader to change its
  // membership; node 1 is still one of its three voters. Without a record
  // it dropped out (never reopened its replica after a restart) and, with
  // node 5 gone, the group {1, 4, 5} never had a quorum again.
  const meta = new MetaState();
  meta.applyCommand({
    op: "create_topic",
    name: "beta",
    replicas: [4, 5, 1],
    replicationFactor: 3,
  });
  meta.applyCommand({ op: "set_replicas", name: "beta", replicas: [4, 1, 2] });
  meta.applyCommand({ op: "set_replicas", name: "beta", replicas: [4, 2, 3] });
  const placement = meta.topics.get("beta")!;
  assert.equal(placement.replicas.includes(1), false);
  assert.equal(placement.members?.includes(1), true, "node 1 still counts as a member");
  assert.equal(removedFromGroup(placement, 1), false);
  meta.applyCommand({
    op: "group_members",
    name: "beta",
    epoch: placement.epoch,
    members: [2, 3, 4],
  });
  assert.equal(
    removedFromGroup(meta.topics.get("beta")!, 1),
    true,
    "once the group recorded it left",
  );
});
