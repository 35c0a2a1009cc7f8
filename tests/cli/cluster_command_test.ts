import assert from "node:assert/strict";
import { PubSubClient } from "../../lib/client/client.ts";
import { freePortRun } from "../_helpers/peer_process.ts";

const mainPath = new URL("../../main.ts", import.meta.url).pathname;

Deno.test("pubsub cluster starts three peers that replicate, and Ctrl-C stops them all", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "pubsub-cluster-cmd-" });
  const base = freePortRun();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      mainPath,
      "cluster",
      "--base-port",
      String(base),
      "--data-dir",
      dataDir,
      "--no-live",
      "--refresh-ms",
      "500",
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let output = "";
  const reading = (async () => {
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) output += text;
  })();
  const errors = new Response(child.stderr).text();
  try {
    const deadline = Date.now() + 60_000;
    // Both lines of the announcement (they may arrive in separate reads).
    while (!/Started 3 peers[^]*client --peers .*\n/.test(output) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.match(output, /Started 3 peers/);
    assert.match(output, new RegExp(`client --peers 127\\.0\\.0\\.1:${base},`));
    const client = await PubSubClient.connect({
      peers: [0, 1, 2].map((offset) => `127.0.0.1:${base + offset}`),
    });
    await client.createTopic("tour");
    await client.publish("tour", "hello");
    const info = await client.describeTopic("tour");
    assert.equal(info.replicas.length, 3);
    assert.deepEqual(await client.fetchMessages("tour"), ["hello"]);
    await client.close();
    // The status lines show every peer up.
    while (!/node 3 up/.test(output) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    // Ctrl-C, and wait for the launcher to stop its peers even when an
    // assertion above failed; SIGKILL only if it does not exit in time.
    child.kill("SIGINT");
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await child.status;
    clearTimeout(timer);
    await reading;
  }
  const status = await child.status;
  assert.equal(status.code, 0, await errors);
  assert.match(output, /All peers stopped/);
  for (let offset = 0; offset < 3; offset++) {
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: base + offset }));
  }
  await Deno.remove(dataDir, { recursive: true });
});
