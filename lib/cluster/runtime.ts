/**
 * The side effects of the cluster layer, behind small interfaces: time and
 * timers (`Scheduler`), randomness (`Rng`) and replica logs on disk
 * (`StoreFactory`). The peer transport is the fourth (`transport.ts`).
 * Production wires the real ones here, in one place (`systemRuntime`);
 * tests and a whole-cluster simulator pass a `ManualScheduler`, a seeded
 * `Rng` and in-memory stores, so the same code runs on virtual time.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { Rng } from "../raft/types.ts";
import type { LogStore } from "../storage/types.ts";
import { loadNodeIdentity } from "./node_identity.ts";
import { topicReplicaDir } from "./replica_files.ts";
import {
  clearRecovering,
  openReplicaLog,
  takeClosedLogs,
  writeClosedLogs,
} from "./replica_repair.ts";
import { removeRetiredLog, retireReplicaLog } from "./replica_tombstone.ts";

export type { Rng } from "../raft/types.ts";

/** Options of `StoreFactory.open`. */
export interface OpenLogOptions {
  /** Names a quarantined copy, e.g. `events.3`. */
  label: string;
  /** Last index durable when the peer last stopped cleanly (see `takeClosedLogs`). Default: none. */
  closedIndex?: number;
  /**
   * Size of the log's segment files, the unit compaction deletes (a topic's
   * retention picks it, see `retentionSegmentBytes`). Default: the store's, 64 MiB.
   */
  segmentBytes?: number;
}

/** What `StoreFactory.open` found and did (see `OpenedReplicaLog` of `replica_repair.ts`). */
export interface OpenedLog {
  store: LogStore;
  /** Set while the replica rebuilds a lost log: pass as `RaftOptions.recoveringTerm`. */
  recoveringTerm: number | undefined;
  /** Set when damage was found now: where the damaged files went, and why. */
  quarantined?: { path: string; reason: string };
}

/** The time source. */
export interface Clock {
  /** Milliseconds since some fixed origin. */
  now(): number;
}

/** Cancels a scheduled task; calling it again, or after the task ran, does nothing. */
export type Cancel = () => void;

/**
 * Time and timers. Every timer of the cluster layer goes through one, so a
 * test or a simulator moves time by hand and runs tasks in a known order.
 *
 * @example
 * ```ts
 * const cancel = scheduler.schedule(100, () => console.log("later"));
 * scheduler.defer(() => console.log("after the pending I/O"));
 * cancel();
 * ```
 */
export interface Scheduler extends Clock {
  /** Runs `task` once after `delayMs`. */
  schedule(delayMs: number, task: () => void): Cancel;
  /** Runs `task` every `intervalMs` until cancelled. */
  every(intervalMs: number, task: () => void): Cancel;
  /**
   * Runs `task` in a later macrotask, after the I/O already pending
   * (`setImmediate` in production): work deferred this way batches a burst.
   */
  defer(task: () => void): void;
}

/**
 * Where replica logs live. Production opens `SegmentLogStore`s in the data
 * directory (quarantining damaged ones, see `replica_repair.ts`); a
 * simulator keeps them on its simulated disks.
 *
 * @example
 * ```ts
 * const { directoryId } = await stores.prepare(1);
 * const opened = await stores.open(stores.topicDirectory("events", 3), { label: "events.3" });
 * await stores.remove(stores.topicDirectory("events", 3));
 * ```
 */
export interface StoreFactory {
  /**
   * Makes the data directory ready and returns its identity (created on
   * first start; `NodeIdentityError` when it belongs to another node id).
   */
  prepare(nodeId: number): Promise<{ directoryId: string }>;
  /** The directory of the metadata replica. */
  readonly metaDirectory: string;
  /** The directory of epoch `epoch` of topic `name`'s replica. */
  topicDirectory(name: string, epoch: number): string;
  /**
   * Opens (or creates) the log in `directory`, quarantining and rebuilding a
   * damaged one; throws what the disk throws otherwise.
   */
  open(directory: string, options: OpenLogOptions): Promise<OpenedLog>;
  /** Deletes a replica's log (ignoring one already gone). */
  remove(directory: string): Promise<void>;
  /**
   * Deletes the log of a replica removed from a group that lives on, leaving
   * a tombstone: a replica opened in `directory` again starts recovering at
   * `term` (see `replica_tombstone.ts`).
   */
  retire(directory: string, term: number): Promise<void>;
  /** Clears a rebuilt replica's recovering flag (see `replica_repair.ts`). */
  clearRecovering(directory: string): Promise<void>;
  /** Reads and deletes the clean-shutdown record: the durable end of each log. */
  takeClosedLogs(): Promise<Map<string, number>>;
  /** Writes the clean-shutdown record. */
  writeClosedLogs(logs: Map<string, number>): Promise<void>;
}

/** Everything with a side effect a cluster broker uses, besides its peer transport. */
export interface ClusterRuntime {
  scheduler: Scheduler;
  rng: Rng;
  stores: StoreFactory;
}

/** The wall clock and the host's timers. */
export const systemScheduler: Scheduler = {
  now: () => Date.now(),
  schedule(delayMs, task) {
    const timer = setTimeout(task, delayMs);
    return () => clearTimeout(timer);
  },
  every(intervalMs, task) {
    const timer = setInterval(task, intervalMs);
    return () => clearInterval(timer);
  },
  defer(task) {
    setImmediate(task);
  },
};

/** Randomness from the operating system's generator (election timeouts, jitter). */
export const cryptoRng: Rng = {
  next: () => crypto.getRandomValues(new Uint32Array(1))[0] / 2 ** 32,
};

/**
 * Replica logs as segment files under `dataDir` (`meta/`, `topics/<name>.<epoch>/`).
 *
 * @example
 * ```ts
 * const stores = segmentStores("/var/lib/pubsub");
 * ```
 */
export function segmentStores(dataDir: string): StoreFactory {
  return {
    async prepare(nodeId) {
      await Deno.mkdir(`${dataDir}/topics`, { recursive: true });
      return await loadNodeIdentity(dataDir, nodeId);
    },
    metaDirectory: `${dataDir}/meta`,
    topicDirectory: (name, epoch) => topicReplicaDir(dataDir, name, epoch),
    open: async (directory, options) => {
      await removeRetiredLog(directory);
      return await openReplicaLog(directory, {
        ...options,
        quarantineDir: `${dataDir}/quarantine`,
      });
    },
    remove: (directory) => Deno.remove(directory, { recursive: true }).catch(() => {}),
    retire: (directory, term) => retireReplicaLog(directory, term),
    clearRecovering: (directory) => clearRecovering(directory),
    takeClosedLogs: () => takeClosedLogs(dataDir),
    writeClosedLogs: (logs) => writeClosedLogs(dataDir, logs),
  };
}

/**
 * The production runtime of a peer: wall clock and host timers, the
 * operating system's randomness, segment logs in `dataDir`. The one
 * composition root of the cluster layer's side effects.
 *
 * @example
 * ```ts
 * const broker = await ClusterBroker.open({ ...options, runtime: systemRuntime(dataDir) });
 * ```
 */
export function systemRuntime(dataDir: string): ClusterRuntime {
  return { scheduler: systemScheduler, rng: cryptoRng, stores: segmentStores(dataDir) };
}

/**
 * Resolves after `delayMs` on `scheduler`, or at once when `signal` aborts
 * (never rejects, so a loop can check its own stop condition after waking).
 *
 * @example
 * ```ts
 * await delay(systemScheduler, 200);
 * ```
 */
export function delay(scheduler: Scheduler, delayMs: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const cancel = scheduler.schedule(delayMs, done);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      cancel();
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/**
 * An `AbortSignal` that aborts after `delayMs` on `scheduler` (as
 * `AbortSignal.timeout` does on the host's timers), so virtual time
 * drives it in tests and in the simulator.
 *
 * @example
 * ```ts
 * await topic.waitForOffset(offset, timeoutSignal(scheduler, 1000));
 * ```
 */
export function timeoutSignal(scheduler: Scheduler, delayMs: number): AbortSignal {
  const controller = new AbortController();
  scheduler.schedule(delayMs, () => {
    controller.abort(new DOMException("The operation timed out", "TimeoutError"));
  });
  return controller.signal;
}

/**
 * A random identifier (128 bits from `rng`, as 32 hex digits): a process's
 * incarnation. Seeded in the simulator, so a replayed run sends the same bytes.
 *
 * @example
 * ```ts
 * const incarnation = randomId(cryptoRng);
 * ```
 */
export function randomId(rng: Rng): string {
  let id = "";
  for (let part = 0; part < 4; part++) {
    id += Math.floor(rng.next() * 2 ** 32).toString(16).padStart(8, "0");
  }
  return id;
}
