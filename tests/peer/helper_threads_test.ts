import assert from "node:assert/strict";
import { applyHelperThreadPolicy, helperThreadIds } from "../../lib/peer/helper_threads.ts";
import { startPeer } from "../_helpers/peer_process.ts";
import { schedIdle, schedOther, schedulingPolicy, threadsOf } from "../_helpers/threads.ts";

/** The scheduling policy (`sched(7)` numbering) of each V8 helper thread of process `pid`. */
function helperPolicies(pid: number): (number | undefined)[] {
  return threadsOf(pid)
    .filter((thread) => thread.name === "V8 DefaultWorke")
    .map((thread) => schedulingPolicy(pid, thread.tid));
}

const linux = Deno.build.os === "linux";

Deno.test({
  name:
    "a peer runs V8's helper threads at SCHED_IDLE, or leaves them with --helper-threads normal",
  ignore: !linux,
  async fn() {
    const idle = await startPeer({ args: ["--standalone"] });
    const normal = await startPeer({ args: ["--standalone", "--helper-threads", "normal"] });
    try {
      const idlePolicies = helperPolicies(idle.pid);
      assert.ok(idlePolicies.length > 0, "a Deno process has V8 helper threads");
      assert.deepEqual(idlePolicies, idlePolicies.map(() => schedIdle));
      const normalPolicies = helperPolicies(normal.pid);
      assert.ok(normalPolicies.length > 0);
      assert.deepEqual(normalPolicies, normalPolicies.map(() => schedOther));
    } finally {
      for (const peer of [idle, normal]) {
        await peer.stop();
        await Deno.remove(peer.dataDir, { recursive: true });
      }
    }
  },
});

Deno.test({
  name: "helperThreadIds finds this process's V8 helper threads; the 'normal' policy touches none",
  ignore: !linux,
  fn() {
    const ids = helperThreadIds();
    assert.ok(ids.length > 0);
    assert.deepEqual(helperPolicies(Deno.pid), ids.map(() => schedOther));
    assert.equal(applyHelperThreadPolicy("normal"), 0);
    assert.deepEqual(helperPolicies(Deno.pid), ids.map(() => schedOther));
  },
});
