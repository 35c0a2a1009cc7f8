/**
 * What the simulated clients saw, and the violations found while they saw
 * it: acknowledged publishes (by producer and sequence), fetches and
 * subscriber deliveries. The end-of-run checks (`sim_checker.ts`) compare
 * it with every replica's log.
 *
 * @module
 */

/** One broken invariant. */
export interface Violation {
  /** Which invariant, e.g. `acknowledged_lost`. */
  invariant: string;
  /** Virtual ms. */
  at: number;
  detail: string;
}

/** A publish of one producer sequence and every acknowledgement it got. */
export interface PublishRecord {
  topic: string;
  producer: string;
  sequence: number;
  message: string;
  /** Offsets in the acknowledgements received (retries included): all must agree. */
  offsets: number[];
  /** Virtual ms of the first acknowledgement. */
  ackedAt: number | undefined;
}

/** A fetch as a client saw it. */
export interface FetchRecord {
  topic: string;
  node: number;
  invokedAt: number;
  /** Every publish acknowledged before the fetch began lies below this offset. */
  ackedBelow: number;
  messages: { offset: number; message: string }[];
  nextOffset: number;
}

/** Most violations kept per run (later ones are counted). */
export const violationsMax = 20;
/** Most fetches and deliveries kept for the end-of-run comparison. */
export const observationsMax = 2000;

/**
 * The run's client history and violations.
 *
 * @example
 * ```ts
 * const history = new History(() => scheduler.now());
 * history.acknowledged("events", "p1", 0, "p1-0", 0);
 * history.violate("stale_fetch", "fetch on node 2 ended at 3, before acknowledged offset 4");
 * ```
 */
export class History {
  readonly #now: () => number;
  readonly publishes = new Map<string, PublishRecord>();
  readonly fetches: FetchRecord[] = [];
  /** Messages delivered to subscribers, by topic and offset (first delivery wins). */
  readonly deliveries = new Map<string, Map<number, string>>();
  readonly violations: Violation[] = [];
  violationCount = 0;
  /** Highest acknowledged offset per topic. */
  readonly #ackedMax = new Map<string, number>();

  constructor(now: () => number) {
    this.#now = now;
  }

  violate(invariant: string, detail: string): void {
    this.violationCount++;
    if (this.violations.length < violationsMax) {
      this.violations.push({ invariant, at: this.#now(), detail });
    }
  }

  /** A publish of (`producer`, `sequence`) was acknowledged at `offset`. */
  acknowledged(
    topic: string,
    producer: string,
    sequence: number,
    message: string,
    offset: number,
  ): void {
    const key = `${producer}#${sequence}`;
    let record = this.publishes.get(key);
    if (record === undefined) {
      record = { topic, producer, sequence, message, offsets: [], ackedAt: undefined };
      this.publishes.set(key, record);
    }
    if (record.offsets.length > 0 && !record.offsets.includes(offset)) {
      this.violate(
        "duplicate_publish",
        `${producer} sequence ${sequence} was acknowledged at offsets ${
          record.offsets[0]
        } and ${offset}`,
      );
    }
    record.offsets.push(offset);
    record.ackedAt ??= this.#now();
    this.#ackedMax.set(topic, Math.max(this.#ackedMax.get(topic) ?? -1, offset));
  }

  /** One past the highest offset acknowledged so far in `topic`. */
  ackedBelow(topic: string): number {
    return (this.#ackedMax.get(topic) ?? -1) + 1;
  }

  fetched(record: FetchRecord): void {
    if (record.nextOffset < record.ackedBelow) {
      this.violate(
        "stale_fetch",
        `A fetch of '${record.topic}' on node ${record.node} ended at offset ${record.nextOffset}, before offset ${
          record.ackedBelow - 1
        } acknowledged before it began`,
      );
    }
    if (this.fetches.length < observationsMax) this.fetches.push(record);
  }

  delivered(topic: string, offset: number, message: string): void {
    let byOffset = this.deliveries.get(topic);
    if (byOffset === undefined) {
      byOffset = new Map();
      this.deliveries.set(topic, byOffset);
    }
    const earlier = byOffset.get(offset);
    if (earlier !== undefined && earlier !== message) {
      this.violate(
        "delivery_changed",
        `Offset ${offset} of '${topic}' was delivered as '${earlier}' and later as '${message}'`,
      );
    }
    if (byOffset.size < observationsMax) byOffset.set(offset, message);
  }
}
