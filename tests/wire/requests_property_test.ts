import assert from "node:assert/strict";
import fc from "fast-check";
import {
  deepArray,
  hostileValue,
  invalidRequestArbitrary,
  jsonText,
  mutatedArbitrary,
  nestingDepths,
  validRequestArbitrary,
} from "../../fuzz/arbitraries.ts";
import { errorCodes, ProtocolError } from "../../lib/wire/errors.ts";
import { encodeFrame, FrameDecoder } from "../../lib/wire/frame.ts";
import { decodeRequest, RequestError, validateRequest } from "../../lib/wire/requests.ts";

const encoder = new TextEncoder();

/** Runs per property: enough to reach every action and field, small enough for CI. */
const numRuns = 400;
/** Longest one validation may take: a validator that loops shows up as a failure, not a hang. */
const decodeMsMax = 2_000;

/** Decodes `payload` and returns the request, or the ProtocolError; anything else fails. */
function decodeOrError(payload: Uint8Array): ReturnType<typeof decodeRequest> | ProtocolError {
  const started = performance.now();
  try {
    return decodeRequest(payload);
  } catch (error) {
    assert.ok(
      error instanceof ProtocolError,
      `decodeRequest threw ${(error as Error)?.name}: ${(error as Error)?.message}`,
    );
    assert.ok((errorCodes as readonly string[]).includes(error.code), error.code);
    return error;
  } finally {
    assert.ok(performance.now() - started < decodeMsMax, "decodeRequest took too long");
  }
}

function payloadOf(value: unknown): Uint8Array {
  return encoder.encode(jsonText(value));
}

Deno.test("every valid request round-trips through a frame and decodeRequest", () => {
  fc.assert(
    fc.property(validRequestArbitrary(), fc.array(fc.nat(), { maxLength: 4 }), (request, cuts) => {
      const bytes = encodeFrame(request.wire);
      const decoder = new FrameDecoder();
      const events = [];
      let start = 0;
      for (const cut of cuts.map((cut) => cut % bytes.length).sort((a, b) => a - b)) {
        events.push(...decoder.push(bytes.subarray(start, cut)));
        start = cut;
      }
      events.push(...decoder.push(bytes.subarray(start)));
      assert.equal(events.length, 1);
      assert.equal(events[0].kind, "frame");
      if (events[0].kind !== "frame") return;
      assert.deepStrictEqual(decodeRequest(events[0].payload), request.expected);
    }),
    { numRuns },
  );
});

Deno.test("a validated request validates again to itself", () => {
  fc.assert(
    fc.property(validRequestArbitrary(), ({ expected }) => {
      const again = validateRequest(JSON.parse(JSON.stringify(expected)));
      assert.deepStrictEqual(again, expected);
    }),
    { numRuns },
  );
});

Deno.test("a request with one wrong field is refused as bad_request, echoing a usable id", () => {
  fc.assert(
    fc.property(invalidRequestArbitrary(), fc.option(fc.nat()), (request, id) => {
      const wire = id === null || "id" in request ? request : { ...request, id };
      const result = decodeOrError(payloadOf(wire));
      assert.ok(result instanceof ProtocolError, `accepted ${jsonText(wire).slice(0, 200)}`);
      assert.equal(result.code, "bad_request");
      const sentId = (wire as { id?: unknown }).id;
      if (typeof sentId === "number" || typeof sentId === "string") {
        assert.ok(result instanceof RequestError);
        assert.equal(result.id, sentId);
      }
    }),
    { numRuns },
  );
});

Deno.test("garbage bytes get a ProtocolError, never another exception", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.string({ unit: "binary", maxLength: 64 }).map((text) => encoder.encode(text)),
        fc.jsonValue().map(payloadOf),
        // Valid JSON cut short, or with one byte changed.
        fc.tuple(validRequestArbitrary(), fc.nat(), fc.integer({ min: 0, max: 255 })).map(
          ([request, at, byte]) => {
            const bytes = payloadOf(request.wire);
            const position = at % bytes.length;
            if (byte % 2 === 0) return bytes.subarray(0, position);
            bytes[position] = byte;
            return bytes;
          },
        ),
      ),
      (payload) => {
        const result = decodeOrError(payload);
        if (!(result instanceof ProtocolError)) {
          // Whatever was accepted must be a fixpoint of validation.
          assert.deepStrictEqual(validateRequest(JSON.parse(JSON.stringify(result))), result);
        }
      },
    ),
    { numRuns },
  );
});

Deno.test("mutated requests and hostile values get a ProtocolError or a valid request", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        mutatedArbitrary(validRequestArbitrary().map((request) => request.wire)),
        hostileValue(),
        hostileValue().map((action) => ({ action })),
        hostileValue().map((id) => ({ action: "ping", id })),
      ),
      (value) => {
        const result = decodeOrError(payloadOf(value));
        if (!(result instanceof ProtocolError)) {
          assert.deepStrictEqual(validateRequest(JSON.parse(JSON.stringify(result))), result);
        }
      },
    ),
    { numRuns },
  );
});

Deno.test("values that String() cannot convert get bad_request, not a TypeError or RangeError", () => {
  const unconvertible: unknown[] = [
    { toString: 1 },
    { toString: null, valueOf: null },
    [{ toString: 1 }],
    deepArray(nestingDepths.at(-1)!),
  ];
  for (const value of unconvertible) {
    for (const field of ["action", "id", "topic_name"]) {
      const result = decodeOrError(payloadOf({ action: "publish", [field]: value }));
      assert.ok(result instanceof ProtocolError);
      assert.equal(result.code, "bad_request");
    }
  }
});

Deno.test("actions starting with peer_ get unauthorized from the client validator", () => {
  fc.assert(
    fc.property(fc.stringMatching(/^peer_[a-z_]{0,12}$/), fc.jsonValue(), (action, body) => {
      const result = decodeOrError(payloadOf({ body, action }));
      assert.ok(result instanceof ProtocolError);
      assert.equal(result.code, "unauthorized");
    }),
    { numRuns },
  );
});

Deno.test("an id too large for a double (1e999 parses as Infinity) is refused, not echoed as null", () => {
  for (const text of ["1e999", "-21000E9138"]) {
    const result = decodeOrError(encoder.encode(`{"action":"ping","id":${text}}`));
    assert.ok(result instanceof ProtocolError);
    assert.equal(result.code, "bad_request");
    assert.ok(!(result instanceof RequestError), "an id JSON cannot write back is not echoed");
  }
});
