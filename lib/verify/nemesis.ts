/**
 * The nemesis of `pubsub verify`: a fault schedule derived from one seed,
 * and the runner that injects each fault into a live cluster and heals it.
 *
 * The schedule is a pure function of the seed, the duration and the fault
 * kinds: the order of the faults (every kind once per shuffled round, so a
 * run of any length injects each kind at least once), when each starts,
 * how long it lasts, and the numbers that pick its targets and variants.
 * Targets are resolved when the fault starts (the topic's leader then, the
 * members then), so `--seed` replays the same decisions, while what the
 * cluster does in between is its own.
 *
 * Faults run one at a time. Each ends healed before the next begins, so at
 * most one peer is down, paused or cut off at once (a majority stays), and
 * liveness after healing is a fair expectation.
 *
 * @module
 */

import { sleep } from "../async.ts";
import type { TopicInfo } from "../client/client.ts";
import { Prng } from "../sim/prng.ts";
import type { VerifyCluster, VerifyNode } from "./cluster.ts";
import { waitUntilAlive } from "./cluster.ts";
import type { FaultRecord, History } from "./history.ts";

/** Every fault kind, in the order the report lists them. */
export const faultKinds = [
  "kill",
  "pause",
  "isolate-leader",
  "one-way",
  "bridge",
  "delay",
  "drop",
  "membership",
] as const;

/** One kind of fault. */
export type FaultKind = typeof faultKinds[number];

/** What each fault kind does, for `--help` and the README. */
export const faultDescriptions: Record<FaultKind, string> = {
  "kill": "SIGKILL a peer (the topic leader half the time), restart it on its data after the fault",
  "pause": "SIGSTOP a peer (the topic leader half the time), SIGCONT after the fault",
  "isolate-leader": "the proxy holds every byte between the topic leader and the other peers",
  "one-way":
    "the proxy holds bytes one way only: from the leader to the others, or from the others to it",
  "bridge":
    "two sides that cannot talk, and one peer (the bridge) that talks to both; with 3 peers, one link is cut",
  "delay": "the proxy delays every peer link by 20-200 ms per direction",
  "drop": "the proxy closes every connection of one peer (or of all) again and again; peers redial",
  "membership":
    "a fresh peer joins and a member is removed (remove-node), or a removed member rejoins with a wiped data dir as a new id",
};

/** Which kinds need which ability of the cluster. */
export const faultNeeds: Record<FaultKind, "kill" | "pause" | "proxy" | "membership"> = {
  "kill": "kill",
  "pause": "pause",
  "isolate-leader": "proxy",
  "one-way": "proxy",
  "bridge": "proxy",
  "delay": "proxy",
  "drop": "proxy",
  "membership": "membership",
};

/** One planned fault. */
export interface FaultStep {
  kind: FaultKind;
  /** Planned start, ms after the fault phase began (a later start when the previous fault ran long). */
  atMs: number;
  /** How long the fault holds before it heals (a membership change takes what it takes). */
  durationMs: number;
  /** Uniform numbers in [0, 1) that pick targets and variants when the fault starts. */
  choices: number[];
  /** True for the faults of the first round, which always run. */
  firstRound: boolean;
}

/** Shortest and longest time given to one fault and the pause after it. */
export const faultSlotMsMin = 1_500;
export const faultSlotMsMax = 8_000;
/** Choices drawn per fault. */
const choicesPerFault = 4;

/**
 * The fault schedule of `seed`: rounds of every kind in a seeded order,
 * until `durationMs` is used (the first round is always complete).
 *
 * @example
 * ```ts
 * import { planFaults } from "./nemesis.ts";
 *
 * const steps = planFaults(42, { durationMs: 30_000, kinds: ["kill", "bridge"] });
 * steps.map((step) => step.kind); // the same list for seed 42, every time
 * ```
 */
export function planFaults(
  seed: number,
  options: { durationMs: number; kinds: readonly FaultKind[] },
): FaultStep[] {
  const { durationMs, kinds } = options;
  if (!Number.isFinite(durationMs) || durationMs <= 0) {
    throw new RangeError(
      `Cannot plan faults as 'durationMs' must be positive: current value is ${durationMs}`,
    );
  }
  if (kinds.length === 0) return [];
  const prng = new Prng(seed);
  const slotMs = Math.min(
    faultSlotMsMax,
    Math.max(faultSlotMsMin, Math.floor(durationMs / kinds.length)),
  );
  const steps: FaultStep[] = [];
  // The workload runs on a healthy cluster for a moment first.
  let atMs = Math.min(1_000, Math.floor(slotMs / 2));
  for (let round = 0; round === 0 || atMs < durationMs; round++) {
    for (const kind of shuffled(kinds, prng)) {
      if (round > 0 && atMs >= durationMs) break;
      const active = Math.round(slotMs * (0.4 + 0.3 * prng.next()));
      const choices = Array.from({ length: choicesPerFault }, () => prng.next());
      steps.push({ kind, atMs, durationMs: active, choices, firstRound: round === 0 });
      atMs += slotMs;
    }
  }
  return steps;
}

function shuffled<T>(items: readonly T[], prng: Prng): T[] {
  const copy = [...items];
  for (let at = copy.length - 1; at > 0; at--) {
    const other = prng.int(at + 1);
    [copy[at], copy[other]] = [copy[other], copy[at]];
  }
  return copy;
}

/** How long a membership change may take until the topic's replicas moved and are in sync. */
export const membershipSettleMsMax = 30_000;
/** Pause between two drops of the `drop` fault, at least. */
const dropIntervalMsMin = 200;

/** What the nemesis needs besides the cluster. */
export interface NemesisOptions {
  cluster: VerifyCluster;
  history: History;
  /** The topic the workload uses: its leader is a target. */
  topic: string;
  /** Aborts the schedule (Ctrl-C); a fault in progress still heals. */
  signal: AbortSignal;
  /** Called when a fault started and when it healed. */
  onFault?: (record: FaultRecord, phase: "start" | "end") => void;
}

/**
 * Runs a schedule against a cluster.
 *
 * @example
 * ```ts
 * import { Nemesis, planFaults } from "./nemesis.ts";
 *
 * const nemesis = new Nemesis({ cluster, history, topic: "verify", signal });
 * await nemesis.run(planFaults(42, { durationMs: 30_000, kinds: ["kill"] }), 30_000);
 * ```
 */
export class Nemesis {
  readonly #options: NemesisOptions;
  /** Faults that did not start because the duration was over. */
  skipped = 0;

  constructor(options: NemesisOptions) {
    this.#options = options;
  }

  /**
   * Injects the steps in order, each at its planned time or after the
   * previous one healed; steps after the first round that would start after
   * `durationMs` are skipped.
   */
  async run(steps: readonly FaultStep[], durationMs: number): Promise<void> {
    const startedMs = performance.now();
    for (const step of steps) {
      if (this.#options.signal.aborted) return;
      const elapsedMs = performance.now() - startedMs;
      if (!step.firstRound && elapsedMs >= durationMs) {
        this.skipped++;
        continue;
      }
      await sleep(Math.max(0, step.atMs - elapsedMs), this.#options.signal);
      if (this.#options.signal.aborted) return;
      await this.#inject(step);
    }
    const restMs = durationMs - (performance.now() - startedMs);
    if (restMs > 0) await sleep(restMs, this.#options.signal);
  }

  async #inject(step: FaultStep): Promise<void> {
    const { history, onFault } = this.#options;
    const record = history.startFault({ kind: step.kind, nodes: [], detail: "", injected: true });
    onFault?.(record, "start");
    try {
      await this.#faults[step.kind](step, record);
    } catch (error) {
      record.injected = record.nodes.length > 0 && record.injected;
      record.detail = `${record.detail}${record.detail ? "; " : ""}failed: ${
        (error as Error).message
      }`;
    }
    history.endFault(record);
    onFault?.(record, "end");
  }

  readonly #faults: Record<FaultKind, (step: FaultStep, record: FaultRecord) => Promise<void>> = {
    "kill": (step, record) => this.#kill(step, record),
    "pause": (step, record) => this.#pause(step, record),
    "isolate-leader": (step, record) => this.#isolateLeader(step, record),
    "one-way": (step, record) => this.#oneWay(step, record),
    "bridge": (step, record) => this.#bridge(step, record),
    "delay": (step, record) => this.#delay(step, record),
    "drop": (step, record) => this.#drop(step, record),
    "membership": (step, record) => this.#membership(step, record),
  };

  /** Holds the fault for its duration; Ctrl-C cuts it short (the fault still heals). */
  #hold(step: FaultStep): Promise<void> {
    return sleep(step.durationMs, this.#options.signal);
  }

  async #kill(step: FaultStep, record: FaultRecord): Promise<void> {
    const { cluster } = this.#options;
    const target = await this.#leaderOrMember(step.choices[0], step.choices[1]);
    record.nodes = [target.node.id];
    record.detail = `SIGKILL node ${target.node.id}${target.role}`;
    await cluster.kill(target.node.id);
    await this.#hold(step);
    const downMs = Math.round(this.#options.history.now() - record.startMs);
    await cluster.restart(target.node.id);
    record.detail += `, restarted after ${(downMs / 1000).toFixed(1)} s`;
  }

  async #pause(step: FaultStep, record: FaultRecord): Promise<void> {
    const { cluster } = this.#options;
    const target = await this.#leaderOrMember(step.choices[0], step.choices[1]);
    record.nodes = [target.node.id];
    record.detail = `SIGSTOP node ${target.node.id}${target.role}`;
    cluster.pause(target.node.id);
    try {
      await this.#hold(step);
    } finally {
      cluster.resume(target.node.id);
    }
    record.detail += `, SIGCONT after ${(step.durationMs / 1000).toFixed(1)} s`;
  }

  async #isolateLeader(step: FaultStep, record: FaultRecord): Promise<void> {
    const proxy = this.#proxy();
    const target = await this.#leaderOrMember(0, step.choices[1]);
    const others = this.#up().filter((node) => node.id !== target.node.id).map((node) => node.id);
    record.nodes = [target.node.id];
    record.detail = `cut node ${target.node.id}${target.role} off from ${others.join(",")}`;
    proxy.partition([target.node.id], others);
    try {
      await this.#hold(step);
    } finally {
      proxy.heal();
    }
  }

  async #oneWay(step: FaultStep, record: FaultRecord): Promise<void> {
    const proxy = this.#proxy();
    const target = await this.#leaderOrMember(0, step.choices[1]);
    const others = this.#up().filter((node) => node.id !== target.node.id).map((node) => node.id);
    const outbound = step.choices[2] < 0.5;
    record.nodes = [target.node.id];
    record.detail = outbound
      ? `hold bytes from node ${target.node.id}${target.role} to ${
        others.join(",")
      } (it still hears them)`
      : `hold bytes from ${
        others.join(",")
      } to node ${target.node.id}${target.role} (it is still heard)`;
    for (const other of others) {
      if (outbound) proxy.block(target.node.id, other);
      else proxy.block(other, target.node.id);
    }
    try {
      await this.#hold(step);
    } finally {
      proxy.heal();
    }
  }

  async #bridge(step: FaultStep, record: FaultRecord): Promise<void> {
    const proxy = this.#proxy();
    const members = this.#up().map((node) => node.id).sort((a, b) => a - b);
    if (members.length < 3) throw new Error(`a bridge needs 3 peers up, found ${members.length}`);
    const bridge = members[Math.floor(step.choices[0] * members.length)];
    const rest = shuffled(members.filter((id) => id !== bridge), new Prng(seedOf(step.choices[1])));
    const half = Math.floor(rest.length / 2);
    const [sideA, sideB] = [rest.slice(0, half), rest.slice(half)];
    record.nodes = members;
    record.detail = `${sideA.join(",")} | ${
      sideB.join(",")
    } cut apart, node ${bridge} bridges both`;
    proxy.partition(sideA, sideB);
    try {
      await this.#hold(step);
    } finally {
      proxy.heal();
    }
  }

  async #delay(step: FaultStep, record: FaultRecord): Promise<void> {
    const proxy = this.#proxy();
    const members = this.#up().map((node) => node.id).sort((a, b) => a - b);
    const prng = new Prng(seedOf(step.choices[0]));
    const delays: string[] = [];
    for (const from of members) {
      for (const to of members) {
        if (from === to) continue;
        const delayMs = prng.range(20, 200);
        proxy.setDelay(from, to, delayMs);
        delays.push(`${from}>${to} ${delayMs}`);
      }
    }
    record.nodes = members;
    record.detail = `delay peer links (ms): ${delays.join(", ")}`;
    try {
      await this.#hold(step);
    } finally {
      proxy.heal();
    }
  }

  async #drop(step: FaultStep, record: FaultRecord): Promise<void> {
    const proxy = this.#proxy();
    const members = this.#up();
    const one = step.choices[0] < 0.5
      ? members[Math.floor(step.choices[1] * members.length)]
      : undefined;
    record.nodes = one === undefined ? members.map((node) => node.id) : [one.id];
    const intervalMs = dropIntervalMsMin + Math.floor(step.choices[2] * 300);
    const endMs = performance.now() + step.durationMs;
    let rounds = 0;
    let closed = 0;
    while (!this.#options.signal.aborted) {
      closed += proxy.dropConnections((dialer, listener) =>
        one === undefined || dialer === one.id || listener === one.id
      );
      rounds++;
      if (performance.now() + intervalMs >= endMs) break;
      await sleep(intervalMs, this.#options.signal);
    }
    record.detail = `closed ${closed} connections of ${
      one === undefined ? "every peer" : `node ${one.id}`
    } in ${rounds} rounds, every ${intervalMs} ms`;
  }

  /**
   * Replace: a spare joins, a member is removed, its replicas move to the
   * spare, the removed peer stops. Rejoin: a member is removed and stopped,
   * its data wiped, and it starts again on its port as a new id.
   */
  async #membership(step: FaultStep, record: FaultRecord): Promise<void> {
    const { cluster } = this.#options;
    const members = this.#up();
    const victim = members[Math.floor(step.choices[1] * members.length)];
    const replace = step.choices[0] < 0.5;
    record.nodes = [victim.id];
    const replicas = (await this.#describe())?.replicas.length ?? 1;
    let fresh: VerifyNode;
    if (replace) {
      fresh = await cluster.spawn();
      record.nodes.push(fresh.id);
      record.detail = `node ${fresh.id} joined`;
      await waitUntilAlive(cluster, cluster.members().filter((node) => node.state === "up"));
      await this.#removeNode(victim.id);
      record.detail += `, remove-node ${victim.id}`;
      const settled = await this.#replicasMoved(victim.id, replicas);
      await cluster.retire(victim.id);
      record.detail += `, ${settled ?? settledNote}, node ${victim.id} stopped`;
    } else {
      await this.#removeNode(victim.id);
      record.detail = `remove-node ${victim.id}`;
      await cluster.retire(victim.id, { wipe: true });
      const port = Number(victim.address.slice(victim.address.lastIndexOf(":") + 1));
      fresh = await cluster.spawn({ port });
      record.nodes.push(fresh.id);
      record.detail += `, stopped and wiped, rejoined on its port as node ${fresh.id}`;
      const settled = await this.#replicasMoved(victim.id, replicas);
      record.detail += `, ${settled ?? settledNote}`;
    }
  }

  async #removeNode(id: number): Promise<void> {
    const client = await this.#options.cluster.client(
      this.#up().filter((node) => node.id !== id).map((node) => node.address),
    );
    try {
      await client.removeNode(id);
    } finally {
      await client.close();
    }
  }

  /**
   * Waits (bounded) until the topic's replicas left `removed`, are `count`
   * again (the removed one replaced by a live peer) and are all in sync.
   */
  async #replicasMoved(removed: number, count: number): Promise<string | undefined> {
    const deadlineMs = performance.now() + membershipSettleMsMax;
    while (performance.now() < deadlineMs && !this.#options.signal.aborted) {
      const info = await this.#describe(removed);
      if (
        info !== undefined && !info.replicas.includes(removed) && info.replicas.length >= count &&
        info.replicas.every((id) => info.inSync.includes(id))
      ) {
        return `replicas ${info.replicas.join(",")} in sync`;
      }
      await sleep(250, this.#options.signal);
    }
    return undefined;
  }

  /** The topic as a peer up (other than `avoid`) describes it; undefined when none answers. */
  async #describe(avoid?: number): Promise<TopicInfo | undefined> {
    const client = await this.#options.cluster.client(
      this.#up().filter((node) => node.id !== avoid).map((node) => node.address),
    ).catch(() => undefined);
    try {
      return await client?.describeTopic(this.#options.topic);
    } catch {
      // Not now: a leader may be changing.
      return undefined;
    } finally {
      await client?.close();
    }
  }

  #up(): VerifyNode[] {
    return this.#options.cluster.members().filter((node) => node.state === "up");
  }

  #proxy() {
    const proxy = this.#options.cluster.proxy;
    if (proxy === undefined) throw new Error("the cluster has no proxy between its peers");
    return proxy;
  }

  /**
   * The topic's leader when `leaderChoice` < 0.5 and it is known, else the
   * member `memberChoice` picks among those up.
   */
  async #leaderOrMember(
    leaderChoice: number,
    memberChoice: number,
  ): Promise<{ node: VerifyNode; role: string }> {
    const members = this.#up().sort((a, b) => a.id - b.id);
    if (members.length === 0) throw new Error("no peer is up");
    if (leaderChoice < 0.5) {
      const leader = await this.#leader();
      const node = members.find((member) => member.id === leader);
      if (node !== undefined) return { node, role: " (topic leader)" };
    }
    return { node: members[Math.floor(memberChoice * members.length)], role: "" };
  }

  async #leader(): Promise<number | undefined> {
    return (await this.#describe())?.leader ?? undefined;
  }
}

const settledNote =
  `the topic's replicas had not moved and caught up within ${membershipSettleMsMax} ms`;

/** A 32-bit seed from a choice in [0, 1). */
function seedOf(choice: number): number {
  return Math.floor(choice * 2 ** 32) >>> 0;
}
