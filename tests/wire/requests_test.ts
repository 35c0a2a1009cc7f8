import assert from "node:assert/strict";
import {
  batchMessagesMax,
  clientIdLengthMax,
  decodeRequest,
  fetchMessagesDefault,
  fetchMessagesMax,
  inFlightMessagesDefault,
  inFlightMessagesMax,
  RequestError,
  tokenLengthMax,
  topicNameLengthMax,
  validateRequest,
  validateTopicName,
} from "../../lib/wire/requests.ts";
import { ProtocolError } from "../../lib/wire/errors.ts";

const encoder = new TextEncoder();

/** Asserts that `value` is refused as bad_request with a message matching `pattern`. */
function assertBadRequest(value: unknown, pattern: RegExp): void {
  assert.throws(
    () => validateRequest(value),
    (error: unknown) => {
      assert.ok(error instanceof ProtocolError, `expected ProtocolError, got ${error}`);
      assert.equal(error.code, "bad_request");
      assert.match(error.message, pattern);
      return true;
    },
    JSON.stringify(value).slice(0, 200),
  );
}

const topicActions = [
  "create_topic",
  "publish",
  "publish_batch",
  "fetch_messages",
  "fetch",
  "subscribe",
  "unsubscribe",
  "ack",
  "delete_topic",
  "describe_topic",
] as const;

/** A valid request for every action, used as the base of invalid variants. */
const validRequests: Record<string, Record<string, unknown>> = {
  create_topic: { action: "create_topic", topic_name: "events" },
  publish: { action: "publish", topic_name: "events", message: "hi" },
  publish_batch: { action: "publish_batch", topic_name: "events", messages: ["a", "b"] },
  fetch_messages: { action: "fetch_messages", topic_name: "events" },
  fetch: { action: "fetch", topic_name: "events", from_offset: 3, max: 10 },
  subscribe: { action: "subscribe", topic_name: "events", subscriber_id: "u1" },
  unsubscribe: { action: "unsubscribe", topic_name: "events", subscriber_id: "u1" },
  ack: { action: "ack", topic_name: "events", subscriber_id: "u1", offset: 7 },
  fetch_topics: { action: "fetch_topics" },
  delete_topic: { action: "delete_topic", topic_name: "events" },
  describe_topic: { action: "describe_topic", topic_name: "events" },
  cluster_status: { action: "cluster_status" },
  ping: { action: "ping" },
  auth: { action: "auth", token: "secret" },
  remove_node: { action: "remove_node", node_id: 3 },
};

Deno.test("validateRequest accepts the seed-compatible requests with their exact fields", () => {
  assert.deepEqual(validateRequest(validRequests.create_topic), {
    action: "create_topic",
    topic_name: "events",
    replication_factor: undefined,
  });
  assert.deepEqual(validateRequest(validRequests.publish), validRequests.publish);
  assert.deepEqual(validateRequest(validRequests.fetch_messages), validRequests.fetch_messages);
  assert.deepEqual(validateRequest(validRequests.subscribe), {
    ...validRequests.subscribe,
    from: undefined,
    max_in_flight: inFlightMessagesDefault,
  });
  assert.deepEqual(validateRequest(validRequests.fetch_topics), { action: "fetch_topics" });
});

Deno.test("validateRequest accepts a valid request of every action", () => {
  for (const [action, request] of Object.entries(validRequests)) {
    const result = validateRequest(request) as Record<string, unknown>;
    assert.equal(result.action, action);
    for (const [key, value] of Object.entries(request)) {
      assert.deepEqual(result[key], value, `${action}.${key}`);
    }
  }
});

Deno.test("validateRequest drops fields the action does not know", () => {
  const result = validateRequest({ action: "ping", topic_name: "x", extra: [1] });
  assert.deepEqual(result, { action: "ping" });
});

Deno.test("validateRequest keeps a string or number id on every action", () => {
  for (const request of Object.values(validRequests)) {
    assert.equal(validateRequest({ ...request, id: 42 }).id, 42);
    assert.equal(validateRequest({ ...request, id: "r-1" }).id, "r-1");
  }
});

Deno.test("validateRequest refuses an id that is neither string nor number", () => {
  for (const id of [null, true, {}, [1]]) {
    assertBadRequest({ action: "ping", id }, /'id' must be a string or a number/);
  }
});

Deno.test("validateRequest refuses a value that is not a JSON object", () => {
  for (const value of [null, 1, "ping", [], [{ action: "ping" }], true]) {
    assertBadRequest(value, /must be a JSON object/);
  }
});

Deno.test("validateRequest refuses a missing or unknown action", () => {
  assertBadRequest({}, /'action' is missing/);
  assertBadRequest({ action: "explode" }, /Unknown action 'explode'/);
  assertBadRequest({ action: 7 }, /Unknown action '7'/);
  assertBadRequest({ action: "x".repeat(1000) }, /^Unknown action 'x{64}'$/);
});

Deno.test("validateRequest refuses a missing or ill-typed topic_name on every topic action", () => {
  for (const action of topicActions) {
    const base = validRequests[action];
    const { topic_name: _, ...missing } = base;
    assertBadRequest(missing, /'topic_name' must be a string/);
    for (const bad of [1, null, ["events"], { name: "events" }]) {
      assertBadRequest({ ...base, topic_name: bad }, /'topic_name' must be a string/);
    }
  }
});

Deno.test("validateTopicName accepts names of 1 and 249 characters of the allowed set", () => {
  for (const name of ["a", "A-z_0.9", "...", ".a", "a".repeat(topicNameLengthMax)]) {
    assert.equal(validateTopicName(name), name);
  }
});

Deno.test("validateTopicName refuses empty, '.', '..', 250 characters and bad characters", () => {
  const refusals: [string, RegExp][] = [
    ["", /1-249 characters/],
    ["a".repeat(topicNameLengthMax + 1), /1-249 characters/],
    [".", /may not be '\.' or '\.\.'/],
    ["..", /may not be '\.' or '\.\.'/],
    ["a b", /may only hold/],
    ["a/b", /may only hold/],
    ["é", /may only hold/],
    ["events\n", /may only hold/],
    ["a\u0000", /may only hold/],
    ["*", /may only hold/],
  ];
  for (const [name, pattern] of refusals) {
    for (const action of topicActions) {
      assertBadRequest({ ...validRequests[action], topic_name: name }, pattern);
    }
  }
});

Deno.test("validateTopicName names the field it checked", () => {
  assert.throws(() => validateTopicName(1, "topic"), /Field 'topic' must be a string/);
});

Deno.test("create_topic accepts a replication_factor of 1 to 7 and refuses others", () => {
  for (const factor of [1, 3, 7]) {
    const result = validateRequest({ ...validRequests.create_topic, replication_factor: factor });
    assert.deepEqual(result, {
      action: "create_topic",
      topic_name: "events",
      replication_factor: factor,
    });
  }
  for (const factor of [0, 8, 1.5, "3", null]) {
    assertBadRequest(
      { ...validRequests.create_topic, replication_factor: factor },
      /'replication_factor' must be an integer between 1 and 7/,
    );
  }
});

Deno.test("publish requires a string message and accepts an empty one", () => {
  assert.equal(
    (validateRequest({ ...validRequests.publish, message: "" }) as { message: string }).message,
    "",
  );
  for (const message of [undefined, 1, null, ["hi"], { text: "hi" }]) {
    assertBadRequest({ ...validRequests.publish, message }, /'message' must be a string/);
  }
});

Deno.test("publish and publish_batch accept producer_id with sequence together only", () => {
  for (const action of ["publish", "publish_batch"] as const) {
    const base = validRequests[action];
    const withProducer = { ...base, producer_id: "p-1", sequence: 0 };
    assert.deepEqual(validateRequest(withProducer), withProducer);
    const highest = { ...base, producer_id: "p", sequence: Number.MAX_SAFE_INTEGER };
    assert.deepEqual(validateRequest(highest), highest);
    assertBadRequest({ ...base, producer_id: "p-1" }, /must be given together/);
    assertBadRequest({ ...base, sequence: 1 }, /must be given together/);
    for (const sequence of [-1, 1.5, "1", Number.MAX_SAFE_INTEGER + 1]) {
      assertBadRequest({ ...base, producer_id: "p", sequence }, /'sequence' must be an integer/);
    }
    for (const producer_id of ["", "p".repeat(clientIdLengthMax + 1), 5]) {
      assertBadRequest({ ...base, producer_id, sequence: 1 }, /'producer_id' must be/);
    }
    const longest = { ...base, producer_id: "p".repeat(clientIdLengthMax), sequence: 1 };
    assert.deepEqual(validateRequest(longest), longest);
  }
});

Deno.test("publish_batch accepts 1 to batchMessagesMax strings and refuses anything else", () => {
  const base = validRequests.publish_batch;
  const one = { ...base, messages: [""] };
  assert.deepEqual(validateRequest(one), one);
  const full = { ...base, messages: Array.from({ length: batchMessagesMax }, String) };
  assert.equal((validateRequest(full) as { messages: string[] }).messages.length, batchMessagesMax);
  const over = { ...base, messages: Array.from({ length: batchMessagesMax + 1 }, String) };
  assertBadRequest(over, /array of 1-10000 strings/);
  assertBadRequest({ ...base, messages: [] }, /array of 1-10000 strings/);
  assertBadRequest({ ...base, messages: "a" }, /array of 1-10000 strings/);
  assertBadRequest({ ...base, messages: undefined }, /array of 1-10000 strings/);
  assertBadRequest({ ...base, messages: ["a", 1] }, /must hold only strings/);
  assertBadRequest({ ...base, messages: [null] }, /must hold only strings/);
});

Deno.test("fetch applies the defaults of from_offset and max", () => {
  assert.deepEqual(validateRequest({ action: "fetch", topic_name: "events" }), {
    action: "fetch",
    topic_name: "events",
    from_offset: 0,
    max: fetchMessagesDefault,
  });
});

Deno.test("fetch accepts max of 1 and fetchMessagesMax and refuses values beyond", () => {
  const base = validRequests.fetch;
  for (const max of [1, fetchMessagesMax]) {
    assert.equal((validateRequest({ ...base, max }) as { max: number }).max, max);
  }
  for (const max of [0, fetchMessagesMax + 1, -1, 2.5, "10", null]) {
    assertBadRequest({ ...base, max }, /'max' must be an integer between 1 and 10000/);
  }
});

Deno.test("fetch refuses a negative, fractional or ill-typed from_offset", () => {
  const base = validRequests.fetch;
  const highest = { ...base, from_offset: Number.MAX_SAFE_INTEGER };
  assert.deepEqual(validateRequest(highest), highest);
  for (const from_offset of [-1, 0.5, "0", null, Number.MAX_SAFE_INTEGER + 1]) {
    assertBadRequest({ ...base, from_offset }, /'from_offset' must be an integer/);
  }
});

Deno.test("subscribe accepts from latest, earliest or an offset and refuses others", () => {
  const base = validRequests.subscribe;
  for (const from of ["latest", "earliest", 0, 12]) {
    assert.equal((validateRequest({ ...base, from }) as { from: unknown }).from, from);
  }
  for (const from of ["first", -1, 1.5, null, "3"]) {
    assertBadRequest({ ...base, from }, /'from' must be 'latest', 'earliest' or an offset/);
  }
});

Deno.test("subscribe accepts max_in_flight of 1 and inFlightMessagesMax and refuses beyond", () => {
  const base = validRequests.subscribe;
  for (const max_in_flight of [1, inFlightMessagesMax]) {
    const result = validateRequest({ ...base, max_in_flight }) as { max_in_flight: number };
    assert.equal(result.max_in_flight, max_in_flight);
  }
  for (const max_in_flight of [0, inFlightMessagesMax + 1, 1.5, "5"]) {
    assertBadRequest({ ...base, max_in_flight }, /'max_in_flight' must be an integer/);
  }
});

Deno.test("subscriber actions require a subscriber_id of 1 to 256 characters", () => {
  for (const action of ["subscribe", "unsubscribe", "ack"] as const) {
    const base = validRequests[action];
    const longest = validateRequest({ ...base, subscriber_id: "s".repeat(clientIdLengthMax) });
    assert.equal((longest as { subscriber_id: string }).subscriber_id.length, clientIdLengthMax);
    const { subscriber_id: _, ...missing } = base;
    assertBadRequest(missing, /'subscriber_id' must be a string/);
    assertBadRequest({ ...base, subscriber_id: 1 }, /'subscriber_id' must be a string/);
    assertBadRequest({ ...base, subscriber_id: "" }, /'subscriber_id' must be 1-256 characters/);
    assertBadRequest(
      { ...base, subscriber_id: "s".repeat(clientIdLengthMax + 1) },
      /'subscriber_id' must be 1-256 characters/,
    );
  }
});

Deno.test("ack requires a non-negative integer offset", () => {
  const base = validRequests.ack;
  const { offset: _, ...missing } = base;
  assertBadRequest(missing, /'offset' must be an integer/);
  for (const offset of [-1, 1.5, "7", null]) {
    assertBadRequest({ ...base, offset }, /'offset' must be an integer/);
  }
  assert.equal((validateRequest({ ...base, offset: 0 }) as { offset: number }).offset, 0);
});

Deno.test("auth requires a token of 1 to tokenLengthMax characters", () => {
  const longest = { action: "auth", token: "t".repeat(tokenLengthMax) };
  assert.deepEqual(validateRequest(longest), longest);
  assertBadRequest({ action: "auth" }, /'token' must be a string/);
  assertBadRequest({ action: "auth", token: 1 }, /'token' must be a string/);
  assertBadRequest({ action: "auth", token: "" }, /'token' must be 1-4096 characters/);
  assertBadRequest(
    { action: "auth", token: "t".repeat(tokenLengthMax + 1) },
    /'token' must be 1-4096 characters/,
  );
});

Deno.test("remove_node requires a node_id between 1 and 1000000", () => {
  for (const node_id of [1, 1_000_000]) {
    assert.deepEqual(validateRequest({ action: "remove_node", node_id }), {
      action: "remove_node",
      node_id,
    });
  }
  for (const node_id of [undefined, 0, 1_000_001, 1.5, "3"]) {
    assertBadRequest({ action: "remove_node", node_id }, /'node_id' must be an integer/);
  }
});

Deno.test("decodeRequest decodes a UTF-8 JSON request", () => {
  const bytes = encoder.encode('{"action":"publish","topic_name":"t","message":"héllo 😀"}');
  assert.deepEqual(decodeRequest(bytes), {
    action: "publish",
    topic_name: "t",
    message: "héllo 😀",
  });
});

Deno.test("decodeRequest refuses invalid UTF-8 as bad_request", () => {
  for (const bytes of [[0xff], [0x22, 0xc3, 0x22], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
    assert.throws(
      () => decodeRequest(new Uint8Array(bytes)),
      (error: unknown) =>
        error instanceof ProtocolError && error.code === "bad_request" &&
        /not valid UTF-8/.test(error.message),
    );
  }
});

Deno.test("decodeRequest refuses invalid JSON as bad_request", () => {
  for (const text of ["", "{", "{'action':'ping'}", '{"action":"ping"} x', "NaN", "undefined"]) {
    assert.throws(
      () => decodeRequest(encoder.encode(text)),
      (error: unknown) =>
        error instanceof ProtocolError && error.code === "bad_request" &&
        /not valid JSON/.test(error.message),
      text,
    );
  }
});

Deno.test("decodeRequest throws a RequestError echoing the id of an invalid request", () => {
  for (const id of [9, "req-9"]) {
    const bytes = encoder.encode(
      JSON.stringify({ action: "describe_topic", topic_name: "..", id }),
    );
    assert.throws(
      () => decodeRequest(bytes),
      (error: unknown) => {
        assert.ok(error instanceof RequestError);
        assert.ok(error instanceof ProtocolError);
        assert.equal(error.name, "RequestError");
        assert.equal(error.code, "bad_request");
        assert.equal(error.id, id);
        assert.match(error.message, /may not be '\.'/);
        assert.ok(error.cause instanceof ProtocolError);
        return true;
      },
    );
  }
});

Deno.test("decodeRequest throws a plain ProtocolError when the id is absent or unusable", () => {
  for (const request of [{ action: "nope" }, { action: "nope", id: null }, [1]]) {
    assert.throws(
      () => decodeRequest(encoder.encode(JSON.stringify(request))),
      (error: unknown) =>
        error instanceof ProtocolError && !(error instanceof RequestError) &&
        error.code === "bad_request",
    );
  }
});
