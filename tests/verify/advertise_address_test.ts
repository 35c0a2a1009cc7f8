import { equal, ok } from "node:assert/strict";
import { PubSubClient } from "../../lib/client/client.ts";
import { FaultProxy } from "../../lib/verify/proxy.ts";
import { freePort, programOutput, startPeer } from "../_helpers/peer_process.ts";

const mainPath = new URL("../../main.ts", import.meta.url).pathname;

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000) {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

Deno.test("pubsub peer --advertise-address makes the other peers dial that address", async () => {
  const proxy = new FaultProxy();
  const [port1, port2] = [freePort(), freePort()];
  const proxy1 = proxy.listen(1, { hostname: "127.0.0.1", port: port1 });
  const proxy2 = proxy.listen(2, { hostname: "127.0.0.1", port: port2 });
  const peers = `1@${proxy1},2@${proxy2}`;
  const first = await startPeer({
    id: 1,
    port: port1,
    peers,
    args: ["--advertise-address", proxy1, "--heartbeat-ms", "200", "--dead-after", "2000"],
  });
  const second = await startPeer({
    id: 2,
    port: port2,
    peers,
    args: ["--advertise-address", proxy2, "--heartbeat-ms", "200", "--dead-after", "2000"],
  });
  const client = await PubSubClient.connect({ peers: [first.address] });
  try {
    await until("both peers alive, at their advertised addresses", async () => {
      const { nodes } = await client.clusterStatus();
      return nodes.length === 2 && nodes.every((node) => node.state === "alive") &&
        nodes.find((node) => node.id === 1)?.address === proxy1 &&
        nodes.find((node) => node.id === 2)?.address === proxy2;
    });
    await until("links dialed both ways through the proxy", () => {
      const dialed = (from: number, to: number) =>
        proxy.stats().some((entry) =>
          entry.from === from && entry.to === to && entry.connections > 0
        );
      return Promise.resolve(dialed(1, 2) && dialed(2, 1));
    });
    // Cut apart through the proxy, each soon sees the other dead: all their traffic went there.
    proxy.partition([1], [2]);
    await until("node 2 dead as node 1 sees it", async () => {
      const { nodes } = await client.clusterStatus();
      return nodes.find((node) => node.id === 2)?.state === "dead";
    });
    proxy.heal();
    await until("node 2 alive again", async () => {
      const { nodes } = await client.clusterStatus();
      return nodes.find((node) => node.id === 2)?.state === "alive";
    });
  } finally {
    await client.close();
    await second.stop();
    await first.stop();
    await proxy.close();
    await Deno.remove(first.dataDir, { recursive: true });
    await Deno.remove(second.dataDir, { recursive: true });
  }
});

Deno.test("pubsub peer refuses a malformed --advertise-address with one line and exit code 2", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      mainPath,
      "peer",
      "--id",
      "1",
      "--port",
      "1",
      "--advertise-address",
      "nope",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = programOutput(output.stderr);
  equal(output.code, 2);
  equal(stderr.trim().split("\n").length, 1);
  ok(stderr.includes("--advertise-address"), stderr);
});
