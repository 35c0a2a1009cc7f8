/**
 * Throughput through repeated leader failures: producers publish into one
 * topic without pause while the bench kills that topic's leader, waits for
 * the first acknowledged publish, restarts the node, waits until it is in
 * sync again, and repeats. A paced probe sends a publish every few
 * milliseconds whatever the load's publishes are stuck on, so that the
 * unavailability window is measured from publishes sent after the kill.
 *
 * @module
 */

import type { PubSubClient } from "../client/client.ts";
import { sleep } from "../async.ts";
import { waitFor } from "./fault_suite.ts";
import type { BenchCluster } from "./local_cluster.ts";
import {
  failoverWindows,
  type PublishRecord,
  type ThroughputStep,
  throughputSteps,
} from "./timeline.ts";
import { payloadOf, publishLoad } from "./workloads.ts";

/** Interval of the availability probe's publishes. */
export const probeIntervalMs = 5;
/** Most probe publishes outstanding; past it the probe skips a beat. */
export const probesInFlightMax = 2_000;
/** Steady load before the first kill and after each recovery. */
export const settleMs = 1_000;
/**
 * Longest wait for the first acknowledged publish after a kill; past it the
 * kill counts as a failover without an ack and the loop goes on.
 */
export const failoverTimeoutMs = 10_000;
/**
 * Longest wait for a restarted node to be in sync again. Past it the loop
 * goes on (the cluster stays available with two of three in sync) and the
 * kill's resync time is reported as missing.
 */
export const resyncTimeoutMs = 15_000;

/** Options of {@linkcode runLeaderKills}. */
export interface LeaderKillOptions {
  topic: string;
  kills: number;
  /** Producer connections, opened and closed by the workload. */
  producers: number;
  inFlight: number;
  messageBytes: number;
  signal?: AbortSignal;
  /** Wait for the first ack after a kill. Default {@linkcode failoverTimeoutMs}. */
  failoverTimeoutMs?: number;
  /** Wait for a restarted node to be in sync. Default {@linkcode resyncTimeoutMs}. */
  resyncTimeoutMs?: number;
  /** Called when a kill's window is known. */
  onKill?: (index: number, windowMs: number | undefined) => void;
}

/** What {@linkcode runLeaderKills} measured. */
export interface LeaderKillResult {
  /** Acknowledged load publishes per bucket, finer around each kill. */
  steps: ThroughputStep[];
  kills: { atSeconds: number; label: string }[];
  /** One per kill; undefined when no publish was acknowledged in time. */
  windowsMs: (number | undefined)[];
  /** Per kill, restart to in sync under load; undefined past {@linkcode resyncTimeoutMs}. */
  resyncMs: (number | undefined)[];
}

/**
 * Runs the kill loop and returns throughput in 1 s buckets (100 ms around
 * each kill), the kill instants and the unavailability windows.
 *
 * @example
 * ```ts
 * import { runLeaderKills } from "./leader_kills.ts";
 * import type { BenchCluster } from "./local_cluster.ts";
 *
 * declare const cluster: BenchCluster;
 * const result = await runLeaderKills(cluster, {
 *   topic: "bench-kills",
 *   kills: 3,
 *   producers: 4,
 *   inFlight: 32,
 *   messageBytes: 100,
 * });
 * console.log(result.windowsMs);
 * ```
 */
export async function runLeaderKills(
  cluster: BenchCluster,
  options: LeaderKillOptions,
): Promise<LeaderKillResult> {
  const control = await cluster.client();
  const probeClient = await cluster.client();
  const producers = await Promise.all(
    Array.from({ length: options.producers }, () => cluster.client()),
  );
  const stop = new AbortController();
  const abort = () => stop.abort();
  options.signal?.addEventListener("abort", abort, { once: true });
  const loadRecords: PublishRecord[] = [];
  const probeRecords: PublishRecord[] = [];
  const startedMs = performance.now();
  const killsMs: number[] = [];
  const labels: string[] = [];
  const resyncMs: (number | undefined)[] = [];
  let stoppedMs = startedMs;
  try {
    await control.createTopic(options.topic, { ifNotExists: true });
    const load = publishLoad({
      clients: producers,
      topics: [options.topic],
      inFlight: options.inFlight,
      payload: payloadOf(options.messageBytes),
      durationMs: Number.MAX_SAFE_INTEGER,
      signal: stop.signal,
      records: loadRecords,
    });
    const probe = runProbe(probeClient, options.topic, payloadOf(options.messageBytes), {
      records: probeRecords,
      signal: stop.signal,
    });
    try {
      await sleep(settleMs, stop.signal);
      for (let index = 0; index < options.kills && !stop.signal.aborted; index++) {
        const killedMs = await killLeaderOnce(cluster, control, options.topic, probeRecords, {
          failoverMs: options.failoverTimeoutMs ?? failoverTimeoutMs,
          resyncMs: options.resyncTimeoutMs ?? resyncTimeoutMs,
        });
        killsMs.push(killedMs.atMs);
        labels.push(`kill ${index + 1}: node ${killedMs.node}`);
        resyncMs.push(killedMs.resyncMs);
        options.onKill?.(index, failoverWindows([killedMs.atMs], probeRecords)[0]);
        await sleep(settleMs, stop.signal);
      }
    } finally {
      // Acks after this are the tail of a stopping load, not throughput.
      stoppedMs = performance.now();
      stop.abort();
      // Closing rejects what is still pending, which may wait on an unavailable topic for long.
      await Promise.all([...producers, probeClient].map((client) => client.close()));
      await Promise.all([load, probe]);
    }
  } finally {
    options.signal?.removeEventListener("abort", abort);
    await Promise.all([control, probeClient, ...producers].map((client) => client.close()));
  }
  return {
    steps: throughputSteps(
      loadRecords.flatMap((record) => record.ackedMs === undefined ? [] : [record.ackedMs]),
      { startMs: startedMs, endMs: stoppedMs },
      { killsMs },
    ),
    kills: killsMs.map((atMs, index) => ({
      atSeconds: (atMs - startedMs) / 1000,
      label: labels[index],
    })),
    windowsMs: failoverWindows(killsMs, probeRecords),
    resyncMs,
  };
}

async function killLeaderOnce(
  cluster: BenchCluster,
  control: PubSubClient,
  topic: string,
  probeRecords: PublishRecord[],
  timeouts: { failoverMs: number; resyncMs: number },
): Promise<{ atMs: number; node: number; resyncMs: number | undefined }> {
  const leader = await waitFor(
    `a leader of ${topic}`,
    failoverTimeoutMs,
    async () => (await control.describeTopic(topic)).leader ?? undefined,
  );
  const atMs = performance.now();
  await cluster.fail(leader);
  await waitFor(
    `a publish acknowledged after killing node ${leader}`,
    timeouts.failoverMs,
    () =>
      Promise.resolve(
        probeRecords.some((record) => record.sentMs >= atMs && record.ackedMs !== undefined) ||
          undefined,
      ),
    // A missing ack is a result (an unavailable topic), not a reason to stop the run.
  ).catch(() => {});
  await cluster.recover(leader);
  const restartedMs = performance.now();
  const resynced = await waitFor(
    `node ${leader} in sync for ${topic}`,
    timeouts.resyncMs,
    async () => {
      const info = await control.describeTopic(topic);
      return info.inSync.includes(leader) || undefined;
    },
  ).then(() => true, () => false);
  return { atMs, node: leader, resyncMs: resynced ? performance.now() - restartedMs : undefined };
}

/** Sends one publish every `probeIntervalMs` without waiting for earlier ones. */
async function runProbe(
  client: PubSubClient,
  topic: string,
  payload: string,
  options: { records: PublishRecord[]; signal: AbortSignal },
): Promise<void> {
  const outstanding = new Set<Promise<void>>();
  while (!options.signal.aborted) {
    if (outstanding.size < probesInFlightMax) {
      const record: PublishRecord = { sentMs: performance.now(), ackedMs: undefined };
      options.records.push(record);
      const sent = client.publish(topic, payload).then(
        () => void (record.ackedMs = performance.now()),
        () => {},
      );
      outstanding.add(sent);
      sent.finally(() => outstanding.delete(sent));
    }
    await sleep(probeIntervalMs, options.signal);
  }
  await Promise.all(outstanding);
}
