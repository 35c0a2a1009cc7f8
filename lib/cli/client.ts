/**
 * `pubsub client`: one-shot, scriptable commands (human output, or one JSON
 * value per line with `--json`), or the prototype's interactive menu when run
 * in a terminal without a subcommand.
 *
 * @module
 */

import { type Command, InvalidArgumentError } from "commander";
import { PubSubClient, requestEnvelopeBytesMax } from "../client/client.ts";
import { parseAddress } from "../client/_transport.ts";
import { jsonStringBytes } from "../client/_json_size.ts";
import { ConnectionError, PubSubError } from "../client/errors.ts";
import { batchMessagesMax, inFlightMessagesMax, type SubscribeFrom } from "../wire/requests.ts";
import type { RetentionPatch } from "../wire/retention.ts";
import { frameBytesMaxDefault } from "../wire/frame.ts";
import {
  ExitCode,
  exitCodes,
  integerOption,
  newProgram,
  reportError,
  runProgram,
  topicArgument,
  UsageError,
} from "./_command.ts";
import { runMenu } from "./_client_menu.ts";
import {
  formatDescription,
  formatRetention,
  formatStatusTable,
  readLines,
} from "./_client_output.ts";

/** The peers `pubsub cluster` starts by default: 127.0.0.1 ports 5001-5003. */
export const defaultClientPeers = Array.from(
  { length: 3 },
  (_, index) => `127.0.0.1:${5001 + index}`,
)
  .join(",");
/** Most bytes of messages in one publish_batch from a file, under the peers' 1 MiB frame limit. */
export const batchBytesMax = 768 * 1024;
/** Batches of a file publish in flight at once. */
export const batchesInFlightMax = 8;
/**
 * Most bytes of one message as a JSON string (quotes and escapes included)
 * that this command publishes: one request of the client's 1 MiB frame
 * limit, less its envelope. ASCII text without quotes or backslashes may
 * be this long less 2 bytes.
 */
export const messageJsonBytesMax = frameBytesMaxDefault - requestEnvelopeBytesMax;

interface GlobalFlags {
  peers?: string[];
  json?: boolean;
  tokenFile?: string;
  tlsCa?: string;
  timeout?: number;
}

/**
 * Runs `pubsub client` with `args`; resolves to the exit code.
 *
 * @example
 * ```ts
 * const code = await clientCommand(["--peers", "localhost:5001", "--json", "topics"]);
 * ```
 */
export async function clientCommand(args: string[]): Promise<number> {
  const program = newProgram(
    "pubsub client",
    "Talk to a pubsub cluster: interactive menu or one-shot commands",
  )
    .option(
      "--peers <list>",
      `bootstrap list host:port,... (env PUBSUB_PEERS; default ${defaultClientPeers})`,
      parseClientPeers,
    )
    .option("--json", "print exactly one JSON value per line")
    .option("--token-file <file>", "file holding the auth token")
    .option("--tls-ca <file>", "connect over TLS, verifying peers against this CA certificate")
    .option(
      "--timeout <ms>",
      "most time a request may take, retries included",
      integerOption(1, 3_600_000),
      5000,
    )
    .allowExcessArguments(true)
    .action(async () => {
      if (program.args.length > 0) {
        const names = program.commands.map((command) => command.name()).join(", ");
        throw new UsageError(`unknown command '${program.args[0]}' (expected one of ${names})`);
      }
      if (!Deno.stdin.isTerminal()) {
        console.error(program.helpInformation().trimEnd());
        throw new ExitCode(exitCodes.usage);
      }
      const client = await connect(program.opts<GlobalFlags>());
      try {
        await runMenu(client);
      } finally {
        await client.close();
      }
    });
  addTopicCommands(program);
  addMessageCommands(program);
  addClusterCommands(program);
  for (const command of program.commands) {
    command.exitOverride().configureOutput({ writeErr: () => {} });
  }
  return await runProgram(program, args);
}

/** Parses `--peers`; accepts `id@host:port` items too, as the peer command's list. */
function parseClientPeers(value: string): string[] {
  const peers = value.split(",").map((item) => item.trim().replace(/^\d+@/, "")).filter(Boolean);
  if (peers.length === 0) throw new InvalidArgumentError("Expected at least one host:port.");
  for (const peer of peers) {
    try {
      parseAddress(peer);
    } catch {
      throw new InvalidArgumentError(`Expected host:port items, got '${peer}'.`);
    }
  }
  return peers;
}

async function connect(flags: GlobalFlags): Promise<PubSubClient> {
  const fromEnvironment = Deno.env.get("PUBSUB_PEERS");
  const peers = flags.peers ?? parseClientPeers(fromEnvironment ?? defaultClientPeers);
  let token: string | undefined;
  if (flags.tokenFile !== undefined) {
    try {
      token = (await Deno.readTextFile(flags.tokenFile)).trim();
    } catch (error) {
      throw new UsageError(
        `Cannot read --token-file ${flags.tokenFile}: ${(error as Error).message}`,
      );
    }
    if (token === "") throw new UsageError(`Option --token-file ${flags.tokenFile} is empty`);
  }
  let tls: { caCerts: string[] } | undefined;
  if (flags.tlsCa !== undefined) {
    try {
      tls = { caCerts: [await Deno.readTextFile(flags.tlsCa)] };
    } catch (error) {
      throw new UsageError(`Cannot read --tls-ca file ${flags.tlsCa}: ${(error as Error).message}`);
    }
  }
  // --timeout bounds a whole command's request, retries included.
  return await PubSubClient.connect({
    peers,
    token,
    tls,
    requestTimeoutMs: flags.timeout,
    callTimeoutMs: flags.timeout,
  });
}

/** Connects, runs `body`, prints a runtime failure as one line, closes. */
function withClient<T extends unknown[]>(
  command: Command,
  body: (client: PubSubClient, print: Printer, ...args: T) => Promise<void>,
  check: (...args: T) => void = () => {},
): (...args: T) => Promise<void> {
  return async (...args: T) => {
    const flags = command.optsWithGlobals<GlobalFlags>();
    const print = new Printer(flags.json === true);
    // Usage errors first: a bad invocation must not wait for a connection.
    check(...args);
    let client: PubSubClient | undefined;
    try {
      client = await connect(flags);
      await body(client, print, ...args);
    } catch (error) {
      if (flags.json && error instanceof PubSubError) {
        console.log(JSON.stringify({ status: error.code, error: error.message }));
      }
      throw new ExitCode(reportError(withHint(error)));
    } finally {
      await client?.close();
    }
  };
}

/** A failure to reach any peer says what to check. */
function withHint(error: unknown): unknown {
  if (!(error instanceof ConnectionError)) return error;
  const cause = error.cause instanceof Error ? ` (${error.cause.message.split("\n")[0]})` : "";
  return new Error(
    `${error.message.replace(/\.$/, "")}${cause}. Is the cluster running? Start one with ` +
      "'npx -y deno task start', or name its peers with --peers or PUBSUB_PEERS.",
  );
}

/** Prints human text, or one JSON value per line with `--json`. */
class Printer {
  readonly json: boolean;
  constructor(json: boolean) {
    this.json = json;
  }
  line(human: string, value: unknown): void {
    console.log(this.json ? JSON.stringify(value) : human);
  }
}

function addTopicCommands(program: Command): void {
  const create = program.command("create-topic").argument("<topic>", "topic name", topicArgument)
    .description("Create a topic")
    .option("--if-not-exists", "succeed when the topic exists")
    .option("--replication-factor <n>", "replicas of the topic", integerOption(1, 7));
  addRetentionOptions(create, "(default: the peer's --retention-* flags, else keep everything)");
  create.action(withClient(create, async (client, print, topic: string) => {
    const options = create.opts<
      { ifNotExists?: boolean; replicationFactor?: number } & RetentionFlags
    >();
    const body: Record<string, unknown> = { action: "create_topic", topic_name: topic };
    if (options.replicationFactor !== undefined) {
      body.replication_factor = options.replicationFactor;
    }
    const retention = retentionPatchOf(options);
    if (Object.keys(retention).length > 0) body.retention = retention;
    try {
      const answer = await client.request(body);
      print.line(`Topic '${topic}' created`, answer);
    } catch (error) {
      if (!(options.ifNotExists && error instanceof PubSubError && error.code === "topic_exists")) {
        throw error;
      }
      print.line(`Topic '${topic}' exists`, { status: "topic_exists", topic });
    }
  }));

  const alter = program.command("alter-topic").argument("<topic>", "topic name", topicArgument)
    .description("Change a topic's retention ('none' removes a limit)");
  addRetentionOptions(alter, "('none': unlimited)", true);
  alter.action(withClient(alter, async (client, print, topic: string) => {
    const retention = await client.alterTopic(topic, retentionPatchOf(alter.opts()));
    print.line(
      `Topic '${topic}' altered: retention ${formatRetention(retention)}`,
      { status: "topic_altered", topic, retention },
    );
  }, (_topic: string) => {
    if (Object.keys(retentionPatchOf(alter.opts())).length === 0) {
      throw new UsageError(
        "alter-topic needs at least one of --retention-ms, --retention-bytes, --retention-messages, --segment-bytes",
      );
    }
  }));

  const remove = program.command("delete-topic").argument("<topic>", "topic name", topicArgument)
    .description("Delete a topic and its messages");
  remove.action(withClient(remove, async (client, print, topic: string) => {
    const answer = await client.request({ action: "delete_topic", topic_name: topic });
    print.line(`Topic '${topic}' deleted`, answer);
  }));

  const describe = program.command("describe").argument("<topic>", "topic name", topicArgument)
    .description("Show a topic's replicas, leader and offsets");
  describe.action(withClient(describe, async (client, print, topic: string) => {
    const answer = await client.request({ action: "describe_topic", topic_name: topic }, {
      retry: true,
    });
    print.line(formatDescription(answer as Record<string, unknown>), answer);
  }));

  const topics = program.command("topics").description("List topics");
  topics.action(withClient(topics, async (client, print) => {
    const answer = await client.request({ action: "fetch_topics" }, { retry: true }) as string[];
    print.line(answer.length === 0 ? "(no topics)" : answer.join("\n"), answer);
  }));
}

/**
 * The `--retention-*` options of create-topic and alter-topic: a number, or
 * (alter-topic) "none" to remove the limit. Commander turns a parser's
 * `null` into "", so "none" stays a string until `retentionPatchOf`.
 */
interface RetentionFlags {
  retentionMs?: number | "none";
  retentionBytes?: number | "none";
  retentionMessages?: number | "none";
  segmentBytes?: number | "none";
}

function addRetentionOptions(command: Command, note: string, allowNone = false): void {
  const parser = (min: number, max: number) => (value: string): number | "none" => {
    if (allowNone && value === "none") return "none";
    return integerOption(min, max)(value);
  };
  const limit = parser(1, Number.MAX_SAFE_INTEGER);
  command
    .option("--retention-ms <ms>", `delete whole segments older than this ${note}`, limit)
    .option("--retention-bytes <bytes>", `keep about this many bytes per replica ${note}`, limit)
    .option("--retention-messages <n>", `keep at least the newest n messages ${note}`, limit)
    .option(
      "--segment-bytes <bytes>",
      "size of segment files, the unit retention deletes (default: a quarter of " +
        "--retention-bytes within 64 KiB - 64 MiB, else 64 MiB)",
      parser(4096, 64 * 1024 * 1024),
    );
}

function retentionPatchOf(flags: RetentionFlags): RetentionPatch {
  const patch: RetentionPatch = {};
  const value = (flag: number | "none") => flag === "none" ? null : flag;
  if (flags.retentionMs !== undefined) patch.max_age_ms = value(flags.retentionMs);
  if (flags.retentionBytes !== undefined) patch.max_bytes = value(flags.retentionBytes);
  if (flags.retentionMessages !== undefined) patch.max_messages = value(flags.retentionMessages);
  if (flags.segmentBytes !== undefined) patch.segment_bytes = value(flags.segmentBytes);
  return patch;
}

function addMessageCommands(program: Command): void {
  const publish = program.command("publish").argument("<topic>", "topic name", topicArgument)
    .argument("[message]", "the message, or '-' to read one message per line from stdin")
    .option("--file <file>", "publish every line of a file (as batches)")
    .description("Publish a message, or many from a file or stdin");
  publish.action(withClient(publish, async (client, print, topic: string, message?: string) => {
    const { file } = publish.opts<{ file?: string }>();
    if (message !== undefined && message !== "-") {
      const started = performance.now();
      const { offset } = await client.publish(topic, message);
      print.line(
        `Published to '${topic}' at offset ${offset} (latency ${latency(started)})`,
        { status: "message_published", topic, offset },
      );
      return;
    }
    const source = file === undefined ? Deno.stdin.readable : (await Deno.open(file)).readable;
    await publishLines(client, print, topic, readLines(source));
  }, (_topic: string, message?: string) => {
    const file = publish.opts().file;
    if (message === undefined && file === undefined) {
      throw new UsageError(
        "publish needs a message: give it as an argument, '-' to read lines from stdin, or --file",
      );
    }
    if (message !== undefined && file !== undefined) {
      throw new UsageError("publish takes a message argument or --file, not both");
    }
    if (message !== undefined && message !== "-") checkMessageSize(message, "the message");
  }));

  const fetch = program.command("fetch").argument("<topic>", "topic name", topicArgument)
    .option("--from <offset>", "first offset", integerOption(0, Number.MAX_SAFE_INTEGER))
    .option("--max <n>", "most messages", integerOption(1, 10_000))
    .description("Print messages of a topic with their offsets");
  fetch.action(withClient(fetch, async (client, print, topic: string) => {
    const options = fetch.opts<{ from?: number; max?: number }>();
    const { messages, nextOffset, firstOffset } = await client.fetch(topic, {
      fromOffset: options.from,
      max: options.max,
    });
    const human = messages.map(({ offset, message }) => `${offset}\t${message}`);
    const answer: Record<string, unknown> = {
      status: "messages",
      topic,
      messages,
      next_offset: nextOffset,
    };
    if (firstOffset !== undefined) {
      answer.first_offset = firstOffset;
      human.unshift(`(offsets before ${firstOffset} were deleted by retention)`);
    }
    print.line([...human, `(next offset ${nextOffset})`].join("\n"), answer);
  }));

  addSubscribeCommand(program);
}

function addSubscribeCommand(program: Command): void {
  const subscribe = program.command("subscribe").argument("<topic>", "topic name", topicArgument)
    .requiredOption(
      "--subscriber-id <id>",
      "(required) durable subscriber id: without --from it resumes after its last ack",
    )
    .option(
      "--from <where>",
      "earliest, latest or an offset: where to start, even for a known subscriber id",
      parseFrom,
    )
    .option(
      "--count <n>",
      "stop after this many messages",
      integerOption(1, Number.MAX_SAFE_INTEGER),
    )
    .option(
      "--max-in-flight <n>",
      "unacknowledged messages window",
      integerOption(1, inFlightMessagesMax),
    )
    .description("Print messages as they arrive until --count or Ctrl-C, acking what was printed");
  subscribe.action(withClient(subscribe, async (client, print, topic: string) => {
    const options = subscribe.opts<
      { subscriberId: string; from?: SubscribeFrom; count?: number; maxInFlight?: number }
    >();
    const subscription = await client.subscribe(topic, options.subscriberId, {
      from: await explicitStart(client, topic, options.from),
      maxInFlight: options.maxInFlight,
    });
    const stop = () => void subscription.close();
    Deno.addSignalListener("SIGINT", stop);
    try {
      let printed = 0;
      for await (const { offset, message, skipped } of subscription) {
        if (skipped !== undefined) {
          // Human output says it on its own line; JSON carries the field.
          if (!print.json) console.log(`(skipped ${skipped} offsets deleted by retention)`);
        }
        print.line(
          `[${offset}] ${message}`,
          skipped === undefined ? { offset, message } : { offset, message, skipped },
        );
        if (++printed === options.count) break;
      }
    } finally {
      Deno.removeSignalListener("SIGINT", stop);
      await subscription.close();
    }
  }));
}

function addClusterCommands(program: Command): void {
  const status = program.command("status").description("Show the cluster's nodes as a table");
  status.action(withClient(status, async (client, print) => {
    const answer = await client.request({ action: "cluster_status" }, { retry: true });
    print.line(formatStatusTable(answer as Record<string, unknown>), answer);
  }));

  const remove = program.command("remove-node").argument(
    "<id>",
    "node id",
    integerOption(1, 1_000_000),
  )
    .description("Remove a node from the cluster for good");
  remove.action(withClient(remove, async (client, print, id: number) => {
    const answer = await client.request({ action: "remove_node", node_id: id });
    print.line(`Node ${id} removed`, answer);
  }));

  const ping = program.command("ping").description("Round trip to one peer");
  ping.action(withClient(ping, async (client, print) => {
    const started = performance.now();
    const answer = await client.request({ action: "ping" }, { retry: true }) as { node: number };
    const took = latency(started);
    print.line(`pong from node ${answer.node} at ${client.address} (latency ${took})`, answer);
  }));
}

/**
 * `--from` as an offset: the protocol lets a known subscriber's stored
 * position win over "earliest"/"latest" but never over an explicit offset,
 * and a user who typed --from means it, so the words become offsets here.
 */
async function explicitStart(
  client: PubSubClient,
  topic: string,
  from: SubscribeFrom | undefined,
): Promise<SubscribeFrom | undefined> {
  if (from === undefined || typeof from === "number") return from;
  const description = await client.request({ action: "describe_topic", topic_name: topic }, {
    retry: true,
  }) as { first_offset?: number; next_offset?: number };
  const offset = from === "earliest" ? description.first_offset : description.next_offset;
  return typeof offset === "number" ? offset : from;
}

function parseFrom(value: string): SubscribeFrom {
  if (value === "earliest" || value === "latest") return value;
  if (/^\d+$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
  throw new InvalidArgumentError("Expected earliest, latest or an offset.");
}

/** Sends lines as batches bounded by count and bytes, a few in flight, in order. */
async function publishLines(
  client: PubSubClient,
  print: Printer,
  topic: string,
  lines: AsyncIterable<string>,
): Promise<void> {
  const inFlight: Promise<void>[] = [];
  let total = 0;
  let batch: string[] = [];
  let batchBytes = 0;
  const send = async (messages: string[]) => {
    if (inFlight.length >= batchesInFlightMax) await inFlight.shift();
    const sent = client.publishBatch(topic, messages).then(({ firstOffset, count }) => {
      total += count;
      print.line(
        `Published ${count} message${
          count === 1 ? "" : "s"
        } to '${topic}' at offsets ${firstOffset}-${firstOffset + count - 1}`,
        { status: "messages_published", topic, first_offset: firstOffset, count },
      );
    });
    // Printing stays in order because each batch waits for its predecessor's print.
    const previous = inFlight.at(-1);
    inFlight.push(previous === undefined ? sent : Promise.all([previous, sent]).then(() => {}));
  };
  let lineNumber = 0;
  for await (const line of lines) {
    lineNumber++;
    if (line === "") continue;
    checkMessageSize(line, `line ${lineNumber}`);
    const bytes = line.length * 3;
    if (
      batch.length >= batchMessagesMax || (batch.length > 0 && batchBytes + bytes > batchBytesMax)
    ) {
      await send(batch);
      batch = [];
      batchBytes = 0;
    }
    batch.push(line);
    batchBytes += bytes + 8;
  }
  if (batch.length > 0) await send(batch);
  await Promise.all(inFlight);
  if (!print.json && total === 0) console.log("Nothing to publish (no non-empty lines)");
}

/**
 * Bad input, not a failure: a message too large for one request is refused
 * here, naming it (`what`), before anything is sent (exit code 2).
 */
function checkMessageSize(message: string, what: string): void {
  // JSON takes at most 6 bytes per UTF-16 unit (\u escapes): only a long message is measured.
  if (message.length * 6 <= messageJsonBytesMax) return;
  const jsonBytes = jsonStringBytes(message);
  if (jsonBytes <= messageJsonBytesMax) return;
  throw new UsageError(
    `Cannot publish ${what} as it takes ${jsonBytes} bytes as a JSON string and one message may take at most ${messageJsonBytesMax}`,
  );
}

function latency(started: number): string {
  return `${(performance.now() - started).toFixed(1)} ms`;
}
