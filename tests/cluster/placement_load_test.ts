import assert from "node:assert/strict";
import { MetaState } from "../../lib/cluster/meta_state.ts";
import { loadOf, placeReplicas } from "../../lib/cluster/placement.ts";
import { clusterTopicsMax, PlacementLoad } from "../../lib/cluster/placement_load.ts";
import { EntryType } from "../../lib/storage/types.ts";

let index = 0;
function apply(meta: MetaState, command: unknown): void {
  meta.apply({
    index: ++index,
    term: 1,
    type: EntryType.Normal,
    data: new TextEncoder().encode(JSON.stringify(command)),
  });
}

function create(meta: MetaState, name: string, replicas: number[]): void {
  apply(meta, { op: "create_topic", name, replicas, replicationFactor: replicas.length });
}

Deno.test("PlacementLoad follows applied creations, moves and deletions like a full recount", () => {
  const meta = new MetaState();
  const load = new PlacementLoad(meta);
  create(meta, "a", [1, 2]);
  assert.deepEqual(load.current(), loadOf(meta.topics.values()));
  create(meta, "b", [2, 3]);
  create(meta, "b", [1, 3]);
  assert.deepEqual(
    load.current(),
    loadOf(meta.topics.values()),
    "a second create of b changes nothing",
  );
  apply(meta, { op: "set_replicas", name: "a", replicas: [3, 2] });
  assert.deepEqual(load.current(), loadOf(meta.topics.values()));
  apply(meta, { op: "delete_topic", name: "b" });
  assert.deepEqual(load.current(), loadOf(meta.topics.values()));
});

Deno.test("PlacementLoad counts placements in flight, so creations proposed together spread their leaders", () => {
  const meta = new MetaState();
  const load = new PlacementLoad(meta);
  const leaders: number[] = [];
  const releases: (() => void)[] = [];
  for (const name of ["a", "b", "c", "d", "e", "f"]) {
    const replicas = placeReplicas([1, 2, 3], load.current(), 3);
    releases.push(load.reserve(name, replicas));
    leaders.push(replicas[0]);
  }
  assert.deepEqual([...leaders].sort(), [1, 1, 2, 2, 3, 3]);
  create(meta, "a", [leaders[0], ...[1, 2, 3].filter((id) => id !== leaders[0])]);
  for (const release of releases) release();
  assert.deepEqual(load.current(), loadOf(meta.topics.values()), "nothing counted twice");
});

Deno.test("clusterTopicsMax holds 10,000 replicas per peer and never goes below 10,000 topics", () => {
  assert.equal(clusterTopicsMax(3, 3), 10_000);
  assert.equal(clusterTopicsMax(6, 3), 20_000);
  assert.equal(clusterTopicsMax(9, 1), 90_000);
  assert.equal(clusterTopicsMax(1, 3), 10_000);
  assert.equal(clusterTopicsMax(0, 3), 10_000);
});
