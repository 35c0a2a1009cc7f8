import { LatencyHistogram } from "../../lib/bench/histogram.ts";
import { type BenchRun, latencyDistribution, type MachineInfo } from "../../lib/bench/report.ts";
import { throughputSteps } from "../../lib/bench/timeline.ts";

/** A deterministic pseudo-random sequence (LCG), so the synthetic run never changes. */
function sequence(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
}

function histogram(
  next: () => number,
  baseMs: number,
  tailMs: number,
  count = 20_000,
): LatencyHistogram {
  const latencies = new LatencyHistogram();
  for (let index = 0; index < count; index++) {
    latencies.recordMilliseconds(baseMs + next() ** 8 * tailMs);
  }
  return latencies;
}

/**
 * Acknowledgement instants of a load of about `ratePerSecond` over
 * `seconds`, with nothing acknowledged for `outageMs` after each kill.
 */
function acknowledgements(
  next: () => number,
  seconds: number,
  ratePerSecond: number,
  killsMs: readonly number[],
  outageMs: readonly number[],
): number[] {
  const acks: number[] = [];
  for (let atMs = 0; atMs < seconds * 1000; atMs += 1000 / ratePerSecond * (0.5 + next())) {
    const down = killsMs.some((killMs, index) => atMs >= killMs && atMs < killMs + outageMs[index]);
    if (!down) acks.push(atMs);
  }
  return acks;
}

/** A plausible run of 3 peers with two leader kills, for report tests and examples. */
export function syntheticRun(): BenchRun {
  const next = sequence(42);
  const kills = [{ atSeconds: 20.2, label: "leader of 'orders' killed" }, {
    atSeconds: 40.1,
    label: "peer 2 killed",
  }];
  const killsMs = kills.map((kill) => kill.atSeconds * 1000);
  const steps = throughputSteps(
    acknowledgements(next, 60, 2000, killsMs, [1200, 1450]),
    { startMs: 0, endMs: 60_000 },
    { killsMs },
  );
  return {
    title: "pubsub bench <3 peers> & friends",
    startedAt: "2025-01-02T03:04:05.000Z",
    durationSeconds: 61.5,
    configuration: {
      peers: 3,
      replicationFactor: 3,
      messageBytes: 1024,
      iterations: 20,
      pipelined: true,
    },
    checks: [
      { name: "Primary node availability", ok: true, detail: "peer 1 (port 5001) answered" },
      { name: "Replica failover", ok: true, detail: "fetched 500 messages from peer 2" },
      {
        name: "Data consistency after recovery",
        ok: false,
        detail: "peer 3 has 499 of 500 | lagging",
      },
    ],
    iterations: {
      topicCreationLatencyMs: Array.from({ length: 20 }, () => 1 + 3 * next()),
      publishThroughputPerSecond: Array.from({ length: 20 }, () => 8000 + 2000 * next()),
      fetchLatencyMs: Array.from({ length: 20 }, () => 0.5 + 2 * next()),
    },
    latencies: {
      sequentialPublish: latencyDistribution(histogram(next, 0.8, 30)),
      pipelinedPublish: latencyDistribution(histogram(next, 0.3, 12)),
      publishToDelivery: latencyDistribution(histogram(next, 1.5, 80)),
    },
    throughputOverTime: { steps, kills },
    failoverWindowsMs: Array.from({ length: 30 }, () => 600 + 900 * next()),
    comparison: {
      otherName: "NATS JetStream",
      rows: [
        { name: "sequential publish", metric: "p99 latency (ms)", pubsub: 8.4, other: 3.1 },
        {
          name: "pipelined publish",
          metric: "throughput (msgs/s)",
          pubsub: 41_000,
          other: 120_000,
        },
        { name: "fetch", metric: "p50 latency (ms)", pubsub: 0.9, other: 0.5 },
      ],
    },
  };
}

/**
 * A short run like `pubsub bench --quick`: 3 iterations, 2 leader kills,
 * some hundred sequential publishes; too few samples for several percentiles.
 */
export function quickRun(): BenchRun {
  const next = sequence(7);
  const kills = [{ atSeconds: 1.02, label: "kill 1: node 2" }, {
    atSeconds: 7.86,
    label: "kill 2: node 1",
  }];
  const killsMs = kills.map((kill) => kill.atSeconds * 1000);
  const steps = throughputSteps(
    acknowledgements(next, 11.8, 4000, killsMs, [4360, 1333]),
    { startMs: 0, endMs: 11_800 },
    { killsMs },
  );
  return {
    title: "pubsub bench",
    startedAt: "2025-01-02T03:04:05.000Z",
    durationSeconds: 25.4,
    configuration: { quick: true, iterations: 3, "leader kills": 2 },
    checks: [{ name: "Fault test 1 (node 1), test 1: Check", ok: true, detail: "fine" }],
    iterations: {
      topicCreationLatencyMs: [6.09, 1.52, 2.11],
      publishThroughputPerSecond: [2201, 3347, 2423],
      fetchLatencyMs: [25.6, 2.61, 3.1],
    },
    latencies: {
      sequentialPublish: latencyDistribution(histogram(next, 0.9, 30, 463)),
      pipelinedPublish: latencyDistribution(histogram(next, 2.3, 70, 16_128)),
      publishToDelivery: latencyDistribution(histogram(next, 0.8, 20, 1_733)),
    },
    throughputOverTime: { steps, kills },
    failoverWindowsMs: [4359.76, 1333.28],
  };
}

/** A fixed machine, so report output does not depend on where tests run. */
export const testMachine: MachineInfo = {
  os: "linux x86_64",
  osRelease: "6.1.0-test",
  cpus: 8,
  memoryTotalBytes: 16 * 2 ** 30,
  deno: "2.0.0",
  v8: "13.0",
  typescript: "5.6",
};
