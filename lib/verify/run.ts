/**
 * One `pubsub verify` run, start to verdict: start (or attach to) the
 * cluster, create a fresh topic, run the workload while the nemesis injects
 * its seeded schedule, heal, drain, read the final log through the leader
 * and every replica's own copy without it, and check the history.
 *
 * @module
 */

import { sleep } from "../async.ts";
import type { PubSubClient } from "../client/client.ts";
import { checkHistory, type CheckReport, type FinalState, type ReplicaCopy } from "./checker.ts";
import {
  connectClient,
  externalVerifyCluster,
  startVerifyCluster,
  type VerifyCluster,
} from "./cluster.ts";
import { type FaultRecord, History } from "./history.ts";
import {
  type FaultKind,
  faultKinds,
  faultNeeds,
  type FaultStep,
  Nemesis,
  planFaults,
} from "./nemesis.ts";
import { Workload } from "./workload.ts";

/** How long the healed cluster may take to bring every replica in sync. */
export const drainTimeoutMsDefault = 30_000;
/** How long subscribers may take after the drain to be delivered every message. */
export const subscriberDrainMsMax = 15_000;
/** How long a topic may take to get a leader and every replica in sync after creation. */
export const topicReadyTimeoutMs = 20_000;
/** Messages read per fetch when reading the final log. */
const finalFetchMax = 10_000;
/** How long a subscription may take to deliver a replica's copy (external clusters). */
const replicaReadTimeoutMs = 20_000;

/** Settings of a run. */
export interface VerifyOptions {
  seed: number;
  durationMs: number;
  /** Peers of a local cluster (ignored with `peers`). */
  nodes: number;
  /** An existing cluster's client addresses. */
  peers?: string[];
  pids?: number[];
  /** Node id to the port verify's proxy listens on for it (existing clusters). */
  proxyPorts?: Map<number, number>;
  /** Fault kinds to inject (default all the cluster allows). */
  kinds?: readonly FaultKind[];
  producers: number;
  subscribers: number;
  fetchers: number;
  drainTimeoutMs?: number;
  /** Keep the local cluster's data directory (it is kept anyway when the run fails or breaks). */
  keepData?: boolean;
  /** Aborts the run (Ctrl-C): everything stops, no verdict. */
  signal: AbortSignal;
  /** Progress reports. */
  events?: VerifyEvents;
}

/** What a run reports while it runs. */
export interface VerifyEvents {
  line?(text: string): void;
  /** Acknowledged publishes so far (called about every 200 ms during the workload). */
  progress?(acknowledged: number): void;
  progressDone?(): void;
  fault?(record: FaultRecord, phase: "start" | "end"): void;
}

/** The outcome of a run. */
export interface VerifyResult {
  seed: number;
  topic: string;
  cluster: string;
  schedule: FaultStep[];
  /** Kinds left out, with the reason. */
  skippedKinds: { kind: FaultKind; reason: string }[];
  /** Planned faults not started because the duration was over. */
  skippedFaults: number;
  /** Injected faults per kind. */
  faults: Record<string, number>;
  history: History;
  final: FinalState;
  report: CheckReport;
  /** Seconds the workload ran under faults. */
  faultPhaseSeconds: number;
  /** Seconds the healed cluster took to bring every replica in sync. */
  drainSeconds: number | undefined;
  /** Where the local cluster's data and logs were kept, if they were. */
  keptData: string | undefined;
  /** Peer connections and bytes the proxy relayed (undefined without a proxy). */
  proxied: { connections: number; bytes: number } | undefined;
}

/**
 * Runs one verification.
 *
 * @example
 * ```ts
 * import { runVerify } from "./run.ts";
 *
 * const result = await runVerify({
 *   seed: 42,
 *   durationMs: 30_000,
 *   nodes: 3,
 *   producers: 4,
 *   subscribers: 2,
 *   fetchers: 2,
 *   signal: new AbortController().signal,
 * });
 * console.log(result.report.ok);
 * ```
 */
export async function runVerify(options: VerifyOptions): Promise<VerifyResult | undefined> {
  const events = options.events ?? {};
  const cluster = options.peers === undefined
    ? await startVerifyCluster({ nodes: options.nodes })
    : await externalVerifyCluster(options.peers, {
      pids: options.pids,
      proxyPorts: options.proxyPorts,
    });
  let result: VerifyResult | undefined;
  let broken = false;
  try {
    events.line?.(`Cluster: ${cluster.description}`);
    result = await runOn(cluster, options, events);
    return result;
  } catch (error) {
    broken = true;
    if (cluster.root === undefined) throw error;
    throw new Error(`${(error as Error).message} (data and peer logs kept in ${cluster.root})`, {
      cause: error,
    });
  } finally {
    // Kept for a look at the peers' logs when the run failed or broke, not when interrupted.
    const keep = cluster.root !== undefined &&
      (options.keepData === true || broken || result?.report.ok === false);
    await cluster.close({ keep });
    if (result !== undefined && keep) result.keptData = cluster.root;
  }
}

/** What the phases of one run share. */
interface RunContext {
  cluster: VerifyCluster;
  options: VerifyOptions;
  events: VerifyEvents;
  topic: string;
  replicationFactor: number;
  history: History;
  workload: Workload;
}

async function runOn(
  cluster: VerifyCluster,
  options: VerifyOptions,
  events: VerifyEvents,
): Promise<VerifyResult | undefined> {
  const runTag = `verify-${options.seed}-${Date.now().toString(36)}`;
  const replicationFactor = Math.min(3, cluster.members().length);
  await createTopic(cluster, runTag, replicationFactor);
  const { kinds, skippedKinds } = usableKinds(cluster, options.kinds ?? faultKinds);
  const schedule = planFaults(options.seed, { durationMs: options.durationMs, kinds });
  events.line?.(
    `Fault schedule of seed ${options.seed}: ${
      kinds.length === 0 ? "none" : schedule.map((step) => step.kind).join(", ")
    }`,
  );
  for (const skipped of skippedKinds) events.line?.(`  no ${skipped.kind}: ${skipped.reason}`);
  const history = new History();
  const workload = new Workload({
    topic: runTag,
    runTag,
    producers: options.producers,
    subscribers: options.subscribers,
    fetchers: options.fetchers,
    connect: (connectOptions) =>
      connectClient(shuffled(cluster.members().map((node) => node.address)), connectOptions),
    history,
  });
  const run: RunContext = {
    cluster,
    options,
    events,
    topic: runTag,
    replicationFactor,
    history,
    workload,
  };
  const faulted = await faultPhase(run, schedule);
  if (faulted === undefined) return undefined;
  const { drain, drainSeconds } = await drainPhase(run);
  if (options.signal.aborted) return undefined;
  const final = await readFinalState(cluster, run.topic, drain, events);
  const faults: Record<string, number> = {};
  for (const record of history.faults) {
    if (record.injected) faults[record.kind] = (faults[record.kind] ?? 0) + 1;
  }
  return {
    seed: options.seed,
    topic: run.topic,
    cluster: cluster.description,
    schedule,
    skippedKinds,
    skippedFaults: faulted.skipped,
    faults,
    history,
    final,
    report: checkHistory(history, final),
    faultPhaseSeconds: faulted.seconds,
    drainSeconds,
    keptData: undefined,
    proxied: cluster.proxy === undefined ? undefined : {
      connections: sum(cluster.proxy.stats().map((entry) => entry.connections)),
      bytes: sum(cluster.proxy.stats().map((entry) => entry.bytes)),
    },
  };
}

/** The workload under the schedule; undefined when interrupted (the workload is stopped then). */
async function faultPhase(
  run: RunContext,
  schedule: readonly FaultStep[],
): Promise<{ seconds: number; skipped: number } | undefined> {
  const { options, events, history, workload } = run;
  const nemesis = new Nemesis({
    cluster: run.cluster,
    history,
    topic: run.topic,
    signal: options.signal,
    onFault: events.fault,
  });
  const startMs = performance.now();
  events.progress?.(0);
  workload.start();
  const ticker = setInterval(() => events.progress?.(history.acknowledged), 200);
  try {
    await nemesis.run(schedule, options.durationMs);
  } finally {
    clearInterval(ticker);
    events.progress?.(history.acknowledged);
    events.progressDone?.();
    if (options.signal.aborted) await workload.stop();
  }
  if (options.signal.aborted) return undefined;
  return { seconds: (performance.now() - startMs) / 1000, skipped: nemesis.skipped };
}

/** Stops the writers, waits for every replica in sync, then lets the subscribers catch up. */
async function drainPhase(
  run: RunContext,
): Promise<{ drain: Drain; drainSeconds: number | undefined }> {
  const { events, history, options } = run;
  events.line?.("Healed. Stopping producers and fetchers, draining...");
  await run.workload.stopWriters();
  const startMs = performance.now();
  const drain = await waitConverged(run);
  const drainSeconds = drain.converged ? (performance.now() - startMs) / 1000 : undefined;
  events.line?.(
    drain.converged
      ? `Every replica in sync after ${drainSeconds!.toFixed(1)} s (${drain.seen})`
      : `Not converged within ${
        (options.drainTimeoutMs ?? drainTimeoutMsDefault) / 1000
      } s: ${drain.seen}`,
  );
  const endOffset = Math.max(drain.nextOffset ?? 0, history.highestAcknowledged + 1);
  const reached = await run.workload.drainSubscribers(endOffset, subscriberDrainMsMax);
  if (reached.some((highest) => highest < endOffset - 1)) {
    events.line?.(
      `Subscribers reached offsets ${reached.join(", ")} of ${endOffset - 1} (not an anomaly: ` +
        `only skipped offsets are)`,
    );
  }
  return { drain, drainSeconds };
}

/**
 * The requested kinds the cluster allows, and why the others are left out.
 *
 * @example
 * ```ts
 * import { usableKinds } from "./run.ts";
 *
 * const { kinds, skippedKinds } = usableKinds(cluster, ["kill", "bridge"]);
 * ```
 */
export function usableKinds(
  cluster: Pick<VerifyCluster, "limits" | "members">,
  requested: readonly FaultKind[],
): { kinds: FaultKind[]; skippedKinds: { kind: FaultKind; reason: string }[] } {
  const kinds: FaultKind[] = [];
  const skippedKinds: { kind: FaultKind; reason: string }[] = [];
  for (const kind of requested) {
    const reason = cluster.limits[faultNeeds[kind]] ??
      (kind === "bridge" && cluster.members().length < 3 ? "a bridge needs 3 peers" : undefined);
    if (reason === undefined) kinds.push(kind);
    else skippedKinds.push({ kind, reason });
  }
  return { kinds, skippedKinds };
}

async function createTopic(
  cluster: VerifyCluster,
  topic: string,
  replicationFactor: number,
): Promise<void> {
  const client = await cluster.client();
  try {
    await client.createTopic(topic, { replicationFactor });
    await until(`topic ${topic} with every replica in sync`, topicReadyTimeoutMs, async () => {
      const info = await client.describeTopic(topic);
      return info.leader !== null && info.replicas.length === replicationFactor &&
        info.replicas.every((id) => info.inSync.includes(id));
    });
  } finally {
    await client.close();
  }
}

interface Drain {
  converged: boolean;
  seen: string;
  nextOffset?: number;
  replicas?: number[];
}

/**
 * Waits until the topic has a leader, its replication factor of replicas,
 * every replica in sync, and every acknowledged offset below next_offset,
 * seen twice in a row (so a replica that only just answered is counted on).
 */
async function waitConverged(run: RunContext): Promise<Drain> {
  const { cluster, topic, replicationFactor, history, options } = run;
  const deadlineMs = performance.now() + (options.drainTimeoutMs ?? drainTimeoutMsDefault);
  let seen = "no answer";
  let streak = 0;
  while (performance.now() < deadlineMs && !options.signal.aborted) {
    let client: PubSubClient | undefined;
    try {
      client = await cluster.client(shuffled(cluster.members().map((node) => node.address)));
      const info = await client.describeTopic(topic);
      seen = `leader ${info.leader}, replicas ${info.replicas.join(",")}, in sync ${
        info.inSync.join(",")
      }, next_offset ${info.nextOffset}`;
      const expected = Math.min(replicationFactor, cluster.members().length);
      const ok = info.leader !== null && info.replicas.length === expected &&
        info.replicas.every((id) => info.inSync.includes(id)) &&
        info.nextOffset > history.highestAcknowledged;
      streak = ok ? streak + 1 : 0;
      if (streak >= 2) {
        return { converged: true, seen, nextOffset: info.nextOffset, replicas: info.replicas };
      }
    } catch (error) {
      seen = `describe_topic failed: ${(error as Error).message}`;
      streak = 0;
    } finally {
      await client?.close();
    }
    await sleep(300, options.signal);
  }
  return { converged: false, seen };
}

/**
 * The final log through the leader (linearizable fetches), then every
 * replica's own copy: a local cluster's peers are stopped and their files
 * read; an existing cluster's replicas are read through a subscription each
 * serves from its own replica.
 */
async function readFinalState(
  cluster: VerifyCluster,
  topic: string,
  drain: Drain,
  events: VerifyEvents,
): Promise<FinalState> {
  let log: string[] | undefined;
  let logError: string | undefined;
  let replicaIds = drain.replicas;
  const client = await cluster.client().catch(() => undefined);
  try {
    if (client === undefined) throw new Error("no peer answered");
    log = await readLog(client, topic);
    replicaIds ??= (await client.describeTopic(topic)).replicas;
  } catch (error) {
    logError = (error as Error).message;
  } finally {
    await client?.close();
  }
  const replicas: ReplicaCopy[] = [];
  if (cluster.root !== undefined) {
    // `in_sync` means a replica matched the commit index within the last
    // second, not that it holds the last entry: before the peers stop, each
    // replica serves the whole log through a subscription (bounded wait), so
    // a follower a heartbeat behind is not reported as diverged. One that
    // never catches up still shows in its files.
    events.line?.("Waiting until every replica serves the whole log...");
    await Promise.all(
      (replicaIds ?? []).map((id) =>
        readReplicaBySubscription(cluster, id, topic, log?.length ?? 0)
      ),
    );
    events.line?.("Stopping the peers and reading each one's own replica from its files...");
    await cluster.stopPeers();
    for (const id of replicaIds ?? cluster.members().map((node) => node.id)) {
      try {
        replicas.push({
          node: id,
          source: "files",
          messages: await cluster.readReplica(id, topic),
        });
      } catch (error) {
        replicas.push({ node: id, source: "files", error: (error as Error).message });
      }
    }
  } else {
    events.line?.("Reading each replica's own copy through a subscription it serves...");
    for (const id of replicaIds ?? []) {
      replicas.push(await readReplicaBySubscription(cluster, id, topic, log?.length ?? 0));
    }
  }
  return {
    log,
    logError,
    replicas,
    converged: drain.converged,
    convergence: drain.converged ? undefined : drain.seen,
  };
}

async function readLog(client: PubSubClient, topic: string): Promise<string[]> {
  const { nextOffset } = await client.describeTopic(topic);
  const log: string[] = [];
  while (log.length < nextOffset) {
    const { messages } = await client.fetch(topic, { fromOffset: log.length, max: finalFetchMax });
    if (messages.length === 0) break;
    for (const item of messages) {
      if (item.offset !== log.length) {
        throw new Error(
          `The final fetch returned offset ${item.offset} where ${log.length} was due`,
        );
      }
      log.push(item.message);
    }
  }
  return log;
}

/**
 * A replica's copy as the peer serves it to a subscriber from its own
 * replica: everything up to `expected` messages, or what arrived in time.
 */
async function readReplicaBySubscription(
  cluster: VerifyCluster,
  id: number,
  topic: string,
  expected: number,
): Promise<ReplicaCopy> {
  const node = cluster.node(id);
  let client: PubSubClient | undefined;
  try {
    client = await cluster.client([node.address]);
    const subscription = await client.subscribe(topic, `verify-replica-${id}-${Date.now()}`, {
      from: "earliest",
      maxInFlight: 10_000,
    });
    const messages: string[] = [];
    const deadlineMs = performance.now() + replicaReadTimeoutMs;
    let next = subscription.next();
    while (messages.length < expected && performance.now() < deadlineMs) {
      const result = await Promise.race([next, sleep(500).then(() => undefined)]);
      if (result === undefined) continue;
      if (result.done) break;
      messages.push(result.value.message);
      next = subscription.next();
    }
    next.catch(() => {});
    await subscription.close().catch(() => {});
    return { node: id, source: "subscription", messages };
  } catch (error) {
    return { node: id, source: "subscription", error: (error as Error).message };
  } finally {
    await client?.close();
  }
}

async function until(
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean>,
): Promise<void> {
  const deadlineMs = performance.now() + timeoutMs;
  let lastError: unknown;
  while (performance.now() < deadlineMs) {
    try {
      if (await probe()) return;
    } catch (error) {
      lastError = error;
    }
    await sleep(100);
  }
  const reason = lastError === undefined ? "" : `: ${(lastError as Error).message}`;
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let at = copy.length - 1; at > 0; at--) {
    const other = Math.floor(Math.random() * (at + 1));
    [copy[at], copy[other]] = [copy[other], copy[at]];
  }
  return copy;
}
