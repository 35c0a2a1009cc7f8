/**
 * `pubsub cluster` turns HTTP on for its peers and prints the console's
 * address; a peer whose HTTP port is taken gets a free one, and the printed
 * address names it.
 */
import assert from "node:assert/strict";
import { freePortRun } from "../_helpers/peer_process.ts";
import { request } from "./_http_cluster.ts";

const mainPath = new URL("../../main.ts", import.meta.url).pathname;

Deno.test("pubsub cluster serves HTTP on every peer and prints the console's address", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "pubsub-cluster-http-" });
  const base = freePortRun(3);
  const httpBase = freePortRun(3);
  // Peer 2's HTTP port is taken: it must get another one.
  const blocker = Deno.listen({ hostname: "127.0.0.1", port: httpBase + 1 });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", mainPath, "cluster", "--base-port", String(base)],
      ...["--http-base-port", String(httpBase), "--data-dir", dataDir, "--no-live"],
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
    while (!/Web console: .*\n/.test(output) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const line = /Web console: (\S+) \(every peer serves one: ([^)]*)\)/.exec(output);
    assert.ok(line, `no console address in:\n${output}`);
    assert.equal(line[1], `http://127.0.0.1:${httpBase}/`);
    const urls = line[2].split(" ");
    assert.equal(urls.length, 3);
    assert.equal(urls[0], `http://127.0.0.1:${httpBase}/`);
    assert.notEqual(urls[1], `http://127.0.0.1:${httpBase + 1}/`);
    assert.equal(urls[2], `http://127.0.0.1:${httpBase + 2}/`);
    for (const url of urls) {
      const status = await request(`${url}api/cluster`);
      assert.equal(status.status, 200);
      assert.equal(status.body.nodes.length, 3);
      const page = await fetch(url);
      assert.match(await page.text(), /pubsub console/);
    }
  } finally {
    child.kill("SIGINT");
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await child.status;
    clearTimeout(timer);
    await reading;
    blocker.close();
  }
  assert.equal((await child.status).code, 0, await errors);
  await Deno.remove(dataDir, { recursive: true });
});
