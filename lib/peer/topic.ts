/**
 * What the request handler needs from a topic, whoever stores it: a single
 * peer's log (`LocalTopic`) or a Raft replica group.
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

/** One topic as the handler sees it. Reads return only committed messages. */
export interface Topic {
  readonly name: string;
  /** Resolves once the batch is durable (committed); rejects with ProtocolError otherwise. */
  publish(messages: string[], producer?: Producer): Promise<PublishResult>;
  /** Committed messages from `fromOffset` (clamped to the first retained), at most `max`. */
  read(fromOffset: number, max: number): Promise<ReadResult>;
  /** First retained offset and the committed end. */
  bounds(): { firstOffset: number; nextOffset: number };
  /** Records a subscriber's cumulative ack (durable soon after, coalesced). */
  ack(subscriber: string, offset: number): void;
  /** Last acknowledged offset of a known subscriber (-1: none acked yet). */
  subscriberPosition(subscriber: string): number | undefined;
  /** Resolves when the committed end passes `offset` or `signal` aborts. */
  waitForOffset(offset: number, signal: AbortSignal): Promise<void>;
}
