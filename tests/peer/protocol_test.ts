import assert from "node:assert/strict";
import { startPeer } from "../_helpers/peer_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";

function frameHeader(length: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, length);
  return bytes;
}

function frameOf(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  out.set(frameHeader(payload.length));
  out.set(payload, 4);
  return out;
}

for (const mode of ["replicated", "standalone"]) {
  Deno.test(`a ${mode} peer answers every request of the protocol with its exact shape`, async (t) => {
    const extra = mode === "standalone" ? ["--standalone"] : [];
    await conformance(t, ["--max-frame", "65536", "--idle-timeout", "500", ...extra]);
  });
}

async function conformance(t: Deno.TestContext, args: string[]) {
  const peer = await startPeer({ args });
  const client = await RawClient.connect(peer.port);
  try {
    await t.step("seed-era requests answer with the seed shapes", async () => {
      assert.deepEqual(await client.request({ action: "create_topic", topic_name: "events" }), {
        status: "topic_created",
        topic: "events",
      });
      assert.deepEqual(await client.request({ action: "create_topic", topic_name: "events" }), {
        status: "topic_exists",
        topic: "events",
      });
      assert.deepEqual(
        await client.request({ action: "publish", topic_name: "events", message: "hi" }),
        { status: "message_published", topic: "events", offset: 0 },
      );
      assert.deepEqual(
        await client.request({ action: "publish", topic_name: "events", message: "there" }),
        { status: "message_published", topic: "events", offset: 1 },
      );
      assert.deepEqual(
        await client.request({ action: "fetch_messages", topic_name: "events" }),
        ["hi", "there"],
      );
      await client.request({ action: "create_topic", topic_name: "alpha" });
      assert.deepEqual(await client.request({ action: "fetch_topics" }), ["alpha", "events"]);
    });

    await t.step("extended requests answer with their documented shapes", async () => {
      assert.deepEqual(
        await client.request({
          action: "publish_batch",
          topic_name: "events",
          messages: ["a", "b", "c"],
        }),
        { status: "messages_published", topic: "events", first_offset: 2, count: 3 },
      );
      assert.deepEqual(
        await client.request({ action: "fetch", topic_name: "events", from_offset: 3, max: 2 }),
        {
          status: "messages",
          topic: "events",
          messages: [{ offset: 3, message: "b" }, { offset: 4, message: "c" }],
          next_offset: 5,
        },
      );
      assert.deepEqual(await client.request({ action: "ping", id: 7 }), {
        status: "pong",
        node: 1,
        id: 7,
      });
      const described = await client.request({
        action: "describe_topic",
        topic_name: "events",
      }) as Record<string, unknown>;
      assert.deepEqual(described, {
        status: "topic",
        topic: "events",
        replicas: [1],
        leader: 1,
        in_sync: [1],
        first_offset: 0,
        next_offset: 5,
        bytes: described.bytes,
        messages: 5,
        retention: {},
      });
      assert.ok((described.bytes as number) > 0, "the log holds the five messages");
      const status = await client.request({ action: "cluster_status" }) as Record<string, unknown>;
      assert.equal(status.status, "cluster");
      assert.equal(status.topics, 2);
      assert.equal(status.meta_leader, 1);
      assert.deepEqual(
        (status.nodes as { id: number; state: string }[]).map((n) => [n.id, n.state]),
        [
          [1, "alive"],
        ],
      );
      assert.deepEqual(await client.request({ action: "delete_topic", topic_name: "alpha" }), {
        status: "topic_deleted",
        topic: "alpha",
      });
      assert.deepEqual(await client.request({ action: "fetch_topics" }), ["events"]);
    });

    await t.step("every error code is answered with one sentence", async () => {
      const notFound = await client.request({
        action: "publish",
        topic_name: "nope",
        message: "x",
        id: "a",
      });
      assert.deepEqual(Object.keys(notFound as object).sort(), ["error", "id", "status"]);
      assert.equal((notFound as { status: string }).status, "topic_not_found");
      assert.equal((notFound as { id: string }).id, "a");
      for (
        const bad of [
          { action: "explode" },
          { topic_name: "x" },
          { action: "publish", topic_name: "events" },
          { action: "publish", topic_name: "events", message: 5 },
          { action: "create_topic", topic_name: ".." },
          { action: "create_topic", topic_name: "a".repeat(250) },
          { action: "create_topic", topic_name: "has space" },
          { action: "fetch", topic_name: "events", max: 0 },
          { action: "ack", topic_name: "events", subscriber_id: "u", offset: 999 },
        ]
      ) {
        const response = await client.request(bad) as { status: string; error: string };
        assert.equal(response.status, "bad_request", JSON.stringify(bad));
        assert.match(response.error, /^[A-Z].*\.$/);
      }
      await client.sendBytes(frameHeader(0));
      assert.equal((await client.next() as { status: string }).status, "bad_request");
      await client.sendBytes(frameOf(new Uint8Array([0xff, 0xfe, 0x7b])));
      assert.equal((await client.next() as { status: string }).status, "bad_request");
      await client.sendBytes(frameOf(new TextEncoder().encode("{not json")));
      assert.equal((await client.next() as { status: string }).status, "bad_request");
      await client.sendBytes(frameOf(new TextEncoder().encode("[1,2]")));
      assert.equal((await client.next() as { status: string }).status, "bad_request");
      assert.deepEqual(await client.request({ action: "ping" }), { status: "pong", node: 1 });
    });

    await t.step("an oversize frame is refused and only that connection closes", async () => {
      const other = await RawClient.connect(peer.port);
      await other.sendBytes(frameHeader(65537));
      const answer = await other.next() as { status: string; error: string };
      assert.equal(answer.status, "frame_too_large");
      await other.waitClosed();
      await other.close();
      assert.deepEqual(await client.request({ action: "ping" }), { status: "pong", node: 1 });
    });

    await t.step(
      "a connection stuck in a partial frame is closed after the idle timeout",
      async () => {
        const stuck = await RawClient.connect(peer.port);
        await stuck.sendBytes(new Uint8Array([0, 0, 0, 10, 0x7b]));
        await stuck.waitClosed(5000);
        await stuck.close();
        assert.deepEqual(await client.request({ action: "ping" }), { status: "pong", node: 1 });
      },
    );

    await t.step("pipelined requests are answered in order", async () => {
      const count = 500;
      const frames = [];
      for (let index = 0; index < count; index++) {
        frames.push({ action: "publish", topic_name: "events", message: `p${index}`, id: index });
      }
      await Promise.all(frames.map((frame) => client.send(frame)));
      for (let index = 0; index < count; index++) {
        const answer = await client.next() as { id: number; offset: number };
        assert.equal(answer.id, index);
        assert.equal(answer.offset, 5 + index);
      }
    });

    await t.step("a producer's retried sequence is stored once", async () => {
      const request = {
        action: "publish",
        topic_name: "events",
        message: "once",
        producer_id: "p1",
        sequence: 1, // seed-era clients may start anywhere
      };
      const first = await client.request(request) as { offset: number };
      const again = await client.request(request) as { offset: number; status: string };
      assert.equal(again.status, "message_published");
      assert.equal(again.offset, first.offset);
      const all = await client.request({
        action: "fetch_messages",
        topic_name: "events",
      }) as string[];
      assert.equal(all.filter((message) => message === "once").length, 1);
    });
  } finally {
    await client.close();
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
}

Deno.test("a peer with an auth token refuses requests until the client authenticates", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/token`, "s3cret\n");
  const peer = await startPeer({
    dataDir: `${dir}/data`,
    args: ["--auth-token-file", `${dir}/token`],
  });
  try {
    const client = await RawClient.connect(peer.port);
    assert.equal(
      (await client.request({ action: "fetch_topics" }) as { status: string }).status,
      "unauthorized",
    );
    assert.deepEqual(await client.request({ action: "auth", token: "s3cret" }), {
      status: "authenticated",
    });
    assert.deepEqual(await client.request({ action: "fetch_topics" }), []);
    await client.close();
    const intruder = await RawClient.connect(peer.port);
    assert.equal(
      (await intruder.request({ action: "auth", token: "wrong" }) as { status: string }).status,
      "unauthorized",
    );
    await intruder.waitClosed();
    await intruder.close();
  } finally {
    await peer.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

for (const mode of ["replicated", "standalone"]) {
  Deno.test(`a ${mode} peer answers overloaded past --max-topics and keeps serving`, async () => {
    const extra = mode === "standalone" ? ["--standalone"] : [];
    const peer = await startPeer({ args: ["--max-topics", "2", ...extra] });
    try {
      const client = await RawClient.connect(peer.port);
      for (const name of ["a", "b"]) {
        assert.equal(
          (await client.request({ action: "create_topic", topic_name: name }) as { status: string })
            .status,
          "topic_created",
        );
      }
      const refused = await client.request({ action: "create_topic", topic_name: "c" }) as {
        status: string;
        error: string;
      };
      assert.equal(refused.status, "overloaded");
      assert.match(refused.error, /maximum of 2 topics/);
      assert.deepEqual(await client.request({ action: "fetch_topics" }), ["a", "b"]);
      await client.close();
    } finally {
      await peer.stop();
      await Deno.remove(peer.dataDir, { recursive: true });
    }
  });
}
