/**
 * The interactive menu of `pubsub client`, as the prototype's client.py:
 * pick an operation, answer its prompts, see `Response: {...}` and the
 * operation's latency.
 *
 * @module
 */

import process from "node:process";
import { input, select } from "@inquirer/prompts";
import type { PubSubClient } from "../client/client.ts";
import { PubSubError } from "../client/errors.ts";

/** The menu's operations, in the prototype's order (plus three extended ones before exit). */
export const menuOperations = [
  "create_topic",
  "publish",
  "fetch_messages",
  "subscribe",
  "fetch_topics",
  "describe_topic",
  "alter_topic",
  "cluster_status",
  "exit",
] as const;

type Operation = typeof menuOperations[number];

/**
 * Runs the menu until `exit` or Ctrl-C (both end cleanly).
 *
 * @example
 * ```ts
 * await runMenu(await PubSubClient.connect({ peers: ["localhost:5001"] }));
 * ```
 */
export async function runMenu(client: PubSubClient): Promise<void> {
  console.log(`Connected to ${client.address}`);
  try {
    while (true) {
      const operation = await select<Operation>({
        message: "Choose an operation",
        choices: menuOperations.map((value) => ({ value, name: value })),
        pageSize: menuOperations.length,
      });
      if (operation === "exit") break;
      await runOperation(client, operation);
    }
  } catch (error) {
    // Ctrl-C in a prompt: @inquirer rejects with ExitPromptError; leaving is the user's wish.
    if (!(error instanceof Error && error.name === "ExitPromptError")) throw error;
  }
  console.log("Goodbye");
}

async function runOperation(
  client: PubSubClient,
  operation: Exclude<Operation, "exit">,
): Promise<void> {
  if (operation === "subscribe") return await runSubscribe(client);
  const body = await promptRequest(operation);
  await timed(() =>
    client.request(body, { retry: body.action !== "publish" && body.action !== "create_topic" })
  );
}

async function promptRequest(
  operation: Exclude<Operation, "exit" | "subscribe">,
): Promise<Record<string, unknown>> {
  switch (operation) {
    case "create_topic":
    case "fetch_messages":
    case "describe_topic":
      return { action: operation, topic_name: await askTopic() };
    case "publish": {
      const topic = await askTopic();
      const message = await input({ message: "Message:" });
      return { action: operation, topic_name: topic, message };
    }
    case "alter_topic":
      return { action: operation, topic_name: await askTopic(), retention: await askRetention() };
    case "fetch_topics":
    case "cluster_status":
      return { action: operation };
  }
}

/** Asks for each retention limit: a number sets it, "none" removes it, blank keeps it. */
async function askRetention(): Promise<Record<string, number | null>> {
  const retention: Record<string, number | null> = {};
  for (const key of ["max_age_ms", "max_bytes", "max_messages"]) {
    const answer = await input({
      message: `${key} (a number; none: unlimited; blank: keep):`,
      validate: (value) =>
        value.trim() === "" || value.trim() === "none" || /^[1-9]\d{0,15}$/.test(value.trim()) ||
        "Enter a positive integer, none, or nothing",
    });
    const value = answer.trim();
    if (value !== "") retention[key] = value === "none" ? null : Number(value);
  }
  return retention;
}

function askTopic(): Promise<string> {
  return input({ message: "Topic name:", required: true });
}

/** Prints the answer (or the error answer) and the latency of one request. */
async function timed(send: () => Promise<unknown>): Promise<void> {
  const started = performance.now();
  let answer: unknown;
  try {
    answer = await send();
  } catch (error) {
    if (!(error instanceof PubSubError)) throw error;
    answer = { status: error.code, error: error.message };
  }
  const took = (performance.now() - started).toFixed(1);
  console.log(`Response: ${JSON.stringify(answer)}`);
  console.log(`(latency ${took} ms)`);
}

async function runSubscribe(client: PubSubClient): Promise<void> {
  const topic = await askTopic();
  const subscriberId = await input({ message: "Subscriber ID:", required: true });
  const start = await select<"earliest" | "latest" | "resume" | "offset">({
    message: "Start from:",
    choices: [
      { value: "earliest", name: "earliest (every stored message)" },
      { value: "latest", name: "latest (only messages published from now on)" },
      { value: "resume", name: "resume (after this subscriber's last ack; latest if new)" },
      { value: "offset", name: "an offset" },
    ],
  });
  const offset = start === "offset"
    ? Number(await input({ message: "Offset:", validate: validOffset }))
    : undefined;
  const started = performance.now();
  let subscription;
  try {
    subscription = await client.subscribe(topic, subscriberId, {
      from: await startOffset(client, topic, start, offset),
    });
  } catch (error) {
    if (!(error instanceof PubSubError)) throw error;
    await timed(() => Promise.reject(error));
    return;
  }
  console.log(
    `Response: ${JSON.stringify({ status: "subscribed", topic, subscriber_id: subscriberId })}`,
  );
  console.log(`(latency ${(performance.now() - started).toFixed(1)} ms)`);
  console.log("Waiting for messages; press Enter (or Ctrl-C) to return to the menu.");
  const stopped = waitForEnter();
  const reading = (async () => {
    for await (const { offset, message } of subscription) {
      console.log(`Message: ${JSON.stringify({ offset, message })}`);
    }
  })();
  await stopped;
  await subscription.close();
  await reading.catch((error) => console.log(`Subscription ended: ${error.message}`));
}

function validOffset(value: string): true | string {
  return /^\d+$/.test(value.trim()) && Number.isSafeInteger(Number(value))
    ? true
    : "Enter a non-negative integer";
}

/**
 * The subscription's start as an explicit offset (which wins over a known
 * subscriber's stored position), or undefined to resume.
 */
async function startOffset(
  client: PubSubClient,
  topic: string,
  start: "earliest" | "latest" | "resume" | "offset",
  offset: number | undefined,
): Promise<number | undefined> {
  if (start === "resume") return undefined;
  if (start === "offset") return offset;
  const description = await client.request({ action: "describe_topic", topic_name: topic }, {
    retry: true,
  }) as { first_offset: number; next_offset: number };
  return start === "earliest" ? description.first_offset : description.next_offset;
}

/** Resolves on Enter or Ctrl-C, reading the terminal raw as @inquirer does between prompts. */
function waitForEnter(): Promise<void> {
  return new Promise((resolve) => {
    const stdin = process.stdin;
    const raw = stdin.isTTY === true;
    if (raw) stdin.setRawMode(true);
    const onData = (data: Uint8Array | string) => {
      const text = typeof data === "string" ? data : new TextDecoder().decode(data);
      // Enter arrives as \r in raw mode; Ctrl-C as the ETX byte (code 3).
      if (![...text].some((char) => char === "\r" || char === "\n" || char.charCodeAt(0) === 3)) {
        return;
      }
      stdin.off("data", onData);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
      resolve();
    };
    stdin.on("data", onData);
    stdin.resume();
  });
}
