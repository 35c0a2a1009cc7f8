import { deepStrictEqual, equal } from "node:assert/strict";
import {
  decodeTopicCommand,
  encodeTopicCommand,
  producerSequencesMax,
  type TopicCommand,
  TopicModel,
} from "../../lib/sim/topic_model.ts";

function publish(id: string, producer: string, sequence: number): TopicCommand {
  return { kind: "publish", id, producer, sequence };
}

Deno.test("TopicModel commands survive encoding", () => {
  const commands: TopicCommand[] = [
    { kind: "publish", id: "p1" },
    publish("u2", "P1", 7),
    { kind: "ack", id: "a3", subscriber: "S1", offset: 12 },
  ];
  for (const command of commands) {
    deepStrictEqual(decodeTopicCommand(encodeTopicCommand(command)), command);
  }
  equal(decodeTopicCommand(new Uint8Array(0)), undefined);
});

Deno.test("TopicModel answers a retried sequence with its first offset and refuses a gap", () => {
  const topic = new TopicModel();
  deepStrictEqual(topic.apply(1, { kind: "publish", id: "p1" }), { kind: "stored", offset: 0 });
  equal(topic.apply(2, publish("u1", "P1", 5)).kind, "stored");
  deepStrictEqual(topic.apply(3, publish("u2", "P1", 5)), {
    kind: "duplicate",
    offset: 1,
    producer: "P1",
    sequence: 5,
  });
  equal(topic.apply(4, publish("u3", "P1", 7)).kind, "refused");
  deepStrictEqual(topic.apply(5, publish("u4", "P1", 6)), {
    kind: "stored",
    offset: 2,
    producer: "P1",
    sequence: 6,
  });
  deepStrictEqual(topic.messages, ["p1", "P1.5", "P1.6"]);
});

Deno.test("TopicModel refuses a retry older than the producer's window", () => {
  const topic = new TopicModel();
  for (let sequence = 0; sequence <= producerSequencesMax; sequence++) {
    topic.apply(sequence + 1, publish(`u${sequence}`, "P1", sequence));
  }
  equal(topic.apply(producerSequencesMax + 2, publish("old", "P1", 0)).kind, "refused");
  equal(topic.apply(producerSequencesMax + 3, publish("new", "P1", 1)).kind, "duplicate");
});

Deno.test("TopicModel keeps a subscriber's position from moving back", () => {
  const topic = new TopicModel();
  topic.apply(1, { kind: "ack", id: "a1", subscriber: "S1", offset: 4 });
  topic.apply(2, { kind: "ack", id: "a2", subscriber: "S1", offset: 2 });
  equal(topic.subscribers.get("S1"), 4);
  const skipping = new TopicModel({ skipSubscriberOffset: true });
  skipping.apply(1, { kind: "ack", id: "a1", subscriber: "S1", offset: 4 });
  equal(skipping.subscribers.get("S1"), 5);
});

Deno.test("TopicModel restores its image, and forgets producers only when told to", () => {
  const topic = new TopicModel();
  topic.apply(1, publish("u1", "P1", 0));
  topic.apply(2, { kind: "ack", id: "a1", subscriber: "S1", offset: 0 });
  const image = topic.serialize();
  const restored = new TopicModel();
  restored.restore(image, true);
  deepStrictEqual(restored.messages, ["P1.0"]);
  equal(restored.subscribers.get("S1"), 0);
  equal(restored.entryIds.get(2), "a1");
  equal(restored.apply(3, publish("u2", "P1", 0)).kind, "duplicate");
  const forgetful = new TopicModel();
  forgetful.restore(image, false);
  equal(forgetful.apply(3, publish("u2", "P1", 0)).kind, "stored");
});
