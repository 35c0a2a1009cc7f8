import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  AccessPolicy,
  AuthFileError,
  fullAccessToken,
  globMatches,
  parseAuthFile,
  refusalOf,
} from "../../lib/peer/auth.ts";
import type { Broker } from "../../lib/peer/broker.ts";
import { Session } from "../../lib/peer/session.ts";
import { ProtocolError } from "../../lib/wire/errors.ts";
import type { Request } from "../../lib/wire/requests.ts";
import {
  freePort,
  type PeerProcess,
  programOutput,
  runPeerToExit,
  startPeer,
} from "../_helpers/peer_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";

const mainPath = new URL("../../main.ts", import.meta.url).pathname;

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The auth file of the process tests: one token per role. */
const authDocument = {
  tokens: [
    {
      name: "orders-writer",
      token: "writer-secret",
      permissions: [{ topics: "orders.*", allow: ["publish"] }],
    },
    {
      name: "orders-reader",
      token: "reader-secret",
      permissions: [{ topics: ["orders.*", "*-audit"], allow: ["subscribe"] }],
    },
    {
      name: "orders-admin",
      token_sha256: sha256("admin-secret"),
      permissions: [{ topics: "orders.*", allow: ["admin", "subscribe"] }],
    },
    { name: "monitor", token: "monitor-secret", permissions: [] },
  ],
};

function tokensFile(document: unknown = authDocument): string {
  return JSON.stringify(document);
}

function assertAuthFileError(text: string, pattern: RegExp, secret?: string): void {
  assert.throws(() => parseAuthFile(text), (error: unknown) => {
    assert.ok(error instanceof AuthFileError, String(error));
    assert.match(error.message, pattern);
    assert.doesNotMatch(error.message, /\n/);
    if (secret !== undefined) assert.ok(!error.message.includes(secret), error.message);
    return true;
  });
}

Deno.test("globMatches treats * as any run of characters and everything else literally", () => {
  assert.ok(globMatches("orders.*", "orders.eu"));
  assert.ok(globMatches("orders.*", "orders.eu.west"));
  assert.ok(!globMatches("orders.*", "orders"));
  assert.ok(!globMatches("orders.*", "ordersXeu"));
  assert.ok(globMatches("*", "anything"));
  assert.ok(globMatches("*-audit", "billing-audit"));
  assert.ok(!globMatches("*-audit", "billing-audit-old"));
  assert.ok(globMatches("a*b*c", "aXXbYYc"));
  assert.ok(!globMatches("a*b*c", "aXXbYY"));
  assert.ok(globMatches("events", "events"));
  assert.ok(!globMatches("events", "events2"));
  // Many stars against a long name that almost matches stays fast.
  const started = performance.now();
  assert.ok(!globMatches("a*a*a*a*a*a*a*a*a*b", "a".repeat(249)));
  assert.ok(performance.now() - started < 100);
});

Deno.test("parseAuthFile reads tokens, sha256 tokens and topic patterns", () => {
  const entries = parseAuthFile(tokensFile());
  assert.deepEqual(entries.map((entry) => entry.name), [
    "orders-writer",
    "orders-reader",
    "orders-admin",
    "monitor",
  ]);
  const policy = new AccessPolicy(entries);
  const writer = policy.authenticate("writer-secret")!;
  assert.equal(writer.name, "orders-writer");
  assert.ok(writer.allows("publish", "orders.eu"));
  assert.ok(!writer.allows("subscribe", "orders.eu"));
  assert.ok(!writer.allows("publish", "payments"));
  assert.equal(policy.authenticate("admin-secret")?.name, "orders-admin");
  assert.ok(policy.authenticate("reader-secret")!.allows("subscribe", "billing-audit"));
  assert.equal(policy.authenticate("monitor-secret")?.sees("orders.eu"), false);
});

Deno.test("AccessPolicy accepts only exact tokens, whatever their length", () => {
  const policy = new AccessPolicy(parseAuthFile(tokensFile()));
  for (const wrong of ["", "writer", "writer-secret ", "writer-secret2", "WRITER-SECRET"]) {
    assert.equal(policy.authenticate(wrong), undefined, wrong);
  }
  assert.equal(policy.authenticate(sha256("admin-secret")), undefined);
});

Deno.test("parseAuthFile refuses a bad file with one line naming the problem and never the token", () => {
  const file = (token: Record<string, unknown>) =>
    JSON.stringify({ tokens: [{ name: "ops", token: "top-secret", permissions: [], ...token }] });
  assertAuthFileError('{"tokens": [{"token": "top-secret" oops', /not valid JSON/, "top-secret");
  assertAuthFileError("top-secret", /not valid JSON/, "top-secret");
  assertAuthFileError("[]", /must hold a JSON object/);
  assertAuthFileError("{}", /'tokens' must be a non-empty array/);
  assertAuthFileError('{"tokens":[],"extra":1}', /unknown field "extra"/);
  assertAuthFileError(file({ token: "" }), /tokens\[0\] \('ops'\): 'token' must be a non-empty/);
  assertAuthFileError(file({ token: " top-secret" }), /surrounding whitespace/, "top-secret");
  assertAuthFileError(
    file({ token_sha256: "abc" }),
    /exactly one of 'token' and 'token_sha256'/,
    "top-secret",
  );
  assertAuthFileError(
    file({ token: undefined, token_sha256: "abc" }),
    /'token_sha256' must be 64 hexadecimal digits/,
  );
  assertAuthFileError(file({ name: "" }), /tokens\[0\]: 'name' must be/);
  assertAuthFileError(file({ name: "two words" }), /tokens\[0\]: 'name' must be/);
  assertAuthFileError(file({ permissions: undefined }), /'permissions' must be an array/);
  assertAuthFileError(file({ permisions: [] }), /unknown field "permisions"/);
  assertAuthFileError(
    file({ permissions: [{ topics: "orders.*", allow: ["write"] }] }),
    /permissions\[0\]: unknown permission "write" \(expected publish, subscribe, admin\)/,
  );
  assertAuthFileError(
    file({ permissions: [{ topics: "orders.*", allow: [] }] }),
    /'allow' must be a non-empty array/,
  );
  assertAuthFileError(
    file({ permissions: [{ topics: "orders/*", allow: ["publish"] }] }),
    /"orders\/\*" is not a topic name or \*-glob/,
  );
  assertAuthFileError(
    file({ permissions: [{ topics: [], allow: ["publish"] }] }),
    /'topics' must be a topic pattern or a non-empty array/,
  );
  assertAuthFileError(
    file({ permissions: [{ topics: "a", allow: ["publish"], deny: [] }] }),
    /unknown field "deny"/,
  );
  const twice = (second: Record<string, unknown>) =>
    JSON.stringify({
      tokens: [
        { name: "first", token: "top-secret", permissions: [] },
        { name: "second", token: "other-secret", permissions: [], ...second },
      ],
    });
  assertAuthFileError(
    twice({ token: "top-secret" }),
    /tokens\[1\] \('second'\) has the same token as tokens\[0\] \('first'\)/,
    "top-secret",
  );
  assertAuthFileError(
    twice({ token: undefined, token_sha256: sha256("top-secret") }),
    /has the same token as tokens\[0\]/,
  );
  assertAuthFileError(twice({ name: "first" }), /tokens\[1\] has the name 'first' of tokens\[0\]/);
});

Deno.test("AccessPolicy refuses an auth file token equal to the --auth-token-file token", () => {
  const entries = parseAuthFile(tokensFile());
  assert.throws(
    () => new AccessPolicy([fullAccessToken("writer-secret"), ...entries]),
    /Tokens 'auth-token-file' and 'orders-writer' are the same token/,
  );
});

Deno.test("refusalOf maps every action to its permission and remove_node to admin on *", () => {
  const policy = new AccessPolicy([
    ...parseAuthFile(tokensFile()),
    fullAccessToken("root-secret"),
  ]);
  const admin = policy.authenticate("admin-secret")!;
  const root = policy.authenticate("root-secret")!;
  const monitor = policy.authenticate("monitor-secret")!;
  const requests: [Request, boolean][] = [
    [{ action: "create_topic", topic_name: "orders.new" }, true],
    [{ action: "delete_topic", topic_name: "orders.new" }, true],
    [{ action: "create_topic", topic_name: "payments" }, false],
    [{ action: "publish", topic_name: "orders.new", message: "x" }, false],
    [{ action: "fetch", topic_name: "orders.new", from_offset: 0, max: 1 }, true],
    [{ action: "remove_node", node_id: 2 }, false],
    [{ action: "describe_topic", topic_name: "payments" }, true],
    [{ action: "cluster_status" }, true],
    [{ action: "fetch_topics" }, true],
    [{ action: "ping" }, true],
  ];
  for (const [request, allowed] of requests) {
    assert.equal(refusalOf(admin, request) === undefined, allowed, JSON.stringify(request));
    assert.equal(refusalOf(root, request), undefined);
  }
  assert.match(
    refusalOf(admin, { action: "remove_node", node_id: 2 })!,
    /Token 'orders-admin' lacks the 'admin' permission on topics '\*' that 'remove_node' needs/,
  );
  assert.match(
    refusalOf(monitor, { action: "subscribe", topic_name: "orders.eu" } as Request)!,
    /Token 'monitor' lacks the 'subscribe' permission on topic 'orders.eu'/,
  );
  // An action added later without a classification needs admin on every topic.
  const future = { action: "alter_topic", topic_name: "orders.eu" } as unknown as Request;
  assert.equal(refusalOf(admin, future), undefined);
  const unknown = { action: "compact_everything" } as unknown as Request;
  assert.notEqual(refusalOf(admin, unknown), undefined);
  assert.equal(refusalOf(root, unknown), undefined);
});

/** A broker that records every call; the calls a forbidden request makes must be none. */
function recordingBroker(calls: string[]): Broker {
  return new Proxy({} as Broker, {
    get: (_target, key) => {
      if (key === "nodeId") return 1;
      if (key === "then") return undefined;
      return () => {
        calls.push(String(key));
        return Promise.resolve(key === "createTopic" ? true : []);
      };
    },
  });
}

Deno.test("Session refuses a forbidden request before any broker call, and the cluster's own sessions may do everything", async () => {
  const calls: string[] = [];
  const access = new AccessPolicy(parseAuthFile(tokensFile()));
  const session = new Session({ broker: recordingBroker(calls), access });
  await assert.rejects(
    session.handle({ action: "create_topic", topic_name: "orders.eu" }),
    (error: unknown) => error instanceof ProtocolError && error.code === "unauthorized",
  );
  assert.equal(session.authenticated, false);
  assert.deepEqual((await session.handle({ action: "auth", token: "writer-secret" })).response, {
    status: "authenticated",
  });
  assert.equal(session.authenticated, true);
  for (
    const request of [
      { action: "create_topic", topic_name: "orders.eu" },
      { action: "publish", topic_name: "payments", message: "x" },
      { action: "subscribe", topic_name: "orders.eu", subscriber_id: "s", max_in_flight: 1 },
      { action: "remove_node", node_id: 2 },
    ] as Request[]
  ) {
    await assert.rejects(
      session.handle(request),
      (error: unknown) => error instanceof ProtocolError && error.code === "forbidden",
    );
  }
  assert.deepEqual(calls, []);
  // As ClusterBroker builds it for forwarded requests: no access, no token.
  const forwarded = new Session({ broker: recordingBroker(calls), hops: 1 });
  assert.equal(forwarded.authenticated, true);
  assert.deepEqual(
    (await forwarded.handle({ action: "create_topic", topic_name: "payments" })).response,
    { status: "topic_created", topic: "payments" },
  );
  assert.deepEqual(calls, ["createTopic"]);
});

Deno.test("Session checks a request pipelined right behind 'auth' against that token", async () => {
  const calls: string[] = [];
  const access = new AccessPolicy(parseAuthFile(tokensFile()));
  const session = new Session({ broker: recordingBroker(calls), access });
  // Not awaited in between, as the connection hands over pipelined frames.
  const authenticated = session.handle({ action: "auth", token: "admin-secret" });
  const created = session.handle({ action: "create_topic", topic_name: "orders.eu" });
  assert.deepEqual((await authenticated).response, { status: "authenticated" });
  assert.deepEqual((await created).response, { status: "topic_created", topic: "orders.eu" });
  assert.deepEqual(calls, ["createTopic"]);
});

/** Writes the auth files of a test into a fresh directory. */
async function authFiles(): Promise<{ dir: string; authFile: string; rootTokenFile: string }> {
  const dir = await Deno.makeTempDir({ prefix: "pubsub-auth-" });
  await Deno.writeTextFile(`${dir}/auth.json`, tokensFile());
  await Deno.writeTextFile(`${dir}/root-token`, "root-secret\n");
  return { dir, authFile: `${dir}/auth.json`, rootTokenFile: `${dir}/root-token` };
}

async function connectAs(peer: PeerProcess, token: string): Promise<RawClient> {
  const client = await RawClient.connect(peer.port);
  assert.deepEqual(await client.request({ action: "auth", token }), { status: "authenticated" });
  return client;
}

function statusOf(answer: unknown): string {
  return Array.isArray(answer) ? "array" : String((answer as { status?: unknown }).status);
}

async function assertForbidden(client: RawClient, request: Record<string, unknown>) {
  const answer = await client.request({ ...request, id: "x" }) as Record<string, unknown>;
  assert.equal(answer.status, "forbidden", `${JSON.stringify(request)}: ${JSON.stringify(answer)}`);
  assert.equal(answer.id, "x");
  assert.match(String(answer.error), /^Token '[a-z-]+' lacks the '[a-z]+' permission on topics? /);
  assert.ok(!String(answer.error).includes("secret"));
}

Deno.test("a peer with --auth-file checks each token's permissions per topic and keeps the connection open on forbidden", async (t) => {
  const { dir, authFile, rootTokenFile } = await authFiles();
  const peer = await startPeer({
    dataDir: `${dir}/data`,
    args: ["--auth-file", authFile, "--auth-token-file", rootTokenFile],
  });
  const clients: RawClient[] = [];
  const open = async (token: string) => {
    const client = await connectAs(peer, token);
    clients.push(client);
    return client;
  };
  try {
    await t.step(
      "a request without auth is unauthorized and the connection stays open",
      async () => {
        const client = await RawClient.connect(peer.port);
        clients.push(client);
        assert.equal(statusOf(await client.request({ action: "ping" })), "unauthorized");
        assert.equal(
          statusOf(
            await client.request({ action: "publish", topic_name: "orders.eu", message: "x" }),
          ),
          "unauthorized",
        );
        assert.deepEqual(await client.request({ action: "auth", token: "monitor-secret" }), {
          status: "authenticated",
        });
        assert.equal(statusOf(await client.request({ action: "ping" })), "pong");
      },
    );

    await t.step("a wrong token is unauthorized and closes the connection", async () => {
      const client = await RawClient.connect(peer.port);
      clients.push(client);
      const answer = await client.request({ action: "auth", token: "writer-secret-guess" });
      assert.equal(statusOf(answer), "unauthorized");
      assert.ok(!JSON.stringify(answer).includes("secret"));
      await client.waitClosed();
    });

    const root = await open("root-secret");
    const admin = await open("admin-secret");
    const writer = await open("writer-secret");
    const reader = await open("reader-secret");
    const monitor = await open("monitor-secret");

    await t.step("admin on orders.* creates and deletes only orders.* topics", async () => {
      assert.equal(
        statusOf(await admin.request({ action: "create_topic", topic_name: "orders.eu" })),
        "topic_created",
      );
      assert.equal(
        statusOf(await admin.request({ action: "create_topic", topic_name: "orders.tmp" })),
        "topic_created",
      );
      assert.equal(
        statusOf(await admin.request({ action: "delete_topic", topic_name: "orders.tmp" })),
        "topic_deleted",
      );
      await assertForbidden(admin, { action: "create_topic", topic_name: "payments" });
      await assertForbidden(admin, { action: "remove_node", node_id: 99 });
      assert.equal(
        statusOf(await root.request({ action: "create_topic", topic_name: "payments" })),
        "topic_created",
      );
      await assertForbidden(admin, { action: "delete_topic", topic_name: "payments" });
    });

    await t.step("publish on orders.* lets the writer publish there and nothing else", async () => {
      assert.deepEqual(
        await writer.request({ action: "publish", topic_name: "orders.eu", message: "o1" }),
        { status: "message_published", topic: "orders.eu", offset: 0 },
      );
      assert.equal(
        statusOf(
          await writer.request({
            action: "publish_batch",
            topic_name: "orders.eu",
            messages: ["o2"],
          }),
        ),
        "messages_published",
      );
      await assertForbidden(writer, { action: "publish", topic_name: "payments", message: "p" });
      await assertForbidden(writer, {
        action: "publish_batch",
        topic_name: "payments",
        messages: ["p"],
      });
      // The glob needs the dot, and a missing topic is forbidden before it is looked up.
      await assertForbidden(writer, { action: "publish", topic_name: "orders", message: "p" });
      await assertForbidden(writer, { action: "publish", topic_name: "ordersX", message: "p" });
      await assertForbidden(writer, { action: "fetch", topic_name: "orders.eu" });
      await assertForbidden(writer, { action: "fetch_messages", topic_name: "orders.eu" });
      await assertForbidden(writer, {
        action: "subscribe",
        topic_name: "orders.eu",
        subscriber_id: "w",
      });
      await assertForbidden(writer, { action: "create_topic", topic_name: "orders.new" });
      await assertForbidden(writer, { action: "delete_topic", topic_name: "orders.eu" });
      await assertForbidden(writer, { action: "remove_node", node_id: 99 });
      assert.equal(statusOf(await writer.request({ action: "ping" })), "pong");
    });

    await t.step(
      "subscribe on orders.* covers fetch, subscribe, ack and unsubscribe there",
      async () => {
        assert.deepEqual(
          await reader.request({ action: "fetch_messages", topic_name: "orders.eu" }),
          [
            "o1",
            "o2",
          ],
        );
        assert.deepEqual(
          await reader.request({
            action: "subscribe",
            topic_name: "orders.eu",
            subscriber_id: "r1",
            from: "earliest",
          }),
          { status: "subscribed", topic: "orders.eu", subscriber_id: "r1" },
        );
        const pushed = await reader.next() as Record<string, unknown>;
        assert.equal(pushed.event, "message");
        assert.equal(pushed.message, "o1");
        await reader.next();
        assert.equal(
          statusOf(
            await reader.request({
              action: "ack",
              topic_name: "orders.eu",
              subscriber_id: "r1",
              offset: 1,
            }),
          ),
          "acked",
        );
        assert.equal(
          statusOf(
            await reader.request({
              action: "unsubscribe",
              topic_name: "orders.eu",
              subscriber_id: "r1",
            }),
          ),
          "unsubscribed",
        );
        await assertForbidden(reader, { action: "fetch", topic_name: "payments" });
        await assertForbidden(reader, {
          action: "subscribe",
          topic_name: "payments",
          subscriber_id: "r",
        });
        await assertForbidden(reader, {
          action: "ack",
          topic_name: "payments",
          subscriber_id: "r",
          offset: 0,
        });
        await assertForbidden(reader, { action: "publish", topic_name: "orders.eu", message: "r" });
      },
    );

    await t.step(
      "any token may describe, ping and read the cluster status; fetch_topics lists only its topics",
      async () => {
        assert.deepEqual(await reader.request({ action: "fetch_topics" }), ["orders.eu"]);
        assert.deepEqual(await monitor.request({ action: "fetch_topics" }), []);
        assert.deepEqual(await root.request({ action: "fetch_topics" }), ["orders.eu", "payments"]);
        assert.equal(
          statusOf(await monitor.request({ action: "describe_topic", topic_name: "payments" })),
          "topic",
        );
        assert.equal(statusOf(await monitor.request({ action: "cluster_status" })), "cluster");
        assert.equal(statusOf(await monitor.request({ action: "ping" })), "pong");
      },
    );

    await t.step(
      "the --auth-token-file token keeps every permission, remove_node included",
      async () => {
        const answer = await root.request({ action: "remove_node", node_id: 99 });
        assert.equal(statusOf(answer), "bad_request", JSON.stringify(answer));
        assert.deepEqual(await root.request({ action: "fetch", topic_name: "payments" }), {
          status: "messages",
          topic: "payments",
          messages: [],
          next_offset: 0,
        });
      },
    );

    await t.step("pubsub client prints forbidden as one line and exits 1", async () => {
      await Deno.writeTextFile(`${dir}/writer-token`, "writer-secret\n");
      const output = await new Deno.Command(Deno.execPath(), {
        args: [
          ...["run", "-A", mainPath, "client", "--peers", peer.address],
          ...["--token-file", `${dir}/writer-token`, "publish", "payments", "hi"],
        ],
        stdin: "null",
      }).output();
      const stderr = programOutput(output.stderr);
      assert.equal(output.code, 1, stderr);
      assert.deepEqual(stderr.trimEnd().split("\n"), [
        "pubsub: Token 'orders-writer' lacks the 'publish' permission on topic 'payments'.",
      ]);
    });
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await peer.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a request forwarded to the topic's leader on another peer passes with the edge's permission check", async () => {
  const { dir, authFile, rootTokenFile } = await authFiles();
  const ports = [freePort(), freePort()];
  const peers = ports.map((port, index) => `${index + 1}@127.0.0.1:${port}`).join(",");
  const started: PeerProcess[] = [];
  const clients: RawClient[] = [];
  try {
    for (const id of [1, 2]) {
      started.push(
        await startPeer({
          id,
          port: ports[id - 1],
          peers,
          dataDir: `${dir}/data-${id}`,
          args: ["--auth-file", authFile, "--auth-token-file", rootTokenFile],
        }),
      );
    }
    const root = await connectAs(started[0], "root-secret");
    clients.push(root);
    // Both peers alive before the topic is placed, so that a one-replica topic may land on either.
    const deadline = Date.now() + 30_000;
    let alive = 0;
    while (alive < 2 && Date.now() < deadline) {
      const status = await root.request({ action: "cluster_status" }) as {
        nodes?: { state: string }[];
      };
      alive = (status.nodes ?? []).filter((node) => node.state === "alive").length;
      if (alive < 2) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(alive, 2, "both peers alive");
    for (const topic of ["orders.eu", "payments"]) {
      assert.equal(
        statusOf(
          await root.request({ action: "create_topic", topic_name: topic, replication_factor: 1 }),
        ),
        "topic_created",
      );
    }
    const described = await root.request({
      action: "describe_topic",
      topic_name: "orders.eu",
    }) as { leader: number | null };
    assert.ok(described.leader === 1 || described.leader === 2, JSON.stringify(described));
    // The writer talks to the peer that does not lead the topic: its publish is forwarded.
    const edge = started[described.leader === 1 ? 1 : 0];
    const writer = await connectAs(edge, "writer-secret");
    clients.push(writer);
    const published = await writer.request({
      action: "publish",
      topic_name: "orders.eu",
      message: "forwarded",
    });
    assert.equal(statusOf(published), "message_published", JSON.stringify(published));
    await assertForbidden(writer, { action: "publish", topic_name: "payments", message: "no" });
    const reader = await connectAs(edge, "reader-secret");
    clients.push(reader);
    assert.deepEqual(await reader.request({ action: "fetch_messages", topic_name: "orders.eu" }), [
      "forwarded",
    ]);
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(started.map((peer) => peer.stop()));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pubsub peer refuses an invalid --auth-file with exit 2 and one line, before touching its data directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pubsub-auth-" });
  const write = async (name: string, text: string) => {
    await Deno.writeTextFile(`${dir}/${name}`, text);
    return `${dir}/${name}`;
  };
  const entry = (fields: Record<string, unknown>) =>
    JSON.stringify({ tokens: [{ name: "ops", token: "top-secret", permissions: [], ...fields }] });
  const cases: [string[], RegExp][] = [
    [["--auth-file", await write("not-json", "top-secret")], /is not valid JSON/],
    [
      [
        "--auth-file",
        await write(
          "unknown-permission",
          entry({ permissions: [{ topics: "*", allow: ["write"] }] }),
        ),
      ],
      /unknown permission "write"/,
    ],
    [
      ["--auth-file", await write("empty-token", entry({ token: "" }))],
      /'token' must be a non-empty string/,
    ],
    [
      [
        "--auth-file",
        await write(
          "duplicate-token",
          JSON.stringify({
            tokens: [
              { name: "a", token: "top-secret", permissions: [] },
              { name: "b", token: "top-secret", permissions: [] },
            ],
          }),
        ),
      ],
      /tokens\[1\] \('b'\) has the same token as tokens\[0\] \('a'\)/,
    ],
    [
      [
        "--auth-file",
        await write("root-too", entry({})),
        "--auth-token-file",
        await write("root-token", "top-secret\n"),
      ],
      /Tokens 'auth-token-file' and 'ops' are the same token/,
    ],
    [["--auth-file", `${dir}/missing.json`], /Cannot read the file/],
  ];
  try {
    const runs = await Promise.all(
      cases.map(([args]) =>
        runPeerToExit([
          ...["--id", "1", "--port", String(freePort()), "--host", "127.0.0.1"],
          ...args,
          ...["--data-dir", `${dir}/data`],
        ])
      ),
    );
    for (const [index, run] of runs.entries()) {
      const [args, pattern] = cases[index];
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      const lines = run.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0], /^pubsub: Invalid --auth-file /);
      assert.match(lines[0], pattern);
      assert.ok(!run.stderr.includes("top-secret"), run.stderr);
    }
    await assert.rejects(Deno.stat(`${dir}/data`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
