/**
 * The HTTP API of a real peer process (`pubsub peer --http-port`): every
 * route with the protocol's answers, every error with its status, limits,
 * idempotent producers, and the same port serving /metrics and the console.
 */
import assert from "node:assert/strict";
import { startPeer } from "../_helpers/peer_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";
import { makeTlsFiles, tlsUnavailable } from "../_helpers/tls.ts";
import { request, startHttpPeer } from "./_http_cluster.ts";

for (const mode of ["replicated", "standalone"]) {
  Deno.test(`a ${mode} peer answers every HTTP route with the protocol's answers`, async (t) => {
    const peer = await startHttpPeer(mode === "standalone" ? ["--standalone"] : []);
    const api = `${peer.url}/api`;
    try {
      await t.step("topics are created, listed, described and deleted", async () => {
        const created = await request(`${api}/topics`, {
          method: "POST",
          json: { name: "events" },
        });
        assert.equal(created.status, 201);
        assert.deepEqual(created.body, { status: "topic_created", topic: "events" });
        assert.equal(created.headers.get("location"), "/api/topics/events");
        assert.equal(created.headers.get("x-pubsub-node"), "1");
        const again = await request(`${api}/topics`, { method: "POST", json: { name: "events" } });
        assert.equal(again.status, 409);
        assert.deepEqual(again.body, { status: "topic_exists", topic: "events" });
        await request(`${api}/topics`, { method: "POST", json: { name: "alpha" } });
        const listed = await request(`${api}/topics`);
        assert.equal(listed.status, 200);
        assert.deepEqual(listed.body, ["alpha", "events"]);
        const described = await request(`${api}/topics/events`);
        assert.equal(described.status, 200);
        assert.deepEqual(described.body, {
          status: "topic",
          topic: "events",
          replicas: [1],
          leader: 1,
          in_sync: [1],
          first_offset: 0,
          next_offset: 0,
          bytes: described.body.bytes,
          messages: 0,
          retention: {},
        });
        assert.equal(typeof described.body.bytes, "number");
        const deleted = await request(`${api}/topics/alpha`, { method: "DELETE" });
        assert.deepEqual([deleted.status, deleted.body], [200, {
          status: "topic_deleted",
          topic: "alpha",
        }]);
        const gone = await request(`${api}/topics/alpha`);
        assert.equal(gone.status, 404);
        assert.deepEqual(gone.body, {
          status: "topic_not_found",
          error: "Topic 'alpha' does not exist.",
        });
      });

      await t.step(
        "a body is one message, a JSON string one message, a JSON array a batch",
        async () => {
          const text = await request(`${api}/topics/events/messages`, {
            method: "POST",
            body: "hello\nworld",
            headers: { "content-type": "text/plain" },
          });
          assert.deepEqual([text.status, text.body], [200, {
            status: "message_published",
            topic: "events",
            offset: 0,
          }]);
          const curlDefault = await request(`${api}/topics/events/messages`, {
            method: "POST",
            body: "a=b&c",
            headers: { "content-type": "application/x-www-form-urlencoded" },
          });
          assert.equal(curlDefault.body.offset, 1);
          const string = await request(`${api}/topics/events/messages`, {
            method: "POST",
            json: '{"not":"parsed"}',
          });
          assert.equal(string.body.offset, 2);
          const batch = await request(`${api}/topics/events/messages`, {
            method: "POST",
            json: ["x", "", "z"],
          });
          assert.deepEqual(batch.body, {
            status: "messages_published",
            topic: "events",
            first_offset: 3,
            count: 3,
          });
          const unicode = await request(`${api}/topics/events/messages`, {
            method: "POST",
            body: "grüße ✓",
          });
          assert.equal(unicode.body.offset, 6);
          const fetched = await request(`${api}/topics/events/messages?from=0`);
          assert.deepEqual(fetched.body, {
            status: "messages",
            topic: "events",
            messages: [
              { offset: 0, message: "hello\nworld" },
              { offset: 1, message: "a=b&c" },
              { offset: 2, message: '{"not":"parsed"}' },
              { offset: 3, message: "x" },
              { offset: 4, message: "" },
              { offset: 5, message: "z" },
              { offset: 6, message: "grüße ✓" },
            ],
            next_offset: 7,
          });
          const page = await request(`${api}/topics/events/messages?from=3&max=2`);
          assert.deepEqual(page.body.messages, [{ offset: 3, message: "x" }, {
            offset: 4,
            message: "",
          }]);
          assert.equal(page.body.next_offset, 5);
          const beyond = await request(`${api}/topics/events/messages?from=100`);
          assert.deepEqual(beyond.body.messages, []);
        },
      );

      await t.step("the HTTP and the TCP protocol see the same topic", async () => {
        const client = await RawClient.connect(peer.port);
        try {
          const answer = await client.request({ action: "fetch_messages", topic_name: "events" });
          assert.equal((answer as string[]).length, 7);
          await client.request({ action: "publish", topic_name: "events", message: "by tcp" });
        } finally {
          await client.close();
        }
        const fetched = await request(`${api}/topics/events/messages?from=7`);
        assert.deepEqual(fetched.body.messages, [{ offset: 7, message: "by tcp" }]);
      });

      await t.step("Producer-Id and Sequence store a retried publish once", async () => {
        const publish = (sequence: string, body: string | string[]) =>
          request(`${api}/topics/events/messages`, {
            method: "POST",
            ...(typeof body === "string" ? { body } : { json: body }),
            headers: { "producer-id": "p1", "sequence": sequence },
          });
        const first = await publish("0", "once");
        const retried = await publish("0", "once");
        assert.equal(first.status, 200);
        assert.deepEqual(retried.body, first.body);
        const batch = await publish("1", ["b1", "b2"]);
        assert.equal(batch.body.count, 2);
        const gap = await publish("5", "after a gap");
        assert.equal(gap.status, 409);
        assert.equal(gap.body.status, "out_of_order_sequence");
        const fetched = await request(`${api}/topics/events/messages?from=8`);
        assert.deepEqual(fetched.body.messages.map((item: { message: string }) => item.message), [
          "once",
          "b1",
          "b2",
        ]);
      });

      await t.step(
        "cluster status, stats, openapi, metrics and the console share the port",
        async () => {
          const cluster = await request(`${api}/cluster`);
          assert.equal(cluster.status, 200);
          assert.equal(cluster.body.status, "cluster");
          assert.equal(cluster.body.nodes[0].id, 1);
          assert.equal(cluster.body.nodes[0].state, "alive");
          assert.equal(cluster.body.meta_leader, 1);
          const stats = await request(`${api}/stats`);
          assert.deepEqual([stats.status, stats.body.status, stats.body.node], [200, "stats", 1]);
          const openapi = await request(`${api}/openapi.json`);
          assert.equal(openapi.body.openapi, "3.1.0");
          const metrics = await fetch(`${peer.url}/metrics`);
          const text = await metrics.text();
          assert.match(
            text,
            /pubsub_requests_total\{action="publish",status="message_published"\} \d/,
          );
          assert.match(
            text,
            /pubsub_requests_total\{action="create_topic",status="topic_exists"\} 1/,
          );
          const console = await fetch(`${peer.url}/`);
          assert.equal(console.status, 200);
          assert.match(await console.text(), /pubsub console/);
        },
      );
    } finally {
      await peer.stop();
      await Deno.remove(peer.dataDir, { recursive: true });
    }
  });
}

Deno.test("every malformed HTTP request gets its error status and the protocol's code", async () => {
  const peer = await startHttpPeer(["--max-frame", "4096"]);
  const api = `${peer.url}/api`;
  const expect = async (
    what: string,
    url: string,
    init: Parameters<typeof request>[1],
    status: number,
    code: string,
    error?: RegExp,
  ) => {
    const answer = await request(url, init);
    assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.status, code, what);
    assert.equal(typeof answer.body.error, "string", what);
    assert.match(answer.body.error, /[.!?]$/, what);
    if (error) assert.match(answer.body.error, error, what);
    return answer;
  };
  try {
    await request(`${api}/topics`, { method: "POST", json: { name: "events" } });
    const post = (json: unknown) => ({ method: "POST", json });
    await expect(
      "bad topic name in a body",
      `${api}/topics`,
      post({ name: "no spaces" }),
      400,
      "bad_request",
      /'name'/,
    );
    await expect("missing name", `${api}/topics`, post({}), 400, "bad_request");
    await expect(
      "unknown field",
      `${api}/topics`,
      post({ name: "x", color: 1 }),
      400,
      "bad_request",
      /color/,
    );
    await expect(
      "retention that is not a positive integer",
      `${api}/topics`,
      post({ name: "x", retention: { max_age_ms: 0 } }),
      400,
      "bad_request",
      /'retention\.max_age_ms' must be a positive integer/,
    );
    await expect(
      "an unknown retention limit",
      `${api}/topics`,
      post({ name: "x", retention: { max_size: 10 } }),
      400,
      "bad_request",
      /unknown limit 'max_size'/,
    );
    await expect(
      "replication factor",
      `${api}/topics`,
      post({ name: "x", replication_factor: 9 }),
      400,
      "bad_request",
      /replication_factor/,
    );
    await expect(
      "not JSON",
      `${api}/topics`,
      { method: "POST", body: "{", headers: { "content-type": "application/json" } },
      400,
      "bad_request",
      /not valid JSON/,
    );
    await expect(
      "a JSON array body",
      `${api}/topics`,
      post(["events"]),
      400,
      "bad_request",
      /JSON object/,
    );
    await expect("bad topic in the path", `${api}/topics/bad%20name`, {}, 400, "bad_request");
    await expect(
      "'..' as a topic",
      `${api}/topics`,
      post({ name: ".." }),
      400,
      "bad_request",
      /'\.\.'/,
    );
    await expect("bad percent-encoding", `${api}/topics/%E0%A4%A/messages`, {}, 400, "bad_request");
    await expect("missing topic: describe", `${api}/topics/missing`, {}, 404, "topic_not_found");
    await expect(
      "missing topic: publish",
      `${api}/topics/missing/messages`,
      { method: "POST", body: "x" },
      404,
      "topic_not_found",
    );
    await expect(
      "missing topic: fetch",
      `${api}/topics/missing/messages`,
      {},
      404,
      "topic_not_found",
    );
    await expect(
      "missing topic: delete",
      `${api}/topics/missing`,
      { method: "DELETE" },
      404,
      "topic_not_found",
    );
    await expect(
      "missing topic: events",
      `${api}/topics/missing/events`,
      {},
      404,
      "topic_not_found",
    );
    await expect(
      "missing topic: ack",
      `${api}/topics/missing/ack`,
      post({ subscriber_id: "s", offset: 0 }),
      404,
      "topic_not_found",
    );
    await expect(
      "a JSON number as a message",
      `${api}/topics/events/messages`,
      post(42),
      400,
      "bad_request",
      /string/,
    );
    await expect(
      "an empty batch",
      `${api}/topics/events/messages`,
      post([]),
      400,
      "bad_request",
      /1-10000/,
    );
    await expect(
      "a batch of non-strings",
      `${api}/topics/events/messages`,
      post(["a", 1]),
      400,
      "bad_request",
    );
    await expect(
      "invalid UTF-8",
      `${api}/topics/events/messages`,
      { method: "POST", body: new Uint8Array([0xff, 0xfe]) },
      400,
      "bad_request",
      /UTF-8/,
    );
    await expect(
      "Sequence without Producer-Id",
      `${api}/topics/events/messages`,
      { method: "POST", body: "x", headers: { sequence: "1" } },
      400,
      "bad_request",
      /together/,
    );
    await expect(
      "Producer-Id without Sequence",
      `${api}/topics/events/messages`,
      { method: "POST", body: "x", headers: { "producer-id": "p" } },
      400,
      "bad_request",
      /together/,
    );
    await expect(
      "a negative Sequence",
      `${api}/topics/events/messages`,
      { method: "POST", body: "x", headers: { "producer-id": "p", sequence: "-1" } },
      400,
      "bad_request",
      /Sequence/,
    );
    await expect("max=0", `${api}/topics/events/messages?max=0`, {}, 400, "bad_request", /'max'/);
    await expect(
      "max over the limit",
      `${api}/topics/events/messages?max=10001`,
      {},
      400,
      "bad_request",
      /10000/,
    );
    await expect(
      "from=-1",
      `${api}/topics/events/messages?from=-1`,
      {},
      400,
      "bad_request",
      /'from'/,
    );
    await expect(
      "from=abc",
      `${api}/topics/events/events?from=abc`,
      {},
      400,
      "bad_request",
      /'from'/,
    );
    await expect(
      "ack=manual without subscriber",
      `${api}/topics/events/events?ack=manual`,
      {},
      400,
      "bad_request",
      /subscriber_id/,
    );
    await expect(
      "ack=sometimes",
      `${api}/topics/events/events?ack=sometimes`,
      {},
      400,
      "bad_request",
    );
    await expect(
      "max_in_flight=0",
      `${api}/topics/events/events?subscriber_id=s&max_in_flight=0`,
      {},
      400,
      "bad_request",
    );
    await expect(
      "a bad Last-Event-ID",
      `${api}/topics/events/events`,
      { headers: { "last-event-id": "x" } },
      400,
      "bad_request",
      /Last-Event-ID/,
    );
    await expect(
      "ack beyond the end",
      `${api}/topics/events/ack`,
      post({ subscriber_id: "s", offset: 5 }),
      400,
      "bad_request",
      /beyond the end/,
    );
    await expect(
      "ack without offset",
      `${api}/topics/events/ack`,
      post({ subscriber_id: "s" }),
      400,
      "bad_request",
      /'offset'/,
    );
    const big = "x".repeat(5000);
    const tooLarge = await expect(
      "a body over --max-frame",
      `${api}/topics/events/messages`,
      { method: "POST", body: big },
      413,
      "frame_too_large",
      /4096/,
    );
    // The unread rest of the body ends the connection, as frame_too_large does on TCP.
    assert.equal(tooLarge.headers.get("connection"), "close");
    await expect(
      "a JSON body over --max-frame",
      `${api}/topics`,
      post({ name: "x", pad: big }),
      413,
      "frame_too_large",
    );
    await expect("unknown route", `${api}/nothing`, {}, 404, "bad_request", /no API route/);
    const wrongMethod = await expect(
      "wrong method",
      `${api}/topics/events`,
      { method: "PUT" },
      405,
      "bad_request",
      /accepts GET, PATCH, DELETE/,
    );
    assert.equal(wrongMethod.headers.get("allow"), "GET, PATCH, DELETE");
    // Nothing of the above was stored.
    const fetched = await request(`${api}/topics/events/messages`);
    assert.deepEqual(fetched.body.messages, []);
    assert.deepEqual((await request(`${api}/topics`)).body, ["events"]);
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("a peer at --max-topics answers 429 overloaded with Retry-After over HTTP", async () => {
  const peer = await startHttpPeer(["--max-topics", "2"]);
  try {
    for (const name of ["one", "two"]) {
      const created = await request(`${peer.url}/api/topics`, { method: "POST", json: { name } });
      assert.equal(created.status, 201);
    }
    const refused = await request(`${peer.url}/api/topics`, {
      method: "POST",
      json: { name: "three" },
    });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.status, "overloaded");
    assert.equal(refused.headers.get("retry-after"), "1");
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("pubsub peer prints its console URL, and an HTTP port in use fails its start", async () => {
  const peer = await startHttpPeer();
  try {
    assert.match(peer.output(), /web console and HTTP API at http:\/\/127\.0\.0\.1:\d+\//);
    const clash = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../main.ts", import.meta.url).pathname,
        ...["peer", "--id", "2", "--port", "0", "--host", "127.0.0.1", "--standalone"],
        ...["--data-dir", await Deno.makeTempDir(), "--http-port", String(peer.httpPort)],
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    });
    const output = await clash.output();
    assert.notEqual(output.code, 0);
    assert.match(
      new TextDecoder().decode(output.stderr),
      new RegExp(
        `Cannot serve HTTP on 127\\.0\\.0\\.1:${peer.httpPort}: the address is already in use`,
      ),
    );
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("--metrics-port equal to --http-port is one server that serves both", async () => {
  const peer = await startHttpPeer();
  await peer.stop();
  const again = await startPeer({
    dataDir: peer.dataDir,
    args: ["--http-port", String(peer.httpPort), "--metrics-port", String(peer.httpPort)],
  });
  try {
    const metrics = await fetch(`${peer.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /pubsub_connections /);
    assert.equal((await request(`${peer.url}/api/cluster`)).status, 200);
  } finally {
    await again.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

const tlsSkip = await tlsUnavailable();
if (tlsSkip !== undefined) console.warn(`SKIPPED HTTPS test: ${tlsSkip}`);

Deno.test({
  name: "a peer serving TLS serves HTTPS on its HTTP port with the same certificate",
  ignore: tlsSkip !== undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "pubsub-https-" });
    const tls = await makeTlsFiles(dir);
    const peer = await startHttpPeer([
      ...["--standalone", "--tls-cert", tls.certPath, "--tls-key", tls.keyPath],
    ]);
    const client = Deno.createHttpClient({ caCerts: [tls.ca] });
    try {
      assert.match(peer.output(), /web console and HTTP API at https:\/\/127\.0\.0\.1:\d+\//);
      const url = peer.url.replace("http://", "https://");
      const created = await fetch(`${url}/api/topics`, {
        client,
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "secure" }),
      });
      assert.equal(created.status, 201);
      await created.body?.cancel();
      await assert.rejects(fetch(`${url}/api/topics`));
    } finally {
      client.close();
      await peer.stop();
      await Deno.remove(peer.dataDir, { recursive: true });
      await Deno.remove(dir, { recursive: true });
    }
  },
});
