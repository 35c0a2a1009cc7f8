/**
 * The minimal part of a topic's state machine that the simulator needs to
 * check what clients see: offsets assigned to publishes, the idempotent
 * producer table (a retried sequence is answered with its first offset,
 * never stored twice) and durable subscriber positions. Its rules follow
 * `TopicState` in lib/peer/topic_state.ts: an unknown producer may start at
 * any sequence, `last + 1` is new, a sequence inside the window is a
 * duplicate, anything else is refused; a subscriber's position only moves
 * forward. Unlike `TopicState` it serializes into a snapshot image, which
 * the simulated replicas need for log compaction.
 *
 * Entry payloads are short strings: `<id>` (a plain publish),
 * `<id> <producer> <sequence>` (an idempotent publish) and
 * `<id> @<subscriber> <offset>` (a durable subscriber's acknowledgement).
 * `<id>` is unique per proposal, so a retry is a new entry with the same
 * producer and sequence.
 *
 * @module
 */

/** Sequences remembered per producer; a retry of an older one is refused. */
export const producerSequencesMax = 64;

/** What applying one entry did, the same on every replica of a correct implementation. */
export type TopicOutcome =
  | { kind: "stored"; offset: number; producer?: string; sequence?: number }
  | { kind: "duplicate"; offset: number; producer: string; sequence: number }
  | { kind: "refused"; producer: string; sequence: number }
  | { kind: "acked"; subscriber: string; offset: number }
  | { kind: "none" };

/** A decoded entry payload. */
export type TopicCommand =
  | { kind: "publish"; id: string; producer?: string; sequence?: number }
  | { kind: "ack"; id: string; subscriber: string; offset: number };

/** Bugs the broken variants plant in the state machine (all off by default). */
export interface TopicBugs {
  /** An acknowledgement stores the offset after the acknowledged one. */
  skipSubscriberOffset?: boolean;
}

interface ProducerWindow {
  last: number;
  /** Offsets of the last sequences, oldest first, ending at `last`. */
  offsets: number[];
}

interface TopicImage {
  entryIds: [number, string][];
  messages: string[];
  producers: [string, ProducerWindow][];
  subscribers: [string, number][];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes a command as entry data.
 *
 * @example
 * ```ts
 * encodeTopicCommand({ kind: "publish", id: "u7", producer: "P1", sequence: 3 });
 * ```
 */
export function encodeTopicCommand(command: TopicCommand): Uint8Array {
  if (command.kind === "ack") {
    return encoder.encode(`${command.id} @${command.subscriber} ${command.offset}`);
  }
  if (command.producer === undefined) return encoder.encode(command.id);
  return encoder.encode(`${command.id} ${command.producer} ${command.sequence}`);
}

/**
 * Decodes entry data written by `encodeTopicCommand`; undefined for an empty entry.
 *
 * @example
 * ```ts
 * decodeTopicCommand(new TextEncoder().encode("p4"))?.id; // "p4"
 * ```
 */
export function decodeTopicCommand(data: Uint8Array): TopicCommand | undefined {
  if (data.byteLength === 0) return undefined;
  const [id, target, number] = decoder.decode(data).split(" ");
  if (target === undefined) return { kind: "publish", id };
  if (target.startsWith("@")) {
    return { kind: "ack", id, subscriber: target.slice(1), offset: Number(number) };
  }
  return { kind: "publish", id, producer: target, sequence: Number(number) };
}

/** One line describing an outcome, part of the signature every replica must agree on. */
export function describeOutcome(outcome: TopicOutcome): string {
  switch (outcome.kind) {
    case "stored":
      return `stored@${outcome.offset}`;
    case "duplicate":
      return `duplicate@${outcome.offset}`;
    case "refused":
      return "refused";
    case "acked":
      return `acked@${outcome.offset}`;
    case "none":
      return "";
  }
}

/**
 * The simulated topic of one replica.
 *
 * @example
 * ```ts
 * const topic = new TopicModel();
 * topic.apply(2, { kind: "publish", id: "u1", producer: "P1", sequence: 0 }); // stored at 0
 * topic.apply(3, { kind: "publish", id: "u2", producer: "P1", sequence: 0 }); // duplicate of 0
 * ```
 */
export class TopicModel {
  /** Proposal id applied at each log index (the Raft-level view). */
  entryIds = new Map<number, string>();
  /** Message at each offset: `<producer>.<sequence>`, or the proposal id of a plain publish. */
  messages: string[] = [];
  #producers = new Map<string, ProducerWindow>();
  subscribers = new Map<string, number>();
  readonly #bugs: TopicBugs;

  constructor(bugs: TopicBugs = {}) {
    this.#bugs = bugs;
  }

  get nextOffset(): number {
    return this.messages.length;
  }

  apply(index: number, command: TopicCommand): TopicOutcome {
    this.entryIds.set(index, command.id);
    if (command.kind === "ack") return this.#acknowledge(command.subscriber, command.offset);
    const { producer, sequence } = command;
    if (producer === undefined || sequence === undefined) {
      this.messages.push(command.id);
      return { kind: "stored", offset: this.messages.length - 1 };
    }
    const window = this.#producers.get(producer);
    if (window === undefined || sequence === window.last + 1) {
      const offset = this.messages.length;
      this.messages.push(`${producer}.${sequence}`);
      this.#remember(producer, window, sequence, offset);
      return { kind: "stored", offset, producer, sequence };
    }
    const age = window.last - sequence;
    if (age >= 0 && age < window.offsets.length) {
      const offset = window.offsets[window.offsets.length - 1 - age];
      return { kind: "duplicate", offset, producer, sequence };
    }
    return { kind: "refused", producer, sequence };
  }

  /** Each known producer's last stored sequence and the offset it landed at. */
  producerLasts(): { producer: string; last: number; offset: number }[] {
    return [...this.#producers].map(([producer, window]) => ({
      producer,
      last: window.last,
      offset: window.offsets[window.offsets.length - 1],
    }));
  }

  /** The image kept in a snapshot. */
  serialize(): Uint8Array {
    const image: TopicImage = {
      entryIds: [...this.entryIds],
      messages: this.messages,
      producers: [...this.#producers],
      subscribers: [...this.subscribers],
    };
    return encoder.encode(JSON.stringify(image));
  }

  /**
   * Replaces the state by a snapshot image; `withProducers: false` is the
   * broken variant that forgets the producer table.
   */
  restore(data: Uint8Array, withProducers: boolean): void {
    const image = JSON.parse(decoder.decode(data)) as TopicImage;
    this.entryIds = new Map(image.entryIds);
    this.messages = image.messages;
    this.#producers = withProducers ? new Map(image.producers) : new Map();
    this.subscribers = new Map(image.subscribers);
  }

  #remember(
    producer: string,
    known: ProducerWindow | undefined,
    sequence: number,
    offset: number,
  ): void {
    const window = known ?? { last: sequence - 1, offsets: [] };
    window.last = sequence;
    window.offsets.push(offset);
    if (window.offsets.length > producerSequencesMax) window.offsets.shift();
    this.#producers.set(producer, window);
  }

  #acknowledge(subscriber: string, offset: number): TopicOutcome {
    const stored = this.#bugs.skipSubscriberOffset === true ? offset + 1 : offset;
    const position = Math.max(this.subscribers.get(subscriber) ?? -1, stored);
    this.subscribers.set(subscriber, position);
    return { kind: "acked", subscriber, offset: position };
  }
}
