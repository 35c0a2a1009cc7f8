import assert from "node:assert/strict";
import { MetaState } from "../../lib/cluster/meta_state.ts";

const directory = (letter: string) => letter.repeat(32);

Deno.test("MetaState records the topic epoch at which a member's data directory was registered, and keeps it while the directory stays", () => {
  const meta = new MetaState();
  meta.applyCommand({ op: "add_member", id: 1, address: "h:1", directoryId: directory("a") });
  assert.equal(meta.members.get(1)?.directorySinceEpoch, 0);
  meta.applyCommand({ op: "create_topic", name: "events", replicas: [1], replicationFactor: 1 });
  meta.applyCommand({ op: "add_member", id: 1, address: "h:9", directoryId: directory("a") });
  assert.equal(meta.members.get(1)?.directorySinceEpoch, 0, "a new address, the same directory");
  assert.ok(meta.topics.get("events")!.epoch > 0, "the topic was created after the directory");
});

Deno.test("MetaState moves directorySinceEpoch forward when a member comes back with a new data directory", () => {
  const meta = new MetaState();
  meta.applyCommand({ op: "add_member", id: 2, address: "h:2", directoryId: directory("b") });
  meta.applyCommand({ op: "create_topic", name: "events", replicas: [2], replicationFactor: 1 });
  const epoch = meta.topics.get("events")!.epoch;
  meta.applyCommand({ op: "add_member", id: 2, address: "h:2", directoryId: directory("c") });
  assert.equal(
    meta.members.get(2)?.directorySinceEpoch,
    epoch,
    "the replaced disk postdates the topic",
  );
});
