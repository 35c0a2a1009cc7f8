/**
 * Retention on a real 3-peer cluster: by messages, age and bytes, whole
 * segments deleted on every replica and never an unexpired message, the
 * describe fields, alter_topic through any peer, reading and subscribing
 * below retention, and a flat disk under a steady publish rate.
 */
import assert from "node:assert/strict";
import { startCluster, type TestCluster, waitFor } from "../_helpers/cluster_process.ts";
import type { PubSubClient } from "../../lib/client/client.ts";
import { decodeMetaCommand, MetaState } from "../../lib/cluster/meta_state.ts";

type Answer = Record<string, unknown>;

/** The replica directory of `topic` on peer `id` (its only epoch here). */
async function replicaDir(cluster: TestCluster, id: number, topic: string): Promise<string> {
  const topics = `${cluster.root}/${id}/topics`;
  for await (const entry of Deno.readDir(topics)) {
    if (entry.isDirectory && entry.name.startsWith(`${topic}.`)) return `${topics}/${entry.name}`;
  }
  throw new Error(`Peer ${id} holds no replica of '${topic}'`);
}

/** Segment files of a replica, oldest first, and the bytes of all its files. */
async function replicaFiles(directory: string): Promise<{ segments: string[]; bytes: number }> {
  const segments: string[] = [];
  let bytes = 0;
  for await (const entry of Deno.readDir(directory)) {
    if (!entry.isFile) continue;
    // A snapshot being written is renamed meanwhile: a file gone by now counts as gone.
    const size = await Deno.stat(`${directory}/${entry.name}`).then((info) => info.size, () => 0);
    if (entry.name.endsWith(".log")) segments.push(entry.name);
    bytes += size;
  }
  return { segments: segments.sort(), bytes };
}

async function describe(client: PubSubClient, topic: string): Promise<Answer> {
  return await client.request({ action: "describe_topic", topic_name: topic }, {
    retry: true,
  }) as Answer;
}

async function publish(client: PubSubClient, topic: string, batches: number, size = 200) {
  for (let batch = 0; batch < batches; batch++) {
    await client.publishBatch(topic, Array(10).fill("m".repeat(size)));
  }
}

/**
 * Waits until retention moved the first offset as far as `done` wants (any
 * move by default), and every replica deleted its first segment.
 */
async function retained(
  cluster: TestCluster,
  client: PubSubClient,
  topic: string,
  done: (first: number) => boolean = (first) => first > 0,
) {
  const described = await waitFor(`retention of '${topic}'`, async () => {
    const answer = await describe(client, topic);
    return done(answer.first_offset as number) ? answer : undefined;
  }, 30_000);
  for (const id of [1, 2, 3]) {
    const directory = await replicaDir(cluster, id, topic);
    await waitFor(`peer ${id} to delete the first segment of '${topic}'`, async () => {
      const { segments } = await replicaFiles(directory);
      return segments.length > 0 && segments[0] !== "00000000000000000001.log";
    }, 30_000);
  }
  return described;
}

/**
 * Every offset from the first retained one to `next` is there, in order.
 * Retention may move the first offset past `first` meanwhile (a later pass
 * deletes more): a page that says so goes on from the offset it names.
 * Returns the first retained offset the last page was read at.
 */
async function assertDense(
  client: PubSubClient,
  topic: string,
  first: number,
  next: number,
): Promise<number> {
  let offset = first;
  let retained = first;
  while (offset < next) {
    const page = await client.fetch(topic, { fromOffset: offset, max: 1000 });
    if (page.firstOffset !== undefined) {
      assert.ok(page.firstOffset > offset, `first_offset ${page.firstOffset} said below ${offset}`);
      offset = retained = page.firstOffset;
    }
    for (const item of page.messages) assert.equal(item.offset, offset++);
    if (page.messages.length === 0) break;
  }
  assert.equal(offset, next, `offsets ${retained}-${next} are all retained`);
  return retained;
}

Deno.test("a cluster deletes whole expired segments on every replica and keeps every unexpired message", async (t) => {
  const cluster = await startCluster(3);
  const client = await cluster.client();
  try {
    await t.step(
      "by messages: at least max_messages stay, fetch and subscribers go on from the first",
      async () => {
        await client.createTopic("counted", {
          retention: { max_messages: 100, segment_bytes: 4096 },
        });
        // A durable subscriber registered at offset 0 that never acknowledges anything.
        const early = await client.subscribe("counted", "s1", { from: "earliest" });
        await early.close();
        await publish(client, "counted", 30);
        // A pass during the publishes may have deleted less: wait for the final decision.
        const described = await retained(cluster, client, "counted", (first) => 300 - first < 200);
        const first = described.first_offset as number;
        assert.equal(described.next_offset, 300);
        assert.ok(300 - first >= 100, `kept ${300 - first} messages, fewer than 100`);
        assert.ok(300 - first < 200, `kept ${300 - first} messages: old segments stayed`);
        assert.equal(described.messages, 300 - first);
        assert.deepEqual(described.retention, { max_messages: 100, segment_bytes: 4096 });
        assert.ok((described.bytes as number) > 0);
        const later = await assertDense(client, "counted", first, 300);
        assert.ok(300 - later >= 100, `kept ${300 - later} messages, fewer than 100`);
        // Retention may still move on between two answers, never back.
        const before = (await describe(client, "counted")).first_offset as number;
        const below = await client.request({
          action: "fetch",
          topic_name: "counted",
          from_offset: 0,
          max: 1,
        }, { retry: true }) as Answer;
        const after = (await describe(client, "counted")).first_offset as number;
        const told = below.first_offset as number;
        assert.ok(
          before <= told && told <= after,
          `fetch said ${told}, describe ${before}-${after}`,
        );
        assert.equal((below.messages as { offset: number }[])[0].offset, told);
        const subscription = await client.subscribe("counted", "s1");
        try {
          const iterator = subscription[Symbol.asyncIterator]();
          const { value } = await iterator.next();
          assert.ok(value.offset >= first);
          assert.equal(value.skipped, value.offset, "s1 is told it skipped every offset before");
        } finally {
          await subscription.close();
        }
      },
    );

    await t.step("by age: segments written before max_age_ms go, later messages stay", async () => {
      await client.createTopic("aged", { retention: { max_age_ms: 2000, segment_bytes: 4096 } });
      await publish(client, "aged", 10);
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const fresh = await client.publishBatch("aged", Array(10).fill("n".repeat(200)));
      const described = await retained(cluster, client, "aged");
      const first = described.first_offset as number;
      assert.ok(first <= fresh.firstOffset, `message ${fresh.firstOffset} was not expired`);
      // A later pass may delete more old segments (one that ran during the
      // sleep saw only some expired), never the fresh batch's.
      const later = await assertDense(client, "aged", first, described.next_offset as number);
      assert.ok(later <= fresh.firstOffset, `message ${fresh.firstOffset} was not expired`);
    });

    await t.step("alter_topic on any peer changes the retention every peer sees", async () => {
      const peer3 = await cluster.client();
      try {
        const altered = await peer3.alterTopic("aged", { max_age_ms: null, max_bytes: 1 << 20 });
        assert.deepEqual(altered, { max_bytes: 1 << 20, segment_bytes: 4096 });
        // describe_topic answers with the retention the topic's leader
        // enforces, from its own copy of the metadata: that copy may apply
        // the change a moment after the peer that took it answered.
        const before = { max_age_ms: 2000, segment_bytes: 4096 };
        await waitFor("the topic's leader to apply the new retention", async () => {
          const { retention } = await describe(client, "aged");
          if (JSON.stringify(retention) === JSON.stringify(before)) return false;
          assert.deepEqual(retention, altered);
          return true;
        });
      } finally {
        await peer3.close();
      }
    });

    await t.step(
      "by bytes at a steady rate: every replica's files stay under twice max_bytes",
      async () => {
        const maxBytes = 64 * 1024;
        await client.createTopic("steady", {
          retention: { max_bytes: maxBytes, segment_bytes: 8192 },
        });
        const directories = await Promise.all(
          [1, 2, 3].map((id) =>
            waitFor(
              `the replica of 'steady' on peer ${id}`,
              () => replicaDir(cluster, id, "steady"),
            )
          ),
        );
        let largest = 0;
        let published = 0;
        // About 20 KB/s for 10 s: three times max_bytes goes through the topic.
        for (let step = 0; step < 100; step++) {
          await client.publishBatch("steady", Array(10).fill("s".repeat(200)));
          published += 2000;
          await new Promise((resolve) => setTimeout(resolve, 100));
          if (published < 2 * maxBytes || step % 3 !== 0) continue;
          for (const directory of directories) {
            const { bytes } = await replicaFiles(directory);
            largest = Math.max(largest, bytes);
          }
        }
        assert.ok(largest > 0);
        assert.ok(
          largest < 2 * maxBytes,
          `a replica held ${largest} bytes, over twice max_bytes ${maxBytes}`,
        );
        const described = await describe(client, "steady");
        assert.ok((described.first_offset as number) > 0, "retention deleted old segments");
      },
    );
  } finally {
    await client.close();
    await cluster.dispose();
  }
});

Deno.test("the metadata records a topic's retention at creation and patches it, refusing bad ones", () => {
  const meta = new MetaState();
  meta.applyCommand(decodeMetaCommand({
    op: "create_topic",
    name: "events",
    replicas: [1],
    replicationFactor: 1,
    retention: { max_bytes: 1024, max_age_ms: 60_000 },
  }));
  assert.deepEqual(meta.topics.get("events")?.retention, { max_age_ms: 60_000, max_bytes: 1024 });
  const altered = decodeMetaCommand({
    op: "alter_retention",
    name: "events",
    patch: { max_age_ms: null, max_messages: 10 },
  });
  assert.deepEqual(meta.applyCommand(altered), { ok: true });
  assert.deepEqual(meta.topics.get("events")?.retention, { max_bytes: 1024, max_messages: 10 });
  const restored = new MetaState();
  restored.restore(meta.snapshot(), 7);
  assert.deepEqual(restored.topics.get("events")?.retention, { max_bytes: 1024, max_messages: 10 });
  assert.deepEqual(
    meta.applyCommand({ op: "alter_retention", name: "nope", patch: { max_bytes: 1 } }),
    { ok: false, reason: "not_found" },
  );
  for (
    const bad of [
      {
        op: "create_topic",
        name: "x",
        replicas: [1],
        replicationFactor: 1,
        retention: { max_bytes: 0 },
      },
      { op: "alter_retention", name: "events", patch: {} },
      { op: "alter_retention", name: "events", patch: { max_size: 1 } },
      { op: "alter_retention", name: "events" },
    ]
  ) {
    assert.throws(() => decodeMetaCommand(bad), /retention|patch/, JSON.stringify(bad));
  }
});
