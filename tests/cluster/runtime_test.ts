import assert from "node:assert/strict";
import { Changes, waitUntil } from "../../lib/cluster/_changes.ts";
import { ManualScheduler } from "../../lib/cluster/manual_scheduler.ts";
import { delay } from "../../lib/cluster/runtime.ts";
import { AckBuffer, ackFlushMs } from "../../lib/peer/ack_buffer.ts";

Deno.test("ManualScheduler runs timers due at the same moment in the order they were scheduled", () => {
  const scheduler = new ManualScheduler(1000);
  const ran: string[] = [];
  scheduler.schedule(20, () => ran.push("b"));
  scheduler.schedule(10, () => ran.push("a"));
  scheduler.schedule(20, () => ran.push("c"));
  const cancel = scheduler.every(15, () => ran.push(`tick@${scheduler.now()}`));
  scheduler.advance(30);
  cancel();
  scheduler.advance(100);
  assert.deepEqual(ran, ["a", "tick@1015", "b", "c", "tick@1030"]);
  assert.equal(scheduler.now(), 1130);
});

Deno.test("ManualScheduler runs deferred tasks, and those they defer, before the next timer", () => {
  const scheduler = new ManualScheduler();
  const ran: string[] = [];
  scheduler.schedule(1, () => ran.push("timer"));
  scheduler.defer(() => {
    ran.push("first");
    scheduler.defer(() => ran.push("second"));
  });
  scheduler.advance(1);
  assert.deepEqual(ran, ["first", "second", "timer"]);
});

Deno.test("Changes wakes each waiter once, at the next notify", () => {
  const changes = new Changes();
  const woken: string[] = [];
  changes.once(() => woken.push("a"));
  changes.once(() => woken.push("b"));
  assert.equal(changes.waiting, 2);
  changes.notify();
  assert.deepEqual(woken, ["a", "b"]);
  assert.equal(changes.waiting, 0);
  changes.notify();
  assert.deepEqual(woken, ["a", "b"], "a waiter is woken once");
});

Deno.test("Changes does not wake a waiter that withdrew", () => {
  const changes = new Changes();
  let woken = false;
  const withdraw = changes.once(() => woken = true);
  withdraw();
  assert.equal(changes.waiting, 0);
  changes.notify();
  assert.equal(woken, false);
});

Deno.test("delay resolves on the injected scheduler, or at once when its signal aborts", async () => {
  const scheduler = new ManualScheduler();
  let done = false;
  const waiting = delay(scheduler, 200).then(() => done = true);
  scheduler.advance(200);
  await waiting;
  assert.equal(done, true);
  const controller = new AbortController();
  const aborted = delay(scheduler, 10_000, controller.signal);
  controller.abort();
  await aborted;
  assert.equal(scheduler.pendingTimers, 0);
});

Deno.test("AckBuffer writes buffered acks as one entry after ackFlushMs of the injected timers", () => {
  const scheduler = new ManualScheduler();
  const written: Record<string, number>[] = [];
  const acks = new AckBuffer(new Map(), (offsets) => written.push(offsets), { timers: scheduler });
  acks.ack("u1", 3);
  acks.ack("u2", 5);
  acks.ack("u1", 4);
  scheduler.advance(ackFlushMs - 1);
  assert.deepEqual(written, []);
  scheduler.advance(1);
  assert.deepEqual(written, [{ u1: 4, u2: 5 }]);
  acks.ack("u1", 9);
  acks.cancel();
  scheduler.advance(ackFlushMs);
  assert.equal(written.length, 1, "a cancelled buffer writes nothing");
});

Deno.test("waitUntil resolves as soon as a change makes its check succeed, without time passing", async () => {
  const scheduler = new ManualScheduler();
  const changes = new Changes();
  let leader = 0;
  const waiting = waitUntil(() => leader || undefined, { scheduler, changes, timeoutMs: 5000 });
  await Promise.resolve();
  leader = 2;
  changes.notify();
  assert.equal(await waiting, 2);
  assert.equal(scheduler.now(), 0);
  assert.equal(scheduler.pendingTimers, 0);
});

Deno.test("waitUntil gives up at its timeout when no change helps", async () => {
  const scheduler = new ManualScheduler();
  const changes = new Changes();
  let checks = 0;
  let outcome: string | undefined = "pending";
  const waiting = waitUntil(() => {
    checks++;
    return undefined;
  }, { scheduler, changes, timeoutMs: 5000 }).then((value) => outcome = value);
  changes.notify();
  await Promise.resolve();
  scheduler.advance(4999);
  await Promise.resolve();
  assert.equal(outcome, "pending");
  scheduler.advance(1);
  await waiting;
  assert.equal(outcome, undefined);
  assert.equal(checks, 3, "checked at the start, after the change and at the timeout only");
});

Deno.test("waitUntil gives up once the quorum is lost after the grace period, before its timeout", async () => {
  const scheduler = new ManualScheduler();
  const changes = new Changes();
  let settled = false;
  const waiting = waitUntil(() => undefined, {
    scheduler,
    changes,
    timeoutMs: 5000,
    graceMs: 1000,
    quorumLost: () => true,
  }).then(() => settled = true);
  scheduler.advance(999);
  await Promise.resolve();
  assert.equal(settled, false, "a lost quorum is not believed during the grace period");
  scheduler.advance(1);
  await waiting;
  assert.equal(scheduler.now(), 1000);
});

Deno.test("waitUntil ends with the error its check throws", async () => {
  const scheduler = new ManualScheduler();
  const changes = new Changes();
  let moved = false;
  const waiting = waitUntil(() => {
    if (moved) throw new Error("Elsewhere");
    return undefined;
  }, { scheduler, changes, timeoutMs: 5000 });
  moved = true;
  changes.notify();
  await assert.rejects(waiting, /Elsewhere/);
});
