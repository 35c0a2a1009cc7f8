/**
 * The HTTP server in this process over a standalone broker: limits that a
 * real peer would need thousands of clients to reach, keepalives, the
 * status of every error code, route matching, and the OpenAPI document.
 */
import assert from "node:assert/strict";
import { LocalBroker } from "../../lib/peer/local_broker.ts";
import type { Broker } from "../../lib/peer/broker.ts";
import type { Topic } from "../../lib/peer/topic.ts";
import { openApiDocument } from "../../lib/http/openapi.ts";
import { apiRoutes, bearerToken, matchRoute } from "../../lib/http/routes.ts";
import { type HttpServer, serveHttp } from "../../lib/http/server.ts";
import { answerResponse, httpStatusOfCode } from "../../lib/http/status.ts";
import { errorCodes } from "../../lib/wire/errors.ts";
import { EventReader, request } from "./_http_cluster.ts";

async function withServer(
  options: Partial<Parameters<typeof serveHttp>[0]> & { wrap?: (broker: Broker) => Broker },
  body: (server: HttpServer, base: string, broker: LocalBroker) => Promise<void>,
): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "pubsub-http-" });
  const broker = await LocalBroker.open({ nodeId: 7, dataDir, address: "127.0.0.1:1" });
  const server = await serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    frameBytesMax: 1024 * 1024,
    requestTimeoutMs: 5000,
    ...options,
    broker: options.wrap?.(broker) ?? broker,
  });
  try {
    await body(server, `http://127.0.0.1:${server.port}`, broker);
  } finally {
    await server.close();
    await broker.close();
    await Deno.remove(dataDir, { recursive: true });
  }
}

Deno.test("every protocol error code has an HTTP status, and retryable ones say Retry-After", async () => {
  const expected: Record<string, number> = {
    topic_not_found: 404,
    topic_exists: 409,
    bad_request: 400,
    frame_too_large: 413,
    unauthorized: 401,
    unavailable: 503,
    overloaded: 429,
    forbidden: 403,
    out_of_order_sequence: 409,
    storage_full: 507,
  };
  for (const code of errorCodes) {
    const response = answerResponse({ status: code, error: "Something." }, 200, { node: 3 });
    assert.equal(response.status, expected[code], code);
    assert.equal(httpStatusOfCode[code], expected[code]);
    assert.equal(response.headers.get("x-pubsub-node"), "3");
    const retryable = ["unavailable", "overloaded", "storage_full"].includes(code);
    assert.equal(response.headers.get("retry-after"), retryable ? "1" : null, code);
    assert.deepEqual(await response.json(), { status: code, error: "Something." });
  }
  const unauthorized = answerResponse({ status: "unauthorized", error: "No." }, 200);
  assert.match(unauthorized.headers.get("www-authenticate") ?? "", /^Bearer /);
  await unauthorized.body?.cancel();
});

Deno.test("matchRoute finds every route, tells a wrong method from a missing route", () => {
  for (const route of apiRoutes) {
    const path = route.path.replace("{topic}", "events");
    const match = matchRoute(route.method, path);
    assert.equal(match.kind, "route", `${route.method} ${path}`);
  }
  assert.deepEqual(matchRoute("PUT", "/api/topics/events"), {
    kind: "method",
    allowed: ["GET", "PATCH", "DELETE"],
  });
  assert.deepEqual(matchRoute("GET", "/api/topics/events/nothing"), { kind: "none" });
  assert.deepEqual(matchRoute("GET", "/api/topics//messages"), { kind: "none" });
});

Deno.test("bearerToken reads only a well-formed Bearer header", () => {
  assert.equal(bearerToken("Bearer s3cret"), "s3cret");
  assert.equal(bearerToken("bearer  s3cret "), "s3cret");
  assert.equal(bearerToken("Basic s3cret"), undefined);
  assert.equal(bearerToken("Bearer"), undefined);
  assert.equal(bearerToken("Bearer two words"), undefined);
  assert.equal(bearerToken(null), undefined);
});

Deno.test("docs/openapi.json is the served document and describes every route", async () => {
  const file = JSON.parse(
    await Deno.readTextFile(new URL("../../docs/openapi.json", import.meta.url)),
  );
  assert.deepEqual(
    file,
    JSON.parse(JSON.stringify(openApiDocument)),
    "docs/openapi.json differs: regenerate it with `deno run lib/http/openapi.ts > docs/openapi.json`",
  );
  const paths = openApiDocument.paths as Record<string, Record<string, { operationId: string }>>;
  const documented = Object.entries(paths).flatMap(([path, item]) =>
    Object.entries(item).filter(([method]) => method !== "parameters").map(([method, operation]) =>
      `${method.toUpperCase()} ${path} ${operation.operationId}`
    )
  ).sort();
  const served = apiRoutes.map((route) => `${route.method} ${route.path} ${route.operationId}`)
    .sort();
  assert.deepEqual(documented, served);
  await withServer({}, async (_server, base) => {
    const answer = await request(`${base}/api/openapi.json`);
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, file);
  });
});

Deno.test("HTTP requests beyond requestsInProgressMax answer 429 overloaded with Retry-After", async () => {
  const release = Promise.withResolvers<void>();
  const stalled = (broker: Broker): Broker =>
    new Proxy(broker, {
      get(target, property) {
        if (property === "topicNames") return () => release.promise.then(() => target.topicNames());
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  await withServer({ requestsInProgressMax: 2, wrap: stalled }, async (_server, base) => {
    const first = request(`${base}/api/topics`);
    const second = request(`${base}/api/topics`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const refused = await request(`${base}/api/topics`);
    assert.equal(refused.status, 429);
    assert.equal(refused.body.status, "overloaded");
    assert.equal(refused.headers.get("retry-after"), "1");
    release.resolve();
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200);
    assert.equal((await request(`${base}/api/topics`)).status, 200);
  });
});

Deno.test("a request that outlives the request timeout answers 503 unavailable", async () => {
  const never = (broker: Broker): Broker =>
    new Proxy(broker, {
      get(target, property) {
        if (property === "clusterStatus") return () => new Promise(() => {});
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  await withServer({ requestTimeoutMs: 200, wrap: never }, async (_server, base) => {
    const answer = await request(`${base}/api/cluster`);
    assert.equal(answer.status, 503);
    assert.deepEqual(answer.body, {
      status: "unavailable",
      error: "The request timed out before it completed.",
    });
    assert.equal(answer.headers.get("retry-after"), "1");
  });
});

Deno.test("event streams beyond eventStreamsMax answer 429, and a closed one frees its slot", async () => {
  await withServer({ eventStreamsMax: 2 }, async (_server, base, broker) => {
    await broker.createTopic("events");
    const url = `${base}/api/topics/events/events`;
    const first = await EventReader.open(url);
    const second = await EventReader.open(url);
    assert.equal((await first.next()).type, "subscribed");
    assert.equal((await second.next()).type, "subscribed");
    const refused = await request(url);
    assert.equal(refused.status, 429);
    assert.equal(refused.body.status, "overloaded");
    await first.close();
    let again: EventReader | undefined;
    for (let attempt = 0; attempt < 50 && again === undefined; attempt++) {
      const candidate = await EventReader.open(url);
      if (candidate.response.status === 200) again = candidate;
      else {
        await candidate.close();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    assert.ok(again, "the slot of the closed stream was not freed");
    await again.close();
    await second.close();
  });
});

Deno.test("an idle event stream sends keepalive comments", async () => {
  await withServer({ keepaliveMs: 50 }, async (_server, base, broker) => {
    await broker.createTopic("quiet");
    const reader = await EventReader.open(`${base}/api/topics/quiet/events`);
    assert.equal((await reader.next()).type, "subscribed");
    const deadline = Date.now() + 5000;
    while (reader.comments < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(reader.comments >= 2, `only ${reader.comments} keepalives`);
    await reader.close();
  });
});

Deno.test("an event stream delivers a 10 MB backlog in order to a reader that pauses", async () => {
  await withServer({}, async (_server, base, broker) => {
    await broker.createTopic("bulk");
    const topic = await broker.topic("bulk") as Topic;
    const payload = "x".repeat(10_000);
    for (let batch = 0; batch < 10; batch++) {
      await topic.publish(Array.from({ length: 100 }, () => payload));
    }
    const response = await fetch(`${base}/api/topics/bulk/events?from=earliest`);
    const reader = response.body!.getReader();
    // Read a little, then pause: delivery waits for the reader and then goes on.
    const first = await reader.read();
    assert.ok(!first.done);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const decoder = new TextDecoder();
    let text = decoder.decode(first.value, { stream: true });
    const ids = () => [...text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
    while (ids().length < 1000) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    assert.deepEqual(ids(), Array.from({ length: 1000 }, (_, offset) => offset));
    assert.ok(text.length > 10_000_000);
    await reader.cancel();
  });
});

Deno.test("the console's files are served with their types, and unknown paths answer 404", async () => {
  await withServer({}, async (_server, base) => {
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
    const html = await page.text();
    for (const asset of html.matchAll(/(?:href|src)="(\/[^"]+)"/g)) {
      const response = await fetch(`${base}${asset[1]}`);
      assert.equal(response.status, 200, asset[1]);
      await response.body?.cancel();
    }
    const script = await fetch(`${base}/app.js`);
    assert.match(script.headers.get("content-type") ?? "", /^text\/javascript/);
    const etag = script.headers.get("etag")!;
    await script.body?.cancel();
    const cached = await fetch(`${base}/app.js`, { headers: { "if-none-match": etag } });
    assert.equal(cached.status, 304);
    await cached.body?.cancel();
    const missing = await fetch(`${base}/nothing.js`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const noMetrics = await fetch(`${base}/metrics`);
    assert.equal(noMetrics.status, 404);
    await noMetrics.body?.cancel();
  });
});
