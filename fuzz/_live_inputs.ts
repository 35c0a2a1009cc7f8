/**
 * Generators of what the live fuzz sends over TCP: streams of frames from
 * every family (client requests with wrong fields, every `peer_*` action in
 * the shapes real peers send and mutated, handshake attempts, garbage
 * payloads, deep and huge JSON) followed by a tail that ends the connection
 * in a hostile way (a huge length prefix, a truncated frame, random bytes, a
 * failed proof).
 *
 * @module
 */

import fc from "fast-check";
import { encodeRaftMessage } from "../lib/cluster/raft_codec.ts";
import {
  forwardRequest,
  joinRequest,
  metaRequest,
  raftFrame,
  subscribeStartRequest,
  waitRequest,
} from "../lib/cluster/peer_rpc.ts";
import {
  addressArbitrary,
  deepArray,
  deepObject,
  forwardableArbitrary,
  heartbeatArbitrary,
  hostileValue,
  hugeArray,
  incarnationArbitrary,
  invalidRequestArbitrary,
  jsonText,
  metaCommandArbitrary,
  mutatedArbitrary,
  nestingDepths,
  raftMessageArbitrary,
  subscribeStartArbitrary,
  validRequestArbitrary,
  waitArbitrary,
} from "./arbitraries.ts";
import type { Segment } from "./_live_oracle.ts";

/** The topic the well-behaved client publishes to; strangers aim at it. */
export const watchTopic = "fuzz-watch";

/** A segment and the fuzz target it counts for. */
export interface LiveSegment extends Segment {
  target: string;
}

type Fields = Record<string, unknown>;

const encoder = new TextEncoder();

/** A frame: 4-byte big-endian length, then the payload. */
export function frame(payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(4 + payload.length);
  new DataView(bytes.buffer).setUint32(0, payload.length);
  bytes.set(payload, 4);
  return bytes;
}

function jsonFrame(target: string, value: unknown): LiveSegment {
  return { target, bytes: frame(encoder.encode(jsonText(value))) };
}

// ---- peer actions from a stranger ------------------------------------------------------

const strangerNode = fc.integer({ min: 1, max: 9 });

/** Every peer action in the shape a real peer sends it, aimed at the watched topic where it can. */
function peerMessage(frameBytesMax: number): fc.Arbitrary<Fields> {
  const raft = fc.tuple(
    strangerNode,
    incarnationArbitrary,
    fc.constantFrom("meta", `t:${watchTopic}`),
  )
    .chain(([from, incarnation, group]) =>
      fc.array(raftMessageArbitrary(fc.constant(from)), { minLength: 1, maxLength: 3 }).map((
        messages,
      ) =>
        raftFrame(from, incarnation, messages.map((message) => [group, encodeRaftMessage(message)]))
      )
    );
  const meta = fc.oneof(
    metaCommandArbitrary,
    fc.constantFrom(
      { op: "delete_topic", name: watchTopic },
      { op: "remove_member", id: 2 },
      { op: "set_replicas", name: watchTopic, replicas: [9] },
    ),
  ).map((command) => metaRequest({ kind: "command", command: command as never }));
  const forward = forwardableArbitrary.map(({ expected }) =>
    forwardRequest({ hops: 0, request: expected })
  );
  const valid: fc.Arbitrary<Fields> = fc.oneof(
    raft,
    fc.record({ nodeId: fc.integer({ min: 4, max: 9 }), address: addressArbitrary }, {
      noNullPrototype: true,
    }).map(joinRequest),
    forward,
    fc.constant(
      forwardRequest({ hops: 0, request: { action: "delete_topic", topic_name: watchTopic } }),
    ),
    meta,
    fc.constant({ action: "peer_meta_index" }),
    subscribeStartArbitrary.map(subscribeStartRequest),
    waitArbitrary.map(waitRequest),
    heartbeatArbitrary,
    strangerNode.map((from) => ({ action: "peer_leave", from })),
    strangerNode.map((from) => ({ action: "peer_drop_replica", topic_name: watchTopic, from })),
    fc.stringMatching(/^peer_[a-z_]{0,10}$/).map((action) => ({ action })),
  );
  const withSizeLimit = (message: Fields) =>
    jsonText(message).length < frameBytesMax ? message : { action: message.action };
  return fc.oneof(
    { weight: 2, arbitrary: valid },
    { weight: 3, arbitrary: mutatedArbitrary(valid, { bigWeight: 0 }).map(asPeerMessage) },
  ).map(withSizeLimit);
}

/** Keeps a mutated message a peer message: an object whose action starts with peer_. */
function asPeerMessage(value: unknown): Fields {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { action: "peer_raft", value };
  }
  const { action, ...rest } = value as Fields;
  if (typeof action === "string" && action.startsWith("peer_")) return value as Fields;
  return { action: "peer_forward", ...rest, original_action: action };
}

/** The handshake a stranger can attempt without the secret. */
function handshakeMessage(): fc.Arbitrary<Fields> {
  const hello = fc.record({
    action: fc.constant("peer_hello"),
    node_id: fc.oneof(strangerNode, hostileValue({ bigWeight: 0 })),
    nonce: fc.oneof(
      fc.base64String({ minLength: 4, maxLength: 44 }),
      hostileValue({ bigWeight: 0 }),
    ),
  }, { noNullPrototype: true });
  const auth = fc.record({
    action: fc.constant("peer_auth"),
    // Never a valid node id: in the middle of a stream a failed proof would end it early.
    node_id: hostileValue({ bigWeight: 0 }).filter((value) =>
      !(typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 1_000_000)
    ),
    proof: fc.oneof(
      fc.base64String({ minLength: 4, maxLength: 44 }),
      hostileValue({ bigWeight: 0 }),
    ),
  }, { noNullPrototype: true });
  return fc.oneof(hello, auth);
}

/**
 * A peer frame in one of the key orders the listener must treat alike: the
 * action first (the fast path), an id first (the client path), or the action
 * twice (JSON keeps the last one).
 */
function peerSegment(target: string, message: fc.Arbitrary<Fields>): fc.Arbitrary<LiveSegment> {
  return fc.tuple(message, fc.nat(5), fc.oneof(fc.nat(), fc.string({ maxLength: 8 })))
    .map(([body, order, id]) => {
      if (order === 0) return jsonFrame(target, { id, ...body });
      if (order === 1) return jsonFrame(target, { ...body, id });
      if (order === 2) {
        const text = `{"action":"peer_x",${jsonText(body).slice(1)}`;
        return { target, bytes: frame(encoder.encode(text)) };
      }
      return jsonFrame(target, body);
    });
}

// ---- client requests and garbage -------------------------------------------------------

const readOnly = new Set(["ping", "fetch_topics", "cluster_status", "describe_topic", "fetch"]);

function clientSegment(): fc.Arbitrary<LiveSegment> {
  return fc.oneof(
    {
      weight: 4,
      arbitrary: invalidRequestArbitrary().map((wire) => jsonFrame("client_invalid", wire)),
    },
    {
      weight: 3,
      arbitrary: mutatedArbitrary(validRequestArbitrary().map((request) => request.wire), {
        bigWeight: 0,
      }).map((wire) => jsonFrame("client_mutated", wire)),
    },
    {
      weight: 1,
      arbitrary: validRequestArbitrary().filter(({ expected }) => readOnly.has(expected.action))
        .map(({ wire }) => jsonFrame("client_read_only", wire)),
    },
  );
}

function garbageSegment(): fc.Arbitrary<LiveSegment> {
  const payload = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 64 }),
    fc.uint8Array({ minLength: 1, maxLength: 16 }).map((bytes) => bytes.map((byte) => byte | 0x80)),
    fc.jsonValue({ maxDepth: 2 }).filter((value) =>
      typeof value !== "object" || value === null || Array.isArray(value)
    ).map((value) => encoder.encode(JSON.stringify(value))),
    validRequestArbitrary().chain(({ wire }) => {
      const text = encoder.encode(JSON.stringify(wire));
      return fc.nat(text.length - 1).map((cut) => text.subarray(0, Math.max(cut, 1)));
    }),
    fc.constant(new Uint8Array(0)),
    // Numbers JSON.parse turns into Infinity: an id no answer could echo.
    fc.constantFrom("1e999", "-1e999", "21000E9138").map((number) =>
      encoder.encode(`{"action":"ping","id":${number}}`)
    ),
  );
  return payload.map((bytes) => ({ target: "garbage_payload", bytes: frame(bytes) }));
}

/** Deep nesting and huge arrays, and a frame of exactly the size limit. */
function bigSegment(frameBytesMax: number): fc.Arbitrary<LiveSegment> {
  const exactly = (size: number) => {
    const head = `{"action":"publish","topic_name":"..","message":"`;
    const text = head + "x".repeat(size - head.length - 2) + `"}`;
    return { target: "big_payload", bytes: frame(encoder.encode(text)) };
  };
  return fc.oneof(
    fc.constantFrom(...nestingDepths).map((depth) => jsonFrame("big_payload", deepArray(depth))),
    fc.constantFrom(...nestingDepths.slice(0, 3)).map((depth) =>
      jsonFrame("big_payload", { action: "publish", topic_name: deepObject(depth) })
    ),
    fc.constantFrom(...nestingDepths).map((depth) =>
      jsonFrame("big_payload", { action: deepArray(depth), id: 1 })
    ),
    fc.constant(
      jsonFrame("big_payload", {
        action: "publish_batch",
        topic_name: watchTopic,
        messages: hugeArray(100_000, "m"),
      }),
    ),
    fc.constant(exactly(frameBytesMax)),
    fc.constant(exactly(frameBytesMax + 1)),
  );
}

// ---- tails ---------------------------------------------------------------------------------

function tailSegment(frameBytesMax: number): fc.Arbitrary<LiveSegment[]> {
  const header = (length: number) => {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, length);
    return bytes;
  };
  return fc.oneof<fc.Arbitrary<LiveSegment[]>[]>(
    fc.constant([] as LiveSegment[]),
    fc.integer({ min: frameBytesMax + 1, max: 0xffffffff }).map((length) => [
      { target: "tail_too_large", bytes: header(length) },
    ]),
    fc.tuple(fc.integer({ min: 2, max: 4096 }), fc.nat()).map(([length, cut]) => {
      const bytes = new Uint8Array(4 + (cut % length));
      bytes.set(header(length));
      return [{ target: "tail_truncated_frame", bytes }];
    }),
    fc.integer({ min: 1, max: 3 }).map((length) => [
      { target: "tail_truncated_header", bytes: new Uint8Array(length).fill(0) },
    ]),
    fc.uint8Array({ minLength: 1, maxLength: 256 }).map((bytes) => [
      { target: "tail_random_bytes", bytes, bytewise: true },
    ]),
    fc.tuple(strangerNode, fc.base64String({ minLength: 8, maxLength: 44 })).map((
      [node, proof],
    ) => [
      jsonFrame("tail_failed_proof", { action: "peer_hello", node_id: node, nonce: "bm9uY2U=" }),
      jsonFrame("tail_failed_proof", { action: "peer_auth", node_id: node, proof }),
    ]),
  );
}

/**
 * One connection's worth of input: 1 to 48 frames of every family, then
 * an optional hostile tail.
 *
 * @example
 * ```ts
 * const [stream] = fc.sample(streamArbitrary(1024 * 1024), 1);
 * ```
 */
export function streamArbitrary(frameBytesMax: number): fc.Arbitrary<LiveSegment[]> {
  const body = fc.oneof(
    { weight: 8, arbitrary: clientSegment() },
    { weight: 6, arbitrary: peerSegment("peer_action", peerMessage(frameBytesMax)) },
    { weight: 2, arbitrary: peerSegment("peer_handshake", handshakeMessage()) },
    { weight: 3, arbitrary: garbageSegment() },
    {
      weight: 1,
      arbitrary: fc.nat(99).chain((roll) =>
        roll < 3 ? bigSegment(frameBytesMax) : garbageSegment()
      ),
    },
  );
  return fc.tuple(fc.array(body, { minLength: 1, maxLength: 48 }), tailSegment(frameBytesMax)).map((
    [segments, tail],
  ) => [...segments, ...tail]);
}
