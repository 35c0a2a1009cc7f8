/**
 * What a replica does when its disk fails under it: a full disk (ENOSPC,
 * EDQUOT) or another I/O error. The replica stops writing, answers writes
 * with `storage_full` (or `unavailable` naming the I/O error), keeps serving
 * what it already applied, and restarts itself from its durable state with
 * backoff until the disk takes writes again; no peer restart is needed.
 * One log line when the trouble starts (with the path), one when writes
 * resume, none per retry.
 *
 * @module
 */

import { getLogger } from "../logging.ts";
import { ProtocolError } from "../wire/errors.ts";
import { isStorageFull, LogFailedError, StorageFullError } from "./segment_log_store.ts";

/** First wait before a replica whose disk failed tries to restart from it. */
export const restartDelayMsMin = 250;
/** Longest wait between restart attempts (the delay doubles up to it). */
export const restartDelayMsMax = 1000;

/** True for the typed store errors a replica recovers from by restarting. */
export function isStorageFailure(error: unknown): error is StorageFullError | LogFailedError {
  return error instanceof StorageFullError || error instanceof LogFailedError;
}

/**
 * The answer to a write refused because of `error`: `storage_full` for a
 * full disk, else `unavailable` naming the I/O error. Nothing was
 * acknowledged in either case.
 *
 * @example
 * ```ts
 * import { storageProtocolError } from "./storage_failure.ts";
 * import { StorageFullError } from "./segment_log_store.ts";
 * storageProtocolError(new StorageFullError("/data/t"), "topic 'events'").code; // "storage_full"
 * ```
 */
export function storageProtocolError(error: unknown, subject: string): ProtocolError {
  if (isStorageFull(error)) {
    return new ProtocolError(
      "storage_full",
      `The disk holding ${subject} is full, so nothing was acknowledged; writes resume by themselves once space is freed`,
      { cause: error },
    );
  }
  const reason = error instanceof LogFailedError ? error.message : String(error);
  return new ProtocolError(
    "unavailable",
    `The storage of ${subject} failed (${reason}), so nothing was acknowledged; writes resume once the disk works again`,
    { cause: error },
  );
}

/** Settings of a {@linkcode StorageRecovery}. */
export interface StorageRecoveryOptions {
  /** Names the replica in answers and log lines, e.g. "topic 'events'". */
  subject: string;
  /**
   * Rebuilds the replica from the store's durable state (calls
   * `store.recover()` first); rejects while the disk still refuses writes.
   */
  restart: () => Promise<void>;
  /** First delay before a restart. Default `restartDelayMsMin`. */
  delayMsMin?: number;
  /** Largest delay between restarts. Default `restartDelayMsMax`. */
  delayMsMax?: number;
  /** Runs the restart timer (a cluster `Scheduler` is one). Default: the host's timers. */
  timers?: { schedule(delayMs: number, task: () => void): () => void };
}

/** The host's timers. */
const hostTimers = {
  schedule(delayMs: number, task: () => void): () => void {
    const timer = setTimeout(task, delayMs);
    return () => clearTimeout(timer);
  },
};

/**
 * One replica's episode of a failed disk: from the first failed write to the
 * first successful write after a restart.
 *
 * @example
 * ```ts
 * const recovery = new StorageRecovery({ subject: "topic 'events'", restart: () => reopen() });
 * try {
 *   await store.sync();
 *   recovery.succeeded();
 * } catch (error) {
 *   throw recovery.fail(error);
 * }
 * ```
 */
export class StorageRecovery {
  readonly #options: StorageRecoveryOptions;
  readonly #logger = getLogger("storage");
  /** The answer to writes during the episode; undefined outside one. */
  #failure: ProtocolError | undefined;
  /** True from a failed write until a restart from the durable state succeeded. */
  #down = false;
  #delayMs: number;
  /** Cancels the pending restart timer. */
  #timer: (() => void) | undefined;
  #restarting = false;
  #closed = false;

  constructor(options: StorageRecoveryOptions) {
    this.#options = options;
    this.#delayMs = options.delayMsMin ?? restartDelayMsMin;
    if (this.#delayMs < 1 || this.#delayMs > (options.delayMsMax ?? restartDelayMsMax)) {
      throw new RangeError(
        `Cannot recover storage as 'delayMsMin' must be between 1 and 'delayMsMax': current value is ${this.#delayMs}`,
      );
    }
  }

  /** True while the replica must not write: it failed and has not restarted yet. */
  get down(): boolean {
    return this.#down;
  }

  /** The answer to writes during the episode (also after the restart, until a write succeeds). */
  get failure(): ProtocolError | undefined {
    return this.#failure;
  }

  /**
   * Reports a failed write: the replica is down until a restart succeeds.
   * Logs at the start of an episode only. Returns the answer for the writes
   * that were waiting on it.
   */
  fail(error: unknown): ProtocolError {
    const answer = storageProtocolError(error, this.#options.subject);
    if (this.#failure === undefined) {
      const path = (error as { directory?: string }).directory ?? "(unknown path)";
      this.#logger.error(
        isStorageFull(error)
          ? "The disk holding {subject} at {path} is full: writes are refused until space is freed, reads go on"
          : "The storage of {subject} at {path} failed ({error}): writes are refused until it works again, reads go on",
        { subject: this.#options.subject, path, error: (error as Error).message },
      );
    }
    this.#failure = answer;
    this.#down = true;
    this.#schedule();
    return answer;
  }

  /** Reports a successful write; ends the episode (logged once) when one is open. */
  succeeded(): void {
    if (this.#failure === undefined || this.#down) return;
    this.#failure = undefined;
    this.#delayMs = this.#options.delayMsMin ?? restartDelayMsMin;
    this.#logger.info("Writes to {subject} resumed", { subject: this.#options.subject });
  }

  /** Stops restart attempts (the replica is closing). */
  close(): void {
    this.#closed = true;
    this.#timer?.();
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#closed || this.#timer !== undefined || this.#restarting) return;
    const delayMs = this.#delayMs;
    this.#delayMs = Math.min(delayMs * 2, this.#options.delayMsMax ?? restartDelayMsMax);
    this.#timer = (this.#options.timers ?? hostTimers).schedule(delayMs, () => {
      this.#timer = undefined;
      this.#attempt();
    });
  }

  async #attempt(): Promise<void> {
    if (this.#closed) return;
    this.#restarting = true;
    try {
      await this.#options.restart();
      if (!this.#closed) this.#down = false;
    } catch (error) {
      if (!isStorageFailure(error)) {
        // Not the disk refusing writes (a damaged log, a bug): retrying
        // cannot help, so the replica stays down and says why, once.
        this.#closed = true;
        this.#logger.error("Cannot restart {subject} from its storage: {error}", {
          subject: this.#options.subject,
          error: (error as Error).message,
        });
      } else if (!this.#closed) {
        // Still full (or still failing): the next attempt comes after a longer delay.
        this.#failure = storageProtocolError(error, this.#options.subject);
      }
    } finally {
      this.#restarting = false;
    }
    if (this.#down) this.#schedule();
  }
}
