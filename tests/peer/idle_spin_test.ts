import assert from "node:assert/strict";
import { kickIdleSpin, spinUsMax, startIdleSpin } from "../../lib/peer/idle_spin.ts";
import { waitFor } from "../_helpers/cluster_process.ts";
import { programOutput, startPeer } from "../_helpers/peer_process.ts";
import { schedIdle, schedulingPolicy, threadsOf } from "../_helpers/threads.ts";

const mainPath = new URL("../../main.ts", import.meta.url).pathname;
const linux = Deno.build.os === "linux";

/** Threads of `pid` at SCHED_IDLE that are not V8's helpers: the spinner, if one runs. */
function spinnerThreads(pid: number): number[] {
  return threadsOf(pid)
    .filter((thread) => thread.name !== "V8 DefaultWorke")
    .filter((thread) => schedulingPolicy(pid, thread.tid) === schedIdle)
    .map((thread) => thread.tid);
}

/** Polls `condition` (every 100 ms, as `waitFor` does) until it holds, for at most 10 s. */
function until(what: string, condition: () => boolean): Promise<true> {
  return waitFor(what, () => condition() || undefined, 10_000);
}

Deno.test({
  name: "the idle spinner runs at SCHED_IDLE, parks once its time passed without a kick, " +
    "spins again on a kick, and ends on stop",
  ignore: !linux,
  async fn() {
    const spin = startIdleSpin(20_000);
    assert.ok(spin !== undefined, "a spinner starts on Linux with --allow-ffi");
    try {
      const start = await spin.started;
      assert.equal(start.outcome, "spinning", JSON.stringify(start));
      const tid = (start as { tid: number }).tid;
      assert.equal(schedulingPolicy(Deno.pid, tid), schedIdle);
      // 20 ms after it started without a kick it parks; it stays parked.
      await until("the first park", () => spin.parks === 1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(spin.parks, 1, "a parked spinner stays parked without kicks");
      // A kick wakes it; it spins its 20 ms again and parks a second time.
      kickIdleSpin();
      await until("the second park", () => spin.parks === 2);
      spin.stop();
      await until("the spinner thread to end", () => schedulingPolicy(Deno.pid, tid) === undefined);
      kickIdleSpin(); // After stop: nothing to kick, no error.
      assert.equal(spin.parks, 2);
    } finally {
      spin.stop();
    }
  },
});

Deno.test("no idle spinner for 0 µs; kicks without one do nothing", () => {
  assert.equal(startIdleSpin(0), undefined);
  kickIdleSpin();
});

Deno.test({
  name: "a peer spins at SCHED_IDLE with --spin-us 250, and not by default",
  ignore: !linux,
  async fn() {
    const spinning = await startPeer({ args: ["--standalone", "--spin-us", "250"] });
    const quiet = await startPeer({ args: ["--standalone"] });
    try {
      await until("the spinner thread", () => spinnerThreads(spinning.pid).length === 1);
      // The other peer had as long to start one.
      assert.deepEqual(spinnerThreads(quiet.pid), []);
    } finally {
      for (const peer of [spinning, quiet]) {
        await peer.stop();
        await Deno.remove(peer.dataDir, { recursive: true });
      }
    }
  },
});

for (const bad of ["-1", "abc", String(spinUsMax + 1)]) {
  Deno.test(`pubsub peer --spin-us ${bad} is refused with one line and exit code 2`, async () => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", mainPath, "peer", "--id", "1", "--port", "1", "--spin-us", bad],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = programOutput(output.stderr);
    assert.equal(output.code, 2);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
    assert.ok(stderr.includes("--spin-us"), stderr);
  });
}
