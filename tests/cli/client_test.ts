import assert from "node:assert/strict";
import { programOutput, startPeer } from "../_helpers/peer_process.ts";
import { lineBytesMax } from "../../lib/cli/_client_output.ts";
import { messageJsonBytesMax } from "../../lib/cli/client.ts";

const mainPath = new URL("../../main.ts", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** Every stdout line parsed as JSON (with --json). */
  json: unknown[];
}

/** Runs `pubsub client ...args`, feeding `stdin` when given. */
async function runClient(
  args: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", mainPath, "client", ...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: options.env,
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const output = await child.output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = programOutput(output.stderr);
  const lines = stdout.split("\n").filter(Boolean);
  const json = args.includes("--json") && output.code !== 2
    ? lines.map((line) => JSON.parse(line))
    : [];
  return { code: output.code, stdout, stderr, json };
}

/** Asserts a usage error: exit 2 and exactly one stderr line matching `pattern`. */
function assertUsageError(run: Run, pattern: RegExp): void {
  assert.equal(run.code, 2, `exit code, stderr: ${run.stderr}`);
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line expected: ${run.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(run.stderr, /\bat .*:\d+:\d+/, "no stack trace");
}

Deno.test("pubsub client one-shot commands print one JSON value per line with --json", async () => {
  const peer = await startPeer();
  const peers = ["--peers", peer.address, "--json"];
  try {
    assert.deepEqual((await runClient([...peers, "create-topic", "events"])).json, [
      { status: "topic_created", topic: "events" },
    ]);
    assert.deepEqual((await runClient([...peers, "publish", "events", "hello"])).json, [
      { status: "message_published", topic: "events", offset: 0 },
    ]);
    const fromStdin = await runClient([...peers, "publish", "events", "-"], {
      stdin: "a\nb\r\n\nc",
    });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.deepEqual(fromStdin.json, [
      { status: "messages_published", topic: "events", first_offset: 1, count: 3 },
    ]);
    const file = await Deno.makeTempFile();
    await Deno.writeTextFile(file, "d\ne\n");
    const fromFile = await runClient([...peers, "publish", "events", "--file", file]);
    await Deno.remove(file);
    assert.deepEqual(fromFile.json, [
      { status: "messages_published", topic: "events", first_offset: 4, count: 2 },
    ]);
    assert.deepEqual(
      (await runClient([...peers, "fetch", "events", "--from", "3", "--max", "2"])).json,
      [{
        status: "messages",
        topic: "events",
        messages: [{ offset: 3, message: "c" }, { offset: 4, message: "d" }],
        next_offset: 5,
      }],
    );
    assert.deepEqual((await runClient([...peers, "topics"])).json, [["events"]]);
    const described = (await runClient([...peers, "describe", "events"])).json[0] as Record<
      string,
      unknown
    >;
    assert.equal(described.status, "topic");
    assert.equal(described.next_offset, 6);
    const status = (await runClient([...peers, "status"])).json[0] as Record<string, unknown>;
    assert.equal(status.status, "cluster");
    assert.equal(status.meta_leader, 1);
    assert.deepEqual((await runClient([...peers, "ping"])).json, [{ status: "pong", node: 1 }]);
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("pubsub client publish refuses a line too large for one message: exit 2, naming the line", async () => {
  const peer = await startPeer();
  const peers = ["--peers", peer.address, "--json"];
  try {
    await runClient([...peers, "create-topic", "events"]);
    // The largest line accepted: its JSON string (2 quotes) is exactly the limit.
    const largest = "y".repeat(messageJsonBytesMax - 2);
    const fits = await runClient([...peers, "publish", "events", "-"], {
      stdin: `a\n${largest}\n`,
    });
    assert.equal(fits.code, 0, fits.stderr);
    assert.deepEqual(fits.json.map((answer) => (answer as { count: number }).count), [1, 1]);
    // One byte more, and a line that only escaping makes too large (each '"' takes 2).
    const escaped = '"'.repeat(messageJsonBytesMax / 2);
    for (
      const [line, bytes] of [[`${largest}y`, messageJsonBytesMax + 1], [
        escaped,
        messageJsonBytesMax + 2,
      ]] as const
    ) {
      assertUsageError(
        await runClient([...peers, "publish", "events", "-"], { stdin: `b\n${line}\nc\n` }),
        new RegExp(
          `^pubsub: Cannot publish line 2 as it takes ${bytes} bytes as a JSON string and one message may take at most ${messageJsonBytesMax}$`,
        ),
      );
    }
    assertUsageError(
      await runClient([...peers, "publish", "events", "-"], {
        stdin: `d\n${"z".repeat(lineBytesMax + 1)}`,
      }),
      /^pubsub: Cannot publish line 2 as it is longer than 1048576 characters/,
    );
    // Nothing of a refused input was published: the lines before it waited for their batch.
    const fetched = await runClient([...peers, "fetch", "events", "--max", "10"]);
    const messages = (fetched.json[0] as { messages: { message: string }[] }).messages;
    assert.deepEqual(messages.map(({ message }) => message.length), [1, largest.length]);
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("pubsub client subscribe prints --count messages and acks them for the next run", async () => {
  const peer = await startPeer();
  const peers = ["--peers", peer.address, "--json"];
  try {
    await runClient([...peers, "create-topic", "events"]);
    await runClient([...peers, "publish", "events", "-"], { stdin: "m0\nm1\nm2\n" });
    const subscribe = [...peers, "subscribe", "events", "--subscriber-id", "s1", "--count"];
    const first = await runClient([...subscribe, "2", "--from", "earliest"]);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(first.json, [{ offset: 0, message: "m0" }, { offset: 1, message: "m1" }]);
    const second = await runClient([...subscribe, "1"]);
    assert.deepEqual(second.json, [{ offset: 2, message: "m2" }]);
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("pubsub client prints human output and takes its peers from PUBSUB_PEERS", async () => {
  const peer = await startPeer();
  const env = { PUBSUB_PEERS: peer.address };
  try {
    const created = await runClient(["create-topic", "events"], { env });
    assert.equal(created.stdout, "Topic 'events' created\n");
    await runClient(["publish", "events", "hi"], { env });
    const fetched = await runClient(["fetch", "events"], { env });
    assert.equal(fetched.stdout, "0\thi\n(next offset 1)\n");
    const status = await runClient(["status"], { env });
    assert.match(
      status.stdout,
      /^ID\s+ADDRESS\s+STATE\s+LAST HEARTBEAT\n1 \*\s+127\.0\.0\.1:\d+\s+alive/,
    );
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("pubsub client exits 1 with one line for an error answer", async () => {
  const peer = await startPeer();
  try {
    const human = await runClient(["--peers", peer.address, "delete-topic", "missing"]);
    assert.equal(human.code, 1);
    assert.equal(human.stderr, "pubsub: Topic 'missing' does not exist.\n");
    const json = await runClient(["--peers", peer.address, "--json", "fetch", "missing"]);
    assert.equal(json.code, 1);
    assert.deepEqual(json.json, [{
      status: "topic_not_found",
      error: "Topic 'missing' does not exist.",
    }]);
  } finally {
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("pubsub client exits 1 with one line when no peer is reachable", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const address = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  listener.close();
  const run = await runClient(["--peers", address, "--timeout", "200", "ping"]);
  assert.equal(run.code, 1);
  assert.equal(run.stderr.split("\n").length, 2, run.stderr); // one line and its newline
  assert.match(run.stderr, new RegExp(`^pubsub: Cannot reach any peer of ${address} \\(`));
  assert.match(run.stderr, /Connection refused/);
  assert.match(run.stderr, /Is the cluster running\? Start one with 'npx -y deno task start'/);
});

Deno.test("pubsub client exits 2 with one line naming a bad flag or a missing argument", async () => {
  const peers = ["--peers", "127.0.0.1:1"];
  assertUsageError(await runClient([...peers, "topics", "--bogus"]), /unknown option '--bogus'/);
  assertUsageError(await runClient([...peers, "publish"]), /missing required argument 'topic'/);
  assertUsageError(
    await runClient([...peers, "subscribe", "events"]),
    /required option '--subscriber-id <id>' not specified/,
  );
  assertUsageError(
    await runClient([...peers, "fetch", "t", "--max", "0"]),
    /'--max <n>' argument '0'/,
  );
  assertUsageError(await runClient(["--peers", "nohost", "topics"]), /--peers.*'nohost'/);
  assertUsageError(await runClient([...peers, "explode"]), /unknown command 'explode'/);
});

// Every usage error speaks of the command's own arguments and flags, never of
// protocol fields, and exits 2 before any connection is tried.
const usageErrors: [string[], RegExp][] = [
  [["publish", "events"], /^pubsub: publish needs a message: give it as an argument, '-'/],
  [
    ["publish", "events", "hi", "--file", "x"],
    /^pubsub: publish takes a message argument or --file, not both$/,
  ],
  [
    ["publish", "bad name", "hi"],
    /^pubsub: <topic>: Topic name 'bad name' is not valid: use 1-249/,
  ],
  [["create-topic", "a/b"], /^pubsub: <topic>: Topic name 'a\/b' is not valid/],
  [["create-topic", ".."], /^pubsub: <topic>: Topic name '\.\.' is not valid/],
  [
    ["fetch", "events", "--from", "-1"],
    /^pubsub: option '--from <offset>' argument '-1' is invalid/,
  ],
  [
    ["subscribe", "events", "--subscriber-id", "s", "--from", "soon"],
    /Expected earliest, latest or an offset/,
  ],
  [["remove-node", "zero"], /^pubsub: <id>: Expected an integer between 1 and 1000000/],
  [["--timeout", "0", "topics"], /^pubsub: option '--timeout <ms>' argument '0' is invalid/],
  [
    ["--token-file", "/nonexistent/token", "topics"],
    /^pubsub: Cannot read --token-file \/nonexistent\/token: /,
  ],
];

Deno.test("pubsub client usage errors name the argument or flag in one line and exit 2", async () => {
  for (const [args, pattern] of usageErrors) {
    const run = await runClient(["--peers", "127.0.0.1:1", ...args]);
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    const lines = run.stderr.trim().split("\n");
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0], pattern, args.join(" "));
    assert.doesNotMatch(lines[0], /topic_name|Field '/, args.join(" "));
  }
});

Deno.test("pubsub client without a subcommand and without a terminal prints help and exits 2", async () => {
  const run = await runClient([]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /^Usage: pubsub client/);
  assert.match(run.stderr, /create-topic/);
});

Deno.test("pubsub client --help on a subcommand exits 0 with its usage", async () => {
  for (const command of ["publish", "subscribe", "fetch", "status", "remove-node"]) {
    const run = await runClient([command, "--help"]);
    assert.equal(run.code, 0);
    assert.match(run.stdout, new RegExp(`^Usage: pubsub client ${command}`));
  }
});
