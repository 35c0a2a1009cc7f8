import assert from "node:assert/strict";
import { PubSubClient } from "../../lib/client/client.ts";
import { PubSubError } from "../../lib/client/errors.ts";
import type { Subscription } from "../../lib/client/subscription.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { LogFailedError, StorageFullError } from "../../lib/storage/segment_log_store.ts";
import { ProtocolError } from "../../lib/wire/errors.ts";
import { startCluster } from "../_helpers/cluster_process.ts";
import { startPeer } from "../_helpers/peer_process.ts";
import { mountTmpfs, type Tmpfs, tmpfsUnavailable } from "../storage/_tmpfs.ts";
import { oneVoterTopic } from "./_one_voter_topic.ts";

const tmpfsProblem = await tmpfsUnavailable();
if (tmpfsProblem !== undefined) console.warn(`Ignoring the full-disk peer tests: ${tmpfsProblem}`);

/** How long writes may take to resume once space is freed (restarts retry within 1 s). */
const resumeTimeoutMs = 10_000;

Deno.test("A standalone (one-voter) topic refuses writes after a failed sync, serves reads meanwhile, and takes writes again by itself", async () => {
  const store = new MemoryLogStore();
  const { topic, close } = await oneVoterTopic("events", store);
  try {
    for (const text of ["a", "b", "c"]) {
      await topic.publish([text], { producerId: "p", sequence: text.charCodeAt(0) - 97 });
    }
    store.failNextSync(new StorageFullError("/data/topics/events"));
    const refusals = await Promise.allSettled([
      topic.publish(["lost 1"]),
      topic.publish(["lost 2"]),
    ]);
    for (const refusal of refusals) {
      assert.equal(refusal.status, "rejected");
      const error = (refusal as PromiseRejectedResult).reason;
      assert.ok(error instanceof ProtocolError && error.code === "storage_full", `${error}`);
      assert.match(error.message, /^The disk holding topic 'events' is full/);
    }
    assert.deepEqual((await topic.read(0, 10)).messages.map((item) => item.message), [
      "a",
      "b",
      "c",
    ]);
    // The producer's next sequence after the refused ones is still 3: nothing was stored.
    const offset = await eventually(() => topic.publish(["d"], { producerId: "p", sequence: 3 }));
    assert.equal(offset.firstOffset, 3);
    assert.deepEqual((await topic.read(0, 10)).messages.map((item) => item.message), [
      "a",
      "b",
      "c",
      "d",
    ]);
    // Another I/O error is `unavailable`, naming it.
    store.failNextSync(
      new LogFailedError(Object.assign(new Error("Input/output error"), { code: "EIO" }), "/d"),
    );
    await assert.rejects(topic.publish(["e"]), (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, "unavailable");
      assert.match(error.message, /EIO: Input\/output error/);
      return true;
    });
    assert.equal((await eventually(() => topic.publish(["e"]))).firstOffset, 4);
  } finally {
    await close();
  }
});

async function eventually<T>(attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + resumeTimeoutMs;
  while (true) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Takes `count` messages from `subscription`, failing after `timeoutMs`. */
async function take(subscription: Subscription, count: number, timeoutMs = 20_000) {
  const taken: { offset: number; message: string }[] = [];
  const deadline = Date.now() + timeoutMs;
  while (taken.length < count) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const next = await Promise.race([
      subscription.next(),
      new Promise<"timeout">((resolve) =>
        timer = setTimeout(() => resolve("timeout"), deadline - Date.now())
      ),
    ]);
    clearTimeout(timer);
    if (next === "timeout") {
      throw new Error(`Only ${taken.length} of ${count} messages arrived in time`);
    }
    assert.equal(next.done, false, `subscription ended after ${taken.length} messages`);
    taken.push(next.value!);
  }
  return taken;
}

/**
 * Leaves 256 KiB free on `tmpfs`, then publishes 8 KiB messages to 'events'
 * until one is refused with `storage_full`; returns the filler file, the
 * messages acknowledged (at dense offsets from 0) and the refusal.
 */
async function publishUntilFull(client: PubSubClient, tmpfs: Tmpfs) {
  const filler = await tmpfs.fill();
  await Deno.truncate(filler, (await Deno.stat(filler)).size - 256 * 1024);
  const acknowledged: string[] = [];
  for (let index = 0; index < 1000; index++) {
    const text = `message ${index} ${"x".repeat(8 * 1024)}`;
    try {
      assert.equal((await client.publish("events", text)).offset, index);
    } catch (refusal) {
      assert.ok(acknowledged.length > 0, "nothing was acknowledged before the disk filled");
      assert.ok(isStorageFull(refusal), `expected storage_full, got ${refusal}`);
      return { filler, acknowledged, refusal: refusal as Error };
    }
    acknowledged.push(text);
  }
  throw new Error("1000 publishes of 8 KiB did not fill the disk");
}

function isStorageFull(error: unknown): boolean {
  return error instanceof PubSubError && error.code === "storage_full";
}

Deno.test({
  name:
    "a standalone peer on a full disk answers storage_full, keeps serving every acknowledged message, and takes writes again once space is freed, without a restart",
  ignore: tmpfsProblem !== undefined,
  async fn() {
    const tmpfs = await mountTmpfs(4 * 1024 * 1024);
    const peer = await startPeer({
      dataDir: `${tmpfs.path}/data`,
      args: ["--standalone", "--log-level", "info"],
    });
    const client = await PubSubClient.connect({ peers: [peer.address] });
    try {
      await client.createTopic("events");
      const { filler, acknowledged, refusal } = await publishUntilFull(client, tmpfs);
      assert.match(
        refusal.message,
        /disk holding topic 'events' is full, so nothing was acknowledged/,
      );
      // Writes stay refused while the disk is full; reads and subscriptions go on.
      await assert.rejects(
        client.publish("events", "refused"),
        (error: unknown) => isStorageFull(error),
      );
      assert.deepEqual(await client.fetchMessages("events"), acknowledged);
      await assert.rejects(client.createTopic("other"), (error: unknown) => {
        assert.ok(isStorageFull(error), `expected storage_full, got ${error}`);
        assert.match((error as Error).message, /disk is full, so topic 'other' was not created/);
        return true;
      });
      assert.deepEqual(await client.topics(), ["events"]);
      const subscription = await client.subscribe("events", "reader", {
        from: "earliest",
        autoAck: false,
      });
      const delivered = await take(subscription, acknowledged.length);
      assert.deepEqual(delivered.map((item) => item.message), acknowledged);
      assert.deepEqual(
        delivered.map((item) => item.offset),
        acknowledged.map((_, offset) => offset),
      );

      await Deno.remove(filler);
      const started = Date.now();
      const { offset } = await eventually(() => client.publish("events", "after"));
      assert.ok(Date.now() - started < resumeTimeoutMs);
      assert.equal(offset, acknowledged.length, "a refused publish took an offset");
      assert.deepEqual(await client.fetchMessages("events"), [...acknowledged, "after"]);
      const [next] = await take(subscription, 1);
      assert.deepEqual(next, { offset: acknowledged.length, message: "after" });
      await subscription.close();

      // The same process all along, and one log line each way.
      assert.equal(
        await Promise.race([peer.status.then(() => "exited"), Promise.resolve("running")]),
        "running",
      );
      const output = peer.output();
      assert.equal(count(output, /The disk holding "?topic 'events'"? at /g), 1, output);
      assert.ok(output.includes(`${tmpfs.path}/data/topics/events`), output);
      assert.equal(count(output, /Writes to "?topic 'events'"? resumed/g), 1, output);
    } finally {
      await client.close();
      await peer.stop();
      await tmpfs.unmount();
    }
  },
});

for (
  const { kind, mode } of [
    { kind: "standalone peer", mode: ["--standalone"] },
    // Its metadata and its topic are one-voter Raft groups.
    { kind: "one-peer cluster", mode: ["--replication-factor", "1"] },
  ]
) {
  Deno.test({
    name:
      `a ${kind} killed and restarted on a still-full disk serves every acknowledged message, refuses writes at once, and takes them again once space is freed`,
    ignore: tmpfsProblem !== undefined,
    async fn() {
      const tmpfs = await mountTmpfs(4 * 1024 * 1024);
      const dataDir = `${tmpfs.path}/data`;
      const args = [...mode, "--log-level", "info"];
      let peer = await startPeer({ dataDir, args });
      let client = await PubSubClient.connect({ peers: [peer.address] });
      try {
        await client.createTopic("events");
        const { filler, acknowledged } = await publishUntilFull(client, tmpfs);
        await client.close();
        await peer.kill();

        // The restarted peer cannot write its vote, so its groups elect no
        // leader; what they committed before the crash is served all the same.
        peer = await startPeer({ port: peer.port, dataDir, args });
        client = await PubSubClient.connect({ peers: [peer.address] });
        assert.deepEqual(await client.topics(), ["events"]);
        const served = await client.fetchMessages("events");
        assert.equal(served.length, acknowledged.length, "messages served after the restart");
        assert.ok(served.every((text, index) => text === acknowledged[index]));
        const described = await client.describeTopic("events");
        assert.equal(described.nextOffset, acknowledged.length, JSON.stringify(described));
        const started = Date.now();
        await assert.rejects(client.publish("events", "refused"), (error: unknown) => {
          assert.ok(isStorageFull(error), `expected storage_full, got ${error}`);
          return true;
        });
        assert.ok(Date.now() - started < 2000, `storage_full took ${Date.now() - started} ms`);

        await Deno.remove(filler);
        const { offset } = await eventually(() => client.publish("events", "after"));
        assert.equal(offset, acknowledged.length, "a refused publish took an offset");
        assert.deepEqual(await client.fetchMessages("events"), [...acknowledged, "after"]);
      } catch (error) {
        console.log(`peer:\n${peer.output().slice(-3000)}`);
        throw error;
      } finally {
        await client.close();
        await peer.stop();
        await tmpfs.unmount();
      }
    },
  });
}

Deno.test({
  name:
    "a cluster peer whose disk fills keeps its replica readable, and catches up with every acknowledged message once space is freed, without a restart",
  ignore: tmpfsProblem !== undefined,
  async fn() {
    const tmpfs = await mountTmpfs(8 * 1024 * 1024);
    const cluster = await startCluster(3, {
      args: (id) => id === 3 ? ["--data-dir", `${tmpfs.path}/3`, "--log-level", "info"] : [],
    });
    const client = await cluster.client();
    const watcher = await PubSubClient.connect({ peers: [cluster.peer(3).address], retries: 20 });
    try {
      await client.createTopic("events");
      const acknowledged = new Map<number, string>();
      const publish = async (text: string) => {
        // A full leader answers storage_full until another replica leads: publish again.
        const { offset } = await eventually(() => client.publish("events", text));
        assert.ok(!acknowledged.has(offset), `offset ${offset} acknowledged twice`);
        acknowledged.set(offset, text);
      };
      for (let index = 0; index < 20; index++) await publish(`before ${index}`);
      const subscription = await watcher.subscribe("events", "watcher", {
        from: "earliest",
        autoAck: false,
      });
      assert.equal((await take(subscription, 20)).length, 20);

      const filler = await tmpfs.fill();
      for (let index = 0; index < 100; index++) await publish(`full ${index} ${"y".repeat(4096)}`);
      // Peer 3 could not store those; it said so once per replica, with the path.
      const fullLines = () =>
        cluster.peer(3).output().split("\n").filter((line) =>
          line.includes(" is full: writes are refused")
        );
      assert.ok(fullLines().length > 0, cluster.peer(3).output());
      assert.ok(fullLines().some((line) => line.includes(tmpfs.path)), fullLines().join("\n"));
      const subjects = fullLines().map((line) =>
        line.replace(/.*The disk holding "?(\S+ [^"\s]+)"? at .*/, "$1")
      );
      assert.equal(new Set(subjects).size, subjects.length, `logged more than once: ${subjects}`);

      // While full, peer 3 still serves what its replica applied.
      const reader = await watcher.subscribe("events", "reader", {
        from: "earliest",
        autoAck: false,
      });
      const early = await take(reader, 20);
      assert.deepEqual(
        early.map((item) => item.message),
        early.map((item) => acknowledged.get(item.offset)),
      );
      await reader.close();

      await Deno.remove(filler);
      for (let index = 0; index < 20; index++) await publish(`after ${index}`);
      // Peer 3's own replica serves every acknowledged message, in place.
      const total = acknowledged.size;
      const offsets = [...acknowledged.keys()].sort((left, right) => left - right);
      assert.deepEqual(offsets, offsets.map((_, index) => index), "acknowledged offsets have gaps");
      const delivered = await take(subscription, total - 20, 30_000);
      for (const { offset, message } of delivered) assert.equal(message, acknowledged.get(offset));
      assert.equal(delivered.at(-1)!.offset, total - 1);
      assert.deepEqual(
        await client.fetchMessages("events"),
        offsets.map((offset) => acknowledged.get(offset)),
      );
      await subscription.close();
      assert.equal(
        await Promise.race([
          cluster.peer(3).status.then(() => "exited"),
          Promise.resolve("running"),
        ]),
        "running",
      );
      assert.match(cluster.peer(3).output(), /Writes to "?topic 'events'"? resumed/);
    } finally {
      await watcher.close();
      await client.close();
      await cluster.dispose();
      await tmpfs.unmount();
    }
  },
});

Deno.test({
  name:
    "a cluster whose peers share one full disk answers storage_full at once, keeps its subscriptions, and takes writes again once space is freed",
  ignore: tmpfsProblem !== undefined,
  async fn() {
    const tmpfs = await mountTmpfs(16 * 1024 * 1024);
    const cluster = await startCluster(3, {
      args: (id) => ["--data-dir", `${tmpfs.path}/${id}`, "--log-level", "info"],
    });
    const client = await cluster.client();
    const readers: PubSubClient[] = [];
    try {
      await client.createTopic("events");
      const acknowledged: string[] = [];
      for (let index = 0; index < 10; index++) {
        const text = `before ${index}`;
        assert.equal((await client.publish("events", text)).offset, index);
        acknowledged.push(text);
      }
      // One subscriber per peer, each served by that peer's own replica.
      const subscriptions: Subscription[] = [];
      for (const peer of cluster.peers) {
        const reader = await PubSubClient.connect({ peers: [peer.address] });
        readers.push(reader);
        const subscription = await reader.subscribe("events", `reader-${peer.id}`, {
          from: "earliest",
          autoAck: false,
        });
        const delivered = await take(subscription, acknowledged.length);
        assert.deepEqual(delivered.map((item) => item.message), acknowledged);
        subscriptions.push(subscription);
      }

      const filler = await tmpfs.fill();
      for (let index = 0; index < 3; index++) {
        const started = Date.now();
        await assert.rejects(
          client.publish("events", `refused ${index} ${"z".repeat(4000)}`),
          (error: unknown) => isStorageFull(error),
        );
        // Answered by the replicas, not after a timeout.
        assert.ok(Date.now() - started < 2000, `storage_full took ${Date.now() - started} ms`);
      }

      await Deno.remove(filler);
      const { offset } = await eventually(() => client.publish("events", "after"));
      assert.equal(offset, acknowledged.length, "a refused publish took an offset");
      assert.deepEqual(await client.fetchMessages("events"), [...acknowledged, "after"]);
      // The subscriptions lived through it and get the next message, once.
      for (const subscription of subscriptions) {
        assert.deepEqual(await take(subscription, 1), [{ offset: 10, message: "after" }]);
      }
      // The leader and the follower its commits waited for met the full disk;
      // the lazy follower (`lazyFollowerSyncMs`) may have written the refused
      // publishes into its preallocated space before they were dropped.
      const reported = cluster.peers.filter((peer) =>
        /The disk holding "?topic 'events'"? at /.test(peer.output())
      );
      assert.ok(reported.length >= 2, `${reported.length} peers reported the full disk`);
      for (const peer of cluster.peers) {
        assert.equal(await Promise.race([peer.status.then(() => "exited"), "running"]), "running");
      }
    } catch (error) {
      // The peers' own account of what happened, for a failure's report.
      for (const peer of cluster.peers) {
        console.log(`peer ${peer.id}:\n${peer.output().slice(-3000)}`);
      }
      throw error;
    } finally {
      for (const reader of readers) await reader.close();
      await client.close();
      await cluster.dispose();
      await tmpfs.unmount();
    }
  },
});

function count(text: string, pattern: RegExp): number {
  return [...text.matchAll(pattern)].length;
}
