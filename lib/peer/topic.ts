/**
 * What the request handler needs from a topic, whoever stores it: a single
 * peer's one-voter Raft group (standalone) or a replicated Raft group.
 *
 * @module
 */

import type { OffsetMessage } from "../wire/responses.ts";

/** The optional idempotent-producer identity of a publish. */
export interface Producer {
  producerId: string;
  sequence: number;
}

/** Where a publish landed. */
export interface PublishResult {
  firstOffset: number;
  count: number;
  duplicate: boolean;
}

/** Messages read from a topic and the offset to read next. */
export interface ReadResult {
  messages: OffsetMessage[];
  nextOffset: number;
}

/**
 * What a subscription reads: committed messages only (they are never
 * truncated later), from the local replica or streamed from the leader.
 */
export interface MessageSource {
  readonly name: string;
  /** Committed messages from `fromOffset` (clamped to the first retained), at most `max`. */
  readCommitted(fromOffset: number, max: number): Promise<ReadResult>;
  /** Resolves when the committed end passes `offset` or `signal` aborts. */
  waitForOffset(offset: number, signal: AbortSignal): Promise<void>;
}

/** A topic this peer leads: every operation is served here. */
export interface Topic extends MessageSource {
  /** Resolves once the batch is committed (durable on a majority); rejects with ProtocolError otherwise. */
  publish(messages: string[], producer?: Producer): Promise<PublishResult>;
  /** Linearizable read: every publish acknowledged before the call is visible. */
  read(fromOffset: number, max: number): Promise<ReadResult>;
  /** First retained offset and the committed end, linearizable like `read`. */
  bounds(): Promise<{ firstOffset: number; nextOffset: number }>;
  /** Records a subscriber's cumulative ack (durable soon after, coalesced). */
  ack(subscriber: string, offset: number): void;
  /** Last acknowledged offset of a known subscriber (-1: none acked yet). */
  subscriberPosition(subscriber: string): number | undefined;
}
