/**
 * What must hold while the live fuzz runs, observed and never interfered
 * with: a well-behaved client publishes to a topic and every acknowledged
 * message is there at the end, at its offset, once; every peer process
 * stays alive and answers `ping` on a new connection within a bound; no
 * peer prints an unexpected failure or a stack trace; and strangers changed
 * nothing (same members, all alive, same topics).
 *
 * @module
 */

import { PubSubClient } from "../lib/client/client.ts";
import { encodeFrame, FrameDecoder } from "../lib/wire/frame.ts";
import { alarmingOutput, type FuzzCluster } from "./_cluster.ts";
import { watchTopic } from "./_live_inputs.ts";
import type { Tally } from "./_tally.ts";

/** Longest a `ping` on a new connection may take before it counts as a hang. */
export const pingTimeoutMs = 5_000;
/** Time between two pings of the same peer. */
const pingIntervalMs = 500;
/** How long the watched topic may take to have every replica in sync. */
const inSyncTimeoutMs = 30_000;
/** Messages read per fetch when checking the watched topic. */
const fetchPageMessages = 1000;

/** What the watch saw. */
export interface WatchReport {
  acknowledged: number;
  publishErrors: number;
  verified: boolean;
  pings: number;
  pingMaxMs: number;
}

async function pingOnce(port: number): Promise<number | string> {
  const started = performance.now();
  let conn: Deno.Conn | undefined;
  const timer = setTimeout(() => conn?.close(), pingTimeoutMs);
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encodeFrame({ action: "ping", id: "watch" }));
    const decoder = new FrameDecoder();
    const buffer = new Uint8Array(4096);
    while (true) {
      const read = await conn.read(buffer);
      if (read === null) return "closed without answering";
      const [event] = decoder.push(buffer.subarray(0, read));
      if (event?.kind !== "frame") continue;
      const answer = JSON.parse(new TextDecoder().decode(event.payload));
      return answer.status === "pong" ? performance.now() - started : JSON.stringify(answer);
    }
  } catch (error) {
    return performance.now() - started >= pingTimeoutMs
      ? `no pong within ${pingTimeoutMs} ms`
      : `ping failed: ${(error as Error).message}`;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* closed by the timer */ }
  }
}

/**
 * Watches `cluster` until `stop()` resolves, then checks the end state.
 *
 * @example
 * ```ts
 * const watch = await startWatch(cluster, tally);
 * // ... fuzz ...
 * const report = await watch.finish();
 * ```
 */
export async function startWatch(
  cluster: FuzzCluster,
  tally: Tally,
): Promise<{ finish(): Promise<WatchReport> }> {
  const client = await PubSubClient.connect({
    peers: cluster.addresses(),
    requestTimeoutMs: 5000,
    retries: 20,
  });
  await client.createTopic(watchTopic);
  await waitInSync(client, cluster.peers.length);
  const baseline = await snapshot(client);
  const acked: { offset: number; message: string }[] = [];
  const report: WatchReport = {
    acknowledged: 0,
    publishErrors: 0,
    verified: false,
    pings: 0,
    pingMaxMs: 0,
  };
  let stopped = false;
  const publishing = (async () => {
    for (let index = 0; !stopped; index++) {
      const message = `watch-${index}`;
      try {
        acked.push({ offset: (await client.publish(watchTopic, message)).offset, message });
      } catch (error) {
        report.publishErrors++;
        tally.fail({
          target: "watch_publish",
          kind: "unexpected",
          detail: `publish failed: ${(error as Error).message}`,
          input: message,
        });
      }
    }
  })();
  const pinging = Promise.all(cluster.peers.map(async (peer) => {
    while (!stopped) {
      checkAlive(cluster, tally);
      const result = await pingOnce(peer.port);
      report.pings++;
      if (typeof result === "number") report.pingMaxMs = Math.max(report.pingMaxMs, result);
      else {tally.fail({
          target: "watch_ping",
          kind: "hang",
          detail: `peer ${peer.id}: ${result}`,
          input: "ping",
        });}
      await new Promise((resolve) => setTimeout(resolve, pingIntervalMs));
    }
  }));
  return {
    finish: async () => {
      stopped = true;
      await Promise.all([publishing, pinging]);
      try {
        checkAlive(cluster, tally);
        report.acknowledged = acked.length;
        report.verified = await verify(client, acked, baseline, tally);
        checkOutput(cluster, tally);
      } finally {
        await client.close();
      }
      return report;
    },
  };
}

const reportedExits = new Set<number>();

function checkAlive(cluster: FuzzCluster, tally: Tally): void {
  for (const peer of cluster.peers) {
    if (peer.exit === undefined || reportedExits.has(peer.pid)) continue;
    reportedExits.add(peer.pid);
    tally.fail({
      target: "watch_process",
      kind: "crash",
      detail: `peer ${peer.id} (pid ${peer.pid}) exited: ${peer.exit}\n${
        peer.output().slice(-2000)
      }`,
      input: "",
    });
  }
}

function checkOutput(cluster: FuzzCluster, tally: Tally): void {
  for (const peer of cluster.peers) {
    const match = peer.output().match(alarmingOutput);
    if (match === null) continue;
    const at = match.index ?? 0;
    tally.fail({
      target: "watch_output",
      kind: "unexpected",
      detail: `peer ${peer.id} printed: ${peer.output().slice(Math.max(0, at - 300), at + 700)}`,
      input: "",
    });
  }
}

async function waitInSync(client: PubSubClient, replicas: number): Promise<void> {
  const deadline = performance.now() + inSyncTimeoutMs;
  while (performance.now() < deadline) {
    const info = await client.describeTopic(watchTopic);
    if (info.inSync.length === replicas) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`The watched topic did not have ${replicas} in-sync replicas in time`);
}

/** Members, their states and the topics: what no stranger may change. */
async function snapshot(client: PubSubClient): Promise<string> {
  const status = await client.clusterStatus();
  const nodes = status.nodes.map((node) => `${node.id}:${node.state}`).sort();
  return JSON.stringify({ nodes, topics: await client.topics() });
}

async function verify(
  client: PubSubClient,
  acked: { offset: number; message: string }[],
  baseline: string,
  tally: Tally,
): Promise<boolean> {
  const fail = (detail: string) =>
    tally.fail({ target: "watch_state", kind: "unexpected", detail, input: "" });
  const stored: string[] = [];
  for (let from = 0;;) {
    const page = await client.fetch(watchTopic, { fromOffset: from, max: fetchPageMessages });
    for (const item of page.messages) stored[item.offset] = item.message;
    if (page.messages.length === 0 || page.nextOffset <= from) break;
    from = page.nextOffset;
  }
  let intact = true;
  for (const { offset, message } of acked) {
    if (stored[offset] !== message) {
      intact = false;
      fail(`acknowledged ${message} at offset ${offset}, stored ${stored[offset]}`);
    }
  }
  if (new Set(stored).size !== stored.length) fail("a message is stored twice");
  const now = await snapshot(client);
  if (now !== baseline) fail(`the cluster changed: before ${baseline}, after ${now}`);
  return intact && now === baseline;
}
