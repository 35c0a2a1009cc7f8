/**
 * A one-line live progress display for long-running commands.
 *
 * On a terminal the line is redrawn in place with `\r`; elsewhere (CI logs,
 * pipes) a plain line is printed periodically so that logs stay readable.
 * It draws only when the caller reports progress, never from a timer, so it
 * keeps no process alive and tests drive it with an injected clock.
 *
 * @module
 */

/** Shortest time between two redraws on a terminal. */
const terminalIntervalMsDefault = 100;
/** Shortest time between two printed lines when not on a terminal. */
const plainIntervalMsDefault = 5_000;

/** Options of {@linkcode Progress}. */
export interface ProgressOptions {
  /** Unit of the count, e.g. "msgs". Default "ops". */
  unit?: string;
  /** Where text goes. Default: written synchronously to stdout. */
  write?: (text: string) => void;
  /** Redraw in place. Default: whether stdout is a terminal. */
  isTerminal?: boolean;
  /** Milliseconds clock. Default `performance.now`. */
  now?: () => number;
  /** Shortest time between two outputs. Default 100 on a terminal, 5000 otherwise. */
  intervalMs?: number;
}

/**
 * Progress of one phase: name, elapsed time, count and rate.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 *
 * const progress = new Progress("publish", { unit: "msgs" });
 * for (let sent = 1; sent <= 1000; sent++) progress.update(sent);
 * progress.done();
 * ```
 */
export class Progress {
  #phase: string;
  #unit: string;
  #write: (text: string) => void;
  #isTerminal: boolean;
  #now: () => number;
  #intervalMs: number;
  #startedMs: number;
  #shownMs = Number.NEGATIVE_INFINITY;
  #count = 0;
  #done = false;

  constructor(phase: string, options: ProgressOptions = {}) {
    this.#phase = phase;
    this.#unit = options.unit ?? "ops";
    this.#write = options.write ?? writeStdout;
    this.#isTerminal = options.isTerminal ?? Deno.stdout.isTerminal();
    this.#now = options.now ?? (() => performance.now());
    this.#intervalMs = options.intervalMs ??
      (this.#isTerminal ? terminalIntervalMsDefault : plainIntervalMsDefault);
    if (!(this.#intervalMs >= 0)) {
      throw new RangeError(
        `Cannot show progress as 'intervalMs' must be >= 0: current value is ${this.#intervalMs}`,
      );
    }
    this.#startedMs = this.#now();
  }

  /** The count reported last. */
  get count(): number {
    return this.#count;
  }

  /** Reports the total count so far; draws when the interval has passed. */
  update(count: number): void {
    if (this.#done) throw new Error(`Cannot update progress of '${this.#phase}' after done()`);
    this.#count = count;
    const nowMs = this.#now();
    if (nowMs - this.#shownMs < this.#intervalMs) return;
    this.#shownMs = nowMs;
    this.#show(nowMs, false);
  }

  /** Adds `delta` (default 1) to the count. */
  add(delta = 1): void {
    this.update(this.#count + delta);
  }

  /** Draws the final state and ends the line. */
  done(): void {
    if (this.#done) return;
    this.#done = true;
    this.#show(this.#now(), true);
  }

  #show(nowMs: number, final: boolean): void {
    const line = formatProgress(this.#phase, nowMs - this.#startedMs, this.#count, this.#unit);
    if (this.#isTerminal) {
      // \x1b[2K clears what a longer previous line left behind.
      this.#write(`\r\x1b[2K${line}${final ? "\n" : ""}`);
    } else {
      this.#write(`${line}${final ? " (done)" : ""}\n`);
    }
  }
}

/**
 * One progress line, e.g. `publish  12.3s  45,000 msgs  3,659 msgs/s`.
 *
 * @example
 * ```ts
 * import { formatProgress } from "./progress.ts";
 *
 * formatProgress("publish", 2_000, 500, "msgs"); // "publish  2.0s  500 msgs  250 msgs/s"
 * ```
 */
export function formatProgress(
  phase: string,
  elapsedMs: number,
  count: number,
  unit: string,
): string {
  const seconds = elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(count / seconds) : 0;
  const grouped = (value: number) => value.toLocaleString("en-US");
  return `${phase}  ${seconds.toFixed(1)}s  ${grouped(count)} ${unit}  ${grouped(rate)} ${unit}/s`;
}

const encoder = new TextEncoder();

function writeStdout(text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}
