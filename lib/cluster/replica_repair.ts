/**
 * Opening a replica's log without serving damage: a log that fails its
 * checks at open is quarantined (moved aside for inspection, never served)
 * and the replica is rebuilt empty, recovering, from its group's healthy
 * replicas through normal Raft catch-up.
 *
 * Damage found at open:
 *
 * - the store refuses the files (`CorruptLogError`: a CRC mismatch followed
 *   by valid records, a damaged segment before the last, a gap between
 *   segments, an unreadable hard state or snapshot);
 * - the log lost its tail: it ends before the index that was durable when
 *   the peer last stopped cleanly (the clean-shutdown record,
 *   `writeClosedLogs`). The store
 *   cuts a torn final record at open, which is right after a crash (that
 *   record was never acknowledged) but hides a file that lost synced,
 *   acknowledged records; the record tells the two apart after a clean stop.
 *
 * A rebuilt replica keeps a `recovering` file holding the term of the lost
 * hard state (`RaftOptions.recoveringTerm`): until the Raft core reports it
 * caught up, it neither votes nor campaigns, even across crashes. The
 * rebuild is prepared in `<dir>.rebuild` and swapped in by renames, so a
 * crash at any point leaves either the damaged replica (damage found again
 * at the next open) or the complete rebuilt one, never an empty replica
 * without its flag.
 *
 * @module
 */

import {
  ignoreNotFound,
  parentDirectory,
  readFileAtomic,
  syncDirectory,
  writeFileAtomic,
} from "../storage/atomic_file.ts";
import { CorruptLogError, SegmentLogStore } from "../storage/segment_log_store.ts";

/** Quarantined replica directories kept per peer; older ones are deleted. */
export const quarantinedReplicasMax = 8;
/** The flag file of a replica that rebuilds a lost log; it holds the lost term. */
export const recoveringFileName = "recovering";
/** The clean-shutdown record in the data directory. */
export const closedLogsFileName = "closed_logs.json";
/** Records in the clean-shutdown record (one per replica of a peer at most). */
export const closedLogsMax = 100_000;

const rebuildSuffix = ".rebuild";
const hardStateFileName = "hardstate";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What `openReplicaLog` found and did. */
export interface OpenedReplicaLog {
  store: SegmentLogStore;
  /** Set while the replica rebuilds a lost log: pass as `RaftOptions.recoveringTerm`. */
  recoveringTerm: number | undefined;
  /** Set when damage was found now: where the damaged files went, and why. */
  quarantined?: { path: string; reason: string };
}

/** Options of {@linkcode openReplicaLog}. */
export interface OpenReplicaLogOptions {
  /** Where damaged replicas go: `<dataDir>/quarantine`. */
  quarantineDir: string;
  /** Names the quarantined copy: `<label>.<milliseconds since 1970>`, e.g. `events.3.1718...`. */
  label: string;
  /** Last index durable when the peer last stopped cleanly (from `takeClosedLogs`). Default: none. */
  closedIndex?: number;
  /** The clock for the quarantine name. Default `Date.now`. */
  now?: () => number;
  /** Segment size of the log (a topic's retention picks it). Default: the store's, 64 MiB. */
  segmentBytes?: number;
}

/**
 * Opens the log in `directory`, quarantining and rebuilding it when it is
 * damaged (see the module documentation). Throws what the disk throws
 * otherwise (permissions, a full disk): the caller retries later.
 *
 * @example
 * ```ts
 * const opened = await openReplicaLog(`${dataDir}/topics/events.3`, {
 *   quarantineDir: `${dataDir}/quarantine`,
 *   label: "events.3",
 * });
 * if (opened.quarantined) console.warn(`Quarantined ${opened.quarantined.path}`);
 * ```
 */
export async function openReplicaLog(
  directory: string,
  options: OpenReplicaLogOptions,
): Promise<OpenedReplicaLog> {
  await finishRebuild(directory);
  const recoveringTerm = await readRecoveringTerm(directory);
  let store: SegmentLogStore | undefined;
  let reason: string;
  let lostTerm: number | undefined;
  try {
    store = await SegmentLogStore.open(directory, { segmentBytes: options.segmentBytes });
  } catch (error) {
    if (!(error instanceof CorruptLogError)) throw error;
    reason = error.message;
  }
  if (store !== undefined) {
    const lostTail = lostTailReason(store, options.closedIndex);
    if (lostTail === undefined) return { store, recoveringTerm };
    reason = lostTail;
    lostTerm = store.hardState().term;
    await store.close();
  }
  lostTerm ??= await readLostTerm(directory, options.quarantineDir);
  // The larger term when the replica was already recovering: its first lost
  // incarnation may have voted in a later term than the rebuilt one reached.
  const term = Math.max(lostTerm ?? 0, recoveringTerm ?? 0);
  const path = await quarantine(directory, term, options);
  return {
    store: await SegmentLogStore.open(directory, { segmentBytes: options.segmentBytes }),
    recoveringTerm: term,
    quarantined: { path, reason: reason! },
  };
}

/**
 * Why the opened log lost entries it held durably, or undefined when nothing
 * is known to be missing. (The hard state's commit index cannot tell: it is
 * written before the records of the same flush, so the store caps it at the
 * log after a crash that left it ahead.)
 */
function lostTailReason(
  store: SegmentLogStore,
  closedIndex: number | undefined,
): string | undefined {
  const lastIndex = store.lastIndex();
  if (closedIndex !== undefined && lastIndex < closedIndex) {
    return `The log ends at index ${lastIndex} although index ${closedIndex} was durable when the peer last stopped`;
  }
  return undefined;
}

/**
 * Prepares an empty replica flagged recovering at `term` in
 * `<dir>.rebuild` (replacing a stale one) and returns its path; the caller
 * renames it over `directory`, and `openReplicaLog` completes that move
 * after a crash.
 *
 * @example
 * ```ts
 * const rebuild = await prepareRebuild(`${dataDir}/topics/events.3`, 7);
 * ```
 */
export async function prepareRebuild(directory: string, term: number): Promise<string> {
  const rebuild = directory + rebuildSuffix;
  await Deno.remove(rebuild, { recursive: true }).catch(ignoreNotFound);
  await Deno.mkdir(rebuild, { recursive: true });
  await writeFileAtomic(`${rebuild}/${recoveringFileName}`, encoder.encode(`${term}\n`));
  return rebuild;
}

/**
 * Builds the empty replica in `<dir>.rebuild` (with its flag), moves the
 * damaged one to the quarantine and the new one in its place. Returns the
 * quarantine path.
 */
async function quarantine(
  directory: string,
  term: number,
  options: OpenReplicaLogOptions,
): Promise<string> {
  const rebuild = await prepareRebuild(directory, term);
  await Deno.mkdir(options.quarantineDir, { recursive: true });
  const path = await freePath(`${options.quarantineDir}/${options.label}`, options.now ?? Date.now);
  await Deno.rename(directory, path);
  await Deno.rename(rebuild, directory);
  await syncDirectory(options.quarantineDir);
  await syncDirectory(parentDirectory(directory));
  await pruneQuarantine(options.quarantineDir);
  return path;
}

/** `<prefix>.<now>`, one millisecond later while that name is taken. */
async function freePath(prefix: string, now: () => number): Promise<string> {
  for (let stamp = now();; stamp++) {
    const path = `${prefix}.${stamp}`;
    try {
      await Deno.lstat(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return path;
      throw error;
    }
  }
}

/** Deletes all but the `quarantinedReplicasMax` newest quarantined replicas. */
async function pruneQuarantine(quarantineDir: string): Promise<void> {
  const entries: { name: string; stamp: number }[] = [];
  for await (const entry of Deno.readDir(quarantineDir)) {
    const stamp = Number(entry.name.slice(entry.name.lastIndexOf(".") + 1));
    if (entry.isDirectory && Number.isSafeInteger(stamp)) entries.push({ name: entry.name, stamp });
  }
  entries.sort((a, b) => b.stamp - a.stamp);
  for (const entry of entries.slice(quarantinedReplicasMax)) {
    await Deno.remove(`${quarantineDir}/${entry.name}`, { recursive: true }).catch(ignoreNotFound);
  }
}

/**
 * Completes a rebuild a crash interrupted: the rebuilt replica is moved in
 * when the damaged one already left; otherwise the half-built one goes (the
 * damage will be found again).
 */
async function finishRebuild(directory: string): Promise<void> {
  const rebuild = directory + rebuildSuffix;
  if (!exists(rebuild)) return;
  if (exists(directory)) {
    await Deno.remove(rebuild, { recursive: true });
  } else if (exists(`${rebuild}/${recoveringFileName}`)) {
    await Deno.rename(rebuild, directory);
    await syncDirectory(parentDirectory(directory));
  } else {
    await Deno.remove(rebuild, { recursive: true });
  }
}

/** The term in the damaged replica's hard state, read on its own (the rest may be unreadable). */
async function readLostTerm(
  directory: string,
  quarantineDir: string,
): Promise<number | undefined> {
  const bytes = await readFileAtomic(`${directory}/${hardStateFileName}`).catch(() => undefined);
  if (bytes === undefined) return undefined;
  // The store decodes and checks its own file: open a scratch store holding only a copy of it.
  await Deno.mkdir(quarantineDir, { recursive: true });
  const scratch = await Deno.makeTempDir({ dir: quarantineDir, prefix: "hardstate-" });
  try {
    await Deno.writeFile(`${scratch}/${hardStateFileName}`, bytes);
    const store = await SegmentLogStore.open(scratch);
    const term = store.hardState().term;
    await store.close();
    return term;
  } catch {
    return undefined;
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
}

async function readRecoveringTerm(directory: string): Promise<number | undefined> {
  const bytes = await readFileAtomic(`${directory}/${recoveringFileName}`);
  if (bytes === undefined) return undefined;
  const term = Number(decoder.decode(bytes).trim());
  // An unreadable flag still means "recovering": after the highest term this
  // replica can rule out is none at all.
  return Number.isSafeInteger(term) && term >= 0 ? term : 0;
}

/**
 * Clears the recovering flag of the replica in `directory` once its Raft
 * core reported it caught up (after the Ready's entries are durable).
 *
 * @example
 * ```ts
 * await clearRecovering(`${dataDir}/topics/events.3`);
 * ```
 */
export async function clearRecovering(directory: string): Promise<void> {
  await Deno.remove(`${directory}/${recoveringFileName}`).catch(ignoreNotFound);
  await syncDirectory(directory);
}

/**
 * Records, at a clean shutdown, the last durable index of every log of the
 * peer, keyed by its directory relative to `dataDir` ("meta",
 * "topics/events.3"): the next start finds a log that lost synced entries
 * while the peer was stopped (see `openReplicaLog`).
 *
 * @example
 * ```ts
 * await writeClosedLogs("./data/1", new Map([["meta", 120], ["topics/events.3", 57]]));
 * ```
 */
export async function writeClosedLogs(dataDir: string, logs: Map<string, number>): Promise<void> {
  const record = Object.fromEntries([...logs].slice(0, closedLogsMax));
  await writeFileAtomic(
    `${dataDir}/${closedLogsFileName}`,
    encoder.encode(JSON.stringify({ version: 1, logs: record })),
  );
}

/**
 * Reads and deletes the clean-shutdown record (durably, before any log is
 * opened and written to: a record left behind by a later crash would
 * compare logs with a past they may legitimately have left). Empty when the
 * peer did not stop cleanly or the record is unreadable.
 *
 * @example
 * ```ts
 * const closed = await takeClosedLogs("./data/1");
 * closed.get("meta"); // 120, or undefined after a crash
 * ```
 */
export async function takeClosedLogs(dataDir: string): Promise<Map<string, number>> {
  const path = `${dataDir}/${closedLogsFileName}`;
  const bytes = await readFileAtomic(path);
  if (bytes === undefined) return new Map();
  await Deno.remove(path);
  await syncDirectory(dataDir);
  const logs = new Map<string, number>();
  try {
    const parsed = JSON.parse(decoder.decode(bytes)) as { logs?: Record<string, unknown> };
    for (const [key, value] of Object.entries(parsed.logs ?? {})) {
      if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) {
        logs.set(key, value);
      }
      if (logs.size >= closedLogsMax) break;
    }
  } catch {
    // A damaged record proves nothing: the logs open with the usual checks only.
  }
  return logs;
}

/** Synchronous: a metadata call on every open, cheaper than a thread hop. */
function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
