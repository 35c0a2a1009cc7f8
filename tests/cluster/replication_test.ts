import assert from "node:assert/strict";
import type { PubSubClient } from "../../lib/client/client.ts";
import {
  replicaMessages,
  startCluster,
  type TestCluster,
  waitFor,
  waitForFullReplication,
} from "../_helpers/cluster_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";
import { tlsUnavailable } from "../_helpers/tls.ts";

async function leaderOf(client: PubSubClient, topic: string): Promise<number> {
  return await waitFor(
    `a leader of ${topic}`,
    async () => (await client.describeTopic(topic)).leader ?? false,
  );
}

async function allInSync(client: PubSubClient, topic: string, count: number): Promise<void> {
  await waitFor(`${count} in-sync replicas of ${topic}`, async () => {
    const info = await client.describeTopic(topic);
    return info.inSync.length === count && info.replicas.length === count;
  }, 30_000);
}

/** Publishes `prefix-i` one after another until `stop` is set; returns what was acknowledged. */
async function publishUntil(
  client: PubSubClient,
  topic: string,
  prefix: string,
  stop: { value: boolean },
  acknowledged: { offset: number; message: string; at: number }[],
): Promise<void> {
  for (let index = 0; !stop.value && index < 100_000; index++) {
    const message = `${prefix}-${index}`;
    try {
      const { offset } = await client.publish(topic, message);
      acknowledged.push({ offset, message, at: performance.now() });
    } catch {
      // Not acknowledged: it may or may not be stored, so nothing is asserted about it.
    }
  }
}

/** Stops the cluster once every replica holds the whole log, and reads each replica's messages. */
async function stopAndCompareReplicas(cluster: TestCluster, topic: string) {
  await waitForFullReplication(cluster, topic);
  await cluster.stopAll();
  const replicas = await Promise.all(
    cluster.peers.map((peer) => replicaMessages(peer.dataDir, topic)),
  );
  return replicas;
}

function rawOptions(cluster: TestCluster): { caCerts?: string[] } {
  return cluster.tls === undefined ? {} : { caCerts: [cluster.tls.ca] };
}

// Every replication test runs twice: with a cluster secret (as `pubsub
// cluster` runs) and with TLS on client and peer links as well, so a TLS
// cluster is shown to replicate exactly like one without.
const modes = [
  { security: "secret", label: "", ignore: undefined },
  { security: "tls", label: " (TLS)", ignore: await tlsUnavailable() },
] as const;
for (const mode of modes) {
  if (mode.ignore !== undefined) console.log(`skipping the TLS replication tests: ${mode.ignore}`);
}

for (const mode of modes) {
  Deno.test(
    `acknowledged publishes survive a leader kill and restart, once and in order on every replica${mode.label}`,
    { ignore: mode.ignore !== undefined },
    async () => {
      const cluster = await startCluster(3, { security: mode.security, metrics: true });
      const client = await cluster.client();
      try {
        await client.createTopic("orders");
        await allInSync(client, "orders", 3);
        const acknowledged: { offset: number; message: string; at: number }[] = [];
        const stop = { value: false };
        const publishing = publishUntil(client, "orders", "m", stop, acknowledged);
        await waitFor("some publishes", () => acknowledged.length >= 50);

        const leader = await leaderOf(client, "orders");
        const killedAt = performance.now();
        await cluster.peer(leader).kill("SIGKILL");
        await waitFor(
          "publishes after the kill",
          () => acknowledged.some((item) => item.at > killedAt + 1),
        );
        const failoverMs = acknowledged.find((item) => item.at > killedAt)!.at - killedAt;
        console.log(
          `failover: first publish acknowledged ${failoverMs.toFixed(0)} ms after the leader kill`,
        );
        await cluster.start(leader);
        await waitFor("publishes after the restart", () => acknowledged.length >= 400, 30_000);
        stop.value = true;
        await publishing;
        await allInSync(client, "orders", 3);
        await client.close();

        const replicas = await stopAndCompareReplicas(cluster, "orders");
        for (const replica of replicas) assert.deepEqual(replica, replicas[0], "replicas differ");
        const stored = replicas[0];
        for (const { offset, message } of acknowledged) assert.equal(stored[offset], message);
        // Without producer retries across the kill nothing may appear twice.
        const counts = new Map<string, number>();
        for (const message of stored) counts.set(message, (counts.get(message) ?? 0) + 1);
        for (const { message } of acknowledged) {
          assert.equal(counts.get(message), 1, `${message} stored twice`);
        }
        // Acknowledged offsets keep publish order.
        const offsets = acknowledged.map((item) => item.offset);
        assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b));
      } finally {
        await client.close().catch(() => {});
        await cluster.dispose();
      }
    },
  );

  Deno.test(
    `a subscriber on a surviving peer receives every message without gaps across a leader kill${mode.label}`,
    { ignore: mode.ignore !== undefined },
    async () => {
      const cluster = await startCluster(3, { security: mode.security });
      const client = await cluster.client();
      try {
        await client.createTopic("feed");
        await allInSync(client, "feed", 3);
        const leader = await leaderOf(client, "feed");
        const survivor = cluster.peers.find((peer) => peer.id !== leader)!;
        const subscriber = await RawClient.connect(survivor.port, rawOptions(cluster));
        await subscriber.request({
          action: "subscribe",
          topic_name: "feed",
          subscriber_id: "s1",
          from: "earliest",
        });
        const acknowledged: { offset: number; message: string; at: number }[] = [];
        const stop = { value: false };
        const publishing = publishUntil(client, "feed", "f", stop, acknowledged);
        await waitFor("some publishes", () => acknowledged.length >= 30);
        await cluster.peer(leader).kill("SIGKILL");
        const countAtKill = acknowledged.length;
        await waitFor(
          "publishes after the kill",
          () => acknowledged.length >= countAtKill + 50,
          30_000,
        );
        stop.value = true;
        await publishing;

        const delivered: { offset: number; message: string }[] = [];
        const last = Math.max(...acknowledged.map((item) => item.offset));
        while (delivered.length === 0 || delivered.at(-1)!.offset < last) {
          const event = await subscriber.next(15_000) as {
            event?: string;
            offset: number;
            message: string;
          };
          if (event.event === "message") delivered.push(event);
        }
        delivered.forEach((event, index) => assert.equal(event.offset, index, "a gap or a repeat"));
        for (const { offset, message } of acknowledged) {
          assert.equal(delivered[offset].message, message);
        }
        await subscriber.close();
      } finally {
        await client.close().catch(() => {});
        await cluster.dispose();
      }
    },
  );

  Deno.test(
    `a peer cut off from the majority acknowledges nothing and serves again once the majority is back${mode.label}`,
    { ignore: mode.ignore !== undefined },
    async () => {
      const cluster = await startCluster(3, { security: mode.security });
      const setup = await cluster.client();
      try {
        await setup.createTopic("votes");
        await allInSync(setup, "votes", 3);
        await setup.publish("votes", "before");
        await setup.close();
        const [lonely, ...paused] = cluster.peers;
        for (const peer of paused) await peer.kill("SIGSTOP");
        const raw = await RawClient.connect(lonely.port, rawOptions(cluster));
        const answer = await raw.request(
          { action: "publish", topic_name: "votes", message: "while-cut-off" },
          15_000,
        ) as { status: string };
        assert.equal(answer.status, "unavailable");
        for (const peer of paused) await peer.kill("SIGCONT");
        const after = await waitFor("a publish after the majority returns", async () => {
          const result = await raw.request(
            { action: "publish", topic_name: "votes", message: "after" },
            15_000,
          ) as {
            status: string;
          };
          return result.status === "message_published" ? result : false;
        }, 30_000);
        assert.equal(after.status, "message_published");
        const messages = await raw.request({
          action: "fetch_messages",
          topic_name: "votes",
        }) as string[];
        assert.ok(Array.isArray(messages), JSON.stringify(messages));
        assert.equal(messages[0], "before");
        assert.ok(messages.includes("after"));
        await raw.close();
      } finally {
        for (const peer of cluster.peers) await peer.kill("SIGCONT").catch(() => {});
        await cluster.dispose();
      }
    },
  );

  Deno.test(
    `a whole cluster restarted from its data directories serves everything it acknowledged${mode.label}`,
    { ignore: mode.ignore !== undefined },
    async () => {
      const cluster = await startCluster(3, { security: mode.security });
      let client = await cluster.client();
      try {
        await client.createTopic("keep");
        const stored = [];
        for (let index = 0; index < 30; index++) {
          stored.push((await client.publish("keep", `m${index}`)).offset);
        }
        await client.close();
        await cluster.stopAll();
        for (const id of [1, 2, 3]) await cluster.start(id);
        client = await cluster.client();
        const messages = await waitFor(
          "a fetch after the restart",
          () => client.fetchMessages("keep"),
        );
        assert.deepEqual(messages, stored.map((offset) => `m${offset}`));
        await client.publish("keep", "after");
        assert.equal((await client.fetchMessages("keep")).at(-1), "after");
      } finally {
        await client.close().catch(() => {});
        await cluster.dispose();
      }
    },
  );

  Deno.test(
    `a leader killed and restarted under load catches up, and the next leader kill fails over too${mode.label}`,
    { ignore: mode.ignore !== undefined },
    async () => {
      const cluster = await startCluster(3, { security: mode.security, metrics: true });
      const client = await cluster.client();
      try {
        await client.createTopic("churn");
        await allInSync(client, "churn", 3);
        const acknowledged: { offset: number; message: string; at: number }[] = [];
        const stop = { value: false };
        // Several producers keep batches large, so a restarted peer needs catch-up
        // appends bigger than a client frame.
        const producers = Array.from(
          { length: 8 },
          (_, index) => publishUntil(client, "churn", `p${index}`, stop, acknowledged),
        );
        for (let round = 0; round < 2; round++) {
          await waitFor("load", () => acknowledged.length >= (round + 1) * 300);
          const leader = await leaderOf(client, "churn");
          await cluster.peer(leader).kill("SIGKILL");
          const countAtKill = acknowledged.length;
          await waitFor(
            "publishes after the kill",
            () => acknowledged.length >= countAtKill + 100,
            30_000,
          );
          await cluster.start(leader);
          await allInSync(client, "churn", 3);
        }
        stop.value = true;
        await Promise.all(producers);
        await allInSync(client, "churn", 3);
        await client.close();
        const replicas = await stopAndCompareReplicas(cluster, "churn");
        for (const replica of replicas) assert.deepEqual(replica, replicas[0], "replicas differ");
        for (const { offset, message } of acknowledged) assert.equal(replicas[0][offset], message);
      } finally {
        await client.close().catch(() => {});
        await cluster.dispose();
      }
    },
  );

  Deno.test(
    `a subscriber on a peer without a replica of the topic receives every message by streaming from the leader${mode.label}`,
    { ignore: mode.ignore !== undefined },
    async () => {
      const cluster = await startCluster(4, { security: mode.security });
      const client = await cluster.client();
      try {
        await client.createTopic("remote", { replicationFactor: 3 });
        await allInSync(client, "remote", 3);
        const { replicas } = await client.describeTopic("remote");
        const outsider = cluster.peers.find((peer) => !replicas.includes(peer.id))!;
        const subscriber = await RawClient.connect(outsider.port, rawOptions(cluster));
        assert.deepEqual(
          await subscriber.request({
            action: "subscribe",
            topic_name: "remote",
            subscriber_id: "far",
          }),
          { status: "subscribed", topic: "remote", subscriber_id: "far" },
        );
        const published = [];
        for (let index = 0; index < 40; index++) {
          published.push((await client.publish("remote", `r${index}`)).offset);
        }
        const delivered = [];
        while (delivered.length < published.length) {
          const event = await subscriber.next(15_000) as {
            event?: string;
            offset: number;
            message: string;
          };
          if (event.event === "message") delivered.push(event);
        }
        assert.deepEqual(delivered.map((event) => event.offset), published);
        assert.deepEqual(
          delivered.map((event) => event.message),
          published.map((offset) => `r${offset}`),
        );
        await subscriber.close();
      } finally {
        await client.close().catch(() => {});
        await cluster.dispose();
      }
    },
  );

  Deno.test(
    `an idle topic whose replicas sleep still fails over when its leader is killed${mode.label}`,
    { ignore: mode.ignore !== undefined },
    async () => {
      const cluster = await startCluster(3, { security: mode.security });
      const client = await cluster.client();
      try {
        await client.createTopic("quiet");
        await allInSync(client, "quiet", 3);
        await client.publish("quiet", "before");
        // Two seconds without traffic let the group sleep (no ticks, no heartbeats).
        await new Promise((resolve) => setTimeout(resolve, 3500));
        const leader = await leaderOf(client, "quiet");
        await cluster.peer(leader).kill("SIGKILL");
        const started = performance.now();
        const { offset } = await client.publish("quiet", "after");
        console.log(`idle topic failed over in ${(performance.now() - started).toFixed(0)} ms`);
        assert.equal(offset, 1);
        assert.deepEqual(await client.fetchMessages("quiet"), ["before", "after"]);
      } finally {
        await client.close().catch(() => {});
        await cluster.dispose();
      }
    },
  );
}
