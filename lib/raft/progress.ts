/**
 * The leader's view of one peer's log (etcd-io/raft's `tracker.Progress`):
 * `match` is the highest index known replicated, `next` the next index to
 * send. In `probe` state one append is in flight at a time; in `replicate`
 * state appends are pipelined up to `inflightAppendsMax`; in `snapshot`
 * state the leader waits for the peer to install a snapshot.
 *
 * @module
 */

import { assert } from "./errors.ts";
import type { ProgressStatus } from "./types.ts";

/**
 * Replication progress of one peer.
 *
 * @example
 * ```ts
 * const progress = new Progress({ next: 11, inflightAppendsMax: 4, learner: false });
 * progress.maybeUpdate(10); // true, match = 10
 * ```
 */
export class Progress {
  match = 0;
  next: number;
  state: "probe" | "replicate" | "snapshot" = "probe";
  learner: boolean;
  /** In probe state: an append was sent and no answer came yet. */
  probeSent = false;
  /** Snapshot state: index of the snapshot sent, and the tick it was sent at. */
  pendingSnapshot = 0;
  snapshotSentTick = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** The leader's tick at which the peer last answered; undefined until it does. */
  lastHeardTick: number | undefined;
  /**
   * The leader's tick at which the peer's acknowledged log last reached the
   * commit index; undefined until it does, and again once its log went
   * backwards or its process restarted.
   */
  lastCaughtUpTick: number | undefined;
  /**
   * The leader's last index when it last sent the peer an append that
   * reached it, and the tick it did: an answer that reaches that index shows
   * the peer held then all the leader had (so it was caught up at that tick),
   * even if the commit index has moved on since (a lazy follower answers a
   * lazy wait late under load). Infinity when unknown.
   */
  completeThrough = Infinity;
  completeTick = 0;
  /** A heartbeat answer showed the peer lagging: send an append even if none seems due (lost appends). */
  resendDue = false;
  /** The last append with entries went out marked `lazySync` (`RaftOptions.lazyFollowers`). */
  lazy = false;
  /** Highest commit index sent to the peer, to know when an empty append must carry a new commit. */
  commitSent = 0;
  /** Last index of each append in flight, oldest first (a bounded queue). */
  readonly #inflight: number[] = [];
  readonly #inflightAppendsMax: number;

  constructor(options: { next: number; inflightAppendsMax: number; learner: boolean }) {
    assert(options.next >= 1, "next must be >= 1");
    assert(options.inflightAppendsMax >= 1, "inflightAppendsMax must be >= 1");
    this.next = options.next;
    this.learner = options.learner;
    this.#inflightAppendsMax = options.inflightAppendsMax;
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.#reset("probe");
  }

  becomeReplicate(): void {
    this.next = this.match + 1;
    this.#reset("replicate");
  }

  becomeSnapshot(index: number, tick: number): void {
    this.#reset("snapshot");
    this.pendingSnapshot = index;
    this.snapshotSentTick = tick;
  }

  /** Records an acknowledgement up to `index`; returns whether `match` moved. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    this.#freeUpTo(index);
    return updated;
  }

  /**
   * Handles a rejected append for `rejected` with the follower's `hint`;
   * returns false when the rejection is stale.
   *
   * A follower that holds every entry up to `match` never hints below it
   * (its hint is the last index whose term is not above the leader's there,
   * and up to `match` its terms are the leader's). So a rejection that is
   * not stale and hints below `match` says the follower's log went
   * backwards: a torn tail cut at a restart the leader did not notice, or a
   * rebuilt replica. Such a rejection lowers `match` to the hint, and the
   * leader probes from there; otherwise the follower would be probed at
   * `match` forever and never catch up. Lowering `match` is always safe: it
   * only withholds the follower's vote in commits until it acknowledges
   * again (a stale duplicate costs one needless probe).
   */
  maybeDecreaseTo(rejected: number, hint: number): boolean {
    const backwards = hint < this.match && rejected >= this.match;
    if (this.state === "replicate") {
      if (rejected < this.match || (rejected === this.match && !backwards)) return false;
      if (backwards) this.#wentBackwards(hint);
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    if (backwards) this.#wentBackwards(hint);
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /**
   * Forgets everything known of the peer's log (its process restarted): no
   * match, probing from `next` (the leader's last index + 1).
   */
  reset(next: number): void {
    assert(next >= 1, "next must be >= 1");
    this.match = 0;
    this.lastCaughtUpTick = undefined;
    this.completeThrough = Infinity;
    this.next = next;
    this.commitSent = 0;
    this.resendDue = false;
    this.#reset("probe");
  }

  /** Whether no further append may be sent now. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.#inflight.length >= this.#inflightAppendsMax;
      case "snapshot":
        return true;
    }
  }

  /** Appends sent in replicate state and not answered yet. */
  get inflightCount(): number {
    return this.#inflight.length;
  }

  /** Accounts for an append whose last entry is `lastIndex` (optimistically in replicate state). */
  sentEntries(lastIndex: number, count: number): void {
    if (this.state === "replicate") {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.#inflight.push(lastIndex);
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }

  /** A heartbeat answer proves the peer is alive: unpause a probe, free one inflight slot. */
  onHeartbeatResponse(): void {
    this.probeSent = false;
    if (this.#inflight.length >= this.#inflightAppendsMax) this.#inflight.shift();
  }

  /** A read-only view; `tick` is the leader's current tick, for `heardTicksAgo`. */
  status(tick: number): ProgressStatus {
    const status: ProgressStatus = {
      match: this.match,
      next: this.next,
      state: this.state,
      learner: this.learner,
      inflight: this.#inflight.length,
    };
    if (this.lastHeardTick !== undefined) status.heardTicksAgo = tick - this.lastHeardTick;
    if (this.lastCaughtUpTick !== undefined) {
      status.caughtUpTicksAgo = tick - this.lastCaughtUpTick;
    }
    return status;
  }

  #wentBackwards(hint: number): void {
    this.match = hint;
    this.lastCaughtUpTick = undefined;
    this.completeThrough = Infinity;
  }

  #freeUpTo(index: number): void {
    let count = 0;
    while (count < this.#inflight.length && this.#inflight[count] <= index) count++;
    if (count > 0) this.#inflight.splice(0, count);
  }

  #reset(state: "probe" | "replicate" | "snapshot"): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.#inflight.length = 0;
  }
}
