import { runPubsub } from "../_helpers/peer_process.ts";
import assert from "node:assert/strict";
import { RawClient } from "../_helpers/raw_client.ts";
import { startCluster, waitFor } from "../_helpers/cluster_process.ts";

/** Runs `pubsub client <args>` to its exit, and how long that took. */
async function runClient(args: string[]) {
  const started = Date.now();
  const run = await runPubsub(["client", ...args]);
  return { run, elapsedMs: Date.now() - started };
}

Deno.test("without a quorum a publish fails within --timeout, naming the peers that are missing", async () => {
  const cluster = await startCluster(3);
  const client = await cluster.client();
  try {
    await client.createTopic("lonely");
    await waitFor(
      "3 in-sync replicas",
      async () => (await client.describeTopic("lonely")).inSync.length === 3,
    );
    await client.close();
    await cluster.peer(2).kill("SIGKILL");
    await cluster.peer(3).kill("SIGKILL");
    const survivor = cluster.peer(1);

    // The protocol answer: unavailable, one sentence naming the missing peers.
    const raw = await RawClient.connect(survivor.port);
    try {
      const answer = await raw.request(
        { action: "publish", topic_name: "lonely", message: "x" },
        15_000,
      ) as { status: string; error: string };
      assert.equal(answer.status, "unavailable");
      assert.match(answer.error, /peers 2 and 3 are not reachable/);
      assert.match(answer.error, /2 of its 3 voters/);
    } finally {
      await raw.close();
    }

    // The one-shot command: exit 1 within its --timeout (retries included), same sentence.
    // Its process start-up (the same modules, loaded by `client --help`) is
    // measured first: on a loaded machine it alone can take seconds.
    const startupMs = (await runClient(["--help"])).elapsedMs;
    const { run, elapsedMs } = await runClient([
      ...["--peers", survivor.address, "--timeout", "4000", "publish", "lonely", "x"],
    ]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      /^pubsub: Topic 'lonely' has no leader: peers 2 and 3 are not reachable/,
    );
    // 4 s of --timeout plus the process's own start-up; it used to take 35 s.
    assert.ok(elapsedMs < startupMs + 14_000, `took ${elapsedMs} ms (start-up ${startupMs} ms)`);
  } finally {
    await client.close();
    await cluster.dispose();
  }
});
