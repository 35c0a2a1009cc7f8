/**
 * The prototype's fault-tolerance test blocks, run for real against a
 * cluster: the "primary" is the Raft leader of a fresh bench topic, its
 * failure is a SIGKILL of the process (SIGSTOP for an external cluster),
 * and recovery waits until the leader reports the node in sync. The output
 * keeps the prototype's line shapes; blocks count from 1 and nodes are named
 * by their node ids (1..N), as everywhere else in pubsub, where the
 * prototype printed 0-based indexes.
 *
 * What "consistent" compares, because `fetch_messages` and `describe_topic`
 * are linearizable reads that every peer forwards to the topic's leader:
 * 1. the full message list read through a client connected to only that
 *    peer, for every live peer, equals the list the bench published;
 * 2. `describe_topic` through every live peer reports the same next_offset,
 *    equal to the number of messages published;
 * 3. the leader reports every replica in `in_sync` (its Raft match index
 *    reached the commit index, so by log matching its log holds exactly the
 *    committed entries);
 * 4. while a local node is down, its replica is read from its data directory
 *    and must hold exactly the published list: the one comparison that does
 *    not go through the leader.
 *
 * @module
 */

import type { PubSubClient } from "../client/client.ts";
import { readReplicaMessages } from "../cluster/replica_files.ts";
import type { BenchCluster, BenchNode } from "./local_cluster.ts";
import type { CheckResult } from "./report.ts";
import { payloadOf } from "./workloads.ts";

/** Messages published into each fault-test topic before the failure. */
export const faultMessagesDefault = 50;
/** Topics created per block while looking for one led by the target node. */
export const leaderSearchTopicsMax = 8;
/** How long recovery may take before TEST 4 fails. */
export const recoveryTimeoutMs = 30_000;
/** Pause between two polls of a waited-for condition. */
const pollIntervalMs = 100;
/** Width of the prototype's separator lines. */
const ruleWidth = 70;

/** Options of {@linkcode runFaultBlock}. */
export interface FaultBlockOptions {
  /** Block number printed in the header, from 1. */
  block: number;
  /** Node to make the primary and fail. */
  target: BenchNode;
  /** Prefix of the topics this block creates. */
  topicPrefix: string;
  messageBytes: number;
  /** Where each output line goes. */
  print: (line: string) => void;
}

/**
 * The header of a block in the prototype's shape, naming the node by its
 * node id (the prototype printed a 0-based index there).
 *
 * @example
 * ```ts
 * import { faultBlockHeader } from "./fault_suite.ts";
 *
 * faultBlockHeader(1, 2)[1]; // "FAULT TOLERANCE TEST 1 Simulating failure of Node 2..."
 * ```
 */
export function faultBlockHeader(block: number, nodeId: number): string[] {
  return [
    "=".repeat(ruleWidth),
    `FAULT TOLERANCE TEST ${block} Simulating failure of Node ${nodeId}...`,
    "=".repeat(ruleWidth),
  ];
}

/**
 * Runs the five checks of one block and returns their results; a check
 * that cannot run (the cluster cannot fail nodes) passes as skipped.
 *
 * @example
 * ```ts
 * import { runFaultBlock } from "./fault_suite.ts";
 * import type { BenchCluster } from "./local_cluster.ts";
 *
 * declare const cluster: BenchCluster;
 * const checks = await runFaultBlock(cluster, {
 *   block: 1,
 *   target: cluster.nodes[0],
 *   topicPrefix: "bench-ft",
 *   messageBytes: 100,
 *   print: console.log,
 * });
 * ```
 */
export async function runFaultBlock(
  cluster: BenchCluster,
  options: FaultBlockOptions,
): Promise<CheckResult[]> {
  const control = await cluster.client();
  try {
    const { topic, primary } = await topicLedBy(cluster, control, options);
    const expected = Array.from(
      { length: faultMessagesDefault },
      (_, index) => payloadOf(options.messageBytes, `${topic}#${index}|`),
    );
    for (const message of expected) await control.publish(topic, message);
    for (const line of faultBlockHeader(options.block, primary.id)) options.print(line);
    const results: CheckResult[] = [];
    const check = async (number: number, title: string, run: () => Promise<string>) => {
      options.print("");
      options.print(`[TEST ${number}] ${title}...`);
      const result = await runCheck(
        `Fault test ${options.block} (node ${primary.id}), test ${number}: ${title}`,
        run,
      );
      options.print(`  ${result.ok ? "✓" : "✗"} ${result.detail}`);
      results.push(result);
      return result.ok;
    };
    await check(
      1,
      "Checking primary node availability",
      () => primaryAvailable(cluster, primary, topic),
    );
    await check(
      2,
      "Checking data consistency before failure",
      () =>
        consistent(cluster, topic, expected, cluster.nodes, "Data is consistent across all nodes"),
    );
    const failure = { failed: false };
    await check(
      3,
      "Testing replica failover when primary is down",
      () => replicaFailover(cluster, primary, topic, expected, failure),
    );
    await check(4, "Verifying node recovery", () => recovery(cluster, primary, topic, failure));
    await check(
      5,
      "Validating data consistency after recovery",
      () => consistent(cluster, topic, expected, cluster.nodes, "Data consistency verified"),
    );
    options.print("");
    options.print("=".repeat(ruleWidth));
    return results;
  } finally {
    await control.close();
  }
}

/** A failed check: its message is the reason printed after ✗. */
export class CheckFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CheckFailedError";
  }
}

async function runCheck(name: string, run: () => Promise<string>): Promise<CheckResult> {
  try {
    return { name, ok: true, detail: await run() };
  } catch (error) {
    return { name, ok: false, detail: (error as Error).message };
  }
}

/** Creates topics until one is led by the target node, so each block fails a different node. */
async function topicLedBy(
  cluster: BenchCluster,
  control: PubSubClient,
  options: FaultBlockOptions,
): Promise<{ topic: string; primary: BenchNode }> {
  let last: { topic: string; leader: number } | undefined;
  for (let attempt = 0; attempt < leaderSearchTopicsMax; attempt++) {
    const topic = `${options.topicPrefix}-${options.block}-${attempt}`;
    await control.createTopic(topic, { ifNotExists: true });
    const leader = await waitFor(
      `a leader of ${topic}`,
      10_000,
      async () => (await control.describeTopic(topic)).leader ?? undefined,
    );
    last = { topic, leader };
    if (leader === options.target.id) return { topic, primary: options.target };
  }
  // Placement balances leaders, so this is rare; the block then fails whichever node leads.
  return { topic: last!.topic, primary: cluster.node(last!.leader) };
}

async function primaryAvailable(
  cluster: BenchCluster,
  primary: BenchNode,
  topic: string,
): Promise<string> {
  const node = cluster.node(primary.id);
  const client = await cluster.client([node.address]);
  try {
    const { node: answered } = await client.ping();
    const { leader } = await client.describeTopic(topic);
    if (answered !== node.id || leader !== node.id) {
      throw new CheckFailedError(
        `${nodeName(node)} answered as node ${answered}; leader of ${topic} is node ${leader}`,
      );
    }
    return `Primary node (port ${portOf(node)}) is available (node ${node.id}, the topic's leader)`;
  } catch (error) {
    if (error instanceof CheckFailedError) throw error;
    throw new CheckFailedError(
      `Primary node (port ${portOf(node)}) is not available (node ${node.id}): ${
        (error as Error).message
      }`,
    );
  }
}

async function consistent(
  cluster: BenchCluster,
  topic: string,
  expected: string[],
  nodes: readonly BenchNode[],
  success: string,
): Promise<string> {
  let leaderClient: PubSubClient | undefined;
  try {
    for (const node of nodes) {
      const client = await cluster.client([node.address]);
      try {
        const messages = await client.fetchMessages(topic);
        const difference = firstDifference(expected, messages);
        if (difference !== undefined) {
          throw new CheckFailedError(`${nodeName(node)}: ${difference}`);
        }
        const { nextOffset } = await client.describeTopic(topic);
        if (nextOffset !== expected.length) {
          throw new CheckFailedError(
            `${nodeName(node)} reports next_offset ${nextOffset}, expected ${expected.length}`,
          );
        }
      } finally {
        await client.close();
      }
    }
    leaderClient = await cluster.client();
    // Followers catch up within a heartbeat after the last publish: wait for it, bounded.
    const info = await waitFor(`every replica of ${topic} in sync`, recoveryTimeoutMs, async () => {
      const described = await leaderClient!.describeTopic(topic);
      return described.replicas.every((id) => described.inSync.includes(id))
        ? described
        : undefined;
    });
    return `${success} (${expected.length} messages on ${nodes.length} nodes, ` +
      `in sync: ${info.inSync.join(",")})`;
  } finally {
    await leaderClient?.close();
  }
}

async function replicaFailover(
  cluster: BenchCluster,
  primary: BenchNode,
  topic: string,
  expected: string[],
  failure: { failed: boolean },
): Promise<string> {
  if (cluster.killUnsupportedReason !== undefined) {
    return `Skipped: ${cluster.killUnsupportedReason}`;
  }
  failure.failed = true;
  await cluster.fail(primary.id);
  const replica = cluster.nodes.find((node) => node.id !== primary.id)!;
  const client = await cluster.client([replica.address]);
  try {
    const messages = await client.fetchMessages(topic);
    const difference = firstDifference(expected, messages);
    if (difference !== undefined) {
      throw new CheckFailedError(`Replica on ${nodeName(replica)}: ${difference}`);
    }
    const onDisk = await diskReplicaCheck(cluster, primary, topic, expected);
    // Writes must fail over too: this message must reach the failed node after recovery.
    const written = payloadOf(expected[0].length, `${topic}#failover|`);
    await client.publish(topic, written);
    expected.push(written);
    return `Successfully retrieved data from replica (port ${
      portOf(replica)
    }) on node ${replica.id} ` +
      `while node ${primary.id} is down${onDisk}`;
  } finally {
    await client.close();
  }
}

async function diskReplicaCheck(
  cluster: BenchCluster,
  primary: BenchNode,
  topic: string,
  expected: string[],
): Promise<string> {
  const dataDir = cluster.dataDir(primary.id);
  if (cluster.failureMode !== "SIGKILL" || dataDir === undefined) return "";
  const stored = await replicaMessagesOnDisk(dataDir, topic);
  const difference = firstDifference(expected, stored);
  if (difference !== undefined) {
    throw new CheckFailedError(`Replica of failed node ${primary.id} on disk: ${difference}`);
  }
  return `; node ${primary.id}'s replica on disk holds the same ${stored.length} messages`;
}

async function recovery(
  cluster: BenchCluster,
  primary: BenchNode,
  topic: string,
  failure: { failed: boolean },
): Promise<string> {
  if (cluster.killUnsupportedReason !== undefined) {
    return `Skipped: ${cluster.killUnsupportedReason}`;
  }
  if (!failure.failed) throw new CheckFailedError("The node was never failed, see TEST 3");
  // Recovers even when TEST 3 failed after the failure, so later blocks see a whole cluster.
  await cluster.recover(primary.id);
  const node = cluster.node(primary.id);
  const startedMs = performance.now();
  const control = await cluster.client();
  try {
    await waitFor(`node ${node.id} in sync for ${topic}`, recoveryTimeoutMs, async () => {
      const info = await control.describeTopic(topic);
      return info.inSync.includes(node.id) || undefined;
    });
  } catch (error) {
    throw new CheckFailedError(`Node ${node.id} did not recover: ${(error as Error).message}`);
  } finally {
    await control.close();
  }
  const seconds = ((performance.now() - startedMs) / 1000).toFixed(1);
  return `Node recovered and is back online (node ${node.id} in sync after ${seconds} s)`;
}

/**
 * Where `actual` first differs from `expected`, in words; undefined when equal.
 *
 * @example
 * ```ts
 * import { firstDifference } from "./fault_suite.ts";
 *
 * firstDifference(["a", "b"], ["a"]); // "holds 1 messages, expected 2"
 * ```
 */
export function firstDifference(
  expected: readonly string[],
  actual: readonly string[],
): string | undefined {
  const shared = Math.min(expected.length, actual.length);
  for (let index = 0; index < shared; index++) {
    if (expected[index] !== actual[index]) return `message ${index} differs`;
  }
  if (expected.length !== actual.length) {
    return `holds ${actual.length} messages, expected ${expected.length}`;
  }
  return undefined;
}

/** Messages a stopped peer's replica of `topic` holds, read from its files. */
async function replicaMessagesOnDisk(dataDir: string, topic: string): Promise<string[]> {
  try {
    return await readReplicaMessages(dataDir, topic);
  } catch (error) {
    throw new CheckFailedError((error as Error).message);
  }
}

/**
 * Polls `probe` until it returns a value other than undefined, or throws
 * after `timeoutMs` with the last error.
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadlineMs = performance.now() + timeoutMs;
  let lastError: unknown;
  while (performance.now() < deadlineMs) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }
  const reason = lastError === undefined ? "" : `: ${(lastError as Error).message}`;
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
}

function portOf(node: BenchNode): string {
  return node.address.slice(node.address.lastIndexOf(":") + 1);
}

/** "Node 2 (port 5002)": the id first, as every other command names peers. */
function nodeName(node: BenchNode): string {
  return `Node ${node.id} (port ${portOf(node)})`;
}
