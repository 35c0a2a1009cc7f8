/**
 * A `Scheduler` on virtual time: nothing runs until the owner moves time
 * (`advance`) or runs the deferred tasks (`runDeferred`), and tasks due at
 * the same moment run in the order they were scheduled. Tests drive cluster
 * components with it instead of sleeping; a whole-cluster simulator can
 * drive every peer with one.
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
  #tasks: Task[] = [];
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
    return this.#tasks.filter((task) => !task.cancelled).length;
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

  /**
   * Moves time forward by `ms`, running every timer that falls due (at its
   * own moment) and the deferred tasks before and after each.
   */
  advance(ms: number): void {
    const until = this.#now + ms;
    this.runDeferred();
    while (true) {
      const next = this.#next();
      if (next === undefined || next.at > until) break;
      this.#now = next.at;
      this.#run(next);
      this.runDeferred();
    }
    this.#now = until;
  }

  #add(fields: { at: number; run: () => void; intervalMs?: number }): Cancel {
    if (this.#tasks.length >= manualTasksMax) {
      throw new RangeError(`Cannot schedule more than ${manualTasksMax} tasks`);
    }
    const task: Task = { ...fields, sequence: this.#sequence++, cancelled: false };
    this.#tasks.push(task);
    return () => {
      task.cancelled = true;
    };
  }

  #next(): Task | undefined {
    this.#tasks = this.#tasks.filter((task) => !task.cancelled);
    let best: Task | undefined;
    for (const task of this.#tasks) {
      if (
        best === undefined || task.at < best.at ||
        (task.at === best.at && task.sequence < best.sequence)
      ) {
        best = task;
      }
    }
    return best;
  }

  #run(task: Task): void {
    if (task.intervalMs === undefined) {
      task.cancelled = true;
    } else {
      task.at += task.intervalMs;
      task.sequence = this.#sequence++;
    }
    task.run();
  }
}
