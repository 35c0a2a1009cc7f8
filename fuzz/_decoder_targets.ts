/**
 * The in-process fuzz targets: every decoder at the edge of a peer, each
 * with a generator and an oracle. A valid input must decode to exactly what
 * was encoded; anything else may only be refused with the decoder's
 * documented error. `run` throws when the decoder misbehaved.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeHeartbeat, decodeLeave } from "../lib/cluster/_peer_messages.ts";
import { decodeMetaCommand } from "../lib/cluster/meta_state.ts";
import {
  ClusterSecret,
  DialerHandshake,
  type ListenerHandshake,
  listenerStep,
  PeerHandshakeError,
} from "../lib/cluster/peer_auth.ts";
import {
  answerFields,
  decodeCreated,
  decodeForward,
  decodeForwardAnswer,
  decodeJoin,
  decodeJoinAnswer,
  decodeMeta,
  decodeMetaIndex,
  decodeMetaResult,
  decodeRaftFrame,
  decodeSubscribeStart,
  decodeSubscribeStartAnswer,
  decodeWait,
  decodeWaitAnswer,
  forwardRequest,
  joinRequest,
  metaRequest,
  raftFrame,
  subscribeStartRequest,
  waitRequest,
} from "../lib/cluster/peer_rpc.ts";
import { decodeRaftMessage, encodeRaftMessage } from "../lib/cluster/raft_codec.ts";
import { errorCodes, ProtocolError } from "../lib/wire/errors.ts";
import { concatFrames, encodeFrame, FrameDecoder, type FrameEvent } from "../lib/wire/frame.ts";
import { decodeRequest, RequestError, validateRequest } from "../lib/wire/requests.ts";
import {
  addressArbitrary,
  forwardableArbitrary,
  groupIdArbitrary,
  heartbeatArbitrary,
  hopsArbitrary,
  hostileValue,
  incarnationArbitrary,
  invalidRequestArbitrary,
  jsonText,
  metaCommandArbitrary,
  metaProposalArbitrary,
  mutatedArbitrary,
  raftMessageArbitrary,
  subscribeStartArbitrary,
  validRequestArbitrary,
  waitArbitrary,
} from "./arbitraries.ts";

/** One decoder under fuzz. */
export interface DecoderTarget {
  name: string;
  /** Relative share of the in-process cases. */
  weight: number;
  arbitrary: fc.Arbitrary<unknown>;
  /** Runs one case; throws when the decoder misbehaved. */
  run(input: unknown): void;
}

type Fields = Record<string, unknown>;

/** An input the decoder must accept (`expected`) or may refuse (`garbage`). */
type Case = { wire: unknown; expected: unknown } | { garbage: unknown };

const encoder = new TextEncoder();

const isProtocolError = (error: unknown) =>
  error instanceof ProtocolError && (errorCodes as readonly string[]).includes(error.code);

function overTheWire<T>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : `non-error ${typeof error}`;
}

/** Calls `decode`; a throw is fine only when `documented` says so. */
function refuses(decode: () => unknown, documented: (error: unknown) => boolean): void {
  try {
    decode();
  } catch (error) {
    if (!documented(error)) throw new Error(`undocumented ${describe(error)}`);
  }
}

/** Garbage of an action: mutated valid messages, random objects, bare hostile values. */
function garbageOf(action: string, valid: fc.Arbitrary<unknown>): fc.Arbitrary<Case> {
  return fc.oneof(
    { weight: 6, arbitrary: mutatedArbitrary(valid) },
    {
      weight: 2,
      arbitrary: fc.dictionary(fc.string({ maxLength: 12 }), hostileValue(), {
        noNullPrototype: true,
      }),
    },
    { weight: 1, arbitrary: hostileValue() },
  ).map((value) => ({
    garbage: typeof value === "object" && value !== null && !Array.isArray(value)
      ? { action, ...value as Fields }
      : { action, value },
  }));
}

/** A target whose valid inputs round-trip and whose garbage is refused with a ProtocolError. */
function peerTarget(
  action: string,
  valid: fc.Arbitrary<{ wire: Fields; expected: unknown }>,
  decode: (message: Fields) => unknown,
): DecoderTarget {
  return {
    name: action,
    weight: 1,
    arbitrary: fc.oneof(
      { weight: 1, arbitrary: valid },
      { weight: 3, arbitrary: garbageOf(action, valid.map((pair) => pair.wire)) },
    ),
    run: (input) => {
      const item = input as Case;
      if ("garbage" in item) return refuses(() => decode(item.garbage as Fields), isProtocolError);
      assert.deepStrictEqual(decode(overTheWire(item.wire) as Fields), item.expected);
    },
  };
}

function raftFrameTarget(): DecoderTarget {
  const valid = fc.integer({ min: 1, max: 9 }).chain((from) =>
    fc.tuple(
      incarnationArbitrary,
      fc.array(
        fc.tuple(
          groupIdArbitrary,
          fc.oneof(
            raftMessageArbitrary(fc.constant(from)).map((message) => ({ message })),
            fc.integer({ min: 0, max: 2 ** 52 }).map((quiesceTerm) => ({ quiesceTerm })),
          ),
        ),
        { maxLength: 4 },
      ),
    ).map(([incarnation, items]) => ({
      wire: raftFrame(
        from,
        incarnation,
        items.map(([group, body]) => [
          group,
          "message" in body ? encodeRaftMessage(body.message) : { quiesce: body.quiesceTerm },
        ]),
      ),
      expected: {
        from,
        incarnation,
        batch: items.map(([groupId, body]) => ({ groupId, ...body })),
      },
    }))
  );
  return peerTarget("peer_raft", valid, decodeRaftFrame);
}

function peerRequestTargets(): DecoderTarget[] {
  const join = fc.record({ nodeId: fc.integer({ min: 1, max: 9 }), address: addressArbitrary }, {
    noNullPrototype: true,
  });
  return [
    raftFrameTarget(),
    peerTarget("peer_join", join.map((request) => pair(joinRequest(request), request)), decodeJoin),
    peerTarget(
      "peer_forward",
      fc.tuple(hopsArbitrary, forwardableArbitrary).map(([hops, { expected }]) =>
        pair(forwardRequest({ hops, request: expected }), { hops, request: expected })
      ),
      decodeForward,
    ),
    peerTarget(
      "peer_meta",
      metaProposalArbitrary.map((proposal) => pair(metaRequest(proposal), proposal)),
      decodeMeta,
    ),
    peerTarget(
      "peer_subscribe_start",
      subscribeStartArbitrary.map((start) => pair(subscribeStartRequest(start), start)),
      decodeSubscribeStart,
    ),
    peerTarget("peer_wait", waitArbitrary.map((wait) => pair(waitRequest(wait), wait)), decodeWait),
    peerTarget(
      "peer_heartbeat",
      heartbeatArbitrary.map((wire) =>
        pair(wire, { from: wire.from, address: wire.address, members: wire.members })
      ),
      (message) => decodeHeartbeat(message, 1024),
    ),
    peerTarget(
      "peer_leave",
      fc.integer({ min: 1, max: 9 }).map((from) => pair({ action: "peer_leave", from }, from)),
      decodeLeave,
    ),
  ];
}

function pair(wire: Fields, expected: unknown): { wire: Fields; expected: unknown } {
  return { wire, expected };
}

function raftMessageTarget(): DecoderTarget {
  const valid = raftMessageArbitrary(fc.integer({ min: 1, max: 9 })).map((message) =>
    pair(encodeRaftMessage(message), message)
  );
  return {
    name: "raft_message",
    weight: 1,
    arbitrary: fc.oneof(valid, garbageOf("", valid.map((item) => item.wire))),
    run: (input) => {
      const item = input as Case;
      if (!("garbage" in item)) {
        assert.deepStrictEqual(decodeRaftMessage(overTheWire(item.wire) as Fields), item.expected);
        return;
      }
      // The codec's documented refusal is a TypeError; decodeRaftFrame wraps it.
      refuses(() => decodeRaftMessage(item.garbage as Fields), (e) => e instanceof TypeError);
    },
  };
}

function metaCommandTarget(): DecoderTarget {
  const valid = metaCommandArbitrary.map((command) => pair(command, command));
  return {
    name: "meta_command",
    weight: 1,
    arbitrary: fc.oneof(
      valid,
      mutatedArbitrary(metaCommandArbitrary).map((garbage) => ({ garbage })),
      hostileValue().map((garbage) => ({ garbage })),
    ),
    run: (input) => {
      const item = input as Case;
      if ("garbage" in item) return refuses(() => decodeMetaCommand(item.garbage), isProtocolError);
      assert.deepStrictEqual(decodeMetaCommand(overTheWire(item.wire)), item.expected);
    },
  };
}

// ---- client requests -------------------------------------------------------------------

type RequestInput =
  | { kind: "valid"; payload: Uint8Array; expected: unknown }
  | { kind: "invalid"; payload: Uint8Array; id: unknown }
  | { kind: "garbage"; payload: Uint8Array };

function requestArbitrary(): fc.Arbitrary<RequestInput> {
  const json = (value: unknown) => encoder.encode(jsonText(value));
  return fc.oneof(
    validRequestArbitrary().map(({ wire, expected }) => ({
      kind: "valid" as const,
      payload: json(wire),
      expected,
    })),
    invalidRequestArbitrary().map((wire) => ({
      kind: "invalid" as const,
      payload: json(wire),
      id: wire.id,
    })),
    fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      fc.jsonValue().map(json),
      mutatedArbitrary(validRequestArbitrary().map((request) => request.wire)).map(json),
      hostileValue().map((action) => json({ action })),
      fc.tuple(validRequestArbitrary(), fc.nat(), fc.integer({ min: 0, max: 255 })).map(
        ([request, at, byte]) => {
          const bytes = json(request.wire);
          if (byte % 2 === 0) return bytes.subarray(0, at % bytes.length);
          bytes[at % bytes.length] = byte;
          return bytes;
        },
      ),
    ).map((payload) => ({ kind: "garbage" as const, payload })),
  );
}

function runRequest(input: unknown): void {
  const item = input as RequestInput;
  if (item.kind === "valid") {
    assert.deepStrictEqual(decodeRequest(item.payload), item.expected);
    return;
  }
  let decoded: unknown;
  try {
    decoded = decodeRequest(item.payload);
  } catch (error) {
    if (!isProtocolError(error)) throw new Error(`undocumented ${describe(error)}`);
    if (item.kind === "invalid") {
      assert.equal((error as ProtocolError).code, "bad_request");
      if (typeof item.id === "number" || typeof item.id === "string") {
        assert.ok(error instanceof RequestError && error.id === item.id, "the id is lost");
      }
    }
    return;
  }
  if (item.kind === "invalid") throw new Error("an invalid request was accepted");
  // Whatever garbage was accepted must be a fixpoint of validation.
  assert.deepStrictEqual(validateRequest(overTheWire(decoded)), decoded);
}

// ---- frames --------------------------------------------------------------------------

interface FrameInput {
  frameBytesMax: number;
  parts: Uint8Array[];
  cuts: number[];
}

function frameArbitrary(): fc.Arbitrary<FrameInput> {
  const header = (length: number) => {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, length);
    return bytes;
  };
  return fc.record({
    frameBytesMax: fc.oneof(fc.integer({ min: 1, max: 512 }), fc.constant(1024 * 1024)),
    parts: fc.array(
      fc.oneof(
        fc.uint8Array({ maxLength: 48 }),
        fc.jsonValue({ maxDepth: 2 }).map((value) => encodeFrame(value)),
        fc.oneof(fc.nat(600), fc.constant(0xffffffff)).map(header),
      ),
      { maxLength: 8 },
    ),
    cuts: fc.array(fc.nat(), { maxLength: 10 }),
  }, { noNullPrototype: true });
}

function plain(events: FrameEvent[]): unknown[] {
  return events.map((event) =>
    event.kind === "frame" ? { kind: "frame", payload: [...event.payload] } : event
  );
}

/** The frame decoder: same events however the bytes are cut, and its limits kept. */
function runFrame(input: unknown): void {
  const { frameBytesMax, parts, cuts } = input as FrameInput;
  const bytes = concatFrames([new Uint8Array(0), ...parts]);
  const whole = new FrameDecoder({ frameBytesMax }).push(bytes);
  const decoder = new FrameDecoder({ frameBytesMax });
  const split: FrameEvent[] = [];
  let start = 0;
  for (const cut of cuts.map((cut) => cut % (bytes.length + 1)).sort((a, b) => a - b)) {
    split.push(...decoder.push(bytes.subarray(start, cut)));
    start = cut;
  }
  split.push(...decoder.push(bytes.subarray(start)));
  assert.deepStrictEqual(plain(split), plain(whole));
  const tooLarge = whole.findIndex((event) => event.kind === "too_large");
  assert.ok(tooLarge === -1 || tooLarge === whole.length - 1, "too_large is not last");
  for (const event of whole) {
    if (event.kind === "frame") assert.ok(event.payload.length <= frameBytesMax);
    if (event.kind === "too_large") assert.ok(event.length > frameBytesMax);
  }
}

// ---- handshake and answers -------------------------------------------------------------

const secret = ClusterSecret.fromText(ClusterSecret.generateText());

function listenerArbitrary(): fc.Arbitrary<unknown> {
  const base = fc.record({
    action: fc.constantFrom("peer_hello", "peer_auth"),
    node_id: fc.integer({ min: 1, max: 9 }),
    nonce: fc.base64String({ minLength: 4, maxLength: 44 }),
    proof: fc.base64String({ minLength: 4, maxLength: 44 }),
  }, { noNullPrototype: true });
  return fc.tuple(
    fc.oneof(base, mutatedArbitrary(base), hostileValue().map((node_id) => ({ node_id }))),
    fc.constantFrom("peer_hello", "peer_auth", undefined),
    fc.boolean(),
    fc.boolean(),
  );
}

/** listenerStep: only ProtocolErrors, and never a member without the right proof. */
function runListener(input: unknown): void {
  const [value, action, challenged, withSecret] = input as [unknown, string, boolean, boolean];
  const message = typeof value === "object" && value !== null && !Array.isArray(value)
    ? { ...value as Fields, ...(action === undefined ? {} : { action }) }
    : { action, value };
  const state: ListenerHandshake = challenged
    ? { state: "challenged", nodeId: 2, dialerNonce: "a", listenerNonce: "b" }
    : { state: "none" };
  refuses(() => {
    const step = listenerStep(withSecret ? secret : undefined, state, message);
    if (withSecret && step.next.state === "member") throw new Error("admitted without a proof");
  }, isProtocolError);
}

function dialerArbitrary(): fc.Arbitrary<unknown> {
  const reply = fc.record({
    status: fc.constantFrom("ok", "challenge", "unauthorized", "bad_request"),
    nonce: fc.base64String({ maxLength: 44 }),
    proof: fc.base64String({ maxLength: 44 }),
    secured: fc.boolean(),
  }, { noNullPrototype: true });
  return fc.tuple(
    fc.oneof(
      reply,
      mutatedArbitrary(reply),
      hostileValue(),
      hostileValue().map((status) => ({ status })),
    ),
    fc.boolean(),
  );
}

/** DialerHandshake.answer: only PeerHandshakeErrors, and nothing a stranger says is accepted. */
function runDialer(input: unknown): void {
  const [reply, withSecret] = input as [unknown, boolean];
  const dialer = new DialerHandshake(1, withSecret ? secret : undefined);
  refuses(() => {
    dialer.answer(reply);
    if (withSecret) throw new Error(`accepted ${jsonText(reply).slice(0, 100)}`);
  }, (error) => error instanceof PeerHandshakeError);
}

const answerDecoders: ((answer: unknown) => unknown)[] = [
  (answer) => answerFields(answer),
  decodeJoinAnswer,
  decodeForwardAnswer,
  decodeMetaResult,
  decodeCreated,
  decodeMetaIndex,
  decodeSubscribeStartAnswer,
  decodeWaitAnswer,
];

function answerArbitrary(): fc.Arbitrary<unknown> {
  const answer = fc.record({
    status: fc.constantFrom("ok", "joined", ...errorCodes),
    result: fc.record({ ok: fc.boolean(), reason: fc.constantFrom("exists", "not_found") }, {
      noNullPrototype: true,
    }),
    created: fc.boolean(),
    index: fc.nat(),
    start: fc.nat(),
    next_offset: fc.nat(),
    answer: fc.jsonValue({ maxDepth: 2 }),
  }, { noNullPrototype: true });
  return fc.tuple(
    fc.oneof(
      hostileValue(),
      hostileValue().map((status) => ({ status })),
      mutatedArbitrary(answer),
    ),
    fc.nat(answerDecoders.length - 1),
  );
}

/**
 * Every in-process target.
 *
 * @example
 * ```ts
 * for (const target of decoderTargets()) console.log(target.name);
 * ```
 */
export function decoderTargets(): DecoderTarget[] {
  return [
    { name: "frame", weight: 2, arbitrary: frameArbitrary(), run: runFrame },
    { name: "request", weight: 3, arbitrary: requestArbitrary(), run: runRequest },
    ...peerRequestTargets(),
    raftMessageTarget(),
    metaCommandTarget(),
    { name: "handshake_listener", weight: 1, arbitrary: listenerArbitrary(), run: runListener },
    { name: "handshake_dialer", weight: 1, arbitrary: dialerArbitrary(), run: runDialer },
    {
      name: "peer_answers",
      weight: 1,
      arbitrary: answerArbitrary(),
      run: (input) => {
        const [answer, which] = input as [unknown, number];
        refuses(() => answerDecoders[which](answer), isProtocolError);
      },
    },
  ];
}
