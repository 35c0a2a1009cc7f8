/**
 * The commands a topic's log holds, and their byte encoding. One log entry is
 * one command; a publish command carries a whole batch of messages, so offsets
 * (dense, per topic) and log indices (dense, per replica log) differ, and the
 * topic state maps one to the other.
 *
 * Encoding: one tag byte, then UTF-8 JSON. JSON keeps entries readable in a hex
 * dump and costs little next to the fsync every batch pays.
 *
 * @module
 */

/** Appends messages; with a producer id, sequence dedupes retries. */
export interface PublishCommand {
  kind: "publish";
  messages: string[];
  producerId?: string;
  sequence?: number;
}

/** Stores durable subscriber positions (last acknowledged offset, -1 for none). */
export interface AckCommand {
  kind: "ack";
  offsets: Record<string, number>;
}

/** A command of the topic state machine. */
export type TopicCommand = PublishCommand | AckCommand;

const publishTag = 1;
const ackTag = 2;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes a command as entry data.
 *
 * @example
 * ```ts
 * const data = encodeCommand({ kind: "publish", messages: ["hi"] });
 * ```
 */
export function encodeCommand(command: TopicCommand): Uint8Array {
  const [tag, body] = command.kind === "publish"
    ? [publishTag, { m: command.messages, p: command.producerId, s: command.sequence }]
    : [ackTag, command.offsets];
  const json = JSON.stringify(body);
  const out = new Uint8Array(1 + json.length * 3);
  out[0] = tag;
  const { written } = encoder.encodeInto(json, out.subarray(1));
  return out.subarray(0, 1 + written);
}

/** Decodes entry data; an empty entry (a Raft no-op) is `undefined`. */
export function decodeCommand(data: Uint8Array): TopicCommand | undefined {
  if (data.length === 0) return undefined;
  const body = JSON.parse(decoder.decode(data.subarray(1)));
  switch (data[0]) {
    case publishTag:
      return { kind: "publish", messages: body.m, producerId: body.p, sequence: body.s };
    case ackTag:
      return { kind: "ack", offsets: body };
    default:
      throw new RangeError(`Cannot decode topic command as tag ${data[0]} is unknown`);
  }
}
