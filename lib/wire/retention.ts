/**
 * A topic's retention policy as the protocol carries it (`create_topic`,
 * `alter_topic`, `describe_topic`, the metadata log): any subset of a maximum
 * age, a maximum size and a maximum message count; a missing limit is
 * unlimited. Validation here turns untrusted JSON into a `Retention` or a
 * `bad_request`, and the helpers derive what storage needs from it.
 *
 * @module
 */

import { describeValue, ProtocolError } from "./errors.ts";

/** A topic's retention limits; an absent field is unlimited. */
export interface Retention {
  /** Messages older than this (by the time their segment was last written) may be deleted. */
  max_age_ms?: number;
  /** Old segments are deleted while the rest still holds at least this many bytes. */
  max_bytes?: number;
  /** Old segments are deleted while the rest still holds at least this many messages. */
  max_messages?: number;
  /**
   * Size of the topic's segment files, the unit retention deletes (default:
   * a quarter of `max_bytes` within 64 KiB - 64 MiB, else 64 MiB). Not a
   * limit: a topic with only this keeps everything.
   */
  segment_bytes?: number;
}

/** A change of retention (`alter_topic`): a number sets a limit, `null` removes it, absent keeps it. */
export type RetentionPatch = { [Key in keyof Retention]?: number | null };

/** The names of the retention limits, in the order answers list them. */
export const retentionKeys = ["max_age_ms", "max_bytes", "max_messages", "segment_bytes"] as const;
/** The keys that limit what a topic keeps. */
const limitKeys = ["max_age_ms", "max_bytes", "max_messages"] as const;

/** Smallest segment size retention picks (see `retentionSegmentBytes`). */
export const retentionSegmentBytesMin = 64 * 1024;
/** Largest segment size retention picks; also the default segment size without `max_bytes`. */
export const retentionSegmentBytesMax = 64 * 1024 * 1024;
/** Smallest explicit `segment_bytes`. */
export const segmentBytesOptionMin = 4096;

function fail(message: string): never {
  throw new ProtocolError("bad_request", message);
}

function fieldsOf(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(`Field '${field}' must be an object with any of ${retentionKeys.join(", ")}`);
  }
  const fields = value as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!(retentionKeys as readonly string[]).includes(key)) {
      fail(
        `Field '${field}' has an unknown limit '${describeValue(key)}'; use ${
          retentionKeys.join(", ")
        }`,
      );
    }
  }
  return fields;
}

function limit(fields: Record<string, unknown>, field: string, key: string): number | undefined {
  const value = fields[key];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    fail(`Field '${field}.${key}' must be a positive integer`);
  }
  if (
    key === "segment_bytes" && (value < segmentBytesOptionMin || value > retentionSegmentBytesMax)
  ) {
    fail(
      `Field '${field}.${key}' must be between ${segmentBytesOptionMin} and ${retentionSegmentBytesMax}`,
    );
  }
  return value;
}

/**
 * Validates a retention object (`create_topic`); throws `bad_request`.
 *
 * @example
 * ```ts
 * validateRetention({ max_bytes: 1048576 }); // { max_bytes: 1048576 }
 * ```
 */
export function validateRetention(value: unknown, field = "retention"): Retention {
  const fields = fieldsOf(value, field);
  const retention: Retention = {};
  for (const key of retentionKeys) {
    const checked = limit(fields, field, key);
    if (checked !== undefined) retention[key] = checked;
  }
  return retention;
}

/**
 * Validates a retention change (`alter_topic`): like `validateRetention`,
 * and `null` removes a limit. Throws `bad_request`, also for an empty change.
 *
 * @example
 * ```ts
 * validateRetentionPatch({ max_age_ms: null, max_messages: 1000 });
 * ```
 */
export function validateRetentionPatch(value: unknown, field = "retention"): RetentionPatch {
  const fields = fieldsOf(value, field);
  const patch: RetentionPatch = {};
  for (const key of retentionKeys) {
    if (fields[key] === null) patch[key] = null;
    else {
      const checked = limit(fields, field, key);
      if (checked !== undefined) patch[key] = checked;
    }
  }
  if (Object.keys(patch).length === 0) {
    fail(`Field '${field}' must change at least one of ${retentionKeys.join(", ")}`);
  }
  return patch;
}

/**
 * The retention after `patch`: set limits replaced, `null` ones removed.
 *
 * @example
 * ```ts
 * patchRetention({ max_bytes: 10, max_messages: 5 }, { max_messages: null }); // { max_bytes: 10 }
 * ```
 */
export function patchRetention(retention: Retention, patch: RetentionPatch): Retention {
  const result: Retention = {};
  for (const key of retentionKeys) {
    const value = key in patch ? patch[key] : retention[key];
    if (value !== undefined && value !== null) result[key] = value;
  }
  return result;
}

/**
 * `explicit` with its missing limits taken from `defaults` (the peer flags).
 *
 * @example
 * ```ts
 * withDefaults({ max_bytes: 10 }, { max_age_ms: 60000 }); // { max_age_ms: 60000, max_bytes: 10 }
 * ```
 */
export function withDefaults(explicit: Retention | undefined, defaults: Retention): Retention {
  const result: Retention = {};
  for (const key of retentionKeys) {
    const value = explicit?.[key] ?? defaults[key];
    if (value !== undefined) result[key] = value;
  }
  return result;
}

/**
 * True when the policy limits anything (a topic without limits keeps everything).
 *
 * @example
 * ```ts
 * hasLimits({}); // false
 * ```
 */
export function hasLimits(retention: Retention | undefined): boolean {
  return retention !== undefined && limitKeys.some((key) => retention[key] !== undefined);
}

/**
 * The segment size of a topic's replica logs: `segment_bytes` when set,
 * else a quarter of `max_bytes` within [64 KiB, 64 MiB], so whole-segment
 * deletion keeps the files of a replica under twice `max_bytes`;
 * `undefined` (the store's default, 64 MiB) without either.
 *
 * @example
 * ```ts
 * retentionSegmentBytes({ max_bytes: 4 * 1024 * 1024 }); // 1048576
 * ```
 */
export function retentionSegmentBytes(retention: Retention | undefined): number | undefined {
  if (retention?.segment_bytes !== undefined) return retention.segment_bytes;
  const maxBytes = retention?.max_bytes;
  if (maxBytes === undefined) return undefined;
  return Math.min(
    retentionSegmentBytesMax,
    Math.max(retentionSegmentBytesMin, Math.floor(maxBytes / 4)),
  );
}
