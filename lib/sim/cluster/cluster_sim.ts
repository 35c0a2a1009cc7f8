/**
 * One whole-cluster simulation run (`pubsub sim --cluster`): real
 * `ClusterBroker`s on simulated disks and network, clients, a nemesis, and
 * the checks, all driven from one seed on one virtual clock.
 *
 * A run has four phases: start-up (the first node bootstraps, the others
 * join; the topics are created), safety (the workload runs while the
 * nemesis injects faults; frames and disks are checked as they change),
 * liveness (every fault healed; the workload must finish and every group
 * converge to its placement), and the final checks against every replica's
 * log. The result carries every violation and a hash of the whole run.
 *
 * @module
 */

import { ManualScheduler } from "../../cluster/manual_scheduler.ts";
import { RaftTopic } from "../../cluster/raft_topic.ts";
import type { ClusterBroker } from "../../cluster/cluster_broker.ts";
import { Prng } from "../prng.ts";
import { type ClientContext, runFetcher, runProducer, runSubscriber } from "./sim_clients.ts";
import { ClusterChecker } from "./sim_checker.ts";
import { SimCluster, simTiming } from "./sim_cluster.ts";
import { type ClusterBrokenVariant, type ClusterSimConfig, deriveConfig } from "./sim_config.ts";
import { History, type Violation } from "./sim_history.ts";
import { Nemesis } from "./sim_nemesis.ts";
import { SimNetwork } from "./sim_network.ts";
import { runUntil } from "./sim_loop.ts";
import { RunTrace } from "./sim_trace.ts";

/** Options of one run. */
export interface ClusterSimOptions {
  broken?: ClusterBrokenVariant;
  /** Virtual ms of the fault phase (default 30 s). */
  safetyMs?: number;
  /** The broken variants' sharpened fault profile, without a variant (the control runs). */
  crashHeavy?: boolean;
  /**
   * Called after the final checks, before the peers stop, with the running
   * brokers and a way to await a promise on virtual time, for at most
   * `budgetMs` (default 10 s) of it, and the simulated peers and their
   * disks (read them only: for tests and debugging a seed).
   */
  inspect?: (
    brokers: Map<number, ClusterBroker>,
    drive: <T>(promise: Promise<T>, budgetMs?: number) => Promise<T | undefined>,
    cluster: SimCluster,
  ) => Promise<void>;
  /** Sees every frame delivered, decoded (for debugging a seed). */
  observe?: (time: number, from: number, to: number, message: Record<string, unknown>) => void;
}

/** What one run found. */
export interface ClusterSimResult {
  seed: number;
  violations: Violation[];
  violationCount: number;
  /** Fingerprint of the run: equal for two runs of one seed. */
  hash: string;
  nodes: number;
  topics: number;
  /** Timers run by the event loop. */
  events: number;
  frames: number;
  virtualMs: number;
  acknowledged: number;
  /** Distinct offsets the subscribers received (pushed by `SubscriptionPump`). */
  delivered: number;
  faults: Record<string, number>;
  broken: ClusterBrokenVariant | null;
  /** The last events of the run (for a failure report). */
  trace: string[];
}

/** Check the logs on the disks every this many timers (incrementally: only entries new since). */
const logCheckEvents = 100;
/** Virtual ms the members get to agree on the metadata at the end. */
const metadataSettleMs = 10_000;
/** Virtual ms the start-up may take before the run gives up on it. */
const startupMsMax = 20_000;

/**
 * Runs seed `seed` and checks it.
 *
 * @example
 * ```ts
 * const result = await runClusterSeed(42);
 * if (result.violationCount > 0) console.log(result.violations);
 * ```
 */
export async function runClusterSeed(
  seed: number,
  options: ClusterSimOptions = {},
): Promise<ClusterSimResult> {
  const world = buildWorld(seed, options);
  const { scheduler, run, config, cluster, nemesis, history, checker } = world;
  await startUp(run, cluster, config, history);
  const producers = startClients(world.context, config);
  nemesis.start(scheduler.now() + config.safetyMs);
  await run.until(scheduler.now() + config.safetyMs);
  nemesis.heal();
  await awaitProducers(world, producers);
  world.context.stopped = true;
  await run.until(scheduler.now() + 3000);
  await finalChecks(run, cluster, nemesis, config, history);
  checker.checkLogs(true);
  await options.inspect?.(
    cluster.brokers(),
    (promise, budgetMs = 10_000) => run.drive(promise, budgetMs),
    cluster,
  );
  await shutdown(run, cluster);
  return resultOf(world);
}

/** Everything one run is made of, built from its seed. */
interface World {
  seed: number;
  config: ClusterSimConfig;
  scheduler: ManualScheduler;
  history: History;
  trace: RunTrace;
  cluster: SimCluster;
  checker: ClusterChecker;
  nemesis: Nemesis;
  context: ClientContext;
  run: Run;
}

/** Builds a run's parts; the seed's random source is forked in a fixed order (replays rely on it). */
function buildWorld(seed: number, options: ClusterSimOptions): World {
  const rng = new Prng(seed);
  const config = deriveConfig(seed, rng.fork(), options);
  const scheduler = new ManualScheduler(0);
  const history = new History(() => scheduler.now());
  const trace = new RunTrace();
  const event = (kind: string, node: number, detail: string) =>
    trace.event(scheduler.now(), kind, node, detail);
  const network = new SimNetwork(scheduler, rng.fork(), config.network);
  const cluster = new SimCluster({
    scheduler,
    network,
    rng: rng.fork(),
    timing: simTiming,
    founders: config.founders,
    disk: (id) => config.disks.get(id)!,
    sink: event,
  });
  breakDisks(scheduler, rng, cluster, config);
  const checker = new ClusterChecker(history, cluster);
  network.observer = (from, to, message, bytes) => {
    trace.frame(scheduler.now(), from, to, bytes);
    checker.observeFrame(from, message);
    options.observe?.(scheduler.now(), from, to, message);
  };
  const run = new Run(scheduler, () => {
    if (++run.events % logCheckEvents === 0) checker.checkLogs(false);
  });
  const nemesis = new Nemesis({
    scheduler,
    rng: rng.fork(),
    cluster,
    network,
    config,
    deadAfterMs: simTiming.deadAfterMs,
    event,
  });
  const context: ClientContext = {
    scheduler,
    rng: rng.fork(),
    cluster,
    history,
    timeoutMs: simTiming.requestTimeoutMs + 1000,
    stopped: false,
    fetchLocally: config.broken === "fetch-from-follower",
  };
  return { seed, config, scheduler, history, trace, cluster, checker, nemesis, context, run };
}

/** The disk variants: disks that lie about fsyncs (and, for votes, crashes aimed at the lie). */
function breakDisks(
  scheduler: ManualScheduler,
  rng: Prng,
  cluster: SimCluster,
  config: ClusterSimConfig,
): void {
  const ids = [...config.founders, ...config.joiners];
  const lies = config.broken === "ack-before-fsync"
    ? "all"
    : config.broken === "vote-before-fsync"
    ? "hard_state"
    : undefined;
  for (const id of ids) cluster.peer(id).disk.lies = lies;
  if (config.broken === "vote-before-fsync") targetLies(scheduler, rng.fork(), cluster, ids);
}

/** The healed cluster must let every producer finish within the liveness phase. */
async function awaitProducers(world: World, producers: ProducerRun[]): Promise<void> {
  const { run, config, history } = world;
  await run.drive(Promise.all(producers.map((producer) => producer.done)), config.livenessMs);
  for (const producer of producers) {
    if (!producer.finished) {
      history.violate(
        "liveness",
        `Producer ${producer.name} did not finish within ${config.livenessMs} ms after the heal`,
      );
    }
  }
}

function resultOf(world: World): ClusterSimResult {
  const { config, history, trace, nemesis } = world;
  return {
    seed: world.seed,
    violations: history.violations,
    violationCount: history.violationCount,
    hash: trace.hex(),
    nodes: config.founders.length + config.joiners.length,
    topics: config.topics.length,
    events: world.run.events,
    frames: trace.frames,
    virtualMs: world.scheduler.now(),
    acknowledged: [...history.publishes.values()].filter((record) => record.offsets.length > 0)
      .length,
    delivered: [...history.deliveries.values()].reduce((sum, byOffset) => sum + byOffset.size, 0),
    faults: Object.fromEntries([...nemesis.counts].sort()),
    broken: config.broken ?? null,
    trace: trace.lines(),
  };
}

/**
 * Sharpens the `vote-before-fsync` variant: a power loss often follows a
 * hard-state fsync the disk lied about, inside the window the lie opened,
 * and the node restarts soon after (while the election is still on).
 */
function targetLies(scheduler: ManualScheduler, rng: Prng, cluster: SimCluster, ids: number[]) {
  for (const id of ids) {
    const peer = cluster.peer(id);
    peer.disk.onLie = () => {
      if (peer.process === undefined || !rng.chance(0.6)) return;
      scheduler.schedule(rng.range(0, 10), () => {
        if (peer.process === undefined) return;
        cluster.crash(id, "power_loss");
        scheduler.schedule(rng.range(10, 100), () => cluster.start(id));
      });
    };
  }
}

/** The event loop, with the run's per-timer hook. */
class Run {
  readonly scheduler: ManualScheduler;
  readonly #afterEach: () => void;
  /** Timers run so far. */
  events = 0;

  constructor(scheduler: ManualScheduler, afterEach: () => void) {
    this.scheduler = scheduler;
    this.#afterEach = afterEach;
  }

  /** Runs virtual time up to `untilMs`. */
  async until(untilMs: number): Promise<void> {
    await runUntil(this.scheduler, untilMs, this.#afterEach);
  }

  /** Runs virtual time until `promise` settles or `budgetMs` passed; its value, if any. */
  async drive<T>(promise: Promise<T>, budgetMs: number): Promise<T | undefined> {
    let settled = false;
    let value: T | undefined;
    promise.then((result) => value = result, () => {}).finally(() => settled = true);
    const end = this.scheduler.now() + budgetMs;
    while (!settled && this.scheduler.now() < end) {
      await this.until(Math.min(this.scheduler.now() + 100, end));
    }
    return value;
  }
}

/** Starts the first node, then the others, and creates the topics (through the API). */
async function startUp(
  run: Run,
  cluster: SimCluster,
  config: ClusterSimConfig,
  history: History,
): Promise<void> {
  cluster.start(config.founders[0]);
  await run.until(run.scheduler.now() + 1500);
  for (const id of config.founders.slice(1)) cluster.start(id);
  await run.until(run.scheduler.now() + 2000);
  for (const topic of config.topics) {
    const created = await run.drive(createTopic(run, cluster, topic), startupMsMax);
    if (created !== true) history.violate("startup", `Topic '${topic}' could not be created`);
  }
}

async function createTopic(run: Run, cluster: SimCluster, topic: string): Promise<boolean> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const broker = cluster.brokers().values().next().value;
    try {
      if (broker !== undefined) {
        await broker.createTopic(topic, simTiming.replicationFactor);
        return true;
      }
    } catch {
      // Retried: the controller may still be electing.
    }
    await new Promise((resolve) => run.scheduler.schedule(500, () => resolve(undefined)));
  }
  return false;
}

interface ProducerRun {
  name: string;
  done: Promise<void>;
  finished: boolean;
}

function startClients(context: ClientContext, config: ClusterSimConfig): ProducerRun[] {
  const producers: ProducerRun[] = [];
  for (const topic of config.topics) {
    for (let index = 0; index < config.producersPerTopic; index++) {
      const name = `${topic}-p${index}`;
      const producer: ProducerRun = { name, done: Promise.resolve(), finished: false };
      producer.done = runProducer(context, name, topic, config.messagesPerProducer).then(() => {
        producer.finished = !context.stopped;
      });
      producers.push(producer);
    }
    runSubscriber(context, `${topic}-s0`, topic);
    runFetcher(context, topic);
  }
  return producers;
}

/** Waits (bounded) until every topic's group matches its placement, then checks every replica. */
async function finalChecks(
  run: Run,
  cluster: SimCluster,
  nemesis: Nemesis,
  config: ClusterSimConfig,
  history: History,
): Promise<void> {
  const members = nemesis.running();
  const expected = Math.min(simTiming.replicationFactor, members.length);
  for (const topic of config.topics) {
    const description = await run.drive(converged(run, cluster, topic, members, expected), 30_000);
    if (description === undefined) {
      history.violate(
        "placement_not_converged",
        `Topic '${topic}' did not reach ${expected} in-sync replicas on members ${
          members.join(",")
        }`,
      );
      continue;
    }
    const logs = new Map<number, { offset: number; message: string }[]>();
    for (const id of description.replicas) {
      const broker = cluster.brokers().get(id);
      const log = broker === undefined ? undefined : await run.drive(localLog(broker, topic), 5000);
      if (log === undefined) {
        history.violate("replica_unreadable", `Node ${id} holds no readable replica of '${topic}'`);
        continue;
      }
      logs.set(id, log);
    }
    const leaderLog = logs.get(description.leader);
    if (leaderLog === undefined) continue;
    for (const [id, log] of logs) {
      if (JSON.stringify(log) !== JSON.stringify(leaderLog)) {
        history.violate(
          "replicas_diverged",
          `Replica of '${topic}' on node ${id} holds ${log.length} messages, the leader ${description.leader} ${leaderLog.length}, or other ones`,
        );
      }
    }
    checkAgainstLog(history, topic, leaderLog);
  }
  await checkMetadata(run, cluster, history);
}

interface Converged {
  leader: number;
  replicas: number[];
}

/** Resolves once the topic's placement has `expected` members, all live and in sync. */
async function converged(
  run: Run,
  cluster: SimCluster,
  topic: string,
  members: number[],
  expected: number,
): Promise<Converged> {
  while (true) {
    const broker = cluster.brokers().get(members[0]);
    try {
      if (broker !== undefined) {
        const description = await broker.describeTopic(topic);
        const replicas = [...description.replicas].sort((a, b) => a - b);
        const inSync = [...description.in_sync].sort((a, b) => a - b);
        if (
          description.leader !== null && replicas.length === expected && replicas.every((id) =>
            members.includes(id)
          ) &&
          replicas.join() === inSync.join()
        ) {
          return { leader: description.leader, replicas };
        }
      }
    } catch {
      // Asked again in a moment.
    }
    await new Promise((resolve) => run.scheduler.schedule(500, () => resolve(undefined)));
  }
}

/** The committed messages of `broker`'s own replica of `topic`; undefined without one. */
async function localLog(
  broker: ClusterBroker,
  topic: string,
): Promise<{ offset: number; message: string }[] | undefined> {
  const source = await broker.source(topic);
  if (!(source instanceof RaftTopic)) return undefined;
  const log: { offset: number; message: string }[] = [];
  let next = 0;
  while (true) {
    const page = await source.readCommitted(next, 1000);
    if (page.messages.length === 0) return log;
    for (const item of page.messages) log.push({ offset: item.offset, message: item.message });
    next = page.nextOffset;
  }
}

/** Acknowledged publishes, fetches and deliveries against the final log. */
function checkAgainstLog(
  history: History,
  topic: string,
  log: { offset: number; message: string }[],
): void {
  const byOffset = new Map(log.map((item) => [item.offset, item.message]));
  const seen = new Map<string, number>();
  for (const item of log) seen.set(item.message, (seen.get(item.message) ?? 0) + 1);
  for (const [message, count] of seen) {
    if (count > 1) {
      history.violate("duplicate_in_log", `'${message}' is ${count} times in '${topic}'`);
    }
  }
  const lastOffset = new Map<string, number>();
  const records = [...history.publishes.values()].filter((record) => record.topic === topic)
    .sort((a, b) => a.sequence - b.sequence);
  for (const record of records) {
    if (record.offsets.length === 0) continue;
    const offset = record.offsets[0];
    if (byOffset.get(offset) !== record.message) {
      history.violate(
        "acknowledged_lost",
        `'${record.message}' was acknowledged at offset ${offset} of '${topic}', which holds ${
          byOffset.get(offset) === undefined ? "nothing" : `'${byOffset.get(offset)}'`
        }`,
      );
    }
    const previous = lastOffset.get(record.producer);
    if (previous !== undefined && offset <= previous) {
      history.violate(
        "producer_order",
        `${record.producer} sequence ${record.sequence} is at offset ${offset}, not after ${previous}`,
      );
    }
    lastOffset.set(record.producer, offset);
  }
  for (const fetch of history.fetches) {
    if (fetch.topic !== topic) continue;
    for (const item of fetch.messages) {
      if (byOffset.get(item.offset) !== item.message) {
        history.violate(
          "fetch_not_in_log",
          `A fetch on node ${fetch.node} returned '${item.message}' at offset ${item.offset} of '${topic}'`,
        );
      }
    }
  }
  for (const [offset, message] of history.deliveries.get(topic) ?? []) {
    if (byOffset.get(offset) !== message) {
      history.violate(
        "delivery_not_in_log",
        `Offset ${offset} of '${topic}' was delivered as '${message}', the log holds '${
          byOffset.get(offset)
        }'`,
      );
    }
  }
}

/**
 * Every running member lists the same topics and metadata voters. Members
 * apply the metadata at their own pace, so the views are compared again
 * (every 500 ms, for `metadataSettleMs`) until they agree.
 */
async function checkMetadata(run: Run, cluster: SimCluster, history: History): Promise<void> {
  const deadline = run.scheduler.now() + metadataSettleMs;
  let views = new Map<number, string>();
  while (true) {
    views = await metadataViews(run, cluster);
    if (new Set(views.values()).size <= 1 || run.scheduler.now() >= deadline) break;
    await run.until(run.scheduler.now() + 500);
  }
  if (new Set(views.values()).size > 1) {
    history.violate(
      "metadata_differs",
      [...views].map(([id, view]) => `node ${id}: ${view}`).join("; "),
    );
  }
}

/** Each running member's topics and metadata voters, as text. */
async function metadataViews(run: Run, cluster: SimCluster): Promise<Map<number, string>> {
  const views = new Map<number, string>();
  for (const [id, broker] of cluster.brokers()) {
    const view = await run.drive(
      (async () => {
        const names = await broker.topicNames();
        const status = await broker.clusterStatus();
        return JSON.stringify({ names, voters: status.meta_voters });
      })(),
      5000,
    );
    if (view !== undefined) views.set(id, view);
  }
  return views;
}

/** Stops every process cleanly (bounded), so nothing of the run outlives it. */
async function shutdown(run: Run, cluster: SimCluster): Promise<void> {
  const stopping = Promise.all([...cluster.peers.keys()].map((id) => cluster.stop(id)));
  await run.drive(stopping, 10_000);
  for (const id of cluster.peers.keys()) cluster.crash(id, "kill");
}
