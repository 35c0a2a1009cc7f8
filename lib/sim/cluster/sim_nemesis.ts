/**
 * The nemesis of a whole-cluster run: during the safety phase it injects
 * one fault at a time, at random moments drawn from the seed:
 * - `kill` / `power_loss`: a process dies (power loss may tear the fsync in
 *   flight) and restarts a moment later;
 * - `dead`: a process stays down past `--dead-after`, so the controller
 *   moves its replicas away (dead-after repair), then comes back;
 * - `partition` (two sides), `one_way` (one blocked direction) and
 *   `flapping` (a node cut off and reconnected several times);
 * - `slow_disk`: fsyncs of one node take hundreds of ms for a while;
 * - `transfer`: a group's leader hands its leadership to another voter
 *   (`ClusterBroker.transferLeadership`);
 * - `join`: a new node joins; `remove_node`: a dead node is removed through
 *   the Broker API; `leave`: a node leaves gracefully and stops;
 * - `replace_disk`: a node dies with its disk, is removed, and comes back
 *   under its id with an empty data directory (it joins anew).
 *
 * `heal` ends every fault: the network is whole, disks are healthy, and
 * every node that is still a member runs.
 *
 * @module
 */

import type { ManualScheduler } from "../../cluster/manual_scheduler.ts";
import type { Prng } from "../prng.ts";
import type { SimCluster } from "./sim_cluster.ts";
import type { ClusterSimConfig } from "./sim_config.ts";
import type { SimNetwork } from "./sim_network.ts";

/** Fault kinds, for the run's report. */
export const faultKinds = [
  "kill",
  "power_loss",
  "dead",
  "partition",
  "one_way",
  "flapping",
  "slow_disk",
  "join",
  "remove_node",
  "leave",
  "replace_disk",
  "transfer",
] as const;

/** What a broken-variant run injects: crashes (its bug shows when one hits a window). */
const crashKinds: readonly FaultKind[] = ["kill", "power_loss", "power_loss", "partition"];

/** One of `faultKinds`. */
export type FaultKind = typeof faultKinds[number];

/** Fewest members the nemesis leaves (removals and leaves stop there). */
const membersMin = 3;
/**
 * Most members removed, left or replaced per run. Two departures while the
 * groups are still moving replicas can take two of a group's three voters
 * for good, and no Raft group survives losing a majority permanently: that
 * is outside the fault model, not a bug to find.
 */
const departuresMax = 1;
/** Tries of one removal before the nemesis takes the node for a member still. */
const removeTriesMax = 20;

/**
 * Injects faults and heals them.
 *
 * @example
 * ```ts
 * const nemesis = new Nemesis({ scheduler, rng, cluster, network, config, event });
 * nemesis.start(30_000);
 * // ... run the safety phase ...
 * nemesis.heal();
 * ```
 */
export class Nemesis {
  readonly #scheduler: ManualScheduler;
  readonly #rng: Prng;
  readonly #cluster: SimCluster;
  readonly #network: SimNetwork;
  readonly #config: ClusterSimConfig;
  readonly #event: (kind: string, node: number, detail: string) => void;
  readonly #deadAfterMs: number;
  /** Members: founders, and joiners once started. */
  readonly members: Set<number>;
  /** Nodes removed or left: they never run again. */
  readonly gone = new Set<number>();
  /** Nodes down on purpose until a planned restart. */
  readonly #down = new Set<number>();
  #untilMs = 0;
  #departures = 0;
  /** The metadata group's voters, as a live peer last reported them (see `#pollMetaVoters`). */
  #metaVoters: number[] | undefined;
  #healed = false;
  readonly counts = new Map<FaultKind, number>();

  constructor(options: {
    scheduler: ManualScheduler;
    rng: Prng;
    cluster: SimCluster;
    network: SimNetwork;
    config: ClusterSimConfig;
    deadAfterMs: number;
    event: (kind: string, node: number, detail: string) => void;
  }) {
    this.#scheduler = options.scheduler;
    this.#rng = options.rng;
    this.#cluster = options.cluster;
    this.#network = options.network;
    this.#config = options.config;
    this.#event = options.event;
    this.#deadAfterMs = options.deadAfterMs;
    this.members = new Set(options.config.founders);
  }

  /** Injects faults until virtual time `untilMs`. */
  start(untilMs: number): void {
    this.#untilMs = untilMs;
    this.#next();
  }

  /** Ends every fault: whole network, healthy disks, every member running. */
  heal(): void {
    this.#healed = true;
    this.#network.heal();
    for (const peer of this.#cluster.peers.values()) {
      peer.disk.slowMs = 0;
      peer.disk.profile = { ...peer.disk.profile, syncFailureChance: 0 };
    }
    this.#down.clear();
    for (const id of this.running()) this.#cluster.start(id);
    this.#event("heal", 0, "");
  }

  /** Members that should run (not removed or left). */
  running(): number[] {
    return [...this.members].filter((id) => !this.gone.has(id)).sort((a, b) => a - b);
  }

  #next(): void {
    const waitMs = 200 + this.#rng.int(2 * this.#config.faultEveryMs);
    if (this.#scheduler.now() + waitMs >= this.#untilMs) return;
    this.#scheduler.schedule(waitMs, () => {
      if (this.#healed) return;
      this.#inject();
      this.#pollMetaVoters();
      this.#next();
    });
  }

  /**
   * Reads the metadata group's voters from the first live peer, for the next
   * fault to consult (see `#losesMajority`): a view at most one fault old.
   */
  #pollMetaVoters(): void {
    const id = this.#live()[0];
    const broker = id === undefined ? undefined : this.#cluster.peer(id).process?.broker;
    broker?.clusterStatus().then((status) => this.#metaVoters = status.meta_voters, () => {});
  }

  /**
   * Whether wiping a disk now may lose a majority of a group for good. A
   * metadata group still growing from one voter to three passes through
   * two; a replaced disk of one of those two is a permanent loss of a
   * majority, which no Raft group survives (outside the fault model, as two
   * departures are: see `departuresMax`). Topic groups always have three.
   * The view may be a fault old, and the group only grows while it forms
   * (seed 1914657110: a view of {1} when {1, 2} had formed), so any view
   * of fewer than three voters, or none, counts as a loss, whoever the
   * victim.
   */
  #losesMajority(): boolean {
    const voters = this.#metaVoters;
    return voters === undefined || voters.length < 3;
  }

  #inject(): void {
    const kinds = this.#config.crashHeavy ? crashKinds : faultKinds;
    const kind = this.#rng.pick(kinds);
    const done = this.#run(kind);
    if (done) this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
  }

  /** Runs one fault; false when it does not apply now. */
  #run(kind: FaultKind): boolean {
    switch (kind) {
      case "kill":
      case "power_loss":
        return this.#crash(kind, this.#rng.range(200, 3000));
      case "dead":
        return this.#crash("kill", this.#deadAfterMs + this.#rng.range(1000, 5000));
      case "partition":
        return this.#partition();
      case "one_way":
        return this.#oneWay();
      case "flapping":
        return this.#flapping();
      case "slow_disk":
        return this.#slowDisk();
      case "join":
        return this.#join();
      case "remove_node":
        return this.#removeNode();
      case "leave":
        return this.#leave();
      case "replace_disk":
        return this.#replaceDisk();
      case "transfer":
        return this.#transfer();
    }
  }

  /** A live peer hands the leadership of one of the groups it leads to another voter. */
  #transfer(): boolean {
    const live = this.#live();
    if (live.length < 2) return false;
    const id = this.#rng.pick(live);
    const broker = this.#cluster.peer(id).process?.broker;
    if (broker === undefined) return false;
    const led = broker.stats().groups.filter((group) => group.leader === id);
    if (led.length === 0) return false;
    const group = this.#rng.pick(led).group;
    const others = live.filter((other) => other !== id);
    // The first other live voter, from a random start (a non-voter is refused).
    const start = this.#rng.int(others.length);
    for (let offset = 0; offset < others.length; offset++) {
      const to = others[(start + offset) % others.length];
      if (broker.transferLeadership(group, to)) {
        this.#event("transfer", id, `${group} to ${to}`);
        return true;
      }
    }
    return false;
  }

  #live(): number[] {
    return this.running().filter((id) =>
      !this.#down.has(id) && this.#cluster.peer(id).process !== undefined
    );
  }

  #crash(kind: "kill" | "power_loss", downMs: number): boolean {
    const live = this.#live();
    if (live.length === 0) return false;
    const id = this.#rng.pick(live);
    this.#down.add(id);
    this.#cluster.crash(id, kind);
    this.#scheduler.schedule(downMs, () => {
      if (!this.#down.delete(id) || this.gone.has(id)) return;
      this.#cluster.start(id);
    });
    return true;
  }

  #partition(): boolean {
    const nodes = this.running();
    if (nodes.length < 2) return false;
    const shuffled = nodes.map((id) => ({ id, key: this.#rng.next() }))
      .sort((a, b) => a.key - b.key).map((item) => item.id);
    const cut = 1 + this.#rng.int(shuffled.length - 1);
    const sides = [shuffled.slice(0, cut), shuffled.slice(cut)];
    this.#network.partition(sides);
    this.#event("partition", 0, sides.map((side) => side.join(",")).join(" | "));
    this.#healLater(this.#rng.range(500, 6000));
    return true;
  }

  #oneWay(): boolean {
    const nodes = this.running();
    if (nodes.length < 2) return false;
    const from = this.#rng.pick(nodes);
    const to = this.#rng.pick(nodes.filter((id) => id !== from));
    this.#network.block(from, to);
    this.#event("one_way", from, `to ${to}`);
    this.#healLater(this.#rng.range(500, 6000));
    return true;
  }

  #flapping(): boolean {
    const nodes = this.running();
    if (nodes.length < 2) return false;
    const id = this.#rng.pick(nodes);
    const others = nodes.filter((other) => other !== id);
    const flips = 3 + this.#rng.int(6);
    let at = 0;
    for (let flip = 0; flip < flips; flip++) {
      at += this.#rng.range(100, 800);
      const cut = flip % 2 === 0;
      this.#scheduler.schedule(at, () => {
        if (this.#healed) return;
        if (cut) this.#network.partition([[id], others]);
        else this.#network.heal();
        this.#event(cut ? "flap_cut" : "flap_heal", id, "");
      });
    }
    this.#healLater(at + 100);
    return true;
  }

  #slowDisk(): boolean {
    const nodes = this.running();
    if (nodes.length === 0) return false;
    const disk = this.#cluster.peer(this.#rng.pick(nodes)).disk;
    disk.slowMs = this.#rng.range(100, 800);
    this.#event("slow_disk", disk.nodeId, `${disk.slowMs} ms`);
    this.#scheduler.schedule(this.#rng.range(1000, 6000), () => {
      disk.slowMs = 0;
    });
    return true;
  }

  #join(): boolean {
    const joiner = this.#config.joiners.find((id) => !this.members.has(id));
    if (joiner === undefined) return false;
    this.members.add(joiner);
    this.#event("join", joiner, "");
    this.#cluster.start(joiner);
    return true;
  }

  /**
   * One departure (remove, leave or replaced disk) per run, counted even
   * after a replaced node is back: a second one while groups still move
   * replicas can take a majority of a group's data, outside the fault model.
   */
  #departureAllowed(): boolean {
    return this.running().length > membersMin && this.#departures < departuresMax;
  }

  #removeNode(): boolean {
    if (!this.#departureAllowed()) return false;
    const down = [...this.#down].filter((id) => !this.gone.has(id));
    if (down.length === 0 || this.#live().length === 0) return false;
    const id = this.#rng.pick(down);
    // Removed for good: the machine is gone, its process never runs again.
    this.gone.add(id);
    this.#departures++;
    this.#down.delete(id);
    this.#event("remove_node", id, "");
    this.#removeUntilSettled(id).then((removed) => {
      this.#event(removed ? "removed" : "remove_failed", id, "");
      if (removed) return;
      // Still a member after all: it comes back (now, if the heal is past).
      this.gone.delete(id);
      this.#departures--;
      if (this.#healed) this.#cluster.start(id);
    });
    return true;
  }

  #leave(): boolean {
    if (!this.#departureAllowed()) return false;
    const candidates = this.#live().filter((id) => id !== this.#config.founders[0]);
    if (candidates.length === 0) return false;
    const id = this.#rng.pick(candidates);
    const broker = this.#cluster.peer(id).process?.broker;
    if (broker === undefined) return false;
    this.gone.add(id);
    this.#departures++;
    this.#event("leave", id, "");
    this.#removeUntilSettled(id, () => broker.leave(10_000)).then(async (removed) => {
      if (!removed) {
        this.gone.delete(id);
        this.#departures--;
      }
      this.#event(removed ? "left" : "leave_failed", id, "");
      await this.#cluster.stop(id);
      if (this.#healed && !this.gone.has(id)) this.#cluster.start(id);
    });
    return true;
  }

  #replaceDisk(): boolean {
    if (!this.#departureAllowed()) return false;
    const candidates = this.#live().filter((id) => id !== this.#config.founders[0]);
    if (candidates.length === 0 || this.#live().length < 2) return false;
    const id = this.#rng.pick(candidates);
    if (this.#losesMajority()) return false;
    this.gone.add(id);
    this.#departures++;
    this.#cluster.crash(id, "kill");
    this.#cluster.peer(id).disk.wipe();
    this.#event("replace_disk", id, "");
    this.#removeUntilSettled(id).then((removed) => {
      // Still a member with the lost directory: it would be refused, so it stays away.
      this.#event(removed ? "removed" : "remove_failed", id, "");
      if (!removed) return;
      // Removed: the same id may come back with its new, empty directory.
      this.#scheduler.schedule(this.#rng.range(500, 3000), () => {
        this.gone.delete(id);
        this.#cluster.start(id);
      });
    });
    return true;
  }

  /**
   * Removes `id` through live peers (or `first`), again and again: a failed
   * answer (a leader change, a timeout) says nothing of whether the removal
   * committed. True once it succeeded or the cluster says `id` is no member;
   * false after `removeTriesMax` tries.
   */
  async #removeUntilSettled(id: number, first?: () => Promise<void>): Promise<boolean> {
    for (let attempt = 0; attempt < removeTriesMax; attempt++) {
      try {
        // Bounded, as a client's request is: a peer that crashes meanwhile never answers.
        if (attempt === 0 && first !== undefined) await this.#bounded(first(), 30_000);
        else await this.#bounded(this.#removeThroughAnyPeer(id), 5000);
        return true;
      } catch (error) {
        if ((error as Error).message.includes("is not a member")) return true;
      }
      await new Promise((resolve) => this.#scheduler.schedule(1000, () => resolve(undefined)));
    }
    return false;
  }

  /** `promise`, or a rejection after `timeoutMs` of virtual time. */
  #bounded(promise: Promise<void>, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const cancel = this.#scheduler.schedule(timeoutMs, () => reject(new Error("No answer")));
      promise.then(() => {
        cancel();
        resolve();
      }, (error) => {
        cancel();
        reject(error);
      });
    });
  }

  async #removeThroughAnyPeer(id: number): Promise<void> {
    const live = this.#live().filter((other) => other !== id);
    const broker = live.length === 0
      ? undefined
      : this.#cluster.peer(this.#rng.pick(live)).process?.broker;
    if (broker === undefined) throw new Error("No live peer to remove through");
    await broker.removeNode(id);
  }

  #healLater(delayMs: number): void {
    this.#scheduler.schedule(delayMs, () => {
      if (this.#healed) return;
      this.#network.heal();
      this.#event("network_heal", 0, "");
    });
  }
}
