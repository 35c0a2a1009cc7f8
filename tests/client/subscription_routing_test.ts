/**
 * Where `PubSubClient` holds a subscription on a real 3-peer cluster: it
 * moves to the topic's leader (whose pushes do not wait for a follower to
 * learn the commit), its acks go there too (a small `maxInFlight` would
 * stall otherwise), and after the leader is killed it resubscribes and
 * ends up on the new leader, with every offset delivered once, in order.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startCluster, type TestCluster, waitFor } from "../_helpers/cluster_process.ts";
import { PubSubClient } from "../../lib/client/client.ts";
import type { SubscribedMessage, Subscription } from "../../lib/client/subscription.ts";
import { type Proxy, startProxy } from "./_proxy.ts";

/** How long one message may take to arrive before the test fails (a stalled window). */
const takeTimeoutMs = 30_000;

/** The next `count` messages of `subscription`, failing if one takes longer than `takeTimeoutMs`. */
async function take(subscription: Subscription, count: number): Promise<SubscribedMessage[]> {
  const taken: SubscribedMessage[] = [];
  while (taken.length < count) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const next = await Promise.race([
      subscription.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`No message after ${taken.length} of ${count}`)),
          takeTimeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    assert.equal(next.done, false, `subscription ended after ${taken.length} messages`);
    taken.push(next.value);
  }
  return taken;
}

/** The leader of `topic` as a peer that answers, once one other than `not` leads. */
async function leaderOf(cluster: TestCluster, topic: string, not?: number): Promise<number> {
  return await waitFor(`a leader of '${topic}' other than ${not}`, async () => {
    for (const peer of cluster.peers) {
      const client = await PubSubClient.connect({ peers: [peer.address], retries: 0 })
        .catch(() => undefined);
      if (client === undefined) continue;
      try {
        const { leader } = await client.describeTopic(topic);
        if (leader !== null && leader !== not) return leader;
      } catch {
        // This peer cannot tell now: ask the next.
      } finally {
        await client.close();
      }
    }
    return undefined;
  });
}

/** Publishes `messages` one after the other, in order. */
async function publishAll(client: PubSubClient, topic: string, messages: string[]): Promise<void> {
  for (const message of messages) await client.publish(topic, message);
}

function range(from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, index) => `m${from + index}`);
}

/** Asserts `taken` holds offsets `from`.. in order with their messages `m<offset>`. */
function assertInOrder(taken: SubscribedMessage[], from: number): void {
  assert.deepEqual(
    taken.map(({ offset, message }) => `${offset}:${message}`),
    taken.map((_, index) => `${from + index}:m${from + index}`),
  );
}

Deno.test("a subscription opened through a follower moves to the leader's connection and its acks follow it", async () => {
  const cluster = await startCluster(3);
  const publisher = await cluster.client();
  let subscriber: PubSubClient | undefined;
  try {
    await publisher.createTopic("placed");
    const leader = await leaderOf(cluster, "placed");
    const follower = cluster.peers.find((peer) => peer.id !== leader)!;
    // The follower first: the subscribe goes home, to the follower.
    subscriber = await PubSubClient.connect({
      peers: [
        follower.address,
        ...cluster.peers.filter((p) => p !== follower).map((p) => p.address),
      ],
      leaderRefreshMs: 200,
    });
    assert.equal(subscriber.address, follower.address);
    // A window of 4: without acks on the connection that holds it, delivery stops after 4.
    const subscription = await subscriber.subscribe("placed", "mover", {
      from: "earliest",
      maxInFlight: 4,
    });
    // Published while the subscription moves.
    const during = publishAll(publisher, "placed", range(0, 100));
    const first = await take(subscription, 100);
    await during;
    assertInOrder(first, 0);
    await waitFor(
      "the subscription on the leader's connection",
      () => subscriber!.subscriptionAddress("placed", "mover") === cluster.peer(leader).address,
    );
    await publishAll(publisher, "placed", range(100, 200));
    assertInOrder(await take(subscription, 100), 100);
    await subscription.close();
    assert.equal(subscriber.subscriptionAddress("placed", "mover"), undefined);
  } finally {
    await subscriber?.close();
    await publisher.close();
    await cluster.dispose();
  }
});

Deno.test("a subscription on the leader resubscribes after the leader is killed, twice, and ends up on the new leader with every offset once", async () => {
  const cluster = await startCluster(3);
  const publisher = await cluster.client();
  let subscriber: PubSubClient | undefined;
  try {
    await publisher.createTopic("failover", { replicationFactor: 3 });
    const first = await leaderOf(cluster, "failover");
    subscriber = await PubSubClient.connect({
      peers: cluster.peers.map((peer) => peer.address),
      leaderRefreshMs: 200,
      retries: 20,
    });
    const subscription = await subscriber.subscribe("failover", "survivor", {
      from: "earliest",
      maxInFlight: 8,
    });
    await waitFor(
      "the subscription on the first leader's connection",
      () => subscriber!.subscriptionAddress("failover", "survivor") === cluster.peer(first).address,
    );
    await publishAll(publisher, "failover", range(0, 50));
    assertInOrder(await take(subscription, 50), 0);

    await cluster.peer(first).kill("SIGKILL");
    const second = await leaderOf(cluster, "failover", first);
    await publishAll(publisher, "failover", range(50, 100));
    assertInOrder(await take(subscription, 50), 50);
    await waitFor(
      "the subscription on the second leader's connection",
      () =>
        subscriber!.subscriptionAddress("failover", "survivor") === cluster.peer(second).address,
    );

    // The first leader comes back; then the second one dies.
    await cluster.start(first);
    await publishAll(publisher, "failover", range(100, 120));
    assertInOrder(await take(subscription, 20), 100);
    await cluster.peer(second).kill("SIGKILL");
    const third = await leaderOf(cluster, "failover", second);
    await publishAll(publisher, "failover", range(120, 170));
    assertInOrder(await take(subscription, 50), 120);
    await waitFor(
      "the subscription on the third leader's connection",
      () => subscriber!.subscriptionAddress("failover", "survivor") === cluster.peer(third).address,
    );
    await publishAll(publisher, "failover", range(170, 200));
    assertInOrder(await take(subscription, 30), 170);
  } finally {
    await subscriber?.close();
    await publisher.close();
    await cluster.dispose();
  }
});

Deno.test("a subscribe the leader refuses leaves the subscription where it is until the leader takes it, and each unsubscribe goes to the connection that held it", async () => {
  const cluster = await startCluster(3);
  const publisher = await cluster.client();
  const proxies: Proxy[] = [];
  let subscriber: PubSubClient | undefined;
  try {
    await publisher.createTopic("refused");
    const leader = await leaderOf(cluster, "refused");
    // Followers first: home is a follower's proxy; the leader's proxy refuses two subscribes.
    const peers = [...cluster.peers].sort((a, b) =>
      Number(a.id === leader) - Number(b.id === leader)
    );
    let refusals = 2;
    for (const peer of peers) {
      const leads = peer.id === leader;
      proxies.push(startProxy({ hostname: "127.0.0.1", port: peer.port }, (request) => {
        if (leads && request.action === "subscribe" && refusals > 0) {
          refusals--;
          return {
            kind: "answer",
            response: { status: "unavailable", error: "Not the leader right now." },
          };
        }
        return { kind: "forward" };
      }));
    }
    const [home, , leaderProxy] = proxies;
    const actions = (proxy: Proxy, action: string) =>
      proxy.requests.filter((request) => request.action === action).length;
    subscriber = await PubSubClient.connect({
      peers: proxies.map((proxy) => proxy.address),
      leaderRefreshMs: 200,
    });
    const subscription = await subscriber.subscribe("refused", "patient", {
      from: "earliest",
      maxInFlight: 4,
    });
    await publishAll(publisher, "refused", range(0, 30));
    assertInOrder(await take(subscription, 30), 0);
    await waitFor(
      "the subscription on the leader's connection",
      () => subscriber!.subscriptionAddress("refused", "patient") === leaderProxy.address,
    );
    assert.equal(refusals, 0);
    assert.equal(actions(leaderProxy, "subscribe"), 3, "two refused, the third taken");
    // The follower that held it was told to let go, once.
    await waitFor(
      "the unsubscribe on the old connection",
      () => actions(home, "unsubscribe") === 1,
    );
    await publishAll(publisher, "refused", range(30, 60));
    assertInOrder(await take(subscription, 30), 30);
    assert.ok(actions(leaderProxy, "ack") > 0, "acks go to the leader's connection");
    await subscription.close();
    assert.equal(actions(leaderProxy, "unsubscribe"), 1);
    assert.equal(actions(home, "unsubscribe"), 1);
  } finally {
    await subscriber?.close();
    await publisher.close();
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await cluster.dispose();
  }
});
