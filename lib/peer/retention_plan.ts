/**
 * The retention decision of a topic's leader, as a pure function: from the
 * leader's own segments and the topic state's offset map, the new first
 * retained offset. Only whole segments go, oldest first, and a segment goes
 * only when every message in it is expired: older than `max_age_ms` (by the
 * time the segment was last written), or enough newer data remains without
 * it (at least `max_bytes` bytes, or at least `max_messages` messages). The
 * last (active) segment always stays. The leader proposes the answer as a
 * `retain` command, so every replica agrees on it.
 *
 * @module
 */

import type { Retention } from "../wire/retention.ts";

/** One segment file of a replica log, as retention sees it. */
export interface SegmentSummary {
  firstIndex: number;
  lastIndex: number;
  bytes: number;
  /** Wall-clock time of the segment's last write. */
  lastWriteMs: number;
}

/** What retention needs of the topic state. */
export interface OffsetMap {
  /** First retained offset now. */
  readonly firstOffset: number;
  /** Offset the next message gets. */
  readonly nextOffset: number;
  /** The first offset stored at log index `index` or later (`nextOffset` when none is). */
  firstOffsetFrom(index: number): number;
}

/**
 * The first offset to retain: `offsets.firstOffset` when nothing expired,
 * else the first offset after the last expired segment.
 *
 * @example
 * ```ts
 * const first = retainedFirstOffset(store.segments(), { max_messages: 1000 }, state, Date.now());
 * if (first > state.firstOffset) propose({ kind: "retain", firstOffset: first });
 * ```
 */
export function retainedFirstOffset(
  segments: readonly SegmentSummary[],
  retention: Retention,
  offsets: OffsetMap,
  nowMs: number,
): number {
  let remainingBytes = 0;
  for (const segment of segments) remainingBytes += segment.bytes;
  let first = offsets.firstOffset;
  for (let position = 0; position < segments.length - 1; position++) {
    const segment = segments[position];
    remainingBytes -= segment.bytes;
    const end = offsets.firstOffsetFrom(segment.lastIndex + 1);
    const remainingMessages = offsets.nextOffset - end;
    const expired = olderThan(segment, retention.max_age_ms, nowMs) ||
      atLeast(remainingBytes, retention.max_bytes) ||
      atLeast(remainingMessages, retention.max_messages);
    if (!expired) break;
    first = Math.max(first, end);
  }
  return first;
}

function olderThan(segment: SegmentSummary, maxAgeMs: number | undefined, nowMs: number): boolean {
  return maxAgeMs !== undefined && nowMs - segment.lastWriteMs > maxAgeMs;
}

function atLeast(remaining: number, limit: number | undefined): boolean {
  return limit !== undefined && remaining >= limit;
}
