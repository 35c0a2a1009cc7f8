import assert from "node:assert/strict";
import type { ProgressStatus } from "../../lib/raft/types.ts";
import type { MemberInfo, TopicPlacement } from "../../lib/cluster/meta_state.ts";
import {
  type GroupInput,
  groupSettled,
  type GroupStatus,
  type MetaGroupInput,
  metaVotersMax,
  planGroup,
  planMetaGroup,
  planPlacementRepair,
  repairSignature,
} from "../../lib/cluster/reconcile_plan.ts";

function progress(match: number): ProgressStatus {
  return { match, next: match + 1, state: "replicate" } as ProgressStatus;
}

function status(voters: number[], learners: number[] = [], lastIndex = 10): GroupStatus {
  const all = [...voters, ...learners];
  return {
    term: 2,
    conf: { voters, learners },
    progress: Object.fromEntries(all.map((id) => [id, progress(lastIndex)])),
    lastIndex,
  };
}

function member(id: number, left = false): MemberInfo {
  return { id, address: `h:${id}`, left, directoryId: `d${id}` };
}

function metaInput(overrides: Partial<MetaGroupInput>): MetaGroupInput {
  return {
    nodeId: 1,
    self: member(1),
    address: "h:1",
    directoryId: "d1",
    active: [1],
    status: status([1]),
    ...overrides,
  };
}

function placement(overrides: Partial<TopicPlacement> = {}): TopicPlacement {
  return {
    name: "events",
    replicas: [1, 2, 3],
    replicationFactor: 3,
    epoch: 1,
    generation: 0,
    ...overrides,
  };
}

function groupInput(overrides: Partial<GroupInput>): GroupInput {
  return {
    nodeId: 1,
    placement: placement(),
    epoch: 1,
    removed: false,
    settled: undefined,
    status: status([1, 2, 3]),
    ...overrides,
  };
}

Deno.test("planMetaGroup registers a controller missing from the metadata before anything else", () => {
  const plan = planMetaGroup(metaInput({ self: undefined }));
  assert.deepEqual(plan, { kind: "shape", register: true, change: undefined });
});

Deno.test("planMetaGroup registers the controller again when its address or data directory changed", () => {
  assert.equal(
    (planMetaGroup(metaInput({ address: "h:9" })) as { register: boolean }).register,
    true,
  );
  assert.equal(
    (planMetaGroup(metaInput({ directoryId: "new" })) as { register: boolean }).register,
    true,
  );
});

Deno.test("planMetaGroup adds a new member as a learner of the metadata group", () => {
  const plan = planMetaGroup(metaInput({ active: [1, 2] }));
  assert.deepEqual(plan, {
    kind: "shape",
    register: false,
    change: { type: "addLearner", node: 2 },
  });
});

Deno.test("planMetaGroup promotes a caught-up learner while voters are fewer than metaVotersMax", () => {
  const plan = planMetaGroup(metaInput({ active: [1, 2], status: status([1], [2]) }));
  assert.deepEqual(plan, { kind: "shape", register: false, change: { type: "promote", node: 2 } });
});

Deno.test("planMetaGroup keeps members beyond metaVotersMax as learners", () => {
  const voters = Array.from({ length: metaVotersMax }, (_, index) => index + 1);
  const extra = metaVotersMax + 1;
  const plan = planMetaGroup(
    metaInput({ active: [...voters, extra], status: status(voters, [extra]) }),
  );
  assert.deepEqual(plan, { kind: "shape", register: false, change: undefined });
});

Deno.test("planMetaGroup removes a member that left from the metadata group", () => {
  const plan = planMetaGroup(metaInput({ active: [1, 2], status: status([1, 2, 3]) }));
  assert.deepEqual(plan, { kind: "shape", register: false, change: { type: "remove", node: 3 } });
});

Deno.test("planMetaGroup hands the controller role to a remaining voter once this node was removed", () => {
  const plan = planMetaGroup(
    metaInput({ self: member(1, true), active: [2, 3], status: status([1, 2, 3]) }),
  );
  assert.deepEqual(plan, { kind: "hand_over", target: 2 });
  const alone = planMetaGroup(
    metaInput({ self: member(1, true), active: [], status: status([1]) }),
  );
  assert.deepEqual(alone, { kind: "hand_over", target: undefined });
});

Deno.test("planPlacementRepair moves a replica off a dead peer to a live spare one", () => {
  const repair = planPlacementRepair({
    topics: [placement()],
    members: [1, 2, 3, 4].map((id) => member(id)),
    states: new Map([[1, "alive"], [2, "alive"], [3, "dead"], [4, "alive"]]),
    alive: [1, 2, 4],
  });
  assert.deepEqual(repair, { name: "events", from: [1, 2, 3], replicas: [1, 2, 4] });
});

Deno.test("planPlacementRepair treats a removed member as gone even while it is alive", () => {
  const repair = planPlacementRepair({
    topics: [placement()],
    members: [member(1), member(2), member(3, true), member(4)],
    states: new Map([[1, "alive"], [2, "alive"], [3, "alive"], [4, "alive"]]),
    alive: [1, 2, 4],
  });
  assert.deepEqual(repair?.replicas, [1, 2, 4]);
});

Deno.test("planPlacementRepair moves a replica off a peer that announced its leave while the metadata still counts it", () => {
  // A join retried during the leave added it back after its removal: it
  // never heartbeats again, so the failure detector keeps it left, not dead.
  const repair = planPlacementRepair({
    topics: [placement()],
    members: [1, 2, 3, 4].map((id) => member(id)),
    states: new Map([[1, "alive"], [2, "alive"], [3, "left"], [4, "alive"]]),
    alive: [1, 2, 4],
  });
  assert.deepEqual(repair, { name: "events", from: [1, 2, 3], replicas: [1, 2, 4] });
});

Deno.test("planPlacementRepair leaves a dead peer's replica in place while no spare peer is alive", () => {
  const repair = planPlacementRepair({
    topics: [placement()],
    members: [1, 2, 3].map((id) => member(id)),
    states: new Map([[1, "alive"], [2, "alive"], [3, "dead"]]),
    alive: [1, 2],
  });
  assert.equal(repair, undefined);
});

Deno.test("planGroup does nothing for a group settled at this generation and term", () => {
  const plan = planGroup(groupInput({ settled: { generation: 0, term: 2 } }));
  assert.deepEqual(plan, { kind: "none" });
});

Deno.test("planGroup ignores a replica of another epoch of the topic", () => {
  assert.deepEqual(planGroup(groupInput({ epoch: 2 })), { kind: "none" });
});

Deno.test("planGroup settles a group matching its placement, reporting it after a replica change", () => {
  assert.deepEqual(planGroup(groupInput({})), {
    kind: "settle",
    report: false,
    generation: 0,
    term: 2,
  });
  const moved = planGroup(groupInput({ placement: placement({ generation: 3 }) }));
  assert.deepEqual(moved, { kind: "settle", report: true, generation: 3, term: 2 });
});

Deno.test("planGroup moves the membership one step at a time: add, promote, remove", () => {
  const target = placement({ replicas: [1, 2, 4], generation: 1 });
  // A new learner is recorded at once (cluster seed 9703731): placed elsewhere before its
  // promotion, it must not take the record without it for its removal.
  assert.deepEqual(planGroup(groupInput({ placement: target })), {
    kind: "change",
    change: { type: "addLearner", node: 4 },
    report: true,
  });
  assert.deepEqual(planGroup(groupInput({ placement: target, status: status([1, 2, 3], [4]) })), {
    kind: "change",
    change: { type: "promote", node: 4 },
    report: false,
  });
  assert.deepEqual(planGroup(groupInput({ placement: target, status: status([1, 2, 3, 4]) })), {
    kind: "change",
    change: { type: "remove", node: 3 },
    report: true,
  });
});

Deno.test("planGroup waits while a learner is still catching up", () => {
  const target = placement({ replicas: [1, 2, 4], generation: 1 });
  const behind = status([1, 2, 3], [4], 500);
  behind.progress = { ...behind.progress, 4: progress(1) };
  assert.deepEqual(planGroup(groupInput({ placement: target, status: behind })), { kind: "none" });
});

Deno.test("planGroup hands leadership to a staying voter before the leader's own replica is removed", () => {
  const target = placement({ replicas: [2, 3, 4], generation: 1 });
  const plan = planGroup(groupInput({ placement: target, status: status([1, 2, 3, 4]) }));
  assert.deepEqual(plan, { kind: "transfer", target: 2 });
});

Deno.test("planGroup makes a removed node hand over every group it leads", () => {
  const plan = planGroup(groupInput({ removed: true, settled: { generation: 0, term: 2 } }));
  assert.deepEqual(plan, { kind: "transfer", target: 2 });
});

Deno.test("groupSettled holds only at the settled generation and term, and never for a removed node", () => {
  const settled = { generation: 0, term: 2 };
  assert.equal(groupSettled(placement(), settled, 2, false), true);
  assert.equal(groupSettled(placement(), settled, 3, false), false, "a new term");
  assert.equal(groupSettled(placement({ generation: 1 }), settled, 2, false), false, "moved");
  assert.equal(groupSettled(placement(), settled, 2, true), false, "removed");
  assert.equal(groupSettled(placement(), undefined, 2, false), false, "never settled");
});

Deno.test("repairSignature changes when a member dies, leaves or comes alive, and not with the order of its inputs", () => {
  const members = [1, 2, 3].map((id) => member(id));
  const states = new Map([[1, "alive"], [2, "alive"], [3, "alive"]] as const);
  const base = repairSignature({ members, states, alive: [1, 2, 3] });
  assert.equal(
    repairSignature({
      members: [...members].reverse(),
      states: new Map([...states].reverse()),
      alive: [3, 1, 2],
    }),
    base,
  );
  const dead = repairSignature({
    members,
    states: new Map([[1, "alive"], [2, "alive"], [3, "dead"]]),
    alive: [1, 2],
  });
  assert.notEqual(dead, base);
  const left = repairSignature({
    members: [member(1), member(2), member(3, true)],
    states,
    alive: [1, 2, 3],
  });
  assert.notEqual(left, base);
  assert.notEqual(left, dead);
});
