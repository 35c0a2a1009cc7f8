/**
 * The deterministic cluster simulator. One seed derives the cluster size,
 * fault rates and workload; a virtual clock orders every event; the run has
 * a safety phase with faults (loss, duplication, reordering, partitions,
 * crashes that lose unsynced writes, some timed while a sync is in flight,
 * damaged logs rebuilt empty (recovering replicas), pauses, membership
 * changes, leadership transfers, compaction), a liveness phase with faults
 * healed that must converge, and a stability phase in which an isolated
 * follower must not depose the healthy leader.
 *
 * The workload: plain proposals, ReadIndex reads, idempotent producers that
 * retry a sequence until it is answered, and durable subscribers that read
 * one replica's applied topic, acknowledge, and now and then resume on
 * another replica from the position it holds.
 *
 * The `InvariantChecker` observes throughout: every message sent (leaders,
 * votes), every entry written, every move of a commit index (after every
 * event), every entry applied, every read and delivery.
 *
 * @module
 */

import { NotLeaderError, ProposalDroppedError, RaftInvariantError } from "../raft/errors.ts";
import type { ConfChange, Message, MessageType } from "../raft/types.ts";
import type { ConfState, LogStore } from "../storage/types.ts";
import { InvariantChecker, INVARIANTS, type LogView, type Violation } from "./checker.ts";
import { type BrokenVariant, configFromSeed, describeConfig, type SimConfig } from "./config.ts";
import { EventQueue } from "./event_queue.ts";
import { SimNetwork } from "./network.ts";
import { Prng } from "./prng.ts";
import { type ReplicaHost, SimReplica } from "./replica.ts";
import { encodeTopicCommand, type TopicCommand, type TopicOutcome } from "./topic_model.ts";
import { Trace } from "./trace.ts";

/** Outcome of one seed. */
export interface SimResult {
  seed: number;
  config: SimConfig;
  violation: Violation | undefined;
  /** Last events before the violation, oldest first (empty when none). */
  trace: string[];
  acks: number;
  committed: number;
  readsServed: number;
  /** Offsets delivered to durable subscribers (redeliveries included). */
  deliveries: number;
  elections: number;
  /** Snapshots installed by transfer, and the retained entries they brought along. */
  snapshotsInstalled: number;
  retainedEntriesInstalled: number;
  /** Appends with entries marked `lazySync` that reached a follower (`SimConfig.lazySyncMs`). */
  lazyAppends: number;
  virtualMs: number;
}

/** Options of `runSimulation`. */
export interface RunOptions {
  /** Safety-phase ticks (default: from the seed's config). */
  safetyTicks?: number;
  /** Liveness-phase ticks at most, catching up included (default 6000). */
  livenessCatchUpTicksMax?: number;
  /** Enable a deliberately broken variant. */
  broken?: BrokenVariant;
  /** Lazy followers' wait in ms, 0 for none (default: from the seed's config). */
  lazySyncMs?: number;
  /** Events kept for the violation report. Default 30. */
  traceEventsMax?: number;
}

/** Messages only a leader sends: each one names its sender the leader of its term. */
const LEADER_MESSAGES: ReadonlySet<MessageType> = new Set<MessageType>([
  "app",
  "heartbeat",
  "snap",
  "timeoutNow",
]);
const NODE_ID_MAX = 9;
/** Offsets a subscriber takes per delivery round. */
const DELIVERY_BATCH_MAX = 8;
/** Chance per delivery round that a subscriber reconnects (and resumes from a durable position). */
const RECONNECT_RATE = 0.05;
/** Chance per delivery round that a subscriber acknowledges what it was delivered. */
const SUBSCRIBER_ACK_RATE = 0.3;
/** Chance in the leader-churn profile that a new leader is isolated within a round trip. */
const YOUNG_LEADER_ISOLATION_RATE = 0.8;
/** Chance that a leader handing over leadership stops hearing the cluster once it sent TimeoutNow. */
const HANDOVER_DEAFENING_RATE = 0.5;
const TRACE_EVENTS_MAX = 30;
const PENDING_PROPOSALS_MAX = 200;
/** Chance per safety-phase tick of a membership change, on top of the fault mix. */
const MEMBERSHIP_RATE = 0.01;

/**
 * Runs one seed to completion or to its first violation.
 *
 * @example
 * ```ts
 * const result = runSimulation(42);
 * if (result.violation) console.log(formatResult(result));
 * ```
 */
export function runSimulation(seed: number, options: RunOptions = {}): SimResult {
  const config = configFromSeed(seed, options);
  const simulation = new Simulation(config, options.traceEventsMax ?? TRACE_EVENTS_MAX);
  simulation.run();
  return simulation.result();
}

/**
 * Formats a result deterministically (no wall-clock values), so that
 * replaying a seed prints byte for byte the same text.
 *
 * @example
 * ```ts
 * console.log(formatResult(runSimulation(1)));
 * ```
 */
export function formatResult(result: SimResult): string {
  if (!result.violation) {
    return `seed ${result.seed}: ok (${
      describeConfig(result.config)
    }; acks=${result.acks} committed=${result.committed} reads=${result.readsServed} deliveries=${result.deliveries} leaders=${result.elections} virtual=${result.virtualMs}ms)`;
  }
  const broken = result.config.broken ? ` --broken ${result.config.broken}` : "";
  return [
    `seed ${result.seed}: VIOLATION of "${result.violation.invariant}": ${result.violation.detail}`,
    `  config: ${describeConfig(result.config)}`,
    `  last ${result.trace.length} events:`,
    ...result.trace.map((line) => `    ${line}`),
    `  reproduce with: pubsub sim --seed ${result.seed}${broken}`,
  ].join("\n");
}

/** An idempotent producer: one sequence in flight, retried until answered. */
interface Producer {
  id: string;
  sequence: number;
  /** Tick of the last attempt at `sequence`; undefined when nothing is in flight. */
  attemptTick: number | undefined;
}

/** A durable subscriber reading one replica's applied state. */
interface Subscriber {
  id: string;
  replica: SimReplica | undefined;
  /** Next offset to deliver. */
  next: number;
}

type Event = { kind: "tick" } | {
  kind: "action";
  replica: SimReplica;
  epoch: number;
  action: () => void;
};

class Simulation implements ReplicaHost {
  readonly checker = new InvariantChecker();
  readonly #config: SimConfig;
  readonly #prng: Prng;
  readonly #network: SimNetwork;
  readonly #queue = new EventQueue<Event>();
  readonly #trace: Trace;
  readonly #replicas = new Map<number, SimReplica>();
  #snapshotsInstalled = 0;
  #retainedEntriesInstalled = 0;
  #lazyAppends = 0;
  #now = 0;
  #ticks = 0;
  #nextKey = 0;
  #nextNodeId: number;
  #faults = true;
  #workload = true;
  readonly #producers: Producer[];
  /** Publishes in flight by proposal id: which producer sequence they carry. */
  readonly #publishes = new Map<string, { producer: Producer; sequence: number }>();
  readonly #subscribers: Subscriber[];
  /** Leaders that stop hearing the cluster as soon as they send TimeoutNow. */
  readonly #deafenAfterHandover = new Set<number>();

  constructor(config: SimConfig, traceEventsMax: number) {
    this.#config = config;
    this.#trace = new Trace(traceEventsMax);
    this.#prng = new Prng(config.seed);
    this.#network = new SimNetwork(this.#prng.fork(), config);
    this.#nextNodeId = config.nodes + 1;
    this.#producers = Array.from({ length: config.producers }, (_, i) => ({
      id: `P${i + 1}`,
      sequence: 0,
      attemptTick: undefined,
    }));
    this.#subscribers = Array.from({ length: config.subscribers }, (_, i) => ({
      id: `S${i + 1}`,
      replica: undefined,
      next: 0,
    }));
  }

  // ---- ReplicaHost ---------------------------------------------------------

  now(): number {
    return this.#now;
  }

  send(message: Message): void {
    // Observed when sent, delivered or not: what a replica says is what it did.
    if (LEADER_MESSAGES.has(message.type)) this.checker.observeLeader(message.term, message.from);
    if (
      message.type === "timeoutNow" && this.#deafenAfterHandover.delete(message.from) &&
      this.#faults
    ) {
      this.#deafen(message.from);
    }
    if (message.type === "voteResp" && !message.reject) {
      this.checker.observeVote(message.from, message.term, message.to);
    } else if (message.type === "vote") {
      this.checker.observeVote(message.from, message.term, message.from);
    }
    if (this.#network.blocked(message.from, message.to)) return;
    // Every message carries its sender's incarnation, as peer_raft frames do.
    const incarnation = this.#replicas.get(message.from)?.epoch ?? 0;
    for (const delay of this.#network.deliveries()) {
      const target = this.#replicas.get(message.to);
      if (!target) return;
      this.schedule(target, delay, () => this.#deliver(target, message, incarnation), true);
    }
  }

  schedule(replica: SimReplica, delayMs: number, action: () => void, survivesCrash = false): void {
    const epoch = survivesCrash ? -1 : replica.epoch;
    this.#queue.push(this.#now + delayMs, { kind: "action", replica, epoch, action });
  }

  syncDelayMs(): number {
    return this.#prng.range(1, this.#config.syncMsMax);
  }

  /** Snapshot transfers installed (see `SimResult.snapshotsInstalled`). */
  onSnapshotInstalled(retainedEntries: number): void {
    this.#snapshotsInstalled++;
    this.#retainedEntriesInstalled += retainedEntries;
  }

  trace(kind: string, node: number, detail: string | number, extra: string | number): void {
    this.#trace.record(this.#now, kind, node, detail, extra);
  }

  onAcknowledged(id: string, outcome: TopicOutcome): void {
    const publish = this.#publishes.get(id);
    if (publish === undefined) return;
    this.#publishes.delete(id);
    const { producer, sequence } = publish;
    // A refused publish stored nothing: the producer retries it.
    if (outcome.kind === "refused" || sequence !== producer.sequence) return;
    producer.sequence++;
    producer.attemptTick = undefined;
  }

  /**
   * In the leader-churn profile a new leader is usually cut off young:
   * isolated (its messages in flight lost) before its first entry reaches
   * a majority, while followers still hold entries of earlier terms it was
   * replicating: the ground of the Raft paper's figure 8.
   */
  onElected(replica: SimReplica): void {
    if (!this.#faults || this.#config.profile !== "leader-churn") return;
    if (!this.#prng.chance(YOUNG_LEADER_ISOLATION_RATE)) return;
    const delayMs = this.#prng.range(1, 2 * this.#config.delayMsMax + this.#config.syncMsMax);
    this.schedule(replica, delayMs, () => {
      if (!this.#faults) return;
      this.#network.partition([replica.id], this.#memberIds().filter((id) => id !== replica.id));
      this.trace("isolate-young-leader", replica.id, "", "");
    });
  }

  snapshotSource(id: number): LogStore | undefined {
    const replica = this.#replicas.get(id);
    return replica?.live ? replica.store : undefined;
  }

  onConfApplied(change: ConfChange): void {
    if (change.type !== "remove") return;
    const replica = this.#replicas.get(change.node);
    if (!replica || replica.removed) return;
    // The removal is committed: decommission the replica for good, after the
    // current event (the replica may be the one applying the removal).
    replica.removed = true;
    this.#queue.push(this.#now, {
      kind: "action",
      replica,
      epoch: -1,
      action: () => {
        this.trace("decommission", change.node, "", "");
        if (replica.live) replica.crash();
      },
    });
  }

  // ---- run ---------------------------------------------------------------

  run(): void {
    try {
      const founding = Array.from({ length: this.#config.nodes }, (_, i) => i + 1);
      for (const id of founding) this.#addReplica(id, founding);
      this.#queue.push(this.#config.tickMs, { kind: "tick" });
      this.#runTicks(this.#config.safetyTicks);
      if (this.#stopped()) return;
      this.#heal();
      this.#runLiveness();
      if (this.#stopped()) return;
      this.#runStability();
    } catch (error) {
      // Nothing is swallowed: any exception (a RangeError of a store read out
      // of bounds, a refused request the simulator should not have made) fails
      // the seed, naming where it was thrown.
      const invariant = error instanceof RaftInvariantError
        ? INVARIANTS.replicaAssertions
        : INVARIANTS.noException;
      this.checker.fail(invariant, describeError(error));
    }
  }

  result(): SimResult {
    const violation = this.checker.violation;
    return {
      seed: this.#config.seed,
      config: this.#config,
      violation,
      trace: violation ? this.#trace.format() : [],
      acks: this.checker.ackCount,
      committed: this.checker.historyLength,
      readsServed: this.checker.readsServed,
      deliveries: this.checker.deliveries,
      elections: this.checker.elections,
      snapshotsInstalled: this.#snapshotsInstalled,
      retainedEntriesInstalled: this.#retainedEntriesInstalled,
      lazyAppends: this.#lazyAppends,
      virtualMs: this.#now,
    };
  }

  #stopped(): boolean {
    return this.checker.violation !== undefined;
  }

  /** Runs events until `ticks` more ticks have passed or a violation is found. */
  #runTicks(ticks: number, until?: () => boolean): boolean {
    const last = this.#ticks + ticks;
    while (this.#ticks < last && !this.#stopped()) {
      const slot = this.#queue.pop();
      if (!slot) break;
      this.#now = slot.time;
      const event = slot.value;
      if (event.kind === "tick") {
        this.#tick();
        if (until?.()) return true;
      } else if (event.epoch === -1 || event.epoch === event.replica.epoch) {
        if (event.replica.paused) event.replica.deferred.push(event.action);
        else event.action();
      }
    }
    return false;
  }

  #tick(): void {
    this.#ticks++;
    this.#queue.push(this.#now + this.#config.tickMs, { kind: "tick" });
    for (const replica of this.#replicas.values()) {
      if (!replica.live || replica.paused) continue;
      replica.node!.tick();
      replica.pump();
      if (this.#config.compaction && replica.compactionDue(this.#config.snapshotEntries)) {
        replica.compact();
      }
    }
    if (this.#workload) this.#clientStep();
    if (this.#faults && this.#prng.chance(this.#config.faultRate)) this.#injectFault();
    if (this.#faults && this.#config.membershipChanges && this.#prng.chance(MEMBERSHIP_RATE)) {
      this.#changeMembership();
    }
  }

  #deliver(target: SimReplica, message: Message, incarnation: number): void {
    if (!target.live || this.#network.blocked(message.from, message.to)) return;
    this.trace(message.type, message.to, `from n${message.from}`, `term ${message.term}`);
    target.noteIncarnation(message.from, incarnation);
    if (message.type === "app" && message.lazySync === true) this.#lazyAppends++;
    target.receive(message);
    target.pump();
  }

  // ---- workload ----------------------------------------------------------

  #leaders(): SimReplica[] {
    const leaders: SimReplica[] = [];
    for (const replica of this.#replicas.values()) {
      if (replica.live && !replica.paused && replica.node!.role === "leader") leaders.push(replica);
    }
    return leaders;
  }

  #clientStep(): void {
    const leaders = this.#leaders();
    for (const subscriber of this.#subscribers) {
      if (this.#prng.chance(this.#config.subscribeRate)) this.#subscriberStep(subscriber, leaders);
    }
    if (leaders.length === 0) return;
    for (const producer of this.#producers) {
      if (this.#prng.chance(this.#config.produceRate)) this.#producerStep(producer, leaders);
    }
    const leader = this.#prng.pick(leaders);
    if (
      this.#prng.chance(this.#config.proposeRate) && leader.pending.size < PENDING_PROPOSALS_MAX
    ) {
      const count = this.#prng.range(1, 4);
      for (let i = 0; i < count; i++) {
        this.#propose(leader, { kind: "publish", id: this.#nextId("p") });
      }
      leader.pump();
    }
    if (this.#prng.chance(this.#config.readRate)) {
      this.#attempt(() => leader.readIndex(this.#nextId("r"), this.checker.ackedIndexMax));
      leader.pump();
    }
  }

  #nextId(prefix: string): string {
    return `${prefix}${this.#nextKey++}`;
  }

  /** Publishes the producer's next sequence, or retries it once `retryTicks` passed unanswered. */
  #producerStep(producer: Producer, leaders: SimReplica[]): void {
    const due = producer.attemptTick === undefined ||
      this.#ticks - producer.attemptTick >= this.#config.retryTicks;
    const leader = this.#prng.pick(leaders);
    if (!due || leader.pending.size >= PENDING_PROPOSALS_MAX) return;
    const id = this.#nextId("u");
    const { sequence } = producer;
    const command: TopicCommand = { kind: "publish", id, producer: producer.id, sequence };
    if (!this.#propose(leader, command)) return;
    producer.attemptTick = this.#ticks;
    this.#publishes.set(id, { producer, sequence });
    leader.pump();
  }

  /**
   * Delivers the next offsets a subscriber's replica applied; now and then
   * reconnects to another replica, resuming after the durable position that
   * replica holds, and acknowledges what it was delivered.
   */
  #subscriberStep(subscriber: Subscriber, leaders: SimReplica[]): void {
    const current = subscriber.replica;
    if (!current?.live || current.paused || this.#prng.chance(RECONNECT_RATE)) {
      const live = [...this.#replicas.values()].filter((replica) =>
        replica.live && !replica.paused
      );
      if (live.length === 0) return;
      const replica = this.#prng.pick(live);
      const position = replica.topic.subscribers.get(subscriber.id) ?? -1;
      this.trace("resume-subscriber", replica.id, subscriber.id, `after ${position}`);
      this.checker.observeResume(subscriber.id, replica.id, position);
      subscriber.replica = replica;
      subscriber.next = position + 1;
    }
    const replica = subscriber.replica!;
    const messages = replica.topic.messages;
    const end = Math.min(messages.length, subscriber.next + DELIVERY_BATCH_MAX);
    for (; subscriber.next < end; subscriber.next++) {
      this.checker.observeDelivery(
        subscriber.id,
        replica.id,
        subscriber.next,
        messages[subscriber.next],
      );
    }
    if (leaders.length === 0 || subscriber.next === 0) return;
    if (!this.#prng.chance(SUBSCRIBER_ACK_RATE)) return;
    const leader = this.#prng.pick(leaders);
    if (leader.pending.size >= PENDING_PROPOSALS_MAX) return;
    const offset = subscriber.next - 1;
    this.#propose(leader, {
      kind: "ack",
      id: this.#nextId("a"),
      subscriber: subscriber.id,
      offset,
    });
    leader.pump();
  }

  #propose(leader: SimReplica, command: TopicCommand): boolean {
    return this.#attempt(() => {
      const index = leader.propose(command.id, encodeTopicCommand(command));
      this.trace("propose", leader.id, command.id, index);
    });
  }

  /**
   * Runs a leader operation, treating the documented refusals (not the
   * leader, proposal dropped) as normal outcomes; anything else propagates
   * and fails the seed.
   */
  #attempt(operation: () => void): boolean {
    try {
      operation();
      return true;
    } catch (error) {
      if (error instanceof NotLeaderError || error instanceof ProposalDroppedError) return false;
      throw error;
    }
  }

  // ---- faults ------------------------------------------------------------

  #injectFault(): void {
    if (this.#config.profile === "leader-churn") {
      this.#churnLeader();
      return;
    }
    const roll = this.#prng.int(100);
    if (roll < 15) this.#partitionRandom();
    else if (roll < 22) this.#partitionAsymmetric();
    else if (roll < 30) this.#isolateLeader();
    else if (roll < 42) this.#healNetwork();
    else if (roll < 50) this.#crashRandom();
    else if (roll < 55) this.#crashUnsynced();
    else if (roll < 68) this.#restartRandom();
    else if (roll < 76) this.#pauseRandom();
    else if (roll < 84) this.#changeMembership();
    else if (roll < 90) this.#transferLeadership();
    else if (roll < 93) this.#powerLoss();
    else if (roll < 96) this.#wipeRandom();
    else this.#compactRandom();
  }

  #churnLeader(): void {
    const roll = this.#prng.int(100);
    if (roll < 30) this.#isolateLeader();
    else if (roll < 50) this.#healNetwork();
    else if (roll < 60) this.#crashLeader();
    else if (roll < 65) this.#crashUnsynced();
    else if (roll < 70) this.#powerLoss();
    else if (roll < 80) this.#transferLeadership();
    else this.#restartRandom();
  }

  /** Every replica loses power at once: only what each had fsynced survives. */
  #powerLoss(): void {
    for (const replica of this.#replicas.values()) {
      if (!replica.live) continue;
      replica.crash();
      replica.paused = false;
      replica.deferred = [];
    }
    this.trace("power-loss", 0, "", "");
  }

  /**
   * One replica's log is found damaged: it is rebuilt empty and recovering
   * (see `SimReplica.wipe`), and restarts at once.
   *
   * A recovering replica votes only for candidates holding an entry of a
   * term after the one it lost, so until such a leader exists its group
   * needs a majority of other voters: the price of its safety, which the
   * liveness phase must not count as a bug. Hence at most one replica
   * recovers at a time, and only in runs without membership changes: after
   * a crash a replica's conf is the one of its durable commit index and may
   * still list a voter removed since, leaving no such majority.
   */
  #wipeRandom(): void {
    if (this.#config.membershipChanges) return;
    const members = [...this.#replicas.values()].filter((replica) => !replica.removed);
    if (members.some((replica) => replica.recoveringTerm !== undefined)) return;
    const victim = this.#prng.pick(members);
    if (!this.#quorumWithout(victim.id)) return;
    victim.wipe();
    victim.paused = false;
    victim.deferred = [];
    this.trace("wipe", victim.id, `recovering after term ${victim.recoveringTerm}`, "");
    victim.start();
  }

  /**
   * Whether every live replica's view of the voters keeps a majority of
   * healthy ones (not decommissioned, not recovering) without `id`.
   */
  #quorumWithout(id: number): boolean {
    for (const replica of this.#replicas.values()) {
      if (!replica.node || replica.removed) continue;
      const voters = replica.node.status().conf.voters;
      const healthy = voters.filter((voter) => {
        const other = this.#replicas.get(voter);
        return voter !== id && other !== undefined && !other.removed &&
          other.recoveringTerm === undefined;
      });
      if (healthy.length * 2 <= voters.length) return false;
    }
    return true;
  }

  /**
   * Power fails under one replica while it has writes not yet synced (the
   * window every durability bug hides in), and it comes back shortly after.
   */
  #crashUnsynced(): void {
    const exposed = [...this.#replicas.values()].filter((replica) =>
      replica.live && replica.unsynced
    );
    if (exposed.length === 0) return;
    const victim = this.#prng.pick(exposed);
    victim.crash();
    victim.paused = false;
    victim.deferred = [];
    this.trace("crash-unsynced", victim.id, "", "");
    const restartMs = this.#prng.range(1, this.#config.electionTicks * this.#config.tickMs);
    this.#queue.push(this.#now + restartMs, {
      kind: "action",
      replica: victim,
      epoch: -1,
      action: () => {
        if (victim.live || victim.removed || !this.#faults) return;
        this.trace("restart", victim.id, "", "");
        victim.start();
      },
    });
  }

  #crashLeader(): void {
    const leaders = this.#leaders();
    if (leaders.length === 0) return;
    const victim = this.#prng.pick(leaders);
    victim.crash();
    this.trace("crash", victim.id, "", "");
  }

  #memberIds(): number[] {
    return [...this.#replicas.values()].filter((replica) => !replica.removed).map((replica) =>
      replica.id
    );
  }

  #partitionRandom(): void {
    const ids = this.#memberIds();
    const left = ids.filter(() => this.#prng.chance(0.5));
    const right = ids.filter((id) => !left.includes(id));
    this.#network.partition(left, right);
    this.trace("partition", 0, left.join(","), `| ${right.join(",")}`);
  }

  #partitionAsymmetric(): void {
    const ids = this.#memberIds();
    const from = this.#prng.pick(ids);
    const to = this.#prng.pick(ids);
    if (from === to) return;
    this.#network.block(from, to);
    this.trace("block", 0, `${from}->${to}`, "");
  }

  #isolateLeader(): void {
    const leaders = this.#leaders();
    if (leaders.length === 0) return;
    const leader = this.#prng.pick(leaders).id;
    this.#network.partition([leader], this.#memberIds().filter((id) => id !== leader));
    this.trace("isolate-leader", leader, "", "");
  }

  #healNetwork(): void {
    this.#network.heal();
    this.trace("heal", 0, "", "");
  }

  #crashRandom(): void {
    const live = [...this.#replicas.values()].filter((replica) => replica.live);
    if (live.length === 0) return;
    const victim = this.#prng.pick(live);
    victim.crash();
    victim.paused = false;
    victim.deferred = [];
    this.trace("crash", victim.id, "", "");
  }

  #restartRandom(): void {
    const down = [...this.#replicas.values()].filter((replica) =>
      !replica.live && !replica.removed
    );
    if (down.length === 0) return;
    const replica = this.#prng.pick(down);
    this.trace("restart", replica.id, "", "");
    replica.start();
  }

  #pauseRandom(): void {
    const live = [...this.#replicas.values()].filter((replica) => replica.live && !replica.paused);
    if (live.length === 0) return;
    const replica = this.#prng.pick(live);
    replica.paused = true;
    this.trace("pause", replica.id, "", "");
    const resumeMs = this.#prng.range(10, 40 * this.#config.electionTicks);
    this.#queue.push(this.#now + resumeMs, {
      kind: "action",
      replica,
      epoch: -1,
      action: () => this.#resume(replica),
    });
  }

  #resume(replica: SimReplica): void {
    if (!replica.paused) return;
    replica.paused = false;
    this.trace("resume", replica.id, "", "");
    const deferred = replica.deferred;
    replica.deferred = [];
    for (const action of deferred) action();
    replica.pump();
  }

  #changeMembership(): void {
    if (!this.#config.membershipChanges) return;
    const leaders = this.#leaders();
    if (leaders.length === 0) return;
    const leader = this.#prng.pick(leaders);
    const change = this.#pickConfChange(leader.node!.status().conf);
    if (!change) return;
    if (!this.#attempt(() => leader.node!.proposeConfChange(change))) return;
    if (
      (change.type === "addLearner" || change.type === "addVoter") &&
      change.node === this.#nextNodeId
    ) {
      this.#addReplica(this.#nextNodeId++, []);
    }
    this.trace("conf-change", leader.id, change.type, change.node);
    leader.pump();
  }

  /** One valid single-step change, keeping 3 to 5 voters. */
  #pickConfChange(conf: ConfState): Exclude<ConfChange, { type: "bootstrap" }> | undefined {
    const options: Exclude<ConfChange, { type: "bootstrap" }>[] = [];
    for (const learner of conf.learners) {
      options.push({ type: "promote", node: learner }, { type: "promote", node: learner });
      options.push({ type: "remove", node: learner });
    }
    const canGrow = conf.voters.length + conf.learners.length < 5 &&
      this.#nextNodeId <= NODE_ID_MAX;
    if (conf.learners.length === 0 && canGrow) {
      options.push({ type: "addLearner", node: this.#nextNodeId }, {
        type: "addLearner",
        node: this.#nextNodeId,
      });
      options.push({ type: "addVoter", node: this.#nextNodeId });
    }
    if (conf.voters.length > 3) {
      options.push({ type: "remove", node: this.#prng.pick(conf.voters) });
    }
    return options.length === 0 ? undefined : this.#prng.pick(options);
  }

  /**
   * Hands leadership to a voter. Often the old leader then stops hearing the
   * cluster right after its TimeoutNow leaves (see `send`), so that for up
   * to two election timeouts (until CheckQuorum) it still believes it leads
   * while its successor commits: what a read served without confirming
   * leadership would miss.
   */
  #transferLeadership(): void {
    const leaders = this.#leaders();
    if (leaders.length === 0) return;
    const leader = this.#prng.pick(leaders);
    const target = this.#prng.pick(leader.node!.status().conf.voters);
    if (!this.#attempt(() => leader.node!.transferLeadership(target))) return;
    this.trace("transfer", leader.id, `to n${target}`, "");
    if (target !== leader.id && this.#prng.chance(HANDOVER_DEAFENING_RATE)) {
      this.#deafenAfterHandover.add(leader.id);
    }
    leader.pump();
  }

  /** Cuts every link into `id` (its own messages still go out). */
  #deafen(id: number): void {
    for (const other of this.#memberIds()) if (other !== id) this.#network.block(other, id);
    this.trace("deafen", id, "", "");
  }

  #compactRandom(): void {
    if (!this.#config.compaction) return;
    const live = [...this.#replicas.values()].filter((replica) => replica.live && !replica.paused);
    if (live.length > 0) this.#prng.pick(live).compact();
  }

  #addReplica(id: number, founding: number[]): void {
    const config = this.#config;
    const broken = config.broken;
    const replica = new SimReplica(this, id, {
      founding,
      bootstrapLeader: config.bootstrapLeader ? founding[0] : undefined,
      electionTicks: config.electionTicks,
      heartbeatTicks: config.heartbeatTicks,
      inflightAppendsMax: config.inflightAppendsMax,
      appendBytesMax: config.appendBytesMax,
      preVote: broken !== "no-prevote-checkquorum",
      checkQuorum: broken !== "no-prevote-checkquorum",
      unsafe: {
        countUnsyncedOwnLog: broken === "ack-before-fsync",
        commitOldTermEntries: broken === "commit-old-term",
        grantVoteWithoutLogCheck: broken === "vote-without-log-check",
        recoveringVotes: broken === "recovering-votes",
        voteWithoutSync: broken === "vote-not-fsynced",
        readIndexWithoutQuorum: broken === "read-index-without-quorum",
      },
      leaderBackgroundSync: config.leaderBackgroundSync,
      lazySyncMs: config.lazySyncMs,
      bugs: {
        ackBeforeSync: broken === "ack-before-fsync",
        applyBeforeCommit: broken === "apply-before-commit",
        forgetProducersOnRestart: broken === "forget-producer-table-on-restart",
        restoreWithoutSubscribers: broken === "restore-without-subscribers",
        skipSubscriberOffset: broken === "skip-subscriber-offset",
      },
    }, this.#prng.fork());
    this.#replicas.set(id, replica);
    replica.start();
  }

  // ---- checks and later phases -------------------------------------------

  #logViews(): LogView[] {
    const views: LogView[] = [];
    for (const replica of this.#replicas.values()) {
      const node = replica.node;
      if (!node) continue;
      views.push({
        id: replica.id,
        firstIndex: () => node.firstIndex(),
        lastIndex: node.status().lastIndex,
        termAt: (index) => node.termAt(index),
        entries: (low, high) => node.entries(low, high),
      });
    }
    return views;
  }

  #heal(): void {
    this.#faults = false;
    this.#network.heal();
    this.#network.dropRate = 0;
    this.#network.duplicateRate = 0;
    this.#network.delayMsMax = Math.min(this.#network.delayMsMax, 5);
    this.trace("heal-all", 0, "", "");
    for (const replica of this.#replicas.values()) {
      if (replica.paused) this.#resume(replica);
      if (!replica.live && !replica.removed) replica.start();
    }
  }

  #runLiveness(): void {
    const acksBefore = this.checker.ackCount;
    const progressed = () => this.checker.ackCount > acksBefore;
    const { livenessTicksMax, livenessStallTicks, livenessCatchUpTicksMax } = this.#config;
    const start = this.#ticks;
    let applied = this.#appliedSum();
    let appliedTick = start;
    this.#runTicks(livenessCatchUpTicksMax, () => {
      if (progressed()) this.#workload = false;
      if (progressed() && this.#converged() !== undefined) return true;
      const now = this.#appliedSum();
      if (now > applied) [applied, appliedTick] = [now, this.#ticks];
      return this.#ticks - start >= livenessTicksMax &&
        this.#ticks - appliedTick >= livenessStallTicks;
    });
    if (this.#stopped()) return;
    const leader = this.#converged();
    if (!leader) {
      this.checker.fail(
        INVARIANTS.liveness,
        `not converged after ${this.#ticks - start} ticks, the last ${
          this.#ticks - appliedTick
        } without an entry applied: ${this.#describeCluster()}`,
      );
      return;
    }
    // Belt and braces: whole logs compared once (the incremental checks ran after every event).
    this.checker.checkLogMatching(this.#logViews());
    for (const id of this.#members(leader)) {
      this.checker.checkAcknowledged(id, this.#replicas.get(id)!.topic.entryIds);
    }
  }

  /** Entries applied by the live replicas together: grows while any of them catches up. */
  #appliedSum(): number {
    let sum = 0;
    for (const replica of this.#replicas.values()) if (replica.live) sum += replica.appliedIndex;
    return sum;
  }

  /** The leader when every member applied the same, complete log; undefined otherwise. */
  #converged(): SimReplica | undefined {
    const leaders = this.#leaders();
    if (leaders.length !== 1) return undefined;
    const leader = leaders[0];
    const status = leader.node!.status();
    if (status.commit !== status.lastIndex) return undefined;
    for (const id of this.#members(leader)) {
      const replica = this.#replicas.get(id);
      if (!replica?.live) return undefined;
      const other = replica.node!.status();
      if (other.lastIndex !== status.lastIndex || replica.appliedIndex !== status.commit) {
        return undefined;
      }
    }
    return leader;
  }

  #members(leader: SimReplica): number[] {
    const conf = leader.node!.status().conf;
    return [...conf.voters, ...conf.learners];
  }

  /** An isolated follower must not depose the leader of a healthy majority, during or after. */
  #runStability(): void {
    const leader = this.#quiescentLeader();
    if (!leader) return;
    const term = leader.node!.term;
    const followers = leader.node!.status().conf.voters.filter((id) => id !== leader.id);
    if (followers.length < 2) return;
    const isolated = this.#prng.pick(followers);
    this.#network.partition([isolated], this.#memberIds().filter((id) => id !== isolated));
    this.trace("isolate-follower", isolated, "", "");
    this.#runTicks(this.#config.electionTicks * 8);
    this.#network.heal();
    this.trace("heal", 0, "", "");
    this.#runTicks(this.#config.electionTicks * 8);
    if (this.#stopped()) return;
    if (leader.node?.role !== "leader" || leader.node.term !== term) {
      this.checker.fail(
        INVARIANTS.stability,
        `leader n${leader.id} of term ${term} is now ${leader.node?.role} in term ${leader.node?.term} after n${isolated} was isolated and healed`,
      );
    }
  }

  /**
   * Waits until no leadership transfer or election is in flight (a transfer
   * requested in the safety phase may still be pending), so that any later
   * term change is the isolated follower's doing.
   */
  #quiescentLeader(): SimReplica | undefined {
    for (let attempt = 0; attempt < 10 && !this.#stopped(); attempt++) {
      this.#runTicks(this.#config.electionTicks * 3);
      const leader = this.#converged();
      if (!leader || leader.node!.status().leadTransferee !== 0) continue;
      const term = leader.node!.term;
      const members = this.#members(leader).map((id) => this.#replicas.get(id)!);
      if (
        members.every((replica) => replica.node?.term === term && replica.node.role !== "candidate")
      ) {
        return leader;
      }
    }
    if (!this.#stopped()) {
      this.checker.fail(
        INVARIANTS.liveness,
        `no stable leader before the stability phase: ${this.#describeCluster()}`,
      );
    }
    return undefined;
  }

  #describeCluster(): string {
    const parts: string[] = [];
    for (const replica of this.#replicas.values()) {
      if (replica.removed) continue;
      if (!replica.node) {
        parts.push(`n${replica.id}:down`);
        continue;
      }
      const status = replica.node.status();
      parts.push(
        `n${replica.id}:${status.role}/t${status.term}/last${status.lastIndex}/commit${status.commit}/applied${replica.appliedIndex}`,
      );
    }
    return parts.join(" ");
  }
}

/** One line naming an unexpected error and where it was thrown (deterministic for a checkout). */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return `${typeof error} thrown: ${String(error)}`;
  // The first frame in the project's code, past the assertion helper.
  const frame = error.stack?.split("\n").find((line) =>
    line.includes("/lib/") && !line.includes("/lib/raft/errors.ts")
  );
  const where = frame?.match(/(lib\/[^\s)]+)/)?.[1];
  return `${error.name}: ${error.message}${where ? ` (at ${where})` : ""}`;
}
