import assert from "node:assert/strict";
import fc from "fast-check";
import {
  addressArbitrary,
  deepArray,
  forwardableArbitrary,
  groupIdArbitrary,
  heartbeatArbitrary,
  hopsArbitrary,
  hostileValue,
  incarnationArbitrary,
  jsonText,
  metaCommandArbitrary,
  metaProposalArbitrary,
  mutatedArbitrary,
  nestingDepths,
  raftMessageArbitrary,
  subscribeStartArbitrary,
  waitArbitrary,
} from "../../fuzz/arbitraries.ts";
import { decodeHeartbeat, decodeLeave, nodeIdMax } from "../../lib/cluster/_peer_messages.ts";
import { decodeMetaCommand } from "../../lib/cluster/meta_state.ts";
import {
  ClusterSecret,
  DialerHandshake,
  type ListenerHandshake,
  listenerStep,
  PeerHandshakeError,
  peerProtocolVersion,
} from "../../lib/cluster/peer_auth.ts";
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
} from "../../lib/cluster/peer_rpc.ts";
import { decodeRaftMessage, encodeRaftMessage } from "../../lib/cluster/raft_codec.ts";
import { errorCodes, ProtocolError } from "../../lib/wire/errors.ts";

/** Runs per property: every builder and decoder a few hundred times, in about a second. */
const numRuns = 300;

type Fields = Record<string, unknown>;

/** What a message looks like on the receiving side: after JSON. */
function overTheWire<T>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}

/** Runs `decode`; it may return or throw a ProtocolError with a known code, nothing else. */
function refusesCleanly(decode: () => unknown, allowed: (error: unknown) => boolean): void {
  try {
    decode();
  } catch (error) {
    assert.ok(
      allowed(error),
      `threw ${(error as Error)?.name}: ${(error as Error)?.message?.slice(0, 200)}`,
    );
  }
}

const isProtocolError = (error: unknown) =>
  error instanceof ProtocolError && (errorCodes as readonly string[]).includes(error.code);

/** Garbage for a decoder of `action`: mutations of valid messages and plain hostile values. */
function garbage(action: string, valid: fc.Arbitrary<unknown>): fc.Arbitrary<Fields> {
  return fc.oneof(
    { weight: 6, arbitrary: mutatedArbitrary(valid) },
    {
      weight: 2,
      arbitrary: fc.dictionary(fc.string({ maxLength: 12 }), hostileValue(), {
        noNullPrototype: true,
      }),
    },
    { weight: 1, arbitrary: hostileValue() },
  ).map((value) =>
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? { action, ...value as Fields }
      : { action, value }
  );
}

// ---- round trips -------------------------------------------------------------------

Deno.test("raftFrame with encodeRaftMessage round-trips through decodeRaftFrame", () => {
  const item = (from: number) =>
    fc.tuple(
      groupIdArbitrary,
      fc.oneof(
        raftMessageArbitrary(fc.constant(from)).map((message) => ({ message })),
        fc.integer({ min: 0, max: 2 ** 52 }).map((quiesceTerm) => ({ quiesceTerm })),
      ),
    );
  const frame = fc.integer({ min: 1, max: nodeIdMax }).chain((from) =>
    fc.tuple(fc.constant(from), incarnationArbitrary, fc.array(item(from), { maxLength: 5 }))
  );
  fc.assert(
    fc.property(frame, ([from, incarnation, items]) => {
      const wire = raftFrame(
        from,
        incarnation,
        items.map(([groupId, body]) => [
          groupId,
          "message" in body ? encodeRaftMessage(body.message) : { quiesce: body.quiesceTerm },
        ]),
      );
      const decoded = decodeRaftFrame(overTheWire(wire));
      assert.deepStrictEqual(decoded, {
        from,
        incarnation,
        batch: items.map(([groupId, body]) => ({ groupId, ...body })),
      });
    }),
    { numRuns },
  );
});

Deno.test("encodeRaftMessage round-trips through decodeRaftMessage", () => {
  fc.assert(
    fc.property(raftMessageArbitrary(fc.integer({ min: 1, max: nodeIdMax })), (message) => {
      assert.deepStrictEqual(decodeRaftMessage(overTheWire(encodeRaftMessage(message))), message);
    }),
    { numRuns },
  );
});

Deno.test("joinRequest round-trips through decodeJoin", () => {
  const join = fc.record({
    nodeId: fc.integer({ min: 1, max: nodeIdMax }),
    address: addressArbitrary,
  }, { noNullPrototype: true });
  fc.assert(
    fc.property(join, (request) => {
      assert.deepStrictEqual(decodeJoin(overTheWire(joinRequest(request))), request);
    }),
    { numRuns },
  );
});

Deno.test("forwardRequest round-trips through decodeForward", () => {
  fc.assert(
    fc.property(hopsArbitrary, forwardableArbitrary, (hops, { expected }) => {
      const decoded = decodeForward(overTheWire(forwardRequest({ hops, request: expected })));
      assert.deepStrictEqual(decoded, { hops, request: expected });
    }),
    { numRuns },
  );
});

Deno.test("metaRequest round-trips through decodeMeta, and commands through decodeMetaCommand", () => {
  fc.assert(
    fc.property(metaProposalArbitrary, metaCommandArbitrary, (proposal, command) => {
      assert.deepStrictEqual(decodeMeta(overTheWire(metaRequest(proposal))), proposal);
      assert.deepStrictEqual(decodeMetaCommand(overTheWire(command)), command);
    }),
    { numRuns },
  );
});

Deno.test("subscribeStartRequest and waitRequest round-trip through their decoders", () => {
  fc.assert(
    fc.property(subscribeStartArbitrary, waitArbitrary, (start, wait) => {
      const decoded = decodeSubscribeStart(overTheWire(subscribeStartRequest(start)));
      assert.deepStrictEqual(decoded, start);
      assert.deepStrictEqual(decodeWait(overTheWire(waitRequest(wait))), wait);
    }),
    { numRuns },
  );
});

Deno.test("heartbeats and leaves round-trip through decodeHeartbeat and decodeLeave", () => {
  fc.assert(
    fc.property(heartbeatArbitrary, (heartbeat) => {
      const decoded = decodeHeartbeat(overTheWire(heartbeat), 1024);
      assert.deepStrictEqual(decoded, {
        from: heartbeat.from,
        address: heartbeat.address,
        members: heartbeat.members,
      });
      assert.equal(decodeLeave({ action: "peer_leave", from: heartbeat.from }), heartbeat.from);
    }),
    { numRuns },
  );
});

Deno.test("the peer handshake admits a dialer with the same secret as the node it names", async () => {
  const secret = ClusterSecret.fromText(ClusterSecret.generateText());
  const other = ClusterSecret.fromText(ClusterSecret.generateText());
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: nodeIdMax }), fc.boolean(), (nodeId, same) => {
      const dialer = new DialerHandshake(nodeId, same ? secret : other);
      let state: ListenerHandshake = { state: "none" };
      const hello = listenerStep(secret, state, overTheWire(dialer.hello()));
      state = hello.next;
      assert.equal(state.state, "challenged");
      if (!same) {
        assert.throws(() => dialer.answer(overTheWire(hello.response)), PeerHandshakeError);
        return Promise.resolve();
      }
      const reply = dialer.answer(overTheWire(hello.response));
      assert.equal(reply.done, false);
      const auth = listenerStep(secret, state, overTheWire(reply.send!));
      assert.deepStrictEqual(auth.next, { state: "member", nodeId });
      assert.deepStrictEqual(dialer.answer(overTheWire(auth.response)), { done: true });
      return Promise.resolve();
    }),
    { numRuns: 100 },
  );
});

Deno.test("peers of different protocol versions refuse each other in the handshake, naming both versions", () => {
  const secret = ClusterSecret.fromText(ClusterSecret.generateText());
  for (const withSecret of [secret, undefined]) {
    const newer = {
      ...new DialerHandshake(2, withSecret).hello(),
      protocol: peerProtocolVersion + 1,
    };
    const step = listenerStep(withSecret, { state: "none" }, overTheWire(newer));
    assert.deepStrictEqual(step.next, { state: "none" });
    assert.equal(step.close, true);
    assert.deepStrictEqual(step.response, {
      status: "bad_request",
      error: `The dialing peer speaks peer protocol ${
        peerProtocolVersion + 1
      } and this peer ${peerProtocolVersion}: run one pubsub version across the cluster.`,
      protocol: peerProtocolVersion,
    });
    // The dialer's side: a listener of another version, whatever it answered.
    const dialer = new DialerHandshake(2, withSecret);
    const listening = listenerStep(withSecret, { state: "none" }, overTheWire(dialer.hello()));
    assert.throws(
      () =>
        dialer.answer(overTheWire({ ...listening.response, protocol: peerProtocolVersion + 1 })),
      (error: unknown) =>
        error instanceof PeerHandshakeError &&
        error.message ===
          `it speaks peer protocol ${
            peerProtocolVersion + 1
          } and this peer ${peerProtocolVersion}: run one pubsub version across the cluster`,
    );
  }
  // A hello or an answer without the field is version 1 (builds from before it).
  const { protocol: _omitted, ...older } = new DialerHandshake(2, undefined).hello();
  assert.equal(listenerStep(undefined, { state: "none" }, overTheWire(older)).next.state, "member");
  assert.deepStrictEqual(
    new DialerHandshake(2, undefined).answer({ status: "ok", secured: false }),
    { done: true },
  );
  // An ill-typed version is a bad request, like any ill-typed field.
  assert.throws(
    () => listenerStep(undefined, { state: "none" }, { ...older, protocol: "2" }),
    (error: unknown) =>
      isProtocolError(error) &&
      /Field 'protocol' must be a positive integer/.test((error as Error).message),
  );
});

// ---- garbage -----------------------------------------------------------------------

const validOf = {
  peer_raft: fc.tuple(incarnationArbitrary, raftMessageArbitrary(fc.constant(2)), groupIdArbitrary)
    .map(([incarnation, message, group]) =>
      raftFrame(2, incarnation, [[group, encodeRaftMessage(message)]])
    ),
  peer_join: fc.record({ nodeId: fc.integer({ min: 1, max: 9 }), address: addressArbitrary }, {
    noNullPrototype: true,
  }).map(
    joinRequest,
  ),
  peer_forward: fc.tuple(hopsArbitrary, forwardableArbitrary).map(([hops, { expected }]) =>
    forwardRequest({ hops, request: expected })
  ),
  peer_meta: metaProposalArbitrary.map(metaRequest),
  peer_subscribe_start: subscribeStartArbitrary.map(subscribeStartRequest),
  peer_wait: waitArbitrary.map(waitRequest),
  peer_heartbeat: heartbeatArbitrary,
  peer_leave: fc.integer({ min: 1, max: 9 }).map((from) => ({ action: "peer_leave", from })),
};

const decoders: Record<keyof typeof validOf, (message: Fields) => unknown> = {
  peer_raft: decodeRaftFrame,
  peer_join: decodeJoin,
  peer_forward: decodeForward,
  peer_meta: decodeMeta,
  peer_subscribe_start: decodeSubscribeStart,
  peer_wait: decodeWait,
  peer_heartbeat: (message) => decodeHeartbeat(message, 1024),
  peer_leave: decodeLeave,
};

for (const [action, decode] of Object.entries(decoders)) {
  Deno.test(`garbage ${action} messages only ever throw a ProtocolError`, () => {
    const valid = validOf[action as keyof typeof validOf];
    fc.assert(
      fc.property(garbage(action, valid), (message) => {
        refusesCleanly(() => decode(message), isProtocolError);
      }),
      { numRuns },
    );
  });
}

Deno.test("garbage metadata commands only ever throw a PeerMessageError", () => {
  fc.assert(
    fc.property(
      fc.oneof(mutatedArbitrary(metaCommandArbitrary), hostileValue()),
      (command) => {
        refusesCleanly(() => decodeMetaCommand(command), isProtocolError);
      },
    ),
    { numRuns },
  );
});

Deno.test("garbage Raft messages only ever throw a TypeError", () => {
  const valid = raftMessageArbitrary(fc.constant(1)).map(encodeRaftMessage);
  fc.assert(
    fc.property(
      fc.oneof(mutatedArbitrary(valid), hostileValue().map((type) => ({ t: type }))),
      (wire) => {
        const body = typeof wire === "object" && wire !== null ? wire as Fields : { t: wire };
        refusesCleanly(() => decodeRaftMessage(body), (error) => error instanceof TypeError);
        // The typed decoder of the frame turns that into a PeerMessageError.
        const frame = { action: "peer_raft", from: 1, incarnation: "i", batch: [["meta", body]] };
        refusesCleanly(() => decodeRaftFrame(frame), isProtocolError);
      },
    ),
    { numRuns },
  );
});

Deno.test("garbage handshake messages only ever throw a ProtocolError on the listener side", () => {
  const secret = ClusterSecret.fromText(ClusterSecret.generateText());
  const states: ListenerHandshake[] = [
    { state: "none" },
    { state: "challenged", nodeId: 2, dialerNonce: "a", listenerNonce: "b" },
  ];
  const hello = fc.record({
    action: fc.constant("peer_hello"),
    node_id: fc.integer({ min: 1, max: 9 }),
    nonce: fc.base64String({ minLength: 4, maxLength: 44 }),
  }, { noNullPrototype: true });
  const auth = fc.record({
    action: fc.constant("peer_auth"),
    node_id: fc.integer({ min: 1, max: 9 }),
    proof: fc.base64String({ minLength: 4, maxLength: 44 }),
  }, { noNullPrototype: true });
  fc.assert(
    fc.property(
      garbage("peer_hello", fc.oneof(hello, auth)),
      fc.constantFrom(...states),
      fc.boolean(),
      (message, state, withSecret) => {
        refusesCleanly(() => {
          const step = listenerStep(withSecret ? secret : undefined, state, message);
          // A random proof never admits a connection that has a secret to prove.
          if (withSecret) assert.notEqual(step.next.state, "member");
        }, isProtocolError);
      },
    ),
    { numRuns },
  );
});

Deno.test("garbage handshake replies only ever throw a PeerHandshakeError on the dialer side", () => {
  const secret = ClusterSecret.fromText(ClusterSecret.generateText());
  const reply = fc.oneof(
    hostileValue(),
    mutatedArbitrary(
      fc.record({
        status: fc.constantFrom("ok", "challenge", "unauthorized", "bad_request"),
        nonce: fc.base64String({ maxLength: 44 }),
        proof: fc.base64String({ maxLength: 44 }),
        secured: fc.boolean(),
      }, { noNullPrototype: true }),
    ),
    hostileValue().map((status) => ({ status })),
  );
  fc.assert(
    fc.property(reply, fc.boolean(), (answer, withSecret) => {
      const dialer = new DialerHandshake(1, withSecret ? secret : undefined);
      refusesCleanly(() => {
        dialer.answer(answer);
        // Without the secret nobody can answer in a way this dialer accepts.
        assert.ok(!withSecret, `a dialer with a secret accepted ${jsonText(answer).slice(0, 200)}`);
      }, (error) => error instanceof PeerHandshakeError);
    }),
    { numRuns },
  );
});

Deno.test("a dialer with a secret refuses an ok that no verified challenge preceded", () => {
  const secret = ClusterSecret.fromText(ClusterSecret.generateText());
  const dialer = new DialerHandshake(1, secret);
  dialer.hello();
  assert.throws(
    () => dialer.answer({ status: "ok", secured: true }),
    (error: unknown) =>
      error instanceof PeerHandshakeError && /without proving/.test(error.message),
  );
});

Deno.test("garbage answers to peer requests only ever throw a ProtocolError", () => {
  const answerDecoders = [
    (answer: unknown) => answerFields(answer),
    decodeJoinAnswer,
    decodeForwardAnswer,
    decodeMetaResult,
    decodeCreated,
    decodeMetaIndex,
    decodeSubscribeStartAnswer,
    decodeWaitAnswer,
  ];
  const answer = fc.oneof(
    hostileValue(),
    hostileValue().map((status) => ({ status, error: "x" })),
    mutatedArbitrary(
      fc.record({
        status: fc.constantFrom("ok", "joined", ...errorCodes),
        result: fc.record({ ok: fc.boolean(), reason: fc.constantFrom("exists", "not_found") }, {
          noNullPrototype: true,
        }),
        created: fc.boolean(),
        index: fc.nat(),
        start: fc.nat(),
        next_offset: fc.nat(),
        answer: fc.jsonValue({ maxDepth: 2 }),
      }, { noNullPrototype: true }),
    ),
  );
  fc.assert(
    fc.property(answer, fc.constantFrom(...answerDecoders), (value, decode) => {
      refusesCleanly(() => decode(value), isProtocolError);
    }),
    { numRuns },
  );
});

Deno.test("values that String() cannot convert are refused cleanly by every peer decoder", () => {
  const unconvertible: unknown[] = [
    { toString: 1 },
    [{ toString: null }],
    deepArray(nestingDepths.at(-1)!),
  ];
  for (const value of unconvertible) {
    refusesCleanly(() => decodeMetaCommand({ op: value }), isProtocolError);
    refusesCleanly(() => decodeRaftMessage({ t: value }), (error) => error instanceof TypeError);
    refusesCleanly(() => answerFields({ status: value }), isProtocolError);
    refusesCleanly(
      () => new DialerHandshake(1, undefined).answer({ status: value }),
      (error) => error instanceof PeerHandshakeError,
    );
    for (const action of Object.keys(decoders)) {
      for (const key of ["from", "node_id", "topic_name", "request", "command", "batch"]) {
        refusesCleanly(
          () => decoders[action as keyof typeof decoders]({ action, [key]: value }),
          isProtocolError,
        );
      }
    }
  }
});
