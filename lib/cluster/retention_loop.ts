/**
 * Retention of replicated topics. Once a second, for each replica held here
 * whose topic has retention limits:
 *
 * - where this replica leads, it decides the new first retained offset from
 *   its own segments (`retainedFirstOffset`: whole segments whose every
 *   message is expired) and proposes it as a `retain` command, so the
 *   decision is made once and every replica applies the same one;
 * - on every replica, once the applied first offset moved since the last
 *   look, it asks its group to compact: a snapshot, then the whole segments
 *   below the entry holding the first retained offset are deleted.
 *
 * Destructive steps follow committed state only: a replica deletes segments
 * because its own log committed a `retain`, never because a peer asked.
 *
 * A pass costs nothing for topics without limits: given `onChange`, the
 * loop looks at every replica only after a change (and at least once a
 * minute), keeps the few with limits, and visits only those in between; a
 * replica's byte watch is set when its retention changes, not every pass.
 *
 * @module
 */

import { getLogger } from "../logging.ts";
import { retainedFirstOffset } from "../peer/retention_plan.ts";
import { encodeCommand } from "../peer/topic_commands.ts";
import { segmentBytesMaxDefault } from "../storage/segment_log_store.ts";
import { hasLimits, type Retention, retentionSegmentBytes } from "../wire/retention.ts";
import type { LocalReplica } from "./replica_manager.ts";
import type { Cancel, Scheduler } from "./runtime.ts";

/** How often retention looks at the replicas with limits. */
export const retentionIntervalMsDefault = 1000;

/** Passes between two looks at every replica even without a change (a safety net). */
export const rescanPassesMax = 60;

/** What a {@linkcode RetentionLoop} works with. */
export interface RetentionLoopOptions {
  /** The retention in force for a topic (the metadata's, or the standalone topic list's). */
  retentionOf(name: string): Retention | undefined;
  /** The replicas held here, by topic name. */
  replicas: () => Iterable<[string, LocalReplica]>;
  /**
   * Subscribes to whatever may change which replicas have limits (a
   * topic's retention, a replica opened or closed). With it, passes visit
   * only the replicas with limits and look at all of them only after a
   * change; without it, every pass looks at every replica.
   */
  onChange?: (listener: () => void) => void;
  scheduler: Scheduler;
  /** Default {@linkcode retentionIntervalMsDefault}. */
  intervalMs?: number;
}

/**
 * The retention loop of one peer.
 *
 * @example
 * ```ts
 * const retention = new RetentionLoop({
 *   retentionOf: (name) => meta.topics.get(name)?.retention,
 *   replicas: () => manager.entries(),
 *   scheduler,
 * });
 * retention.start();
 * retention.stop();
 * ```
 */
export class RetentionLoop {
  readonly #options: RetentionLoopOptions;
  /** Per replica (its group), the first offset its last compaction request covered. */
  readonly #compactedFrom = new WeakMap<object, number>();
  /** Per replica, the first offset it last proposed, so one decision is proposed once. */
  readonly #proposed = new WeakMap<object, number>();
  /** Per replica's topic machine, the retention its byte watch was set for. */
  readonly #watching = new WeakMap<object, Retention>();
  /** The replicas whose topic had limits at the last look at every replica. */
  #limited = new Map<string, LocalReplica>();
  /** True until every replica was looked at since the last change. */
  #stale = true;
  #passesSinceRescan = 0;
  #cancel: Cancel | undefined;
  readonly #logger = getLogger("cluster");

  constructor(options: RetentionLoopOptions) {
    this.#options = options;
    options.onChange?.(() => this.#stale = true);
  }

  /** Replicas the last pass visited (those whose topic has limits). */
  get visited(): number {
    return this.#limited.size;
  }

  /** Starts the periodic passes. */
  start(): void {
    this.#cancel ??= this.#options.scheduler.every(
      this.#options.intervalMs ?? retentionIntervalMsDefault,
      () => this.pass(),
    );
  }

  /** Stops them. */
  stop(): void {
    this.#cancel?.();
    this.#cancel = undefined;
  }

  /** One pass over the replicas whose topic has limits (tests call it directly). */
  pass(): void {
    const rescan = this.#stale || this.#options.onChange === undefined ||
      ++this.#passesSinceRescan >= rescanPassesMax;
    if (rescan) this.#rescan();
    for (const [name, local] of this.#limited) {
      const retention = this.#options.retentionOf(name);
      if (!hasLimits(retention)) {
        // Changed without a notification: stop watching until the next rescan.
        this.#unwatch(local);
        this.#limited.delete(name);
        continue;
      }
      this.#watch(name, local, retention!);
      if (local.group.isLeader) this.#decide(local, retention!);
      // A decision proposed by a former leadership is decided anew next time.
      else this.#proposed.delete(local.group);
      this.#compact(local);
    }
  }

  /** Looks at every replica: keeps those with limits, stops watching the others. */
  #rescan(): void {
    this.#stale = false;
    this.#passesSinceRescan = 0;
    const limited = new Map<string, LocalReplica>();
    for (const [name, local] of this.#options.replicas()) {
      if (hasLimits(this.#options.retentionOf(name))) limited.set(name, local);
      else this.#unwatch(local);
    }
    this.#limited = limited;
  }

  #unwatch(local: LocalReplica): void {
    const machine = local.topic.machine;
    if (!this.#watching.has(machine)) return;
    this.#watching.delete(machine);
    machine.watchRetention(undefined);
  }

  /**
   * Between passes, a leader also decides each time another segment's worth
   * of messages applied: a topic written faster than its `max_bytes` per
   * second still stays within twice `max_bytes`.
   */
  #watch(name: string, local: LocalReplica, retention: Retention): void {
    const machine = local.topic.machine;
    if (this.#watching.get(machine) === retention) return;
    this.#watching.set(machine, retention);
    const bytes = retentionSegmentBytes(retention) ?? segmentBytesMaxDefault;
    machine.watchRetention({
      bytes,
      notify: () => {
        const now = this.#options.retentionOf(name);
        if (local.group.isLeader && hasLimits(now)) this.#decide(local, now!);
      },
    });
  }

  /** On the leader: proposes the first offset the expired segments leave, if it moved. */
  #decide(local: LocalReplica, retention: Retention): void {
    const state = local.topic.state;
    const segments = local.group.store.segments();
    const first = retainedFirstOffset(segments, retention, state, this.#options.scheduler.now());
    if (first <= state.firstOffset || this.#proposed.get(local.group) === first) return;
    this.#proposed.set(local.group, first);
    try {
      local.group.propose(encodeCommand({ kind: "retain", firstOffset: first })).then(
        // Applied here: compact now rather than at the next pass.
        () => this.#compact(local),
        () => {
          // Lost with a leadership change or a failed disk: the next pass decides again.
          this.#proposed.delete(local.group);
        },
      );
    } catch {
      this.#proposed.delete(local.group);
    }
  }

  /** On every replica: compacts once the applied first offset moved past the last compaction. */
  #compact(local: LocalReplica): void {
    const first = local.topic.state.firstOffset;
    const previous = this.#compactedFrom.get(local.group);
    if (first === 0 || previous === first) return;
    this.#compactedFrom.set(local.group, first);
    try {
      local.group.requestCompaction();
    } catch (error) {
      this.#compactedFrom.delete(local.group);
      this.#logger.warn("Cannot compact the replica of {topic}: {error}", {
        topic: local.topic.name,
        error: (error as Error).message,
      });
    }
  }
}
