/**
 * `bench/compare.ts` measures NATS R3 with an fsync on every write only on
 * a nats-server that has `sync_interval: always` (2.10 and later), and
 * deploys a NATS cluster again when it did not come up.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  natsCanSyncAlways,
  NatsDeploymentError,
  natsStartTimeoutMs,
  startNats,
  withRedeploys,
} from "../../bench/_nats_servers.ts";

Deno.test("natsCanSyncAlways is true from nats-server 2.10 on", () => {
  assert.equal(natsCanSyncAlways("nats-server: v2.9.10"), false);
  assert.equal(natsCanSyncAlways("nats-server: v2.10.0"), true);
  assert.equal(natsCanSyncAlways("nats-server: v2.10.27"), true);
  assert.equal(natsCanSyncAlways("nats-server: v2.14.4"), true);
  assert.equal(natsCanSyncAlways("nats-server: v3.0.1"), true);
  assert.equal(natsCanSyncAlways("nats-server: v1.4.1"), false);
});

Deno.test("natsCanSyncAlways is false for a version line it cannot read", () => {
  assert.equal(natsCanSyncAlways("nats-server version unknown"), false);
  assert.equal(natsCanSyncAlways(""), false);
});

/** Runs `withRedeploys` over deployments that fail as `outcomes` say, with warnings kept. */
async function redeploy(outcomes: (Error | "ok")[], attempts: number) {
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (line: string) => void warnings.push(line);
  let deployments = 0;
  try {
    const result = await withRedeploys(() => {
      const outcome = outcomes[deployments++];
      return outcome === "ok" ? Promise.resolve("measured") : Promise.reject(outcome);
    }, attempts);
    return { result, deployments, warnings };
  } catch (error) {
    return { error, deployments, warnings };
  } finally {
    console.warn = warn;
  }
}

Deno.test("withRedeploys deploys again while the stream is not created, up to its attempts", async () => {
  const missing = () => new NatsDeploymentError("NATS R3: stream not created within 30000 ms");
  const recovered = await redeploy([missing(), missing(), "ok"], 3);
  assert.equal(recovered.result, "measured");
  assert.equal(recovered.deployments, 3);
  assert.deepEqual(recovered.warnings, [
    "NATS R3: stream not created within 30000 ms; deploying it again (attempt 2 of 3)",
    "NATS R3: stream not created within 30000 ms; deploying it again (attempt 3 of 3)",
  ]);
  const last = missing();
  const failed = await redeploy([missing(), missing(), last, "ok"], 3);
  assert.equal(failed.error, last, "the last deployment's error");
  assert.equal(failed.deployments, 3);
});

Deno.test("withRedeploys does not deploy again after any other error", async () => {
  const other = new Error("nats-server exited with code 1");
  const failed = await redeploy([other, "ok"], 3);
  assert.equal(failed.error, other);
  assert.equal(failed.deployments, 1);
  assert.deepEqual(failed.warnings, []);
});

Deno.test("startNats fails at once, with the server's own error, when a server exits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pubsub-fake-nats-" });
  try {
    // Stands in for nats-server: logs a fatal error to its -l file and exits 1.
    const program = `${dir}/nats-server`;
    await Deno.writeTextFile(
      program,
      '#!/bin/sh\necho "[1] 2026/12/02 03:00:00.000000 [FTL] Error listening on port: busy" > "$4"\nexit 1\n',
    );
    await Deno.chmod(program, 0o755);
    const startedMs = performance.now();
    await assert.rejects(startNats(3, { program }), (error: unknown) => {
      assert.ok(error instanceof NatsDeploymentError, String(error));
      assert.match(
        error.message,
        /^NATS server n\d exited with code 1 \(n\d: Error listening on port: busy\)$/,
      );
      return true;
    });
    assert.ok(performance.now() - startedMs < natsStartTimeoutMs, "before the listen timeout");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
