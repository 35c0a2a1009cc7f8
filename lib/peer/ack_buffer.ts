/**
 * Coalesced subscriber acks of one topic: acks gather in memory and are
 * written as one entry at most every `ackFlushMs`, so a busy subscriber costs
 * a few log entries per second instead of one per message. Losing buffered
 * acks (a crash, a failover) only means redelivery: delivery is
 * at-least-once and the offsets let clients drop duplicates.
 *
 * @module
 */

/** How long acks gather before they are written as one entry. */
export const ackFlushMs = 100;

/** The timers an ack buffer needs (a cluster `Scheduler` is one). */
export interface AckTimers {
  /** Runs `task` once after `delayMs`; returns a cancel. */
  schedule(delayMs: number, task: () => void): () => void;
}

/** The host's timers. */
const hostTimers: AckTimers = {
  schedule(delayMs, task) {
    const timer = setTimeout(task, delayMs);
    return () => clearTimeout(timer);
  },
};

/**
 * Ack buffer in front of a topic's stored subscriber positions.
 *
 * @example
 * ```ts
 * const acks = new AckBuffer(state.subscribers, (offsets) => writeAckEntry(offsets));
 * acks.ack("u1", 41);
 * acks.position("u1"); // 41, before the entry is even written
 * ```
 */
export class AckBuffer {
  readonly #stored: ReadonlyMap<string, number>;
  readonly #write: (offsets: Record<string, number>) => void;
  #pending = new Map<string, number>();
  readonly #timers: AckTimers;
  #timer: (() => void) | undefined;

  /**
   * `stored` holds the applied positions; `write` makes buffered ones
   * durable; `options.timers` runs the flush timer (default: the host's).
   */
  constructor(
    stored: ReadonlyMap<string, number>,
    write: (offsets: Record<string, number>) => void,
    options: { timers?: AckTimers } = {},
  ) {
    this.#stored = stored;
    this.#write = write;
    this.#timers = options.timers ?? hostTimers;
  }

  /** Records a cumulative ack; an older one than known is ignored for a known subscriber. */
  ack(subscriber: string, offset: number): void {
    const known = this.position(subscriber) ?? -1;
    if (offset <= known && this.#stored.has(subscriber)) return;
    this.#pending.set(subscriber, Math.max(known, offset));
    this.#timer ??= this.#timers.schedule(ackFlushMs, () => this.flush());
  }

  /** Last acknowledged offset, buffered or stored (-1: none acked yet). */
  position(subscriber: string): number | undefined {
    return this.#pending.get(subscriber) ?? this.#stored.get(subscriber);
  }

  /** Hands every buffered ack to `write` now. */
  flush(): void {
    this.#timer?.();
    this.#timer = undefined;
    if (this.#pending.size === 0) return;
    const offsets = Object.fromEntries(this.#pending);
    this.#pending.clear();
    this.#write(offsets);
  }

  /** Stops the flush timer; buffered acks are dropped unless `flush()` runs. */
  cancel(): void {
    this.#timer?.();
    this.#timer = undefined;
  }
}
