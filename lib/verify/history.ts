/**
 * The history of a `pubsub verify` run: every operation the workload
 * invoked, when, and what came back, plus the faults the nemesis injected.
 * The workload only records; `checker.ts` judges the history afterwards.
 *
 * Times are milliseconds since the run started, from one monotonic clock,
 * so "completed before invoked" compares operations of different workers.
 *
 * @module
 */

/** How a publish ended: acknowledged, refused for sure, or unknown (it may be stored). */
export type PublishOutcome = "ok" | "failed" | "unknown";

/** One publish of one message (each message text is unique in a run). */
export interface PublishOp {
  /** The producer worker. */
  producer: number;
  /**
   * The worker's client session: a new client after any failed publish. Until
   * its first failure a session's publishes share one idempotent producer
   * stream (the client starts a new stream after a failure).
   */
  session: number;
  message: string;
  invokedMs: number;
  /** Undefined while pending; a pending publish at the end counts as unknown. */
  completedMs?: number;
  outcome?: PublishOutcome;
  /** The acknowledged offset. */
  offset?: number;
  error?: string;
}

/** A message pushed to a durable subscriber. */
export interface DeliveryOp {
  subscriber: number;
  session: number;
  offset: number;
  message: string;
  atMs: number;
}

/** An acknowledgement a durable subscriber sent, and whether the cluster confirmed it. */
export interface AckOp {
  subscriber: number;
  session: number;
  offset: number;
  invokedMs: number;
  completedMs: number;
  ok: boolean;
}

/** One `fetch` window. */
export interface FetchOp {
  fetcher: number;
  invokedMs: number;
  completedMs: number;
  fromOffset: number;
  max: number;
  /** The highest offset acknowledged to any producer before this fetch was invoked (-1: none). */
  acknowledgedBefore: number;
  /** Undefined when the fetch failed. */
  messages?: { offset: number; message: string }[];
  nextOffset?: number;
  error?: string;
}

/** One injected fault. */
export interface FaultRecord {
  kind: string;
  startMs: number;
  endMs?: number;
  /** The nodes it hit. */
  nodes: number[];
  /** What was done, in words. */
  detail: string;
  /** False when the fault could not be injected (it does not count as injected). */
  injected: boolean;
}

/** A history as plain data (what `--history FILE` writes and the checker reads). */
export interface HistoryData {
  publishes: PublishOp[];
  deliveries: DeliveryOp[];
  acks: AckOp[];
  fetches: FetchOp[];
  faults: FaultRecord[];
}

/**
 * Records operations as the workload runs them.
 *
 * @example
 * ```ts
 * import { History } from "./history.ts";
 *
 * const history = new History();
 * const op = history.invokePublish({ producer: 0, session: 0, message: "m0" });
 * history.completePublish(op, { outcome: "ok", offset: 0 });
 * history.highestAcknowledged; // 0
 * ```
 */
export class History implements HistoryData {
  readonly publishes: PublishOp[] = [];
  readonly deliveries: DeliveryOp[] = [];
  readonly acks: AckOp[] = [];
  readonly fetches: FetchOp[] = [];
  readonly faults: FaultRecord[] = [];
  readonly #startedMs: number;
  readonly #now: () => number;
  #highestAcknowledged = -1;
  #acknowledged = 0;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.#startedMs = this.#now();
  }

  /** Milliseconds since the history started. */
  now(): number {
    return this.#now() - this.#startedMs;
  }

  /** The highest offset acknowledged to a producer so far, or -1. */
  get highestAcknowledged(): number {
    return this.#highestAcknowledged;
  }

  /** Publishes acknowledged so far. */
  get acknowledged(): number {
    return this.#acknowledged;
  }

  invokePublish(
    op: Pick<PublishOp, "producer" | "session" | "message">,
  ): PublishOp {
    const recorded: PublishOp = { ...op, invokedMs: this.now() };
    this.publishes.push(recorded);
    return recorded;
  }

  completePublish(
    op: PublishOp,
    result: { outcome: PublishOutcome; offset?: number; error?: string },
  ): void {
    op.completedMs = this.now();
    op.outcome = result.outcome;
    if (result.offset !== undefined) op.offset = result.offset;
    if (result.error !== undefined) op.error = result.error;
    if (result.outcome === "ok" && result.offset !== undefined) {
      this.#acknowledged++;
      this.#highestAcknowledged = Math.max(this.#highestAcknowledged, result.offset);
    }
  }

  deliver(op: Omit<DeliveryOp, "atMs">): void {
    this.deliveries.push({ ...op, atMs: this.now() });
  }

  ack(op: Omit<AckOp, "completedMs">): void {
    this.acks.push({ ...op, completedMs: this.now() });
  }

  fetch(op: Omit<FetchOp, "completedMs">): void {
    this.fetches.push({ ...op, completedMs: this.now() });
  }

  /** Records a fault as it starts; `endFault` closes it. */
  startFault(fault: Omit<FaultRecord, "startMs">): FaultRecord {
    const record: FaultRecord = { ...fault, startMs: this.now() };
    this.faults.push(record);
    return record;
  }

  endFault(record: FaultRecord, detail?: string): void {
    record.endMs = this.now();
    if (detail !== undefined) record.detail = `${record.detail}; ${detail}`;
  }

  /** The history as plain data. */
  toJSON(): HistoryData {
    return {
      publishes: this.publishes,
      deliveries: this.deliveries,
      acks: this.acks,
      fetches: this.fetches,
      faults: this.faults,
    };
  }
}
