/**
 * Messages this peer delivered to subscribers, per topic: the web console's
 * delivery rate and `pubsub_messages_delivered_total`. Every subscription
 * (TCP or HTTP) reads through `Broker.source`, so counting what those sources
 * return counts every pushed message, whichever protocol pushed it.
 *
 * @module
 */

import type { Broker } from "../peer/broker.ts";
import type { MessageSource } from "../peer/topic.ts";

/** Most topics counted; more are not tracked (topics are bounded by `--max-topics` anyway). */
export const countedTopicsMax = 100_000;

/**
 * Per-topic delivery counters of one peer.
 *
 * @example
 * ```ts
 * const counts = new DeliveryCounts();
 * counts.record("events", 3);
 * console.log(counts.snapshot()); // { events: 3 }
 * ```
 */
export class DeliveryCounts {
  readonly #counts = new Map<string, number>();
  readonly #onRecord: ((topic: string, count: number) => void) | undefined;

  /** `onRecord` also sees every count (a metrics counter). */
  constructor(onRecord?: (topic: string, count: number) => void) {
    this.#onRecord = onRecord;
  }

  /** Adds `count` messages delivered from `topic`. */
  record(topic: string, count: number): void {
    if (count <= 0) return;
    const known = this.#counts.get(topic);
    if (known === undefined && this.#counts.size >= countedTopicsMax) return;
    this.#counts.set(topic, (known ?? 0) + count);
    this.#onRecord?.(topic, count);
  }

  /** Messages delivered so far, by topic name. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#counts].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
  }
}

/**
 * `broker` with every subscription source counted in `counts`; everything
 * else passes through unchanged (a Proxy, so new Broker methods need no
 * change here).
 *
 * @example
 * ```ts
 * const counted = countDeliveries(broker, new DeliveryCounts());
 * ```
 */
export function countDeliveries(broker: Broker, counts: DeliveryCounts): Broker {
  const source = async (name: string) => countedSource(await broker.source(name), counts);
  // Methods are bound once: the request path asks for one on every request.
  const bound = new Map<PropertyKey, { method: unknown; bound: unknown }>();
  return new Proxy(broker, {
    get(target, property) {
      if (property === "source") return source;
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const known = bound.get(property);
      if (known !== undefined && known.method === value) return known.bound;
      const fresh = value.bind(target);
      bound.set(property, { method: value, bound: fresh });
      return fresh;
    },
  });
}

function countedSource(source: MessageSource, counts: DeliveryCounts): MessageSource {
  return {
    name: source.name,
    readCommitted: async (fromOffset, max) => {
      const result = await source.readCommitted(fromOffset, max);
      counts.record(source.name, result.messages.length);
      return result;
    },
    waitForOffset: (offset, signal) => source.waitForOffset(offset, signal),
  };
}
