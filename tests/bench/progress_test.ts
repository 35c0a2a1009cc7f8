import assert from "node:assert/strict";
import { formatProgress, Progress } from "../../lib/bench/progress.ts";

function harness(isTerminal: boolean, intervalMs: number) {
  const outputs: string[] = [];
  let nowMs = 1_000;
  const progress = new Progress("publish", {
    unit: "msgs",
    isTerminal,
    intervalMs,
    now: () => nowMs,
    write: (text) => outputs.push(text),
  });
  return { outputs, progress, advance: (ms: number) => (nowMs += ms) };
}

Deno.test("formatProgress shows phase, elapsed seconds, grouped count and rate", () => {
  assert.equal(
    formatProgress("publish", 12_300, 45_000, "msgs"),
    "publish  12.3s  45,000 msgs  3,659 msgs/s",
  );
  assert.equal(formatProgress("fetch", 0, 10, "ops"), "fetch  0.0s  10 ops  0 ops/s");
});

Deno.test("Progress redraws one line in place on a terminal at most once per interval", () => {
  const { outputs, progress, advance } = harness(true, 100);
  progress.update(1);
  advance(50);
  progress.update(2);
  advance(60);
  progress.update(300);
  progress.done();
  assert.deepEqual(outputs, [
    "\r\x1b[2Kpublish  0.0s  1 msgs  0 msgs/s",
    "\r\x1b[2Kpublish  0.1s  300 msgs  2,727 msgs/s",
    "\r\x1b[2Kpublish  0.1s  300 msgs  2,727 msgs/s\n",
  ]);
});

Deno.test("Progress prints plain periodic lines when not on a terminal", () => {
  const { outputs, progress, advance } = harness(false, 5_000);
  for (let second = 1; second <= 10; second++) {
    advance(1_000);
    progress.add(100);
  }
  progress.done();
  assert.deepEqual(outputs, [
    "publish  1.0s  100 msgs  100 msgs/s\n",
    "publish  6.0s  600 msgs  100 msgs/s\n",
    "publish  10.0s  1,000 msgs  100 msgs/s (done)\n",
  ]);
  assert.ok(outputs.every((text) => !text.includes("\r")));
});

Deno.test("Progress refuses updates after done", () => {
  const { progress } = harness(false, 0);
  progress.done();
  assert.throws(() => progress.update(1), /after done\(\)/);
});
