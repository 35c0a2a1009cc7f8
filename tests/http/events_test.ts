/**
 * Subscriptions over HTTP as Server-Sent Events, against real peers: event
 * ids are offsets, Last-Event-ID resumes, durable subscribers acknowledge
 * on the stream (auto) or with POST .../ack (manual, with the in-flight
 * window), positions are shared with TCP subscribers, and on a cluster
 * every peer streams every topic and a reader resumes on another peer.
 */
import assert from "node:assert/strict";
import { RawClient } from "../_helpers/raw_client.ts";
import { waitFor } from "../_helpers/cluster_process.ts";
import { EventReader, request, startHttpCluster, startHttpPeer } from "./_http_cluster.ts";

async function publish(base: string, topic: string, messages: string[]): Promise<void> {
  const answer = await request(`${base}/api/topics/${topic}/messages`, {
    method: "POST",
    json: messages,
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
}

Deno.test("a peer streams a topic as Server-Sent Events with offsets as event ids", async (t) => {
  const peer = await startHttpPeer();
  const api = `${peer.url}/api`;
  const events = (query = "", headers: Record<string, string> = {}) =>
    EventReader.open(`${api}/topics/events/events${query}`, headers);
  try {
    await request(`${api}/topics`, { method: "POST", json: { name: "events" } });
    await publish(peer.url, "events", ["m0", "m1", "m2", "m3", "m4"]);

    await t.step("the stream starts with 'subscribed', then one event per message", async () => {
      const reader = await events("?from=earliest");
      try {
        assert.equal(reader.response.status, 200);
        assert.match(reader.response.headers.get("content-type") ?? "", /^text\/event-stream/);
        assert.equal(reader.response.headers.get("x-pubsub-node"), "1");
        const subscribed = await reader.next();
        assert.deepEqual(subscribed, {
          type: "subscribed",
          id: undefined,
          data: { status: "subscribed", topic: "events", from_offset: 0 },
        });
        assert.equal(reader.retry, 1000);
        const received = await reader.messages(5);
        assert.deepEqual(
          received.map((event) => [event.id, event.data]),
          [0, 1, 2, 3, 4].map((offset) => [String(offset), {
            topic: "events",
            offset,
            message: `m${offset}`,
          }]),
        );
      } finally {
        await reader.close();
      }
    });

    await t.step("by default a stream starts at the end; 'from' picks an offset", async () => {
      const latest = await events();
      const fromThree = await events("?from=3");
      try {
        assert.equal((await latest.next()).data.from_offset, 5);
        assert.equal((await fromThree.next()).data.from_offset, 3);
        await publish(peer.url, "events", ["m5"]);
        const [next] = await latest.messages(1);
        assert.equal(next.id, "5");
        assert.deepEqual((await fromThree.messages(3)).map((event) => event.id), ["3", "4", "5"]);
      } finally {
        await latest.close();
        await fromThree.close();
      }
    });

    await t.step("Last-Event-ID resumes right after the last event received", async () => {
      const resumed = await events("?from=earliest", { "last-event-id": "3" });
      try {
        assert.equal((await resumed.next()).data.from_offset, 4);
        assert.deepEqual((await resumed.messages(2)).map((event) => event.id), ["4", "5"]);
      } finally {
        await resumed.close();
      }
    });

    await t.step("a durable stream acknowledges what it wrote; TCP resumes after it", async () => {
      const first = await events("?subscriber_id=s1&from=earliest");
      try {
        const received = await first.messages(6);
        assert.deepEqual(received[0].data, {
          topic: "events",
          offset: 0,
          subscriber_id: "s1",
          message: "m0",
        });
      } finally {
        await first.close();
      }
      await publish(peer.url, "events", ["m6"]);
      // The acknowledgement is stored a moment after the stream wrote the messages.
      const client = await RawClient.connect(peer.port);
      try {
        const pushed = await waitFor("s1's acknowledgement to be stored", async () => {
          const answer = await client.request({
            action: "subscribe",
            topic_name: "events",
            subscriber_id: "s1",
          }) as { status: string };
          assert.equal(answer.status, "subscribed");
          const frame = await client.next() as { offset: number };
          await client.request({
            action: "unsubscribe",
            topic_name: "events",
            subscriber_id: "s1",
          });
          return frame.offset === 6 && frame;
        });
        assert.equal(pushed.offset, 6);
      } finally {
        await client.close();
      }
    });

    await t.step("ack=manual sends at most max_in_flight until POST .../ack", async () => {
      const manual = await events("?subscriber_id=m1&from=earliest&ack=manual&max_in_flight=2");
      try {
        assert.deepEqual((await manual.messages(2)).map((event) => event.id), ["0", "1"]);
        await assert.rejects(manual.next(500), /No event/);
        const acked = await request(`${api}/topics/events/ack`, {
          method: "POST",
          json: { subscriber_id: "m1", offset: 1 },
        });
        assert.deepEqual([acked.status, acked.body], [200, {
          status: "acked",
          topic: "events",
          subscriber_id: "m1",
          offset: 1,
        }]);
        assert.deepEqual((await manual.messages(2)).map((event) => event.id), ["2", "3"]);
        await assert.rejects(manual.next(300), /No event/);
      } finally {
        await manual.close();
      }
      // Written but never acknowledged: a new stream of m1 resumes after offset 1.
      const again = await events("?subscriber_id=m1&ack=manual");
      try {
        assert.equal((await again.next()).data.from_offset, 2);
      } finally {
        await again.close();
      }
    });

    await t.step(
      "messages pushed to subscribers are counted in /api/stats and /metrics",
      async () => {
        const stats = await request(`${api}/stats`);
        // Every stream above delivered through this peer, and one TCP subscriber too.
        assert.ok(stats.body.delivered.events >= 20, JSON.stringify(stats.body));
        const metrics = await (await fetch(`${peer.url}/metrics`)).text();
        const sample = /^pubsub_messages_delivered_total\{topic="events"\} (\d+)$/m.exec(metrics);
        assert.ok(sample !== null && Number(sample[1]) === stats.body.delivered.events, metrics);
      },
    );

    await t.step("deleting the topic ends its streams", async () => {
      const reader = await events();
      await reader.next();
      await request(`${api}/topics/events`, { method: "DELETE" });
      await reader.waitEnded(15_000);
      await reader.close();
    });
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("every peer of a cluster streams a topic, and a reader resumes on another peer", async () => {
  const cluster = await startHttpCluster(3);
  try {
    const created = await request(`${cluster.url(2)}/api/topics`, {
      method: "POST",
      json: { name: "feed" },
    });
    assert.equal(created.status, 201);
    const readers = await Promise.all(
      [1, 2, 3].map((id) =>
        EventReader.open(`${cluster.url(id)}/api/topics/feed/events?from=earliest`)
      ),
    );
    for (const reader of readers) assert.equal((await reader.next()).type, "subscribed");
    for (let round = 0; round < 10; round++) {
      await publish(cluster.url(1 + (round % 3)), "feed", [`a${round}`, `b${round}`]);
    }
    const expected = Array.from({ length: 20 }, (_, offset) => String(offset));
    for (const reader of readers) {
      const received = await reader.messages(20, 15_000);
      assert.deepEqual(received.map((event) => event.id), expected);
      assert.equal(received[3].data.message, "b1");
    }
    // The peer serving reader 3 dies: the reader resumes on peer 1 with Last-Event-ID.
    const answer = await request(`${cluster.url(1)}/api/topics/feed`);
    const victim = [1, 2, 3].find((id) => id !== answer.body.leader && id !== 1)!;
    const lost = readers[victim - 1];
    await cluster.peer(victim).kill("SIGKILL");
    await lost.waitEnded(15_000);
    await publish(cluster.url(1), "feed", ["after the kill"]);
    const resumed = await EventReader.open(`${cluster.url(1)}/api/topics/feed/events`, {
      "last-event-id": "19",
    });
    try {
      assert.equal((await resumed.next()).data.from_offset, 20);
      const [next] = await resumed.messages(1, 15_000);
      assert.deepEqual([next.id, next.data.message], ["20", "after the kill"]);
    } finally {
      await resumed.close();
      for (const reader of readers) await reader.close();
    }
  } finally {
    await cluster.dispose();
  }
});
