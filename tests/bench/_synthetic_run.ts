import { LatencyHistogram } from "../../lib/bench/histogram.ts";
import { type BenchRun, latencyDistribution, type MachineInfo } from "../../lib/bench/report.ts";

/** A deterministic pseudo-random sequence (LCG), so the synthetic run never changes. */
function sequence(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
}

function histogram(next: () => number, baseMs: number, tailMs: number): LatencyHistogram {
  const latencies = new LatencyHistogram();
  for (let index = 0; index < 20_000; index++) {
    latencies.recordMilliseconds(baseMs + next() ** 8 * tailMs);
  }
  return latencies;
}

/** A plausible run of 3 peers with two leader kills, for report tests and examples. */
export function syntheticRun(): BenchRun {
  const next = sequence(42);
  const kills = [{ atSeconds: 20.2, label: "leader of 'orders' killed" }, {
    atSeconds: 40.1,
    label: "peer 2 killed",
  }];
  const points: [number, number][] = [];
  for (let seconds = 0; seconds <= 60; seconds += 0.5) {
    const down = kills.some((kill) => seconds >= kill.atSeconds && seconds < kill.atSeconds + 1.2);
    points.push([seconds, down ? 40 * next() : 9000 + 1500 * next()]);
  }
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
    throughputOverTime: { points, kills },
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
