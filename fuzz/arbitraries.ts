/**
 * Generators of wire inputs for the property tests and `deno task fuzz`:
 * valid client requests with the value the validator must return, client
 * requests with exactly one wrong field, valid messages of every peer action
 * built with the builders of `peer_rpc.ts`, hostile JSON values (deep
 * nesting, huge arrays, objects that cannot become strings) and mutations
 * of valid messages (fields dropped, retyped, nested, grown).
 *
 * Everything generated is a value `JSON.parse` can produce, because that is
 * all a decoder ever receives.
 *
 * @module
 */

import fc from "fast-check";
import { nodeIdMax } from "../lib/cluster/_peer_messages.ts";
import { type MetaCommand, replicasMax } from "../lib/cluster/meta_state.ts";
import {
  forwardHopsMax,
  groupIdLengthMax,
  incarnationLengthMax,
  type MetaProposal,
  type SubscribeStartRequest,
  waitMsMax,
  type WaitRequest,
} from "../lib/cluster/peer_rpc.ts";
import { type Message, MESSAGE_TYPES } from "../lib/raft/types.ts";
import type { Entry, Snapshot } from "../lib/storage/types.ts";
import {
  batchMessagesMax,
  clientIdLengthMax,
  fetchMessagesDefault,
  fetchMessagesMax,
  inFlightMessagesDefault,
  inFlightMessagesMax,
  type Request,
  tokenLengthMax,
  topicNameLengthMax,
} from "../lib/wire/requests.ts";

/** Nesting depths of the deep values; a 1 MiB frame holds about 500,000 levels. */
export const nestingDepths = [64, 1_000, 20_000, 200_000] as const;
/** Lengths of the huge arrays: just over the batch and peer limits, and far over. */
export const hugeArrayLengths = [4_097, batchMessagesMax + 1, 100_000] as const;

type Fields = Record<string, unknown>;

// ---- JSON text ---------------------------------------------------------------------------

/**
 * The JSON text of a generated value. `JSON.stringify` recurses (and
 * overflows the stack on deep nesting) whenever the value also holds an
 * object it cannot take its fast path for, such as `{"0":"a"}`; then an
 * iterative serializer takes over.
 *
 * @example
 * ```ts
 * jsonText([{ "0": "a" }, deepArray(200_000)]); // no RangeError
 * ```
 */
export function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
  }
  return iterativeJson(value);
}

type Open = { close: string; items: [string | undefined, unknown][]; index: number };

function iterativeJson(root: unknown): string {
  const out: string[] = [];
  const stack: Open[] = [];
  const emit = (value: unknown) => {
    if (Array.isArray(value)) {
      out.push("[");
      stack.push({ close: "]", items: value.map((item) => [undefined, item]), index: 0 });
    } else if (typeof value === "object" && value !== null) {
      out.push("{");
      const entries = Object.entries(value).filter(([, item]) => item !== undefined);
      stack.push({ close: "}", items: entries, index: 0 });
    } else out.push(JSON.stringify(value) ?? "null");
  };
  emit(root);
  while (stack.length > 0) {
    const open = stack[stack.length - 1];
    if (open.index === open.items.length) {
      out.push(open.close);
      stack.pop();
      continue;
    }
    const [key, item] = open.items[open.index];
    if (open.index++ > 0) out.push(",");
    if (key !== undefined) out.push(`${JSON.stringify(key)}:`);
    emit(item);
  }
  return out.join("");
}

// ---- hostile values ------------------------------------------------------------------

const cache = new Map<string, unknown>();

/** A value built once and shared: deep and huge values are expensive to build. */
function cached<T>(key: string, build: () => T): T {
  if (!cache.has(key)) cache.set(key, build());
  return cache.get(key) as T;
}

/** `[[[...]]]` nested `depth` levels deep (built iteratively: no recursion). */
export function deepArray(depth: number): unknown[] {
  return cached(`array:${depth}`, () => {
    let value: unknown[] = [];
    for (let level = 1; level < depth; level++) value = [value];
    return value;
  });
}

/** `{"a":{"a":...}}` nested `depth` levels deep. */
export function deepObject(depth: number): Fields {
  return cached(`object:${depth}`, () => {
    let value: Fields = {};
    for (let level = 1; level < depth; level++) value = { a: value };
    return value;
  });
}

/** An array of `length` copies of `item`. */
export function hugeArray(length: number, item: unknown = null): unknown[] {
  return cached(`huge:${length}:${JSON.stringify(item)}`, () => new Array(length).fill(item));
}

const boundaryLengths = [0, 1, 63, 64, 65, 128, 129, 249, 250, 256, 257, 4096, 4097, 70_000];

/** Strings a validator may trip on: boundaries, look-alikes of valid values, odd Unicode. */
const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...boundaryLengths).map((length) => "x".repeat(length)),
  fc.constantFrom(
    "",
    " ",
    ".",
    "..",
    "a b",
    "events",
    "latest",
    "earliest",
    "peer_raft",
    "peer_",
    "__proto__",
    "constructor",
    "toString",
    "1@127.0.0.1:1",
    "127.0.0.1:0",
    "127.0.0.1:65536",
    "[::1]:5001",
    "\ud800",
    "\u0000",
    "é",
    "NaN",
    "-1",
    "1e3",
  ),
  fc.string({ unit: "binary", maxLength: 40 }),
);

/** Numbers around every limit the validators enforce. */
const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(
    0,
    -0,
    1,
    -1,
    0.5,
    7,
    8,
    250,
    1_000_000,
    1_000_001,
    fetchMessagesMax + 1,
    inFlightMessagesMax + 1,
    2 ** 31,
    2 ** 32,
    2 ** 52,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 2,
    1e308,
    -1e308,
    5e-324,
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);

/** Objects and arrays that break naive code: `String()` of them throws, or they look like arrays. */
const trickyContainer: fc.Arbitrary<unknown> = fc.constantFrom(
  () => ({}),
  () => [],
  () => ({ toString: 1 }),
  () => ({ toString: null, valueOf: null }),
  () => [{ toString: 1 }],
  () => JSON.parse('{"__proto__":{"action":"ping","topic_name":"events"}}'),
  () => ({ constructor: 1, length: 3 }),
  () => ({ 0: "a", length: 1 }),
  () => [[]],
).map((build) => build());

/** Deep and huge values, shared (never mutated). */
const bigValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...nestingDepths).map(deepArray),
  fc.constantFrom(...nestingDepths).map(deepObject),
  fc.constantFrom(...hugeArrayLengths).map((length) => hugeArray(length)),
  fc.constantFrom(...hugeArrayLengths).map((length) => hugeArray(length, "m")),
);

/**
 * Any value a hostile sender can put in a field. Deep and huge values are
 * rare (`bigWeight`), because building their text costs milliseconds.
 */
export function hostileValue(options: { bigWeight?: number } = {}): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: hostileString },
    { weight: 3, arbitrary: hostileNumber },
    { weight: 2, arbitrary: fc.constantFrom(null, true, false) },
    { weight: 2, arbitrary: trickyContainer },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: options.bigWeight ?? 1, arbitrary: bigValue },
  );
}

// ---- valid client requests -----------------------------------------------------------

/** A valid topic name (PROTOCOL.md section 5). */
export const topicNameArbitrary: fc.Arbitrary<string> = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._-]{1,24}$/),
  fc.stringMatching(new RegExp(`^[A-Za-z0-9._-]{${topicNameLengthMax}}$`)),
).filter((name) => name !== "." && name !== "..");

/** A valid subscriber or producer id (up to 256 UTF-16 units). */
const clientIdArbitrary = fc.string({ unit: "binary", minLength: 1, maxLength: 128 });
const messageArbitrary = fc.string({ unit: "binary", maxLength: 64 });
const offsetArbitrary = fc.oneof(fc.nat(1000), fc.maxSafeNat());
const requestIdArbitrary = fc.oneof(
  fc.string({ maxLength: 16 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((value) => !Object.is(value, -0)),
);

/** A client request as sent (`wire`) and as `validateRequest` must return it (`expected`). */
export interface RequestCase {
  wire: Fields;
  expected: Request;
}

function producer(): fc.Arbitrary<Fields> {
  return fc.option(
    fc.record({ producer_id: clientIdArbitrary, sequence: offsetArbitrary }, {
      noNullPrototype: true,
    }),
    { nil: {} },
  );
}

const optional = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });

/** Leaves out the keys whose value is undefined, as JSON does. */
function defined(fields: Fields): Fields {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}

function topicCases(): fc.Arbitrary<RequestCase>[] {
  const topic = topicNameArbitrary;
  const plain = (action: "fetch_messages" | "delete_topic" | "describe_topic") =>
    topic.map((topic_name) => ({
      wire: { action, topic_name },
      expected: { action, topic_name },
    }));
  return [
    fc.tuple(topic, optional(fc.integer({ min: 1, max: replicasMax }))).map(([name, factor]) => ({
      wire: defined({ action: "create_topic", topic_name: name, replication_factor: factor }),
      expected: { action: "create_topic", topic_name: name, replication_factor: factor },
    })),
    fc.tuple(topic, messageArbitrary, producer()).map(([topic_name, message, extra]) => ({
      wire: { action: "publish", topic_name, message, ...extra },
      expected: { action: "publish", topic_name, message, ...extra },
    })),
    fc.tuple(topic, fc.array(messageArbitrary, { minLength: 1, maxLength: 8 }), producer())
      .map(([topic_name, messages, extra]) => ({
        wire: { action: "publish_batch", topic_name, messages, ...extra },
        expected: { action: "publish_batch", topic_name, messages, ...extra },
      })),
    plain("fetch_messages"),
    plain("delete_topic"),
    plain("describe_topic"),
    fc.tuple(
      topic,
      optional(offsetArbitrary),
      optional(fc.integer({ min: 1, max: fetchMessagesMax })),
    )
      .map(([topic_name, from, max]) => ({
        wire: defined({ action: "fetch", topic_name, from_offset: from, max }),
        expected: {
          action: "fetch",
          topic_name,
          from_offset: from ?? 0,
          max: max ?? fetchMessagesDefault,
        },
      })),
  ];
}

function subscriberCases(): fc.Arbitrary<RequestCase>[] {
  const topic = topicNameArbitrary;
  const from = optional(fc.oneof(fc.constantFrom("latest", "earliest"), offsetArbitrary));
  const window = optional(fc.integer({ min: 1, max: inFlightMessagesMax }));
  return [
    fc.tuple(topic, clientIdArbitrary, from, window).map(([topic_name, id, start, limit]) => ({
      wire: defined({
        action: "subscribe",
        topic_name,
        subscriber_id: id,
        from: start,
        max_in_flight: limit,
      }),
      expected: {
        action: "subscribe",
        topic_name,
        subscriber_id: id,
        from: start,
        max_in_flight: limit ?? inFlightMessagesDefault,
      },
    })),
    fc.tuple(topic, clientIdArbitrary).map(([topic_name, subscriber_id]) => ({
      wire: { action: "unsubscribe", topic_name, subscriber_id },
      expected: { action: "unsubscribe", topic_name, subscriber_id },
    })),
    fc.tuple(topic, clientIdArbitrary, offsetArbitrary).map(([topic_name, id, offset]) => ({
      wire: { action: "ack", topic_name, subscriber_id: id, offset },
      expected: { action: "ack", topic_name, subscriber_id: id, offset },
    })),
  ];
}

function clusterCases(): fc.Arbitrary<RequestCase>[] {
  const bare = (action: "fetch_topics" | "cluster_status" | "ping") =>
    fc.constant({ wire: { action }, expected: { action } } as RequestCase);
  return [
    bare("fetch_topics"),
    bare("cluster_status"),
    bare("ping"),
    fc.string({ minLength: 1, maxLength: 64 }).map((token) => ({
      wire: { action: "auth", token },
      expected: { action: "auth", token },
    })),
    fc.integer({ min: 1, max: nodeIdMax }).map((node_id) => ({
      wire: { action: "remove_node", node_id },
      expected: { action: "remove_node", node_id },
    })),
  ];
}

/**
 * A valid request of any action, with an optional id and unknown extra
 * fields (which the validator ignores).
 *
 * @example
 * ```ts
 * const [{ wire, expected }] = fc.sample(validRequestArbitrary(), 1);
 * ```
 */
export function validRequestArbitrary(): fc.Arbitrary<RequestCase> {
  const extra = fc.dictionary(fc.stringMatching(/^x_[a-z]{1,6}$/), fc.jsonValue({ maxDepth: 2 }), {
    maxKeys: 2,
    noNullPrototype: true,
  });
  return fc.tuple(
    fc.oneof(...topicCases(), ...subscriberCases(), ...clusterCases()),
    optional(requestIdArbitrary),
    extra,
  ).map(([request, id, unknown]) => {
    if (id === undefined) {
      return { wire: { ...unknown, ...request.wire }, expected: request.expected };
    }
    return {
      wire: { ...unknown, ...request.wire, id },
      expected: { ...request.expected, id } as Request,
    };
  });
}

// ---- client requests with one wrong field ----------------------------------------------

const notString = hostileValue({ bigWeight: 0 }).filter((value) => typeof value !== "string");
const badTopicName: fc.Arbitrary<unknown> = fc.oneof(
  notString,
  fc.constantFrom("", ".", "..", "a b", "x/y", "é", "x".repeat(topicNameLengthMax + 1), "\u0000"),
);
const notSafeIntegerIn = (min: number, max: number) =>
  hostileValue({ bigWeight: 0 }).filter((value) =>
    value !== undefined &&
    !(typeof value === "number" && Number.isSafeInteger(value) && value >= min && value <= max)
  );
const badClientId: fc.Arbitrary<unknown> = fc.oneof(
  notString,
  fc.constantFrom("", "x".repeat(clientIdLengthMax + 1)),
);

/** Per action: fields whose given value makes the request invalid (`undefined` drops it). */
const wrongFields: Record<string, Record<string, fc.Arbitrary<unknown>>> = {
  create_topic: { topic_name: badTopicName, replication_factor: notSafeIntegerIn(1, replicasMax) },
  publish: {
    topic_name: badTopicName,
    message: notString,
    producer_id: badClientId,
    sequence: notSafeIntegerIn(0, Number.MAX_SAFE_INTEGER),
  },
  publish_batch: {
    topic_name: badTopicName,
    messages: fc.oneof(
      hostileValue({ bigWeight: 0 }).filter((value) =>
        !Array.isArray(value) || value.length === 0 ||
        value.some((item) => typeof item !== "string")
      ),
      fc.constant(hugeArray(batchMessagesMax + 1, "m")),
    ),
  },
  fetch_messages: { topic_name: badTopicName },
  fetch: {
    topic_name: badTopicName,
    from_offset: notSafeIntegerIn(0, Number.MAX_SAFE_INTEGER),
    max: notSafeIntegerIn(1, fetchMessagesMax),
  },
  subscribe: {
    topic_name: badTopicName,
    subscriber_id: badClientId,
    from: hostileValue({ bigWeight: 0 }).filter((value) =>
      value !== "latest" && value !== "earliest" &&
      !(typeof value === "number" && Number.isSafeInteger(value) && value >= 0)
    ),
    max_in_flight: notSafeIntegerIn(1, inFlightMessagesMax),
  },
  unsubscribe: { topic_name: badTopicName, subscriber_id: badClientId },
  ack: {
    topic_name: badTopicName,
    subscriber_id: badClientId,
    offset: notSafeIntegerIn(0, Number.MAX_SAFE_INTEGER),
  },
  delete_topic: { topic_name: badTopicName },
  describe_topic: { topic_name: badTopicName },
  auth: { token: fc.oneof(notString, fc.constantFrom("", "t".repeat(tokenLengthMax + 1))) },
  remove_node: { node_id: notSafeIntegerIn(1, nodeIdMax) },
  fetch_topics: {},
  cluster_status: {},
  ping: {},
};

/** Fields that must be present (dropping one of them makes the request invalid). */
const requiredFields = new Set([
  "topic_name",
  "message",
  "messages",
  "subscriber_id",
  "offset",
  "token",
  "node_id",
]);

/** A valid base of every action, to break one field of. */
const baseRequests: Record<string, Fields> = {
  create_topic: { action: "create_topic", topic_name: "events", replication_factor: 3 },
  publish: {
    action: "publish",
    topic_name: "events",
    message: "hi",
    producer_id: "p",
    sequence: 1,
  },
  publish_batch: { action: "publish_batch", topic_name: "events", messages: ["a", "b"] },
  fetch_messages: { action: "fetch_messages", topic_name: "events" },
  fetch: { action: "fetch", topic_name: "events", from_offset: 0, max: 10 },
  subscribe: {
    action: "subscribe",
    topic_name: "events",
    subscriber_id: "u1",
    from: "earliest",
    max_in_flight: 10,
  },
  unsubscribe: { action: "unsubscribe", topic_name: "events", subscriber_id: "u1" },
  ack: { action: "ack", topic_name: "events", subscriber_id: "u1", offset: 1 },
  delete_topic: { action: "delete_topic", topic_name: "events" },
  describe_topic: { action: "describe_topic", topic_name: "events" },
  auth: { action: "auth", token: "t" },
  remove_node: { action: "remove_node", node_id: 9 },
  fetch_topics: { action: "fetch_topics" },
  cluster_status: { action: "cluster_status" },
  ping: { action: "ping" },
};

/** Every client action name. */
export const clientActions: readonly string[] = Object.keys(baseRequests);

function brokenField(action: string): fc.Arbitrary<Fields> {
  const fields = Object.entries(wrongFields[action]);
  const drops = Object.keys(baseRequests[action]).filter((key) => requiredFields.has(key));
  const choices: fc.Arbitrary<Fields>[] = [
    ...fields.map(([key, value]) => value.map((bad) => ({ ...baseRequests[action], [key]: bad }))),
    ...drops.map((key) => fc.constant(defined({ ...baseRequests[action], [key]: undefined }))),
    // The id is checked before the action: a bad one breaks every request.
    fc.oneof(trickyContainer, fc.constantFrom(null, true, false)).map((id) => ({
      ...baseRequests[action],
      id,
    })),
  ];
  return fc.oneof(...choices);
}

const badAction: fc.Arbitrary<unknown> = fc.oneof(
  hostileValue({ bigWeight: 0 }).filter((value) =>
    value === undefined || typeof value !== "string" ||
    (!clientActions.includes(value) && !value.startsWith("peer_"))
  ),
  fc.constantFrom(...nestingDepths.slice(0, 2)).map(deepArray),
);

/**
 * A client request that `validateRequest` must refuse with `bad_request`:
 * one field of a valid request is wrong, missing, or the action is unknown.
 *
 * @example
 * ```ts
 * const [request] = fc.sample(invalidRequestArbitrary(), 1);
 * ```
 */
export function invalidRequestArbitrary(): fc.Arbitrary<Fields> {
  const actions = clientActions.map((action) => brokenField(action));
  return fc.oneof(
    { weight: 8, arbitrary: fc.oneof(...actions) },
    {
      weight: 2,
      arbitrary: fc.tuple(badAction, fc.constantFrom(...clientActions)).map(([action, base]) =>
        defined({ ...baseRequests[base], action })
      ),
    },
  );
}

// ---- peer messages -------------------------------------------------------------------

const nodeIdArbitrary = fc.integer({ min: 1, max: nodeIdMax });
const termArbitrary = fc.oneof(fc.nat(100), fc.maxSafeNat());
const bytesArbitrary = fc.uint8Array({ maxLength: 48 });

const entryArbitrary: fc.Arbitrary<Entry> = fc.record({
  term: termArbitrary,
  index: termArbitrary,
  type: fc.constantFrom(0, 1),
  data: bytesArbitrary,
}, { noNullPrototype: true });

const snapshotArbitrary: fc.Arbitrary<Snapshot> = fc.record({
  index: termArbitrary,
  term: termArbitrary,
  conf: fc.record({
    voters: fc.array(nodeIdArbitrary, { maxLength: 5 }),
    learners: fc.array(nodeIdArbitrary, { maxLength: 3 }),
  }, { noNullPrototype: true }),
  data: bytesArbitrary,
}, { noNullPrototype: true });

/**
 * A Raft message from `from`, with every optional field sometimes present.
 *
 * @example
 * ```ts
 * const [message] = fc.sample(raftMessageArbitrary(fc.constant(1)), 1);
 * ```
 */
export function raftMessageArbitrary(from: fc.Arbitrary<number>): fc.Arbitrary<Message> {
  return fc.record({
    type: fc.constantFrom(...MESSAGE_TYPES),
    from,
    to: nodeIdArbitrary,
    term: termArbitrary,
    logTerm: termArbitrary,
    index: termArbitrary,
    entries: fc.array(entryArbitrary, { maxLength: 3 }),
    commit: termArbitrary,
    reject: fc.boolean(),
    rejectHint: termArbitrary,
    snapshot: snapshotArbitrary,
    context: bytesArbitrary,
    transfer: fc.constant(true as const),
    commitNotice: fc.constant(true as const),
    lazySync: fc.constant(true as const),
  }, {
    noNullPrototype: true,
    requiredKeys: [
      "type",
      "from",
      "to",
      "term",
      "logTerm",
      "index",
      "entries",
      "commit",
      "reject",
      "rejectHint",
    ],
  });
}

/** A group id as the cluster uses them ("meta" or "t:" + topic), or any short string. */
export const groupIdArbitrary: fc.Arbitrary<string> = fc.oneof(
  fc.constant("meta"),
  topicNameArbitrary.map((name) => `t:${name}`.slice(0, groupIdLengthMax)),
  fc.string({ minLength: 1, maxLength: 16 }),
);

/** An incarnation id of a peer process. */
export const incarnationArbitrary: fc.Arbitrary<string> = fc.string({
  minLength: 1,
  maxLength: incarnationLengthMax,
});

/** An address "host:port" that `parseAddress` accepts. */
export const addressArbitrary: fc.Arbitrary<string> = fc.tuple(
  fc.oneof(
    fc.constantFrom("127.0.0.1", "localhost", "[::1]", "10.0.0.7"),
    fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,30}$/),
  ),
  fc.integer({ min: 1, max: 65535 }),
).map(([host, port]) => `${host}:${port}`);

const replicaList = (max: number) =>
  fc.uniqueArray(fc.integer({ min: 1, max: nodeIdMax }), { minLength: 1, maxLength: max });

/** Every metadata command, valid. */
export const metaCommandArbitrary: fc.Arbitrary<MetaCommand> = fc.oneof(
  fc.record({
    op: fc.constant("add_member" as const),
    id: nodeIdArbitrary,
    address: addressArbitrary,
  }, { noNullPrototype: true }),
  fc.record({ op: fc.constant("remove_member" as const), id: nodeIdArbitrary }, {
    noNullPrototype: true,
  }),
  fc.record({
    op: fc.constant("create_topic" as const),
    name: topicNameArbitrary,
    replicas: replicaList(replicasMax),
    replicationFactor: fc.integer({ min: 1, max: replicasMax }),
  }, { noNullPrototype: true }),
  fc.record({ op: fc.constant("delete_topic" as const), name: topicNameArbitrary }, {
    noNullPrototype: true,
  }),
  fc.record({
    op: fc.constant("set_replicas" as const),
    name: topicNameArbitrary,
    replicas: replicaList(replicasMax),
  }, { noNullPrototype: true }),
  fc.record({
    op: fc.constant("group_members" as const),
    name: topicNameArbitrary,
    epoch: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    members: replicaList(2 * replicasMax),
  }, { noNullPrototype: true }),
);

/** A metadata proposal of `peer_meta`. */
export const metaProposalArbitrary: fc.Arbitrary<MetaProposal> = fc.oneof(
  metaCommandArbitrary.map((command) => ({ kind: "command" as const, command })),
  fc.record({
    kind: fc.constant("create_topic" as const),
    name: topicNameArbitrary,
    replicationFactor: fc.integer({ min: 1, max: replicasMax }),
  }, { noNullPrototype: true }),
);

const hopsArbitrary = fc.integer({ min: 0, max: forwardHopsMax + 1 });

/** A `peer_subscribe_start` request. */
export const subscribeStartArbitrary: fc.Arbitrary<SubscribeStartRequest> = fc.record({
  topicName: topicNameArbitrary,
  subscriberId: clientIdArbitrary,
  from: optional(
    fc.oneof(fc.constantFrom("latest" as const, "earliest" as const), offsetArbitrary),
  ),
  hops: hopsArbitrary,
}, { noNullPrototype: true });

/** A `peer_wait` request. */
export const waitArbitrary: fc.Arbitrary<WaitRequest> = fc.record({
  topicName: topicNameArbitrary,
  offset: offsetArbitrary,
  timeoutMs: fc.integer({ min: 0, max: waitMsMax }),
}, { noNullPrototype: true });

/** A `peer_forward` body: any valid request but `auth` and `subscribe`. */
export const forwardableArbitrary: fc.Arbitrary<RequestCase> = validRequestArbitrary().filter(
  ({ expected }) => expected.action !== "auth" && expected.action !== "subscribe",
);

export { hopsArbitrary };

/** A `peer_heartbeat` as `Membership.heartbeatMessage()` builds it. */
export const heartbeatArbitrary: fc.Arbitrary<Fields> = fc.record({
  action: fc.constant("peer_heartbeat"),
  from: nodeIdArbitrary,
  address: addressArbitrary,
  members: fc.array(
    fc.record({ id: nodeIdArbitrary, address: addressArbitrary }, { noNullPrototype: true }),
    {
      maxLength: 4,
    },
  ),
  sent_at: fc.nat(),
}, { noNullPrototype: true });

// ---- mutations -------------------------------------------------------------------------

/** One change to a message: at the `at`-th container found in it. */
interface Mutation {
  kind: "drop" | "replace" | "grow" | "wrap";
  at: number;
  key: number;
  value: unknown;
}

const mutationArbitrary = (value: fc.Arbitrary<unknown>): fc.Arbitrary<Mutation> =>
  fc.record({
    kind: fc.constantFrom("drop", "replace", "replace", "replace", "grow", "wrap"),
    at: fc.nat(),
    key: fc.nat(),
    value,
  }, { noNullPrototype: true });

/** Every object and array of `root` (not too deep), for picking where to mutate. */
function containersOf(root: unknown): (Fields | unknown[])[] {
  const found: (Fields | unknown[])[] = [];
  const pending: [unknown, number][] = [[root, 0]];
  while (pending.length > 0 && found.length < 64) {
    const [value, depth] = pending.pop()!;
    if (typeof value !== "object" || value === null || depth > 6) continue;
    const container = value as Fields | unknown[];
    found.push(container);
    for (const child of Object.values(container)) pending.push([child, depth + 1]);
  }
  return found;
}

function mutate(container: Fields | unknown[], mutation: Mutation): void {
  const keys = Object.keys(container);
  const key = keys.length === 0 ? "0" : keys[mutation.key % keys.length];
  const slot = container as Fields;
  if (mutation.kind === "drop") {
    if (Array.isArray(container)) container.splice(Number(key), 1);
    else delete slot[key];
  } else if (mutation.kind === "replace") {
    slot[key] = mutation.value;
  } else if (mutation.kind === "grow") {
    // An array of the item's type: a few shared arrays, not one per item.
    const item = slot[key];
    const like = typeof item === "string" ? "m" : typeof item === "number" ? 1 : null;
    slot[key] = hugeArray(hugeArrayLengths[mutation.key % hugeArrayLengths.length], like);
  } else {
    slot[key] = [slot[key], mutation.value];
  }
}

/**
 * A valid message with 1 to 3 mutations. The base is copied first, and a
 * mutation only edits containers of that copy, never a shared hostile value.
 *
 * @example
 * ```ts
 * const [broken] = fc.sample(mutatedArbitrary(fc.constant({ action: "peer_wait" })), 1);
 * ```
 */
export function mutatedArbitrary(
  base: fc.Arbitrary<unknown>,
  options: { bigWeight?: number } = {},
): fc.Arbitrary<unknown> {
  const mutations = fc.array(mutationArbitrary(hostileValue(options)), {
    minLength: 1,
    maxLength: 3,
  });
  return fc.tuple(base, mutations).map(([value, changes]) => {
    const copy = JSON.parse(JSON.stringify(value));
    const own = containersOf(copy);
    for (const change of changes) {
      if (own.length === 0) return change.value;
      mutate(own[change.at % own.length], change);
    }
    return copy;
  });
}
