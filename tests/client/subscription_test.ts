/**
 * `Subscription` on its own, with a host that records the requests it
 * sends: duplicates pushed again after a move are dropped and make it ack
 * again, so the connection that pushed them releases its window.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ackDelayMs, Subscription, type SubscriptionHost } from "../../lib/client/subscription.ts";

function recordingHost(): { host: SubscriptionHost; acks: number[] } {
  const acks: number[] = [];
  return {
    acks,
    host: {
      request: (body) => {
        if (body.action === "ack") acks.push(body.offset as number);
        return Promise.resolve({ status: "acked" });
      },
      detach: () => {},
    },
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("a subscription drops offsets it has and acks again when they were acked before", async () => {
  const { host, acks } = recordingHost();
  const subscription = new Subscription(host, "t", "s", { maxInFlight: 100, autoAck: true });
  try {
    for (let offset = 0; offset < 5; offset++) subscription.deliver(offset, `m${offset}`);
    for (let offset = 0; offset < 5; offset++) {
      assert.deepEqual(await subscription.next(), {
        value: { offset, message: `m${offset}` },
        done: false,
      });
    }
    await pause(ackDelayMs * 3);
    assert.deepEqual(acks, [4], "one coalesced ack");
    // Not yet acked, only received: dropped without an ack.
    subscription.deliver(5, "m5");
    subscription.deliver(5, "m5 again");
    await pause(ackDelayMs * 3);
    assert.deepEqual(acks, [4]);
    // Acked before (on the old connection): dropped, and the ack goes out again.
    subscription.deliver(3, "m3 again");
    subscription.deliver(4, "m4 again");
    await pause(ackDelayMs * 3);
    assert.deepEqual(acks, [4, 4]);
    assert.deepEqual(await subscription.next(), {
      value: { offset: 5, message: "m5" },
      done: false,
    });
    await pause(ackDelayMs * 3);
    assert.deepEqual(acks, [4, 4, 5]);
    // After a move: the same ack once more, for the new connection.
    subscription.reack();
    await pause(ackDelayMs * 3);
    assert.deepEqual(acks, [4, 4, 5, 5]);
  } finally {
    await subscription.close();
  }
});
