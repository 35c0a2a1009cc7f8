/**
 * A `Scheduler` on virtual time: nothing runs until the owner moves time
 * (`advance`, or one timer at a time with `runNext`) or runs the deferred
 * tasks (`runDeferred`), and tasks due at the same moment run in the order
 * they were scheduled. Tests drive cluster components with it instead of
 * sleeping; the whole-cluster simulator (`lib/sim/cluster`) drives every
 * peer with one, letting promises settle between two timers.
 *
 * Timers wait in a binary heap ordered by (due time, scheduling order), so
 * a simulation with thousands of pending timeouts pays a logarithmic cost
 * per timer; cancelled timers are dropped lazily when they reach the top.
 *
 * @module
 */

import type { Cancel, Scheduler } from "./runtime.ts";

/** Most tasks waiting at once: a test that leaks timers fails loudly. */
export const manualTasksMax = 1_000_000;

interface Task {
  at: number;
  sequence: number;
  run: () => void;
  /** Set for a repeating task. */
  intervalMs?: number;
  cancelled: boolean;
}

/**
 * Virtual time for tests and simulations.
 *
 * @example
 * ```ts
 * const scheduler = new ManualScheduler();
 * let ran = false;
 * scheduler.schedule(100, () => ran = true);
 * scheduler.advance(99); // ran is still false
 * scheduler.advance(1); // ran is true
 * ```
 */
export class ManualScheduler implements Scheduler {
  #now: number;
  #sequence = 0;
  /** A binary min-heap on (at, sequence). */
  #heap: Task[] = [];
  #live = 0;
  #deferred: (() => void)[] = [];

  /** Starts the clock at `startMs` (default 0). */
  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  /** Timers waiting (cancelled ones excluded). */
  get pendingTimers(): number {
    return this.#live;
  }

  /** Deferred tasks waiting. */
  get pendingDeferred(): number {
    return this.#deferred.length;
  }

  schedule(delayMs: number, task: () => void): Cancel {
    return this.#add({ at: this.#now + Math.max(0, delayMs), run: task });
  }

  every(intervalMs: number, task: () => void): Cancel {
    if (!(intervalMs > 0)) {
      throw new RangeError(
        `Cannot schedule a repeating task as 'intervalMs' must be positive: current value is ${intervalMs}`,
      );
    }
    return this.#add({ at: this.#now + intervalMs, run: task, intervalMs });
  }

  defer(task: () => void): void {
    this.#deferred.push(task);
  }

  /** Runs the deferred tasks, including those they defer in turn; returns how many ran. */
  runDeferred(): number {
    let ran = 0;
    while (this.#deferred.length > 0) {
      const batch = this.#deferred;
      this.#deferred = [];
      for (const task of batch) task();
      ran += batch.length;
    }
    return ran;
  }

  /** When the next timer falls due, or undefined when none waits. */
  nextDueAt(): number | undefined {
    return this.#peek()?.at;
  }

  /**
   * Moves time to the next timer and runs it alone (no deferred tasks);
   * false when no timer waits or the next one is due after `untilMs`.
   *
   * @example
   * ```ts
   * const scheduler = new ManualScheduler();
   * scheduler.schedule(10, () => {});
   * scheduler.runNext(); // true; now() is 10
   * ```
   */
  runNext(untilMs = Infinity): boolean {
    const next = this.#peek();
    if (next === undefined || next.at > untilMs) return false;
    this.#pop();
    this.#now = Math.max(this.#now, next.at);
    this.#run(next);
    return true;
  }

  /** Moves time to `atMs` without running anything (never backwards). */
  advanceTo(atMs: number): void {
    this.#now = Math.max(this.#now, atMs);
  }

  /**
   * Moves time forward by `ms`, running every timer that falls due (at its
   * own moment) and the deferred tasks before and after each.
   */
  advance(ms: number): void {
    const until = this.#now + ms;
    this.runDeferred();
    while (this.runNext(until)) this.runDeferred();
    this.#now = until;
  }

  #add(fields: { at: number; run: () => void; intervalMs?: number }): Cancel {
    if (this.#live >= manualTasksMax) {
      throw new RangeError(`Cannot schedule more than ${manualTasksMax} tasks`);
    }
    const task: Task = { ...fields, sequence: this.#sequence++, cancelled: false };
    this.#push(task);
    this.#live++;
    return () => {
      if (task.cancelled) return;
      task.cancelled = true;
      this.#live--;
    };
  }

  /** The earliest task not cancelled, dropping cancelled ones on the way. */
  #peek(): Task | undefined {
    while (this.#heap.length > 0 && this.#heap[0].cancelled) this.#pop();
    return this.#heap[0];
  }

  #run(task: Task): void {
    if (task.intervalMs === undefined) {
      task.cancelled = true;
      this.#live--;
    } else {
      task.at += task.intervalMs;
      task.sequence = this.#sequence++;
      this.#push(task);
    }
    task.run();
  }

  #push(task: Task): void {
    const heap = this.#heap;
    heap.push(task);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(task, heap[parent])) break;
      heap[index] = heap[parent];
      index = parent;
    }
    heap[index] = task;
  }

  #pop(): Task | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || last === undefined) return top;
    let index = 0;
    while (true) {
      const left = 2 * index + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && before(heap[right], heap[left]) ? right : left;
      if (!before(heap[child], last)) break;
      heap[index] = heap[child];
      index = child;
    }
    heap[index] = last;
    return top;
  }
}

function before(a: Task, b: Task): boolean {
  return a.at < b.at || (a.at === b.at && a.sequence < b.sequence);
}
