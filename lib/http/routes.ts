/**
 * The JSON API under `/api/`: each route becomes the wire protocol's request
 * and runs through a `Session`, exactly as a request on the TCP port does, so
 * validation, limits, authentication, per-topic permissions, forwarding to
 * the topic's leader and the answers themselves are the protocol's. Only
 * the envelope differs: an error code becomes an HTTP status
 * (`status.ts`), and a subscription becomes Server-Sent Events
 * (`event_stream.ts`).
 *
 * @module
 */

import { withTimeout } from "../async.ts";
import { requestTimedOut } from "../peer/connection.ts";
import { AccessPolicy, fullAccessToken, type Principal, refusalOf } from "../peer/auth.ts";
import type { Broker } from "../peer/broker.ts";
import { Session } from "../peer/session.ts";
import { isErrorResponse, ProtocolError } from "../wire/errors.ts";
import {
  clientIdLengthMax,
  fetchMessagesDefault,
  fetchMessagesMax,
  inFlightMessagesDefault,
  inFlightMessagesMax,
  type Request as WireRequest,
  type SubscribeFrom,
  tokenLengthMax,
  validateRequest,
  validateTopicName,
} from "../wire/requests.ts";
import type { DeliveryCounts } from "./deliveries.ts";
import { type AckMode, EventStream } from "./event_stream.ts";
import { openApiDocument } from "./openapi.ts";
import { answerResponse, errorJson } from "./status.ts";

/** Most API requests (event streams excluded) one peer serves at once; more answer 429. */
export const requestsInProgressMaxDefault = 4096;
/** Most event streams one peer serves at once; more answer 429. */
export const eventStreamsMaxDefault = 1000;

/** Settings of {@linkcode HttpApi}. */
export interface HttpApiOptions {
  broker: Broker;
  /** Largest request body (the TCP port's `--max-frame`); larger ones answer 413. */
  frameBytesMax: number;
  /** A request not done by then answers 503 `unavailable`. */
  requestTimeoutMs: number;
  /** The `--auth-token-file` token (every permission), when `access` is not given. */
  authToken?: string;
  /** Tokens and their topic permissions (`--auth-file`); wins over `authToken`. */
  access?: AccessPolicy;
  /** Called with every request's action, answer status and duration (metrics). */
  observe?: (action: string, status: string, seconds: number) => void;
  /** Messages delivered by this peer, for `GET /api/stats`. */
  deliveries?: DeliveryCounts;
  /** Default {@linkcode requestsInProgressMaxDefault}. */
  requestsInProgressMax?: number;
  /** Default {@linkcode eventStreamsMaxDefault}. */
  eventStreamsMax?: number;
  /** Keepalive interval of event streams (tests shorten it). */
  keepaliveMs?: number;
}

/** One API route: its method, its OpenAPI path template, and its operation id. */
export interface RouteSignature {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  operationId: string;
}

/** Every API route, in the order the OpenAPI document lists them. */
export const apiRoutes: readonly RouteSignature[] = [
  { method: "GET", path: "/api/cluster", operationId: "getCluster" },
  { method: "GET", path: "/api/topics", operationId: "listTopics" },
  { method: "POST", path: "/api/topics", operationId: "createTopic" },
  { method: "GET", path: "/api/topics/{topic}", operationId: "describeTopic" },
  { method: "PATCH", path: "/api/topics/{topic}", operationId: "alterTopic" },
  { method: "DELETE", path: "/api/topics/{topic}", operationId: "deleteTopic" },
  { method: "POST", path: "/api/topics/{topic}/messages", operationId: "publish" },
  { method: "GET", path: "/api/topics/{topic}/messages", operationId: "fetchMessages" },
  { method: "GET", path: "/api/topics/{topic}/events", operationId: "subscribeEvents" },
  { method: "POST", path: "/api/topics/{topic}/ack", operationId: "acknowledge" },
  { method: "GET", path: "/api/stats", operationId: "getStats" },
  { method: "GET", path: "/api/openapi.json", operationId: "getOpenApi" },
];

type Operation = (context: RouteContext) => Promise<Response>;

interface RouteContext {
  request: Request;
  url: URL;
  /** The `{topic}` path parameter, validated. */
  topic: string;
  /** The Bearer token, if the request carries one. */
  token: string | undefined;
}

const jsonTypePattern = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const digitsPattern = /^\d{1,16}$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The API of one peer.
 *
 * @example
 * ```ts
 * const api = new HttpApi({ broker, frameBytesMax: 1 << 20, requestTimeoutMs: 5000 });
 * const response = await api.handle(new Request("http://127.0.0.1:5101/api/cluster"));
 * ```
 */
export class HttpApi {
  readonly #options: HttpApiOptions;
  readonly #broker: Broker;
  readonly #policy: AccessPolicy | undefined;
  readonly #operations: Record<string, Operation>;
  readonly #streams = new Map<string, Set<EventStream>>();
  #streamCount = 0;
  #inProgress = 0;

  constructor(options: HttpApiOptions) {
    this.#options = options;
    this.#broker = options.broker;
    this.#policy = options.access ??
      (options.authToken === undefined
        ? undefined
        : new AccessPolicy([fullAccessToken(options.authToken)]));
    this.#operations = {
      getCluster: (context) => this.#simple(context, { action: "cluster_status" }),
      listTopics: (context) => this.#simple(context, { action: "fetch_topics" }),
      createTopic: (context) => this.#createTopic(context),
      describeTopic: (context) =>
        this.#simple(context, { action: "describe_topic", topic_name: context.topic }),
      alterTopic: (context) => this.#alterTopic(context),
      deleteTopic: (context) =>
        this.#simple(context, { action: "delete_topic", topic_name: context.topic }),
      publish: (context) => this.#publish(context),
      fetchMessages: (context) => this.#fetch(context),
      subscribeEvents: (context) => this.#subscribe(context),
      acknowledge: (context) => this.#acknowledge(context),
      getStats: (context) => this.#stats(context),
      getOpenApi: () => Promise.resolve(this.#json(openApiDocument, 200)),
    };
  }

  /** Event streams open right now. */
  get eventStreams(): number {
    return this.#streamCount;
  }

  /** Answers one request under `/api/`. Never throws. */
  async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const match = matchRoute(request.method, url.pathname);
    if (match.kind === "none") {
      return this.#error("bad_request", `There is no API route ${url.pathname}`, 404);
    }
    if (match.kind === "method") {
      return this.#error(
        "bad_request",
        `Route ${url.pathname} does not accept ${request.method}; it accepts ${
          match.allowed.join(", ")
        }`,
        405,
        { allow: match.allowed.join(", ") },
      );
    }
    const streaming = match.route.operationId === "subscribeEvents";
    const requestsMax = this.#options.requestsInProgressMax ?? requestsInProgressMaxDefault;
    if (!streaming && this.#inProgress >= requestsMax) {
      return this.#error(
        "overloaded",
        `The peer already serves its maximum of ${requestsMax} HTTP requests at once`,
      );
    }
    if (!streaming) this.#inProgress++;
    try {
      const topic = match.topic === undefined ? "" : pathTopic(match.topic);
      const token = bearerToken(request.headers.get("authorization"));
      return await this.#operations[match.route.operationId]({ request, url, topic, token });
    } catch (error) {
      return this.#json(toErrorAnswer(error), 200);
    } finally {
      if (!streaming) this.#inProgress--;
    }
  }

  /** Ends every event stream (the peer is stopping). */
  closeStreams(): void {
    for (const streams of [...this.#streams.values()]) {
      for (const stream of [...streams]) stream.close();
    }
  }

  #json(answer: unknown, successStatus: number, headers?: Record<string, string>): Response {
    return answerResponse(answer, successStatus, { node: this.#broker.nodeId, headers });
  }

  #error(
    code: ProtocolError["code"],
    message: string,
    status?: number,
    headers?: Record<string, string>,
  ): Response {
    return errorJson(code, message, { node: this.#broker.nodeId, status, headers });
  }

  async #simple(context: RouteContext, request: WireRequest, successStatus = 200) {
    return this.#json(await this.#run(context.token, request), successStatus);
  }

  /**
   * Runs a validated wire request through a fresh session authenticated with
   * the request's token, within the request timeout, like the TCP port.
   */
  async #run(token: string | undefined, request: WireRequest): Promise<unknown> {
    const started = performance.now();
    let answer: unknown;
    try {
      const session = await this.#session(token);
      answer = (await withTimeout(
        session.handle(request),
        this.#options.requestTimeoutMs,
        requestTimedOut,
      )).response;
    } catch (error) {
      answer = toErrorAnswer(error);
    }
    this.#options.observe?.(request.action, statusOf(answer), (performance.now() - started) / 1000);
    return answer;
  }

  async #session(token: string | undefined): Promise<Session> {
    const session = new Session({ broker: this.#broker, access: this.#policy });
    if (this.#policy === undefined) return session;
    if (token === undefined) throw missingToken();
    const { response } = await session.handle({ action: "auth", token });
    if ((response as { status?: string }).status !== "authenticated") throw wrongToken();
    return session;
  }

  /** The token's principal (undefined without access control); throws unauthorized. */
  #principal(token: string | undefined): Principal | undefined {
    if (this.#policy === undefined) return undefined;
    if (token === undefined) throw missingToken();
    const principal = this.#policy.authenticate(token);
    if (principal === undefined) throw wrongToken();
    return principal;
  }

  async #createTopic(context: RouteContext): Promise<Response> {
    const body = await readJsonObject(context.request, this.#options.frameBytesMax);
    for (const key of Object.keys(body)) {
      if (!["name", "replication_factor", "retention"].includes(key)) {
        fail(`Unknown field '${key}' (expected name, replication_factor, retention)`);
      }
    }
    const name = validateTopicName(body.name, "name");
    const request = validateRequest({
      action: "create_topic",
      topic_name: name,
      replication_factor: body.replication_factor,
      retention: body.retention,
    });
    return this.#json(await this.#run(context.token, request), 201, {
      location: `/api/topics/${name}`,
    });
  }

  /** `PATCH /api/topics/{topic}` with `{"retention": {...}}`: the protocol's `alter_topic`. */
  async #alterTopic(context: RouteContext): Promise<Response> {
    const body = await readJsonObject(context.request, this.#options.frameBytesMax);
    for (const key of Object.keys(body)) {
      if (key !== "retention") fail(`Unknown field '${key}' (expected retention)`);
    }
    const request = validateRequest({
      action: "alter_topic",
      topic_name: context.topic,
      retention: body.retention,
    });
    return await this.#simple(context, request);
  }

  async #publish(context: RouteContext): Promise<Response> {
    const bytes = await readBody(context.request, this.#options.frameBytesMax);
    const fields: Record<string, unknown> = { topic_name: context.topic };
    const contentType = context.request.headers.get("content-type") ?? "";
    if (jsonTypePattern.test(contentType)) {
      const value = parseJson(bytes);
      if (typeof value === "string") Object.assign(fields, { action: "publish", message: value });
      else if (Array.isArray(value)) {
        Object.assign(fields, { action: "publish_batch", messages: value });
      } else fail("A JSON body must be a string (one message) or an array of strings (a batch)");
    } else {
      Object.assign(fields, { action: "publish", message: decodeText(bytes) });
    }
    const producer = context.request.headers.get("producer-id");
    const sequence = context.request.headers.get("sequence");
    if (producer !== null) fields.producer_id = producer;
    if (sequence !== null) {
      if (!digitsPattern.test(sequence.trim())) {
        fail("Header 'Sequence' must be a non-negative integer");
      }
      fields.sequence = Number(sequence.trim());
    }
    return await this.#simple(context, validateRequest(fields));
  }

  async #fetch(context: RouteContext): Promise<Response> {
    const query = context.url.searchParams;
    const request = validateRequest({
      action: "fetch",
      topic_name: context.topic,
      from_offset: queryInteger(query, "from", 0, Number.MAX_SAFE_INTEGER) ?? 0,
      max: queryInteger(query, "max", 1, fetchMessagesMax) ?? fetchMessagesDefault,
    });
    return await this.#simple(context, request);
  }

  async #acknowledge(context: RouteContext): Promise<Response> {
    const body = await readJsonObject(context.request, this.#options.frameBytesMax);
    for (const key of Object.keys(body)) {
      if (!["subscriber_id", "offset"].includes(key)) {
        fail(`Unknown field '${key}' (expected subscriber_id, offset)`);
      }
    }
    const request = validateRequest({
      action: "ack",
      topic_name: context.topic,
      subscriber_id: body.subscriber_id,
      offset: body.offset,
    }) as Extract<WireRequest, { action: "ack" }>;
    const answer = await this.#run(context.token, request);
    if (!isErrorResponse(answer)) {
      const streams = this.#streams.get(streamKey(context.topic, request.subscriber_id));
      for (const stream of streams ?? []) stream.acknowledge(request.offset);
    }
    return this.#json(answer, 200);
  }

  #stats(context: RouteContext): Promise<Response> {
    const principal = this.#principal(context.token);
    const delivered = this.#options.deliveries?.snapshot() ?? {};
    const visible = Object.fromEntries(
      Object.entries(delivered).filter(([topic]) => principal?.sees(topic) ?? true),
    );
    const answer = { status: "stats", node: this.#broker.nodeId, delivered: visible };
    return Promise.resolve(this.#json(answer, 200));
  }

  async #subscribe(context: RouteContext): Promise<Response> {
    const started = performance.now();
    const query = context.url.searchParams;
    const subscriberId = optionalQueryString(query, "subscriber_id", clientIdLengthMax);
    const ack = queryAckMode(query);
    if (ack === "manual" && subscriberId === undefined) {
      fail("Query parameter 'ack=manual' needs a 'subscriber_id'");
    }
    const maxInFlight = queryInteger(query, "max_in_flight", 1, inFlightMessagesMax) ??
      inFlightMessagesDefault;
    const from = lastEventFrom(context.request.headers.get("last-event-id")) ?? queryFrom(query);
    const request: WireRequest = {
      action: "subscribe",
      topic_name: context.topic,
      subscriber_id: subscriberId ?? "",
      from,
      max_in_flight: maxInFlight,
    };
    let stream: EventStream;
    try {
      const principal = this.#principal(context.token);
      const refusal = principal === undefined ? undefined : refusalOf(principal, request);
      if (refusal !== undefined) throw new ProtocolError("forbidden", refusal);
      stream = await this.#openStream(context.topic, subscriberId, from, maxInFlight, ack);
    } catch (error) {
      const answer = toErrorAnswer(error);
      this.#options.observe?.("subscribe", statusOf(answer), secondsSince(started));
      return this.#json(answer, 200);
    }
    this.#options.observe?.("subscribe", "subscribed", secondsSince(started));
    return new Response(stream.body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
        "x-content-type-options": "nosniff",
        "x-pubsub-node": String(this.#broker.nodeId),
      },
    });
  }

  /** Opens a stream within the request timeout and registers it for `POST .../ack`. */
  async #openStream(
    topic: string,
    subscriberId: string | undefined,
    from: SubscribeFrom | undefined,
    maxInFlight: number,
    ack: AckMode,
  ): Promise<EventStream> {
    const streamsMax = this.#options.eventStreamsMax ?? eventStreamsMaxDefault;
    if (this.#streamCount >= streamsMax) {
      throw new ProtocolError(
        "overloaded",
        `The peer already serves its maximum of ${streamsMax} event streams`,
      );
    }
    // Counted from now until it closes, or until opening fails, exactly once.
    this.#streamCount++;
    let counted = true;
    const release = () => {
      if (counted) this.#streamCount--;
      counted = false;
    };
    const key = streamKey(topic, subscriberId ?? "");
    const opened: { stream?: EventStream } = {};
    const opening = EventStream.open({
      broker: this.#broker,
      topic,
      subscriberId,
      from,
      maxInFlight,
      ack,
      keepaliveMs: this.#options.keepaliveMs,
      onClose: () => {
        release();
        const streams = this.#streams.get(key);
        if (opened.stream !== undefined) streams?.delete(opened.stream);
        if (streams?.size === 0) this.#streams.delete(key);
      },
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // A stream that opens after all must not run unseen.
        opening.then((late) => late.close(), () => {});
        reject(new ProtocolError("unavailable", "The request timed out before it completed"));
      }, this.#options.requestTimeoutMs);
    });
    let stream: EventStream;
    try {
      stream = await Promise.race([opening, timeout]);
    } catch (error) {
      release();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    opened.stream = stream;
    const streams = this.#streams.get(key) ?? new Set();
    streams.add(stream);
    this.#streams.set(key, streams);
    return stream;
  }
}

type RouteMatch =
  | { kind: "route"; route: RouteSignature; topic: string | undefined }
  | { kind: "method"; allowed: string[] }
  | { kind: "none" };

/** Finds the route of `method` and `pathname`; `{topic}` matches one path segment. */
export function matchRoute(method: string, pathname: string): RouteMatch {
  const segments = pathname.split("/");
  const allowed: string[] = [];
  let topic: string | undefined;
  for (const route of apiRoutes) {
    const template = route.path.split("/");
    if (template.length !== segments.length) continue;
    let candidate: string | undefined;
    const matches = template.every((part, index) => {
      if (part !== "{topic}") return part === segments[index];
      candidate = segments[index];
      return candidate !== "";
    });
    if (!matches) continue;
    topic = candidate;
    if (route.method === method) {
      return { kind: "route", route, topic };
    }
    allowed.push(route.method);
  }
  return allowed.length > 0 ? { kind: "method", allowed } : { kind: "none" };
}

function pathTopic(segment: string): string {
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    fail("The topic name in the path is not valid percent-encoding");
  }
  return validateTopicName(name, "topic");
}

function streamKey(topic: string, subscriberId: string): string {
  return `${topic}\u0000${subscriberId}`;
}

function fail(message: string): never {
  throw new ProtocolError("bad_request", message);
}

function missingToken(): ProtocolError {
  return new ProtocolError(
    "unauthorized",
    "This peer requires the header 'Authorization: Bearer <token>'",
  );
}

function wrongToken(): ProtocolError {
  return new ProtocolError("unauthorized", "The token is wrong");
}

/** The token of an `Authorization: Bearer <token>` header, if well-formed. */
export function bearerToken(header: string | null): string | undefined {
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header ?? "");
  if (match === null || match[1].length > tokenLengthMax) return undefined;
  return match[1];
}

/** Reads a request body of at most `bytesMax` bytes; more is `frame_too_large`. */
async function readBody(request: Request, bytesMax: number): Promise<Uint8Array> {
  const tooLarge = (length: number | string) =>
    new ProtocolError(
      "frame_too_large",
      `The body of ${length} bytes exceeds the limit of ${bytesMax} bytes`,
    );
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > bytesMax) throw tooLarge(declared);
  if (request.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of request.body) {
    length += chunk.length;
    if (length > bytesMax) throw tooLarge(`more than ${bytesMax}`);
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

function decodeText(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    fail("The body is not valid UTF-8");
  }
}

function parseJson(bytes: Uint8Array): unknown {
  const text = decodeText(bytes);
  try {
    return JSON.parse(text);
  } catch {
    fail("The body is not valid JSON");
  }
}

async function readJsonObject(
  request: Request,
  bytesMax: number,
): Promise<Record<string, unknown>> {
  const value = parseJson(await readBody(request, bytesMax));
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail("The body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

function queryInteger(
  query: URLSearchParams,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const text = query.get(name);
  if (text === null) return undefined;
  const value = Number(text);
  if (!digitsPattern.test(text) || value < min || value > max) {
    fail(`Query parameter '${name}' must be an integer between ${min} and ${max}`);
  }
  return value;
}

function optionalQueryString(
  query: URLSearchParams,
  name: string,
  lengthMax: number,
): string | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  if (value.length === 0 || value.length > lengthMax) {
    fail(`Query parameter '${name}' must be 1-${lengthMax} characters long`);
  }
  return value;
}

function queryFrom(query: URLSearchParams): SubscribeFrom | undefined {
  const text = query.get("from");
  if (text === null) return undefined;
  if (text === "latest" || text === "earliest") return text;
  if (digitsPattern.test(text) && Number.isSafeInteger(Number(text))) return Number(text);
  fail("Query parameter 'from' must be 'earliest', 'latest' or an offset");
}

function queryAckMode(query: URLSearchParams): AckMode {
  const text = query.get("ack") ?? "auto";
  if (text === "auto" || text === "manual") return text;
  fail("Query parameter 'ack' must be 'auto' or 'manual'");
}

/** A reconnecting `EventSource` resumes right after the last event it received. */
function lastEventFrom(header: string | null): number | undefined {
  if (header === null || header.trim() === "") return undefined;
  const text = header.trim();
  if (!digitsPattern.test(text) || !Number.isSafeInteger(Number(text) + 1)) {
    fail("Header 'Last-Event-ID' must be an offset");
  }
  return Number(text) + 1;
}

function toErrorAnswer(error: unknown): unknown {
  if (error instanceof ProtocolError) return { status: error.code, error: sentence(error.message) };
  // Anything else is a bug; the client sees a retryable failure, never a stack.
  console.error("pubsub: HTTP request failed unexpectedly:", error);
  return { status: "unavailable", error: "The peer failed to complete the request." };
}

function sentence(message: string): string {
  return /[.!?]$/.test(message) ? message : `${message}.`;
}

function statusOf(answer: unknown): string {
  if (Array.isArray(answer)) return "ok";
  return String((answer as { status?: string }).status ?? "ok");
}

function secondsSince(started: number): number {
  return (performance.now() - started) / 1000;
}
