/**
 * Hosts every Raft group replica of this peer: one clock drives all their
 * ticks, and their outgoing messages are coalesced per destination peer into
 * one `peer_raft` frame per flush, so heartbeats of many groups between two
 * peers cost one frame (as CockroachDB coalesces them).
 *
 * A tick costs work proportional to the groups that are awake, not to all
 * hosted groups: sleeping (quiescent) groups leave the ticked set and
 * return when they wake, and sleeping followers are indexed by their
 * leader, so a tick checks each leader's reachability once instead of
 * every group's. With thousands of idle topics a tick touches only the
 * metadata group and the few busy ones.
 *
 * A new follower of a bootstrap-led group (term 1, voted for the bootstrap
 * leader, no leader heard yet) starts parked: not ticked until a message of
 * its group arrives, its bootstrap leader's peer becomes unreachable, or
 * `bootstrapWaitMs` pass. While a burst of creations keeps every event loop
 * busy, the leader's replica may open seconds after its followers'; ticked,
 * they would time out and campaign, and thousands of groups would re-elect
 * instead of settling (DESIGN.md "Many topics").
 *
 * @module
 */

import type { Message } from "../raft/types.ts";
import { frameMessagesMax, type RaftFrame, raftFrame } from "./peer_rpc.ts";
import { encodeBinaryRaftFrameParts, type RaftOutItem } from "./raft_binary.ts";
import { encodeRaftMessage } from "./raft_codec.ts";
import type { ReplicaGroup } from "./replica_group.ts";
import { type Cancel, type Scheduler, systemScheduler } from "./runtime.ts";

export { frameMessagesMax } from "./peer_rpc.ts";

/** Raft tick interval (DESIGN.md: 100 ms). */
export const tickMsDefault = 100;
/**
 * How long a commit notice waits for a frame to the same peer to ride in.
 * With one publish at a time the next publish's append leaves well within
 * it and carries the notice along: no frame, socket write and wakeup of its
 * own on two busy cores. A follower's replica (its subscribers, its
 * compaction) learns a commit at most this much later.
 */
export const commitNoticeDelayMs = 2;
/**
 * How long a commit notice waits while appends to its peer keep taking the
 * notices along (the last held ones left with an append, not by the
 * timer): the next append carries it long before. The timer is then a
 * backstop for the last commit of a stream of publishes, and goes off a
 * tenth as often. Each time it went off (set and re-armed in turn), it was
 * a wakeup or a turn of the leader's event loop between publishes: with one
 * publish at a time, 2 ms instead of 20 here cost 30 µs at p50, 190 µs at
 * p99 and 36 µs of the peers' CPU per publish (`bench:ab`, 40 s). Once the
 * timer had to send held notices, the next wait is `commitNoticeDelayMs`
 * again.
 */
export const commitNoticeStreamDelayMs = 20;
/** Most peers whose incarnation is remembered. */
export const incarnationsMax = 4096;
/**
 * Ticks (three election timeouts) for which a reachable peer that sent any
 * Raft frame counts as active (`RaftOptions.isPeerActive`: CheckQuorum
 * counts it as in contact, and its followers wait longer for it): while a
 * burst of work delays a process's answers for some groups, its traffic for
 * others shows it alive, and groups do not re-elect by the thousand. A peer
 * whose link dropped (a killed process) or that the failure detector gave
 * up on is not active, however recently it was heard from.
 */
export const peerActiveTicks = 30;
/**
 * How long a parked follower of a new bootstrap-led group waits for its
 * leader before it ticks (and may campaign) anyway: the leader's peer is
 * up, but its replica may never open there (a disk that refuses it).
 */
export const bootstrapWaitMs = 30_000;

/** Settings of a Raft host. */
export interface RaftHostOptions {
  /** Default 100 ms. */
  tickMs?: number;
  /** Whether a peer can be reached now (default: always). */
  isReachable?: (nodeId: number) => boolean;
  /** Ticks and batches on it (default: the host's timers). */
  scheduler?: Scheduler;
  /** This process's incarnation (default: a random UUID, new at every start). */
  incarnation?: string;
}

/** How frames reach other peers (PeerLinks in production). */
export interface RaftTransport {
  send(nodeId: number, frame: { action: string } & Record<string, unknown>): void;
  /**
   * Sends a prebuilt frame (length prefix included) one way. With it, Raft
   * frames go in the binary form (entry data raw, `raft_binary.ts`);
   * without it (the simulator's network), as JSON through `send`.
   */
  sendFrame?(nodeId: number, frame: Uint8Array | readonly Uint8Array[]): void;
}

/**
 * Replica registry, ticker and message router.
 *
 * @example
 * ```ts
 * const host = new RaftHost(1, transport);
 * host.add(group);
 * peerHandler.register("peer_raft", (message) => host.receive(decodeRaftFrame(message)));
 * ```
 */
export class RaftHost {
  readonly nodeId: number;
  readonly #transport: RaftTransport;
  readonly #groups = new Map<string, ReplicaGroup>();
  /** Hosted groups that are not sleeping: the ones a tick visits. */
  readonly #awake = new Set<ReplicaGroup>();
  /** Sleeping followers by the leader that let them sleep. */
  readonly #sleepers = new Map<number, Set<ReplicaGroup>>();
  /** The leader each sleeping follower is filed under in `#sleepers`. */
  readonly #sleeperLeaders = new Map<ReplicaGroup, number>();
  /**
   * Parked followers of new bootstrap-led groups (see the module
   * documentation): their bootstrap leader and the tick at which they wake
   * anyway, in parking order (so also in deadline order).
   */
  readonly #parked = new Map<ReplicaGroup, { leader: number; untilTick: number }>();
  /** Parked followers by bootstrap leader. */
  readonly #parkedByLeader = new Map<number, Set<ReplicaGroup>>();
  /** Ticks run since start (the clock of `#parked` and `#heardAt`). */
  #ticks = 0;
  /** The tick at which each peer's last Raft frame arrived. */
  readonly #heardAt = new Map<number, number>();
  /** `isReachable` answers of this tick (cleared by every tick). */
  readonly #reachable = new Map<number, boolean>();
  readonly #bootstrapWaitTicks: number;
  /** Messages per destination peer, encoded once per frame when flushed. */
  #outbox = new Map<number, RaftOutItem[]>();
  #flushScheduled = false;
  /** A held commit notice's timer is about to be set (see `#hold`). */
  #armingNotices = false;
  #urgentFlushScheduled = false;
  /** Flushes held commit notices when no other frame took them along. */
  #noticeTimer: Cancel | undefined;
  /** Commit notices in the outbox. */
  #noticesHeld = 0;
  /** When the oldest of them was queued (`Scheduler.now`). */
  #noticesHeldSince = 0;
  /** The last held notices left with another frame: see `commitNoticeStreamDelayMs`. */
  #noticesRideAppends = false;
  #ticker: Cancel | undefined;
  readonly #scheduler: Scheduler;
  /** Called for messages of a group this peer does not host (yet). */
  onUnknownGroup: ((groupId: string, message: Message) => void) | undefined;
  /**
   * Called when a peer's Raft traffic shows it restarted (a new
   * incarnation): what its groups' leaders remember of its log is no longer
   * to be trusted, since the restart may have lost or repaired its files.
   */
  onPeerRestart: ((nodeId: number) => void) | undefined;
  /**
   * Called when a peer that sent Raft traffic is found unreachable (checked
   * every tick): it may be restarting, and a sleeping group's leader, which
   * does not tick, would otherwise keep what it last measured of it.
   */
  onPeerUnreachable: ((nodeId: number) => void) | undefined;
  /** Peers found unreachable and not reachable again since. */
  readonly #unreachable = new Set<number>();
  /** This process's incarnation: random, new at every start. */
  readonly incarnation: string;
  readonly #incarnations = new Map<number, string>();

  readonly #isReachable: (nodeId: number) => boolean;

  constructor(
    nodeId: number,
    transport: RaftTransport,
    options: RaftHostOptions = {},
  ) {
    this.nodeId = nodeId;
    this.#transport = transport;
    this.#isReachable = options.isReachable ?? (() => true);
    this.#scheduler = options.scheduler ?? systemScheduler;
    this.incarnation = options.incarnation ?? crypto.randomUUID();
    this.#bootstrapWaitTicks = Math.ceil(bootstrapWaitMs / (options.tickMs ?? tickMsDefault));
    this.#ticker = this.#scheduler.every(options.tickMs ?? tickMsDefault, () => this.#tick());
  }

  get groups(): ReadonlyMap<string, ReplicaGroup> {
    return this.#groups;
  }

  /** Groups ticked now (not sleeping); the rest cost no tick work. */
  get awakeGroups(): number {
    return this.#awake.size;
  }

  /** Followers of new groups parked until their bootstrap leader shows up (see the module doc). */
  get parkedGroups(): number {
    return this.#parked.size;
  }

  /** Starts hosting a group: it is ticked while awake and gets its messages. */
  add(group: ReplicaGroup): void {
    this.#groups.set(group.groupId, group);
    group.onWake = () => this.#woke(group);
    group.peerActive = this.#peerActive;
    const leader = awaitedBootstrapLeader(group);
    if (group.quiescent) this.#slept(group);
    else if (leader !== undefined) this.#park(group, leader);
    else this.#awake.add(group);
  }

  #park(group: ReplicaGroup, leader: number): void {
    this.#parked.set(group, { leader, untilTick: this.#ticks + this.#bootstrapWaitTicks });
    let parked = this.#parkedByLeader.get(leader);
    if (parked === undefined) this.#parkedByLeader.set(leader, parked = new Set());
    parked.add(group);
  }

  /** A parked group ticks again (a message came, or its leader is away or late). */
  #unpark(group: ReplicaGroup): void {
    const parking = this.#parked.get(group);
    if (parking === undefined) return;
    this.#parked.delete(group);
    const parked = this.#parkedByLeader.get(parking.leader)!;
    parked.delete(group);
    if (parked.size === 0) this.#parkedByLeader.delete(parking.leader);
    if (this.#groups.get(group.groupId) === group && !group.quiescent) this.#awake.add(group);
  }

  /** Stops hosting a group and closes its replica. */
  async remove(groupId: string): Promise<void> {
    const group = this.#groups.get(groupId);
    if (group === undefined) return;
    this.#groups.delete(groupId);
    this.#forget(group);
    await group.close();
  }

  #forget(group: ReplicaGroup): void {
    group.onWake = undefined;
    group.peerActive = undefined;
    this.#unpark(group);
    this.#awake.delete(group);
    this.#unfileSleeper(group);
  }

  /** A sleeping group woke: tick it again. */
  #woke(group: ReplicaGroup): void {
    this.#unpark(group);
    this.#unfileSleeper(group);
    if (this.#groups.get(group.groupId) === group) this.#awake.add(group);
  }

  /** A group fell asleep: no more ticks; a follower is filed under its leader. */
  #slept(group: ReplicaGroup): void {
    this.#unpark(group);
    this.#awake.delete(group);
    this.#unfileSleeper(group);
    if (group.isLeader || group.leader === 0) return;
    let sleepers = this.#sleepers.get(group.leader);
    if (sleepers === undefined) this.#sleepers.set(group.leader, sleepers = new Set());
    sleepers.add(group);
    this.#sleeperLeaders.set(group, group.leader);
  }

  #unfileSleeper(group: ReplicaGroup): void {
    const leader = this.#sleeperLeaders.get(group);
    if (leader === undefined) return;
    this.#sleeperLeaders.delete(group);
    const sleepers = this.#sleepers.get(leader)!;
    sleepers.delete(group);
    if (sleepers.size === 0) this.#sleepers.delete(leader);
  }

  /** Queues messages of one group; they leave together with those of the other groups. */
  send = (groupId: string, messages: readonly Message[]): void => {
    let urgent = false;
    let queued = false;
    for (const message of messages) {
      if (message.commitNotice === true) {
        this.#hold(message.to, [groupId, message]);
        continue;
      }
      this.#put(message.to, [groupId, message]);
      queued = true;
      urgent ||= onPublishPath(message);
    }
    // Appends and their answers are on the path of every publish: on sockets
    // (prebuilt frames) they leave at the end of this turn instead of the
    // next one, taking whatever else is queued along (so no flush in the
    // next turn is set up for them: an Immediate per publish and process).
    // Heartbeats and votes still wait for the other groups' messages.
    if (this.#transport.sendFrame !== undefined && urgent) this.#flushSoon();
    else if (queued) this.#flushNextTurn();
  };

  /** Tells follower `to` that the leader of `groupId` let the group sleep at `term`. */
  quiesce = (groupId: string, to: number, term: number): void => {
    this.#queue(to, [groupId, { quiesce: term }]);
  };

  #queue(to: number, item: RaftOutItem): void {
    this.#put(to, item);
    this.#flushNextTurn();
  }

  #flushNextTurn(): void {
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // Groups handle their Readys in separate macrotasks (one per group after
      // a tick); flushing in the next one sends all their messages together.
      this.#scheduler.defer(() => this.#flush());
    }
  }

  /** Adds `item` to the outbox of peer `to`. */
  #put(to: number, item: RaftOutItem): void {
    const batch = this.#outbox.get(to);
    if (batch === undefined) this.#outbox.set(to, [item]);
    else batch.push(item);
  }

  /** Queues a commit notice without a flush of its own (see `commitNoticeDelayMs`). */
  #hold(to: number, item: RaftOutItem): void {
    this.#put(to, item);
    if (this.#noticesHeld++ === 0) this.#noticesHeldSince = this.#scheduler.now();
    if (this.#noticeTimer !== undefined || this.#flushScheduled || this.#armingNotices) return;
    // The timer is set in a later macrotask: creating one wakes the event
    // loop (an eventfd write), and here that came between a commit and the
    // answers it releases (perf trace of a leader, one publish at a time).
    this.#armingNotices = true;
    this.#scheduler.defer(() => {
      this.#armingNotices = false;
      if (this.#noticesHeld === 0 || this.#noticeTimer !== undefined || this.#flushScheduled) {
        return;
      }
      this.#armNoticeTimer(this.#noticeDelayMs());
    });
  }

  #noticeDelayMs(): number {
    return this.#noticesRideAppends ? commitNoticeStreamDelayMs : commitNoticeDelayMs;
  }

  /**
   * A flush that takes the held notices along leaves this timer armed: when
   * it goes off, it flushes notices held for the delay in force
   * (`#noticeDelayMs`) and waits out the rest for younger ones. With one
   * publish at a time every notice rides on the next append, and the leader
   * sets one timer per delay instead of setting and clearing one per
   * publish (arming a timer wakes the event loop: an eventfd write).
   */
  #armNoticeTimer(delayMs: number): void {
    this.#noticeTimer = this.#scheduler.schedule(delayMs, () => {
      this.#noticeTimer = undefined;
      if (this.#noticesHeld === 0) return;
      const heldMs = this.#scheduler.now() - this.#noticesHeldSince;
      const delayMs = this.#noticeDelayMs();
      if (heldMs < delayMs) {
        this.#armNoticeTimer(delayMs - heldMs);
        return;
      }
      this.#flush();
      // They had to go by themselves: the next ones wait the short delay.
      this.#noticesRideAppends = false;
    });
  }

  #flushSoon(): void {
    if (this.#urgentFlushScheduled) return;
    this.#urgentFlushScheduled = true;
    queueMicrotask(() => {
      this.#urgentFlushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#outbox.size === 0) return;
    const outbox = this.#outbox;
    this.#outbox = new Map();
    this.#flushingNotices = this.#noticesHeld > 0;
    if (this.#flushingNotices) this.#noticesRideAppends = true;
    this.#noticesHeld = 0;
    outbox.forEach(this.#flushPeer);
  }

  /** Whether the outbox `#flushPeer` sends held commit notices (some may be superseded). */
  #flushingNotices = false;

  /** Sends one peer's outbox; a callback made once (a `for...of` made entries per flush). */
  readonly #flushPeer = (held: RaftOutItem[], nodeId: number): void => {
    const batch = this.#flushingNotices ? withoutSupersededNotices(held) : held;
    for (let start = 0; start < batch.length; start += frameMessagesMax) {
      const items = batch.length <= frameMessagesMax
        ? batch
        : batch.slice(start, start + frameMessagesMax);
      this.#sendItems(nodeId, items);
    }
  };

  #sendItems(nodeId: number, items: RaftOutItem[]): void {
    if (this.#transport.sendFrame !== undefined) {
      this.#transport.sendFrame(
        nodeId,
        encodeBinaryRaftFrameParts(this.nodeId, this.incarnation, items),
      );
      return;
    }
    const wire = items.map(([groupId, body]): [string, Record<string, unknown>] => [
      groupId,
      "quiesce" in body ? body : encodeRaftMessage(body),
    ]);
    this.#transport.send(nodeId, raftFrame(this.nodeId, this.incarnation, wire));
  }

  /** Steps each message of a validated `peer_raft` frame into its group. */
  receive(frame: RaftFrame): { status: "ok" } {
    this.#noteIncarnation(frame.from, frame.incarnation);
    this.#noteHeard(frame.from);
    for (const item of frame.batch) {
      if ("quiesceTerm" in item) {
        const group = this.#groups.get(item.groupId);
        group?.quiesceFollower(item.quiesceTerm, frame.from);
        if (group?.quiescent) this.#slept(group);
        continue;
      }
      if (item.message.to !== this.nodeId) continue;
      const group = this.#groups.get(item.groupId);
      if (group === undefined) {
        this.onUnknownGroup?.(item.groupId, item.message);
        continue;
      }
      if (this.#parked.size > 0) this.#unpark(group);
      group.step(item.message);
    }
    return { status: "ok" };
  }

  #noteHeard(from: number): void {
    if (!this.#heardAt.has(from) && this.#heardAt.size >= incarnationsMax) {
      this.#heardAt.delete(this.#heardAt.keys().next().value!);
    }
    this.#heardAt.set(from, this.#ticks);
  }

  /** Whether peer `nodeId` is reachable and sent a Raft frame within `peerActiveTicks` ticks. */
  readonly #peerActive = (nodeId: number): boolean => {
    const heardAt = this.#heardAt.get(nodeId);
    return heardAt !== undefined && this.#ticks - heardAt < peerActiveTicks &&
      this.#reachableNow(nodeId);
  };

  #reachableNow(nodeId: number): boolean {
    let known = this.#reachable.get(nodeId);
    if (known === undefined) this.#reachable.set(nodeId, known = this.#isReachable(nodeId));
    return known;
  }

  #noteIncarnation(from: number, incarnation: string): void {
    const known = this.#incarnations.get(from);
    if (known === incarnation) return;
    if (known === undefined && this.#incarnations.size >= incarnationsMax) {
      this.#incarnations.delete(this.#incarnations.keys().next().value!);
    }
    this.#incarnations.set(from, incarnation);
    if (known !== undefined) this.onPeerRestart?.(from);
  }

  #tick(): void {
    this.#ticks++;
    this.#reachable.clear();
    const isReachable = (nodeId: number) => this.#reachableNow(nodeId);
    // A Set visits members added during the loop (groups woken by a tick) too.
    for (const group of this.#awake) {
      group.tick();
      if (group.quiescent) this.#slept(group);
    }
    // Sleeping followers whose leader went away wake so that they can elect another.
    for (const [leader, sleepers] of [...this.#sleepers]) {
      if (!isReachable(leader)) { for (const group of [...sleepers]) group.wake(); }
    }
    this.#unparkDue(isReachable);
    for (const nodeId of this.#incarnations.keys()) {
      if (isReachable(nodeId)) {
        this.#unreachable.delete(nodeId);
      } else if (!this.#unreachable.has(nodeId)) {
        this.#unreachable.add(nodeId);
        this.onPeerUnreachable?.(nodeId);
      }
    }
  }

  /** Unparks followers whose bootstrap leader is unreachable or that waited long enough. */
  #unparkDue(isReachable: (nodeId: number) => boolean): void {
    for (const [leader, parked] of [...this.#parkedByLeader]) {
      if (!isReachable(leader)) { for (const group of [...parked]) this.#unpark(group); }
    }
    for (const [group, parking] of this.#parked) {
      if (parking.untilTick > this.#ticks) break;
      this.#unpark(group);
    }
  }

  async close(): Promise<void> {
    this.#ticker?.();
    this.#ticker = undefined;
    this.#noticeTimer?.();
    this.#noticeTimer = undefined;
    const groups = [...this.#groups.values()];
    for (const group of groups) this.#forget(group);
    this.#groups.clear();
    await Promise.all(groups.map((group) => group.close()));
  }
}

/**
 * The bootstrap leader a new follower of a bootstrap-led group waits for,
 * or undefined: a follower in term 1 that voted for another replica (only
 * the bootstrap votes in term 1; nobody campaigns in it) and has heard from
 * no leader yet.
 */
function awaitedBootstrapLeader(group: ReplicaGroup): number | undefined {
  const node = group.node;
  if (node.role !== "follower" || node.term !== 1 || node.leader !== 0) return undefined;
  const vote = node.status().vote;
  return vote !== 0 && vote !== node.id ? vote : undefined;
}

/**
 * `batch` without the commit notices that a later append of the same group
 * in it supersedes (an append carries the leader's commit index too).
 */
function withoutSupersededNotices(batch: RaftOutItem[]): RaftOutItem[] {
  // The usual batch is a held notice and the next append, or nothing held
  // superseded at all: small batches are scanned in place (no Set, no copy).
  if (batch.length <= smallBatchItems) {
    let superseded = false;
    for (let at = 0; at < batch.length && !superseded; at++) superseded = supersededAt(batch, at);
    if (!superseded) return batch;
    return batch.filter((_, at) => !supersededAt(batch, at));
  }
  const appending = new Set<string>();
  const kept: RaftOutItem[] = [];
  for (let at = batch.length - 1; at >= 0; at--) {
    const [groupId, body] = batch[at];
    if ("type" in body && body.type === "app") {
      if (body.commitNotice === true && appending.has(groupId)) continue;
      appending.add(groupId);
    }
    kept.push(batch[at]);
  }
  return kept.length === batch.length ? batch : kept.reverse();
}

/** Batches up to this many items are checked pairwise by `withoutSupersededNotices`. */
const smallBatchItems = 8;

/** Whether `batch[at]` is a commit notice an append of its group later in the batch carries. */
function supersededAt(batch: readonly RaftOutItem[], at: number): boolean {
  // Indexed, not destructured: destructuring an array runs its iterator.
  const body = batch[at][1];
  if (!("type" in body) || body.commitNotice !== true) return false;
  const groupId = batch[at][0];
  for (let later = at + 1; later < batch.length; later++) {
    const laterBody = batch[later][1];
    if (batch[later][0] === groupId && "type" in laterBody && laterBody.type === "app") return true;
  }
  return false;
}

/** Messages a publish waits for: appends and the answers to appends (not commit notices). */
function onPublishPath(message: Message): boolean {
  return message.type === "appResp" || message.type === "app";
}
