/**
 * Judges a `pubsub verify` history against the topic's final log and every
 * replica's own copy. It only observes: it never talks to the cluster.
 *
 * The final log is what the leader serves once the faults are healed and
 * every replica is in sync (a linearizable read); the replica copies are
 * read without the leader (each stopped peer's files, or a subscription
 * served by that peer from its own replica). The rules:
 *
 * - **lost**: an acknowledged publish whose message is not at its
 *   acknowledged offset in the final log.
 * - **duplicated**: a message stored at more than one offset (an idempotent
 *   retry stored twice); counted per extra copy.
 * - **reordered**: a publish invoked after another one was acknowledged got
 *   a lower offset (real-time order, which includes each producer's order),
 *   or two acknowledged publishes of one idempotent producer stream got
 *   offsets in the opposite order of their sequences.
 * - **subscriber_gaps**: a durable subscriber was delivered offset `d` when
 *   the highest offset it had ever been delivered (any session) was below
 *   `d - 1`: the offsets in between, after its last acknowledgement, were
 *   skipped. Deliveries at or below that are redeliveries (at-least-once).
 * - **stale_reads**: a fetch that returned fewer than `max` messages yet
 *   ended below an offset acknowledged before it was invoked, or whose
 *   window was not dense from its `from_offset`.
 * - **dirty_reads**: a fetched or delivered message that is not the final
 *   log's message at that offset (uncommitted or truncated data was served).
 * - **unexpected**: a message in the log that no producer sent, or whose
 *   publish was refused for sure (`out_of_order_sequence`: nothing stored).
 * - **diverged**: a replica whose own copy differs from the final log (a
 *   different message, or fewer or more messages: a follower that silently
 *   fell behind shows up here).
 * - **not_converged**: the healed cluster did not bring every replica in
 *   sync within the drain time (liveness after faults).
 *
 * A replica that could not be read is **unverified**: the run fails, but
 * it is no anomaly of the broker.
 *
 * @module
 */

import type { HistoryData, PublishOp } from "./history.ts";

/** Every kind of anomaly the checker reports. */
export const anomalyKinds = [
  "lost",
  "duplicated",
  "reordered",
  "subscriber_gaps",
  "stale_reads",
  "dirty_reads",
  "unexpected",
  "diverged",
  "not_converged",
] as const;

/** One kind of anomaly. */
export type AnomalyKind = typeof anomalyKinds[number];

/** Examples kept per anomaly kind (the counts are always complete). */
export const examplesPerKindMax = 10;

/** One replica's own copy of the topic. */
export interface ReplicaCopy {
  node: number;
  /** How it was read: the stopped peer's files, or a subscription the peer served. */
  source: "files" | "subscription";
  /** Undefined when it could not be read. */
  messages?: string[];
  /** Why it could not be read. */
  error?: string;
}

/** What the run observed after healing and draining. */
export interface FinalState {
  /** The topic's messages by offset, read through the leader; undefined when unreadable. */
  log: string[] | undefined;
  /** Why the log could not be read. */
  logError?: string;
  replicas: ReplicaCopy[];
  /** Whether every replica was in sync within the drain time. */
  converged: boolean;
  /** What the drain saw last when it did not converge. */
  convergence?: string;
}

/** One anomaly, in words. */
export interface Anomaly {
  kind: AnomalyKind;
  detail: string;
}

/** The verdict on a history. */
export interface CheckReport {
  ok: boolean;
  counts: Record<AnomalyKind, number>;
  /** Up to `examplesPerKindMax` anomalies of each kind. */
  examples: Anomaly[];
  publishes: number;
  acknowledged: number;
  /** Publishes refused for sure. */
  failed: number;
  /** Publishes whose outcome is unknown (timed out, connection lost, still pending). */
  unknown: number;
  /** Unknown publishes found stored in the final log. */
  unknownStored: number;
  deliveries: number;
  fetches: number;
  /** Messages in the final log. */
  logLength: number;
  /** Replicas compared with the final log. */
  replicasCompared: number;
  /** Replicas that could not be read (the run fails, yet no anomaly is claimed). */
  unverified: string[];
}

/**
 * Checks `history` against the final state.
 *
 * @example
 * ```ts
 * import { checkHistory } from "./checker.ts";
 *
 * const report = checkHistory(
 *   { publishes: [], deliveries: [], acks: [], fetches: [], faults: [] },
 *   { log: [], replicas: [], converged: true },
 * );
 * report.ok; // true
 * ```
 */
export function checkHistory(history: HistoryData, final: FinalState): CheckReport {
  const found = new Findings();
  const log = final.log ?? [];
  const unverified: string[] = [];
  if (final.log === undefined) {
    unverified.push(`the final log could not be read: ${final.logError ?? "unknown reason"}`);
  }
  if (!final.converged) {
    found.add(
      "not_converged",
      `the healed cluster did not bring every replica in sync: ${final.convergence ?? ""}`.trim(),
    );
  }
  const positions = positionsOf(log);
  const byMessage = new Map(history.publishes.map((op) => [op.message, op]));
  if (final.log !== undefined) {
    checkAcknowledged(history.publishes, log, positions, found);
    checkDuplicates(positions, found);
    checkUnexpected(log, byMessage, found);
    checkDeliveries(history, log, found);
    checkFetches(history, log, found);
  }
  checkRealTimeOrder(history.publishes, found);
  checkStreamOrder(history.publishes, found);
  checkSubscriberGaps(history, found);
  let compared = 0;
  for (const replica of final.replicas) {
    if (replica.messages === undefined) {
      unverified.push(`node ${replica.node}: ${replica.error ?? "not read"}`);
      continue;
    }
    if (final.log === undefined) continue;
    compared++;
    const difference = copyDifference(log, replica.messages);
    if (difference !== undefined) {
      found.add(
        "diverged",
        `node ${replica.node}'s own copy (${replica.source}) ${difference}`,
      );
    }
  }
  const outcome = (op: PublishOp) => op.outcome ?? "unknown";
  const unknownOps = history.publishes.filter((op) => outcome(op) === "unknown");
  return {
    ok: found.total() === 0 && unverified.length === 0,
    counts: found.counts,
    examples: found.examples,
    publishes: history.publishes.length,
    acknowledged: history.publishes.filter((op) => outcome(op) === "ok").length,
    failed: history.publishes.filter((op) => outcome(op) === "failed").length,
    unknown: unknownOps.length,
    unknownStored: unknownOps.filter((op) => positions.has(op.message)).length,
    deliveries: history.deliveries.length,
    fetches: history.fetches.length,
    logLength: log.length,
    replicasCompared: compared,
    unverified,
  };
}

class Findings {
  readonly counts = Object.fromEntries(anomalyKinds.map((kind) => [kind, 0])) as Record<
    AnomalyKind,
    number
  >;
  readonly examples: Anomaly[] = [];

  add(kind: AnomalyKind, detail: string, count = 1): void {
    this.counts[kind] += count;
    if (this.examples.filter((example) => example.kind === kind).length < examplesPerKindMax) {
      this.examples.push({ kind, detail });
    }
  }

  total(): number {
    return Object.values(this.counts).reduce((sum, count) => sum + count, 0);
  }
}

/** Every offset each message is stored at. */
function positionsOf(log: readonly string[]): Map<string, number[]> {
  const positions = new Map<string, number[]>();
  log.forEach((message, offset) => {
    const list = positions.get(message);
    if (list === undefined) positions.set(message, [offset]);
    else list.push(offset);
  });
  return positions;
}

function checkAcknowledged(
  publishes: readonly PublishOp[],
  log: readonly string[],
  positions: Map<string, number[]>,
  found: Findings,
): void {
  for (const op of publishes) {
    if (op.outcome !== "ok" || op.offset === undefined) continue;
    if (log[op.offset] === op.message) continue;
    const elsewhere = positions.get(op.message);
    found.add(
      "lost",
      `${describe(op)} was acknowledged at offset ${op.offset}, which ` +
        (op.offset >= log.length
          ? `is beyond the log's end (${log.length})`
          : `holds ${quote(log[op.offset])}`) +
        (elsewhere === undefined ? "; it is nowhere in the log" : `; it is at ${elsewhere}`),
    );
  }
}

function checkDuplicates(positions: Map<string, number[]>, found: Findings): void {
  for (const [message, offsets] of positions) {
    if (offsets.length < 2) continue;
    found.add(
      "duplicated",
      `${quote(message)} is stored ${offsets.length} times, at offsets ${offsets.join(", ")}`,
      offsets.length - 1,
    );
  }
}

function checkUnexpected(
  log: readonly string[],
  byMessage: Map<string, PublishOp>,
  found: Findings,
): void {
  log.forEach((message, offset) => {
    const op = byMessage.get(message);
    if (op === undefined) {
      found.add("unexpected", `offset ${offset} holds ${quote(message)}, which no producer sent`);
    } else if (op.outcome === "failed") {
      found.add(
        "unexpected",
        `offset ${offset} holds ${describe(op)}, whose publish was refused (${op.error ?? ""})`,
      );
    }
  });
}

/**
 * Publishes sorted by completion, swept in invocation order: each must get
 * an offset above every offset acknowledged before it was invoked.
 */
function checkRealTimeOrder(publishes: readonly PublishOp[], found: Findings): void {
  const acknowledged = publishes
    .filter((op) => op.outcome === "ok" && op.offset !== undefined)
    .sort((a, b) => a.completedMs! - b.completedMs!);
  const invoked = [...acknowledged].sort((a, b) => a.invokedMs - b.invokedMs);
  let next = 0;
  let highest: PublishOp | undefined;
  for (const op of invoked) {
    while (next < acknowledged.length && acknowledged[next].completedMs! < op.invokedMs) {
      const done = acknowledged[next++];
      if (highest === undefined || done.offset! > highest.offset!) highest = done;
    }
    if (highest !== undefined && op.offset! < highest.offset!) {
      const same = highest.producer === op.producer ? "the same producer's " : "";
      found.add(
        "reordered",
        `${describe(op)} got offset ${op.offset} although ${same}${
          describe(highest)
        } was acknowledged at offset ${highest.offset} before it was invoked`,
      );
    }
  }
}

/**
 * Within one idempotent producer stream, sequence order (= invocation
 * order) is offset order. A session's publishes share one stream until its
 * first failure; a publish invoked around that failure may already be on
 * the next stream, so only publishes acknowledged before the session's
 * first failure completed are compared.
 */
function checkStreamOrder(publishes: readonly PublishOp[], found: Findings): void {
  const firstFailureMs = new Map<string, number>();
  for (const op of publishes) {
    if (op.outcome === "ok" || op.completedMs === undefined) continue;
    const key = `${op.producer}/${op.session}`;
    firstFailureMs.set(key, Math.min(firstFailureMs.get(key) ?? Infinity, op.completedMs));
  }
  const streams = new Map<string, PublishOp[]>();
  for (const op of publishes) {
    if (op.outcome !== "ok" || op.offset === undefined) continue;
    const key = `${op.producer}/${op.session}`;
    if (op.completedMs! >= (firstFailureMs.get(key) ?? Infinity)) continue;
    const list = streams.get(key);
    if (list === undefined) streams.set(key, [op]);
    else list.push(op);
  }
  for (const list of streams.values()) {
    list.sort((a, b) => a.invokedMs - b.invokedMs);
    for (let index = 1; index < list.length; index++) {
      const [before, after] = [list[index - 1], list[index]];
      // Overlapping ones only: the real-time rule already judged the others.
      if (before.completedMs! < after.invokedMs || after.offset! > before.offset!) continue;
      found.add(
        "reordered",
        `${describe(after)} was sent after ${describe(before)} on one producer stream, ` +
          `yet got offset ${after.offset} below ${before.offset}`,
      );
    }
  }
}

function checkSubscriberGaps(history: HistoryData, found: Findings): void {
  const highest = new Map<number, number>();
  const deliveries = [...history.deliveries].sort((a, b) => a.atMs - b.atMs);
  for (const delivery of deliveries) {
    const previous = highest.get(delivery.subscriber) ?? -1;
    if (delivery.offset > previous + 1) {
      const lastAck = lastConfirmedAck(history, delivery.subscriber, delivery.atMs);
      const skipped = delivery.offset - 1 === previous + 1
        ? `offset ${previous + 1} was skipped`
        : `offsets ${previous + 1}-${delivery.offset - 1} were skipped`;
      found.add(
        "subscriber_gaps",
        `subscriber ${delivery.subscriber} (session ${delivery.session}) was delivered offset ${delivery.offset} ` +
          `after offset ${previous} (last confirmed ack ${lastAck}): ${skipped}`,
      );
    }
    highest.set(delivery.subscriber, Math.max(previous, delivery.offset));
  }
}

function lastConfirmedAck(history: HistoryData, subscriber: number, beforeMs: number): number {
  let last = -1;
  for (const ack of history.acks) {
    if (ack.subscriber === subscriber && ack.ok && ack.completedMs <= beforeMs) {
      last = Math.max(last, ack.offset);
    }
  }
  return last;
}

function checkDeliveries(history: HistoryData, log: readonly string[], found: Findings): void {
  for (const delivery of history.deliveries) {
    if (log[delivery.offset] === delivery.message) continue;
    found.add(
      "dirty_reads",
      `subscriber ${delivery.subscriber} was delivered ${
        quote(delivery.message)
      } at offset ${delivery.offset}, ` +
        `where the log holds ${
          delivery.offset < log.length ? quote(log[delivery.offset]) : "nothing"
        }`,
    );
  }
}

function checkFetches(history: HistoryData, log: readonly string[], found: Findings): void {
  for (const fetch of history.fetches) {
    if (fetch.messages === undefined || fetch.nextOffset === undefined) continue;
    const window = `fetch from ${fetch.fromOffset} (max ${fetch.max}) at ${
      fetch.invokedMs.toFixed(0)
    } ms`;
    const dense = fetch.messages.every((item, index) => item.offset === fetch.fromOffset + index) &&
      fetch.nextOffset === fetch.fromOffset + fetch.messages.length;
    if (!dense) {
      found.add(
        "stale_reads",
        `${window} returned offsets ${
          fetch.messages.map((item) => item.offset).join(",")
        } and next_offset ${fetch.nextOffset}: not a dense window`,
      );
    } else if (
      fetch.messages.length < fetch.max && fetch.nextOffset <= fetch.acknowledgedBefore
    ) {
      found.add(
        "stale_reads",
        `${window} ended at next_offset ${fetch.nextOffset} although offset ${fetch.acknowledgedBefore} ` +
          `was acknowledged before it was invoked`,
      );
    }
    for (const item of fetch.messages) {
      if (log[item.offset] === item.message) continue;
      found.add(
        "dirty_reads",
        `${window} returned ${quote(item.message)} at offset ${item.offset}, where the log holds ${
          item.offset < log.length ? quote(log[item.offset]) : "nothing"
        }`,
      );
      break;
    }
  }
}

/**
 * Where a replica's copy differs from the final log, in words; undefined when equal.
 *
 * @example
 * ```ts
 * import { copyDifference } from "./checker.ts";
 *
 * copyDifference(["a", "b"], ["a"]); // "holds 1 messages, 1 fewer than the log (2): it fell behind"
 * ```
 */
export function copyDifference(
  log: readonly string[],
  copy: readonly string[],
): string | undefined {
  const shared = Math.min(log.length, copy.length);
  for (let offset = 0; offset < shared; offset++) {
    if (log[offset] !== copy[offset]) {
      return `holds ${quote(copy[offset])} at offset ${offset} where the log holds ${
        quote(log[offset])
      } (${copy.length} messages, log ${log.length})`;
    }
  }
  if (copy.length < log.length) {
    return `holds ${copy.length} messages, ${
      log.length - copy.length
    } fewer than the log (${log.length}): it fell behind`;
  }
  if (copy.length > log.length) {
    return `holds ${copy.length} messages, ${
      copy.length - log.length
    } more than the log (${log.length})`;
  }
  return undefined;
}

function describe(op: PublishOp): string {
  return `${quote(op.message)} (producer ${op.producer})`;
}

function quote(message: string): string {
  return JSON.stringify(message.length > 60 ? `${message.slice(0, 57)}...` : message);
}
