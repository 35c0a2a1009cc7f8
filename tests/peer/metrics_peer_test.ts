import assert from "node:assert/strict";
import { freePort, programOutput, startPeer } from "../_helpers/peer_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";

Deno.test("a peer with --metrics-port serves its request, latency and replication metrics", async () => {
  const metricsPort = freePort();
  const peer = await startPeer({ args: ["--metrics-port", String(metricsPort)] });
  try {
    const client = await RawClient.connect(peer.port);
    await client.request({ action: "create_topic", topic_name: "observed" });
    await client.request({ action: "publish", topic_name: "observed", message: "x" });
    await client.request({ action: "fetch", topic_name: "observed" });
    await client.request({ action: "publish", topic_name: "missing", message: "x" });
    await client.close();
    // Gauges are computed at the scrape: no wait for a refresh.
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.match(text, /pubsub_requests_total\{action="publish",status="message_published"\} 1/);
    assert.match(text, /pubsub_requests_total\{action="publish",status="topic_not_found"\} 1/);
    assert.match(text, /pubsub_publish_latency_seconds_count 2/);
    assert.match(text, /pubsub_fetch_latency_seconds_count 1/);
    assert.match(text, /pubsub_raft_term\{group="t:observed"\} [1-9]/);
    assert.match(text, /pubsub_replica_lag_entries\{topic="observed"\} 0/);
    assert.match(text, /pubsub_leader_changes_total [1-9]/);
    assert.match(text, /pubsub_connections [0-9]/);
    assert.match(text, /pubsub_bytes_stored [1-9]/);
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("a peer with --metrics-token-file answers /metrics 401 without the Bearer token and 200 with it", async () => {
  const metricsPort = freePort();
  const tokenFile = await Deno.makeTempFile();
  await Deno.writeTextFile(tokenFile, "scrape-secret\n");
  const peer = await startPeer({
    args: ["--metrics-port", String(metricsPort), "--metrics-token-file", tokenFile],
  });
  const url = `http://127.0.0.1:${metricsPort}/metrics`;
  try {
    const missing = await fetch(url);
    assert.equal(missing.status, 401);
    assert.match(missing.headers.get("www-authenticate") ?? "", /^Bearer /);
    assert.doesNotMatch(await missing.text(), /pubsub_/);
    for (const authorization of ["Bearer wrong", "Bearer scrape-secret2", "Basic scrape-secret"]) {
      const refused = await fetch(url, { headers: { authorization } });
      assert.equal(refused.status, 401, authorization);
      await refused.body?.cancel();
    }
    const other = await fetch(`http://127.0.0.1:${metricsPort}/other`);
    assert.equal(other.status, 401);
    await other.body?.cancel();
    const allowed = await fetch(url, { headers: { authorization: "Bearer scrape-secret" } });
    assert.equal(allowed.status, 200);
    assert.match(await allowed.text(), /pubsub_connections /);
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
    await Deno.remove(tokenFile);
  }
});

Deno.test("pubsub peer refuses --metrics-token-file without --metrics-port with exit 2", async () => {
  const tokenFile = await Deno.makeTempFile();
  await Deno.writeTextFile(tokenFile, "scrape-secret\n");
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../main.ts", import.meta.url).pathname,
        ...["peer", "--id", "1", "--port", String(freePort()), "--host", "127.0.0.1"],
        ...["--metrics-token-file", tokenFile],
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const output = await child.output();
    clearTimeout(timer);
    const stderr = programOutput(output.stderr);
    assert.equal(output.code, 2, stderr);
    assert.deepEqual(stderr.trimEnd().split("\n"), [
      "pubsub: Option --metrics-token-file needs --metrics-port",
    ]);
  } finally {
    await Deno.remove(tokenFile);
  }
});
