/**
 * The deterministic event loop of the whole-cluster simulator. One
 * `ManualScheduler` holds every timer of every peer, of the network and of
 * the clients; the loop runs them one at a time in (due time, scheduling
 * order), and after each lets every promise settle (one host macrotask
 * boundary: all microtasks run before it) and runs the deferred tasks. No
 * real timer, socket or file is involved, so a run is a function of its
 * seed: replaying the seed replays the run.
 *
 * `NodeScheduler` is one peer process's view of the shared clock: when the
 * process crashes its timers and deferred tasks stop running, so a dead
 * incarnation never acts again.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { Cancel, Scheduler } from "../../cluster/runtime.ts";
import type { ManualScheduler } from "../../cluster/manual_scheduler.ts";

/**
 * Lets every pending microtask run: resolves in the next host macrotask.
 *
 * @example
 * ```ts
 * scheduler.runNext();
 * await settle(); // every promise the timer resolved has run on
 * ```
 */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Runs timers until `untilMs` (virtual), settling promises and deferred tasks after each;
 * `afterEach` runs after every timer (the checker's hook). Returns the timers run.
 *
 * @example
 * ```ts
 * const scheduler = new ManualScheduler();
 * await runUntil(scheduler, 1000, () => checker.check());
 * ```
 */
export async function runUntil(
  scheduler: ManualScheduler,
  untilMs: number,
  afterEach: () => void = () => {},
): Promise<number> {
  let events = 0;
  while (true) {
    await settle();
    if (scheduler.runDeferred() > 0) continue;
    if (!scheduler.runNext(untilMs)) break;
    events++;
    afterEach();
  }
  scheduler.advanceTo(untilMs);
  return events;
}

/**
 * One process's timers on the shared virtual clock; `kill` silences them.
 *
 * @example
 * ```ts
 * const timers = new NodeScheduler(scheduler);
 * timers.every(100, tick);
 * timers.kill(); // tick never runs again
 * ```
 */
export class NodeScheduler implements Scheduler {
  readonly #shared: ManualScheduler;
  #alive = true;
  readonly #repeating = new Set<Cancel>();

  constructor(shared: ManualScheduler) {
    this.#shared = shared;
  }

  get alive(): boolean {
    return this.#alive;
  }

  now(): number {
    return this.#shared.now();
  }

  schedule(delayMs: number, task: () => void): Cancel {
    if (!this.#alive) return () => {};
    return this.#shared.schedule(delayMs, () => {
      if (this.#alive) task();
    });
  }

  every(intervalMs: number, task: () => void): Cancel {
    if (!this.#alive) return () => {};
    const cancelShared = this.#shared.every(intervalMs, () => {
      if (this.#alive) task();
    });
    const cancel = () => {
      cancelShared();
      this.#repeating.delete(cancel);
    };
    this.#repeating.add(cancel);
    return cancel;
  }

  defer(task: () => void): void {
    if (!this.#alive) return;
    this.#shared.defer(() => {
      if (this.#alive) task();
    });
  }

  /** The process died: none of its timers or deferred tasks runs any more. */
  kill(): void {
    this.#alive = false;
    for (const cancel of [...this.#repeating]) cancel();
  }
}
