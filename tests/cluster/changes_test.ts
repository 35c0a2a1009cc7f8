/**
 * `waitUntil` keeps one timer for its whole wait: a burst of changes wakes
 * every waiter, and each used to schedule a new timer per wake-up.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Changes, waitUntil } from "../../lib/cluster/_changes.ts";
import { ManualScheduler } from "../../lib/cluster/manual_scheduler.ts";
import type { Cancel, Scheduler } from "../../lib/cluster/runtime.ts";

/** A ManualScheduler that counts the timers scheduled on it. */
function countingScheduler(): {
  scheduler: Scheduler;
  manual: ManualScheduler;
  timers: () => number;
} {
  const manual = new ManualScheduler();
  let timers = 0;
  const scheduler: Scheduler = {
    now: () => manual.now(),
    schedule: (delayMs: number, task: () => void): Cancel => {
      timers++;
      return manual.schedule(delayMs, task);
    },
    every: (intervalMs: number, task: () => void) => manual.every(intervalMs, task),
    defer: (task: () => void) => manual.defer(task),
  };
  return { scheduler, manual, timers: () => timers };
}

Deno.test("waitUntil schedules one timer however many changes wake it, and cancels it when done", async () => {
  const { scheduler, manual, timers } = countingScheduler();
  const changes = new Changes();
  let checks = 0;
  let ready = false;
  const waiters = Array.from({ length: 100 }, () =>
    waitUntil(() => {
      checks++;
      return ready || undefined;
    }, { scheduler, changes, timeoutMs: 5000 }));
  for (let change = 0; change < 50; change++) {
    changes.notify();
    await Promise.resolve();
    await Promise.resolve();
  }
  assert.equal(checks, 100 * 51, "every waiter checked again at every change");
  assert.equal(timers(), 100, "one timer per wait, not one per change");
  ready = true;
  changes.notify();
  assert.deepEqual(await Promise.all(waiters), Array(100).fill(true));
  assert.equal(manual.pendingTimers, 0, "the timers are cancelled once the waits end");
  assert.equal(changes.waiting, 0);
});

Deno.test("waitUntil re-arms its one timer once when the grace period ends, then times out", async () => {
  const { scheduler, manual, timers } = countingScheduler();
  const changes = new Changes();
  let outcome: string | undefined = "pending";
  const waiting = waitUntil(() => undefined, {
    scheduler,
    changes,
    timeoutMs: 5000,
    graceMs: 1000,
    quorumLost: () => false,
  }).then((value) => outcome = value);
  manual.advance(1000);
  await Promise.resolve();
  await Promise.resolve();
  changes.notify();
  await Promise.resolve();
  manual.advance(3999);
  await Promise.resolve();
  assert.equal(outcome, "pending");
  manual.advance(1);
  await waiting;
  assert.equal(outcome, undefined);
  assert.equal(timers(), 2, "the grace period's end, then the deadline");
  assert.equal(changes.waiting, 0, "the timed-out wait left no waiter behind");
});
