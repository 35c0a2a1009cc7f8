/**
 * HTTP publish throughput against the TCP protocol, on the same local
 * 3-peer cluster (cluster secret, R3, every ack after an fsync on 2 of 3
 * peers), through the same peer, with 100-byte messages:
 *
 * - TCP: `PubSubClient` (one connection, requests pipelined), not idempotent;
 * - HTTP: `fetch` POSTs to `/api/topics/{t}/messages` (keep-alive
 *   connections, one request in flight per connection), no Producer-Id.
 *
 * Each workload publishes to a fresh topic for `--duration` seconds per
 * protocol, `--rounds` times with the two protocols taking turns (the order
 * flips every round, so background load hits both alike); the table shows
 * the median round and latency percentiles over all rounds.
 *
 * ```sh
 * deno run -A bench/http_publish.ts --duration 5 --rounds 3
 * ```
 *
 * @module
 */

import { peerV8Flags } from "../lib/peer/memory_trim.ts";
import { PubSubClient } from "../lib/client/client.ts";
import { ensureSecretFile } from "../lib/cluster/secret_file.ts";

const mainPath = new URL("../main.ts", import.meta.url).pathname;
const messageBytes = 100;
const batchSize = 100;

interface Result {
  protocol: "TCP" | "HTTP";
  workload: string;
  messages: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

interface Peer {
  id: number;
  port: number;
  httpPort: number;
  process: Deno.ChildProcess;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function startPeers(root: string, count: number): Promise<Peer[]> {
  const ports = Array.from({ length: count }, () => freePort());
  const httpPorts = Array.from({ length: count }, () => freePort());
  const list = ports.map((port, index) => `${index + 1}@127.0.0.1:${port}`).join(",");
  const secret = await ensureSecretFile(`${root}/cluster.secret`);
  const peers: Peer[] = [];
  for (let index = 0; index < count; index++) {
    const process = new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "-A", peerV8Flags, mainPath, "peer", "--id", String(index + 1)],
        ...["--port", String(ports[index]), "--http-port", String(httpPorts[index])],
        ...["--peers", list, "--data-dir", `${root}/${index + 1}`],
        ...["--cluster-secret-file", secret, "--log-level", "warning"],
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let output = "";
    const deadline = Date.now() + 30_000;
    while (!output.includes("listening on")) {
      if (Date.now() > deadline) throw new Error(`Peer ${index + 1} did not start`);
      const { value, done } = await reader.read();
      if (done) throw new Error(`Peer ${index + 1} exited: ${output}`);
      output += value;
    }
    reader.releaseLock();
    process.stdout.cancel().catch(() => {});
    peers.push({ id: index + 1, port: ports[index], httpPort: httpPorts[index], process });
  }
  const client = await PubSubClient.connect({
    peers: peers.map((peer) => `127.0.0.1:${peer.port}`),
  });
  try {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const status = await client.clusterStatus().catch(() => undefined);
      if (status?.nodes.filter((node) => node.state === "alive").length === count) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    await client.close();
  }
  return peers;
}

/** Runs `workers` loops of `send` for `seconds`; each send publishes `perSend` messages. */
async function drive(
  workers: number,
  seconds: number,
  perSend: number,
  send: () => Promise<void>,
): Promise<{ messages: number; seconds: number; latencies: number[] }> {
  const latencies: number[] = [];
  const started = performance.now();
  const end = started + seconds * 1000;
  let messages = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (performance.now() < end) {
      const before = performance.now();
      await send();
      latencies.push(performance.now() - before);
      messages += perSend;
    }
  }));
  return { messages, seconds: (performance.now() - started) / 1000, latencies };
}

function percentile(values: number[], fraction: number): number {
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? 0;
}

const usage = `Usage: deno run -A bench/http_publish.ts [options]

HTTP publish throughput against the TCP protocol on the same local 3-peer
cluster, the two protocols taking turns.

Options:
  --duration N  seconds per protocol and round (default 5)
  --rounds N    rounds (default 3)
  --help        show this text`;

/** The bench's flags; exits 0 after printing the usage for --help, 2 naming a wrong flag. */
function parseFlags(args: string[]): { seconds: number; rounds: number } {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage);
    Deno.exit(0);
  }
  const settings = { seconds: 5, rounds: 3 };
  for (let index = 0; index < args.length; index += 2) {
    const [flag, text] = [args[index], args[index + 1]];
    const value = Number(text);
    const key = flag === "--duration" ? "seconds" : flag === "--rounds" ? "rounds" : undefined;
    if (key === undefined) {
      console.error(`http_publish: '${flag}' is not a flag of bench/http_publish.ts (see --help)`);
      Deno.exit(2);
    }
    if (!Number.isSafeInteger(value) || value < 1) {
      console.error(`http_publish: ${flag} must be a positive integer: current value is '${text}'`);
      Deno.exit(2);
    }
    settings[key] = value;
  }
  return settings;
}

async function main(args: string[]): Promise<void> {
  const { seconds, rounds } = parseFlags(args);
  const root = await Deno.makeTempDir({ prefix: "pubsub-http-bench-" });
  const peers = await startPeers(root, 3);
  const entry = peers[0];
  const base = `http://127.0.0.1:${entry.httpPort}`;
  const message = "m".repeat(messageBytes);
  const batch = Array.from({ length: batchSize }, () => message);
  const tcp = await PubSubClient.connect({
    peers: [`127.0.0.1:${entry.port}`],
    idempotent: false,
  });
  const results: Result[] = [];
  const latencies = new Map<string, number[]>();
  let topicNumber = 0;
  const freshTopic = async () => {
    const name = `bench-${++topicNumber}`;
    const answer = await fetch(`${base}/api/topics`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name }),
    });
    await answer.body?.cancel();
    // Let the new group elect and settle.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    return name;
  };
  const httpPost = async (topic: string, body: string, json: boolean) => {
    const response = await fetch(`${base}/api/topics/${topic}/messages`, {
      method: "POST",
      headers: { "content-type": json ? "application/json" : "text/plain" },
      body,
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
    await response.body?.cancel();
  };
  const workloads: {
    name: string;
    workers: number;
    perSend: number;
    tcp: (topic: string) => Promise<void>;
    http: (topic: string) => Promise<void>;
  }[] = [
    {
      name: "1 publish in flight",
      workers: 1,
      perSend: 1,
      tcp: (topic) => tcp.publish(topic, message).then(() => {}),
      http: (topic) => httpPost(topic, message, false),
    },
    {
      name: "64 publishes in flight",
      workers: 64,
      perSend: 1,
      tcp: (topic) => tcp.publish(topic, message).then(() => {}),
      http: (topic) => httpPost(topic, message, false),
    },
    {
      name: `batches of ${batchSize}, 8 in flight`,
      workers: 8,
      perSend: batchSize,
      tcp: (topic) => tcp.publishBatch(topic, batch).then(() => {}),
      http: (topic) => httpPost(topic, JSON.stringify(batch), true),
    },
  ];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const workload of workloads) {
        const order = round % 2 === 0 ? ["TCP", "HTTP"] as const : ["HTTP", "TCP"] as const;
        for (const protocol of order) {
          const topic = await freshTopic();
          const send = protocol === "TCP" ? workload.tcp : workload.http;
          const run = await drive(workload.workers, seconds, workload.perSend, () => send(topic));
          const key = `${protocol} ${workload.name}`;
          latencies.set(key, [...(latencies.get(key) ?? []), ...run.latencies]);
          const result: Result = {
            protocol,
            workload: workload.name,
            messages: run.messages,
            seconds: run.seconds,
            perSecond: run.messages / run.seconds,
            p50Ms: percentile(run.latencies, 0.5),
            p99Ms: percentile(run.latencies, 0.99),
          };
          results.push(result);
          console.error(
            `round ${round + 1} ${protocol.padEnd(4)} ${workload.name.padEnd(28)} ${
              Math.round(result.perSecond).toLocaleString("en-US").padStart(8)
            } msgs/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms`,
          );
        }
      }
    }
  } finally {
    await tcp.close();
    for (const peer of peers) {
      try {
        peer.process.kill("SIGTERM");
      } catch { /* gone */ }
      await peer.process.status;
    }
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
  console.log(
    "| workload | TCP msgs/s | HTTP msgs/s | HTTP/TCP | TCP p50 / p99 | HTTP p50 / p99 |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  const median = (values: number[]) => values.slice().sort((a, b) => a - b)[values.length >> 1];
  for (const workload of workloads) {
    const [t, h] = ["TCP", "HTTP"].map((protocol) =>
      median(
        results.filter((result) =>
          result.protocol === protocol && result.workload === workload.name
        )
          .map((result) => result.perSecond),
      )
    );
    const spread = (protocol: string) => {
      const all = latencies.get(`${protocol} ${workload.name}`) ?? [];
      return `${percentile(all, 0.5).toFixed(2)} / ${percentile(all, 0.99).toFixed(1)} ms`;
    };
    console.log(
      `| ${workload.name} | ${Math.round(t).toLocaleString("en-US")} | ${
        Math.round(h).toLocaleString("en-US")
      } | ${(h / t).toFixed(2)}x | ${spread("TCP")} | ${spread("HTTP")} |`,
    );
  }
}

if (import.meta.main) await main(Deno.args);
