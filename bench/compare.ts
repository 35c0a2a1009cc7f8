/**
 * `deno task bench:compare`: the same workloads against a local 3-peer
 * pubsub cluster (R3, fsync before ack), NATS JetStream R1 (one server) and
 * a 3-server JetStream cluster with an R3 file stream; prints a table with
 * pubsub / NATS ratios and the numbers as JSON. Installs nothing: exits 2
 * when `nats-server` is missing. Every server is stopped by PID, also on
 * error.
 *
 * Usage: deno run -A bench/compare.ts [--duration S] [--message-size B] [--in-flight N]
 *
 * @module
 */

// Inline on purpose: only this comparison needs nats, so it stays out of deno.json.
// deno-lint-ignore no-import-prefix
import { connect, type JetStreamClient, type NatsConnection } from "npm:nats@^2";
import { LatencyHistogram } from "../lib/bench/histogram.ts";
import { startLocalCluster } from "../lib/bench/local_cluster.ts";
import { payloadOf } from "../lib/bench/workloads.ts";
import type { PubSubClient } from "../lib/client/client.ts";
import { NatsMissingError, natsVersion, startNats } from "./_nats_servers.ts";

/** Messages read per fetch request, on both systems. */
const fetchBatchMessages = 1000;
/** Longest time the consume workload may take. */
const consumeTimeoutMs = 60_000;

/** The operations every workload needs from a system. */
interface Target {
  name: string;
  publish(message: string): Promise<void>;
  /** Reads `count` stored messages from the start in batches; resolves to the count read. */
  readAll(count: number): Promise<number>;
  /** Subscribes to new messages; resolves once the subscription is active. */
  subscribe(onMessage: (message: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

interface Numbers {
  pipelinedPerSecond: number;
  sequentialP50Ms: number;
  sequentialP99Ms: number;
  readPerSecond: number;
  endToEndP50Ms: number;
  endToEndP99Ms: number;
}

const settings = parseArgs(Deno.args);

async function closedLoop(
  target: Target,
  inFlight: number,
  durationMs: number,
  payload: () => string,
  histogram?: LatencyHistogram,
): Promise<{ acked: number; elapsedMs: number }> {
  const startedMs = performance.now();
  let acked = 0;
  const worker = async () => {
    while (performance.now() - startedMs < durationMs) {
      const sentMs = performance.now();
      await target.publish(payload());
      histogram?.recordMilliseconds(performance.now() - sentMs);
      acked++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { acked, elapsedMs: performance.now() - startedMs };
}

async function measureTarget(target: Target): Promise<Numbers> {
  const durationMs = settings.durationSeconds * 1000;
  const payload = payloadOf(settings.messageBytes);
  const pipelined = await closedLoop(target, settings.inFlight, durationMs, () => payload);
  const sequential = new LatencyHistogram();
  const single = await closedLoop(target, 1, durationMs, () => payload, sequential);
  const stored = pipelined.acked + single.acked;
  const readStartMs = performance.now();
  const read = await target.readAll(stored);
  const readMs = performance.now() - readStartMs;
  if (read !== stored) throw new Error(`${target.name}: read ${read} of ${stored} messages`);
  const endToEnd = new LatencyHistogram();
  const unsubscribe = await target.subscribe((message) => {
    const sentMs = Number(message.slice(0, message.indexOf("|")));
    endToEnd.recordMilliseconds(Math.max(0, performance.now() - sentMs));
  });
  const e2e = await closedLoop(
    target,
    1,
    durationMs,
    () => payloadOf(settings.messageBytes, `${performance.now().toFixed(3)}|`),
  );
  const drainedBy = performance.now() + 5_000;
  while (endToEnd.count < e2e.acked && performance.now() < drainedBy) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await unsubscribe();
  return {
    pipelinedPerSecond: pipelined.acked * 1000 / pipelined.elapsedMs,
    sequentialP50Ms: sequential.percentile(50),
    sequentialP99Ms: sequential.percentile(99),
    readPerSecond: read * 1000 / readMs,
    endToEndP50Ms: endToEnd.percentile(50),
    endToEndP99Ms: endToEnd.percentile(99),
  };
}

function pubsubTarget(client: PubSubClient, subscriberClient: PubSubClient, topic: string): Target {
  return {
    name: "pubsub",
    publish: async (message) => void await client.publish(topic, message),
    readAll: async (count) => {
      let read = 0;
      let fromOffset = 0;
      while (read < count) {
        const batch = await client.fetch(topic, { fromOffset, max: fetchBatchMessages });
        if (batch.messages.length === 0) break;
        read += batch.messages.length;
        fromOffset = batch.nextOffset;
      }
      return read;
    },
    subscribe: async (onMessage) => {
      const subscription = await subscriberClient.subscribe(topic, "compare-e2e", {
        from: "latest",
      });
      const loop = (async () => {
        for await (const { message } of subscription) onMessage(message);
      })();
      return async () => {
        await subscription.close();
        await loop.catch(() => {});
      };
    },
    close: async () => {
      await Promise.all([client.close(), subscriberClient.close()]);
    },
  };
}

async function natsTarget(name: string, servers: string[], replicas: number): Promise<Target> {
  const connection: NatsConnection = await connect({ servers });
  const manager = await connection.jetstreamManager();
  // File storage as pubsub; R1 or R3 as asked. NATS 2.9 acks after its write() without fsync.
  await manager.streams.add({ name: "BENCH", subjects: ["bench"], num_replicas: replicas });
  const jetstream: JetStreamClient = connection.jetstream();
  const encoder = new TextEncoder();
  return {
    name,
    publish: async (message) => void await jetstream.publish("bench", encoder.encode(message)),
    readAll: async (count) => {
      const consumer = await jetstream.consumers.get("BENCH");
      let read = 0;
      const deadlineMs = performance.now() + consumeTimeoutMs;
      while (read < count && performance.now() < deadlineMs) {
        const batch = await consumer.fetch({ max_messages: fetchBatchMessages, expires: 2000 });
        for await (const _ of batch) read++;
      }
      return read;
    },
    subscribe: async (onMessage) => {
      const info = await manager.streams.info("BENCH");
      const consumer = await jetstream.consumers.get("BENCH", {
        opt_start_seq: info.state.last_seq + 1,
      });
      const messages = await consumer.consume();
      const loop = (async () => {
        for await (const message of messages) onMessage(message.string());
      })();
      return async () => {
        await messages.close();
        await loop.catch(() => {});
      };
    },
    close: async () => {
      await connection.drain();
    },
  };
}

async function runPubsub(): Promise<Numbers> {
  const cluster = await startLocalCluster(3);
  try {
    const client = await cluster.client();
    const subscriber = await cluster.client(cluster.nodes.map((node) => node.address).reverse());
    const target = pubsubTarget(client, subscriber, "compare");
    try {
      await client.createTopic("compare");
      return await measureTarget(target);
    } finally {
      await target.close();
    }
  } finally {
    await cluster.stop();
  }
}

async function runNats(name: string, nodes: number, replicas: number, commands: string[]) {
  const nats = await startNats(nodes);
  commands.push(...nats.commands);
  try {
    const target = await natsTarget(name, nats.servers, replicas);
    try {
      return await measureTarget(target);
    } finally {
      await target.close();
    }
  } finally {
    await nats.stop();
  }
}

interface CompareSettings {
  durationSeconds: number;
  messageBytes: number;
  inFlight: number;
}

/** Parses the few flags; a bad one ends the script with one line and exit code 2. */
function parseArgs(args: string[]): CompareSettings {
  const parsed: CompareSettings = { durationSeconds: 5, messageBytes: 100, inFlight: 128 };
  const names: Record<string, keyof CompareSettings> = {
    "--duration": "durationSeconds",
    "--message-size": "messageBytes",
    "--in-flight": "inFlight",
  };
  for (let index = 0; index < args.length; index += 2) {
    const key = names[args[index]];
    const value = Number(args[index + 1]);
    if (key === undefined || !Number.isInteger(value) || value < 1 || value > 1_000_000) {
      console.error(`compare: bad option '${args[index]} ${args[index + 1] ?? ""}'`.trim());
      Deno.exit(2);
    }
    parsed[key] = value;
  }
  return parsed;
}

const rows: [keyof Numbers, string, "higher" | "lower"][] = [
  ["pipelinedPerSecond", "publish throughput, acked, pipelined (msgs/s)", "higher"],
  ["sequentialP50Ms", "publish p50, one in flight (ms)", "lower"],
  ["sequentialP99Ms", "publish p99, one in flight (ms)", "lower"],
  ["readPerSecond", "fetch/consume throughput (msgs/s)", "higher"],
  ["endToEndP50Ms", "end-to-end p50 (ms)", "lower"],
  ["endToEndP99Ms", "end-to-end p99 (ms)", "lower"],
];

function table(results: Record<string, Numbers>): string {
  const names = Object.keys(results).filter((name) => name !== "pubsub");
  const header = ["workload", "pubsub", ...names, ...names.map((name) => `pubsub ÷ ${name}`)];
  const lines = [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`];
  const format = (value: number) =>
    value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toFixed(2);
  for (const [key, label, better] of rows) {
    const ours = results.pubsub[key];
    const cells = [label + ` (${better} is better)`, format(ours)];
    cells.push(...names.map((name) => format(results[name][key])));
    cells.push(...names.map((name) => `${(ours / results[name][key]).toFixed(2)}×`));
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

async function main(): Promise<number> {
  const version = await natsVersion();
  if (version === undefined) {
    console.error(`compare: ${new NatsMissingError().message}`);
    return 2;
  }
  console.log(`Comparing with ${version}; ${JSON.stringify(settings)}`);
  const commands: string[] = [];
  const results: Record<string, Numbers> = {};
  console.log("pubsub, local 3-peer cluster, R3, fsync before ack...");
  results.pubsub = await runPubsub();
  console.log("NATS JetStream R1 (one server, file storage)...");
  results["NATS R1"] = await runNats("NATS R1", 1, 1, commands);
  console.log("NATS JetStream R3 (3-server cluster, file storage)...");
  results["NATS R3"] = await runNats("NATS R3", 3, 3, commands);
  console.log(table(results));
  console.log(JSON.stringify({ settings, version, results, nats_commands: commands }));
  return 0;
}

if (import.meta.main) Deno.exit(await main());
