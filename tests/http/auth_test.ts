/**
 * HTTP authentication and authorization on a real peer: the same tokens and
 * per-topic permissions as the TCP port (`--auth-file`,
 * `--auth-token-file`), sent as `Authorization: Bearer <token>`, and
 * `/metrics` guarded by its own `--metrics-token-file`.
 */
import assert from "node:assert/strict";
import { EventReader, request, startHttpPeer } from "./_http_cluster.ts";

const authFile = {
  tokens: [
    {
      name: "ops",
      token: "ops-secret",
      permissions: [{ topics: "*", allow: ["publish", "subscribe", "admin"] }],
    },
    {
      name: "writer",
      token: "writer-secret",
      permissions: [{ topics: "orders.*", allow: ["publish"] }],
    },
    {
      name: "reader",
      token: "reader-secret",
      permissions: [{ topics: "orders.*", allow: ["subscribe"] }],
    },
  ],
};

Deno.test("HTTP requests need a Bearer token with the permission the TCP port would need", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "pubsub-http-auth-" });
  await Deno.writeTextFile(`${dir}/auth.json`, JSON.stringify(authFile));
  await Deno.writeTextFile(`${dir}/metrics.token`, "scrape-secret\n");
  const peer = await startHttpPeer([
    ...["--auth-file", `${dir}/auth.json`],
    ...["--metrics-token-file", `${dir}/metrics.token`],
  ]);
  const api = `${peer.url}/api`;
  try {
    await t.step("no token, a wrong token or another scheme answer 401", async () => {
      for (
        const headers of [
          {} as Record<string, string>,
          { authorization: "Bearer wrong" },
          { authorization: "Basic b3BzLXNlY3JldA==" },
          { authorization: "Bearer" },
        ]
      ) {
        for (const path of ["/cluster", "/topics", "/topics/orders.eu", "/stats"]) {
          const answer = await request(`${api}${path}`, { headers });
          assert.equal(answer.status, 401, `${path} ${JSON.stringify(headers)}`);
          assert.equal(answer.body.status, "unauthorized");
          assert.match(answer.headers.get("www-authenticate") ?? "", /^Bearer realm=/);
        }
      }
      const stream = await request(`${api}/topics/orders.eu/events`);
      assert.equal(stream.status, 401);
      const wrong = await request(`${api}/topics/orders.eu/events`, { token: "nope" });
      assert.deepEqual(wrong.body, { status: "unauthorized", error: "The token is wrong." });
    });

    await t.step("admin creates, writers publish, readers read, each only there", async () => {
      const create = (token: string, name: string) =>
        request(`${api}/topics`, { method: "POST", json: { name }, token });
      assert.equal((await create("writer-secret", "orders.eu")).status, 403);
      assert.equal((await create("ops-secret", "orders.eu")).status, 201);
      assert.equal((await create("ops-secret", "audit")).status, 201);
      const publish = (token: string, topic: string) =>
        request(`${api}/topics/${topic}/messages`, { method: "POST", body: "m", token });
      assert.equal((await publish("writer-secret", "orders.eu")).status, 200);
      const refused = await publish("writer-secret", "audit");
      assert.equal(refused.status, 403);
      assert.deepEqual(refused.body, {
        status: "forbidden",
        error: "Token 'writer' lacks the 'publish' permission on topic 'audit'.",
      });
      assert.equal((await publish("reader-secret", "orders.eu")).status, 403);
      const read = (token: string, topic: string) =>
        request(`${api}/topics/${topic}/messages`, { token });
      assert.equal((await read("reader-secret", "orders.eu")).status, 200);
      assert.equal((await read("writer-secret", "orders.eu")).status, 403);
      assert.equal((await read("reader-secret", "audit")).status, 403);
      const ack = await request(`${api}/topics/orders.eu/ack`, {
        method: "POST",
        json: { subscriber_id: "s", offset: 0 },
        token: "writer-secret",
      });
      assert.equal(ack.status, 403);
      const remove = await request(`${api}/topics/audit`, {
        method: "DELETE",
        token: "reader-secret",
      });
      assert.equal(remove.status, 403);
      assert.deepEqual((await request(`${api}/topics`, { token: "reader-secret" })).body, [
        "orders.eu",
      ]);
      assert.deepEqual((await request(`${api}/topics`, { token: "ops-secret" })).body, [
        "audit",
        "orders.eu",
      ]);
      // Any valid token may describe a topic and see the cluster, as on TCP.
      assert.equal((await request(`${api}/topics/audit`, { token: "reader-secret" })).status, 200);
      assert.equal((await request(`${api}/cluster`, { token: "writer-secret" })).status, 200);
    });

    await t.step("event streams need the subscribe permission", async () => {
      const refused = await request(`${api}/topics/orders.eu/events`, { token: "writer-secret" });
      assert.equal(refused.status, 403);
      const reader = await EventReader.open(`${api}/topics/orders.eu/events?from=earliest`, {
        authorization: "Bearer reader-secret",
      });
      try {
        assert.equal(reader.response.status, 200);
        assert.equal((await reader.next()).type, "subscribed");
        const [message] = await reader.messages(1);
        assert.deepEqual(message.data, { topic: "orders.eu", offset: 0, message: "m" });
      } finally {
        await reader.close();
      }
    });

    await t.step(
      "the OpenAPI document and the console need no token; stats show visible topics",
      async () => {
        assert.equal((await request(`${api}/openapi.json`)).status, 200);
        const page = await fetch(`${peer.url}/`);
        assert.equal(page.status, 200);
        await page.body?.cancel();
        const stats = await request(`${api}/stats`, { token: "writer-secret" });
        assert.equal(stats.status, 200);
        assert.ok(Object.keys(stats.body.delivered).every((topic) => topic.startsWith("orders.")));
      },
    );

    await t.step(
      "/metrics on the HTTP port takes the metrics token, not a client token",
      async () => {
        const without = await fetch(`${peer.url}/metrics`);
        assert.equal(without.status, 401);
        await without.body?.cancel();
        const client = await fetch(`${peer.url}/metrics`, {
          headers: { authorization: "Bearer ops-secret" },
        });
        assert.equal(client.status, 401);
        await client.body?.cancel();
        const scrape = await fetch(`${peer.url}/metrics`, {
          headers: { authorization: "Bearer scrape-secret" },
        });
        assert.equal(scrape.status, 200);
        assert.match(
          await scrape.text(),
          /pubsub_requests_total\{action="publish",status="forbidden"\} 2/,
        );
      },
    );
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with --auth-token-file the one token may do everything over HTTP", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pubsub-http-token-" });
  await Deno.writeTextFile(`${dir}/token`, "only-token\n");
  const peer = await startHttpPeer(["--auth-token-file", `${dir}/token`]);
  try {
    const missing = await request(`${peer.url}/api/topics`, {
      method: "POST",
      json: { name: "t" },
    });
    assert.equal(missing.status, 401);
    const created = await request(`${peer.url}/api/topics`, {
      method: "POST",
      json: { name: "t" },
      token: "only-token",
    });
    assert.equal(created.status, 201);
    const published = await request(`${peer.url}/api/topics/t/messages`, {
      method: "POST",
      body: "x",
      token: "only-token",
    });
    assert.equal(published.status, 200);
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});
