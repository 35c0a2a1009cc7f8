/**
 * Drives `pubsub client`'s interactive menu through a real terminal
 * (tests/_helpers/terminal.ts: tmux in a detached session).
 */

import assert from "node:assert/strict";
import { startPeer } from "../_helpers/peer_process.ts";
import { countOf, Terminal as TmuxTerminal, tmuxUnavailable } from "../_helpers/terminal.ts";
import { PubSubClient } from "../../lib/client/client.ts";

const mainPath = new URL("../../main.ts", import.meta.url).pathname;
/** How long the menu may take to show what a step expects. */
const screenTimeoutMs = 20_000;

const tmuxMissing = tmuxUnavailable();
const hasTmux = tmuxMissing === undefined;
if (!hasTmux) {
  console.warn(
    `tests/cli/interactive_test.ts: the interactive menu test is ignored: ${tmuxMissing}`,
  );
}

/** The menu's terminal: waits until the menu prompt has been shown `count` times. */
class Terminal extends TmuxTerminal {
  constructor() {
    super({ timeoutMs: screenTimeoutMs });
  }

  waitForMenu(count: number): Promise<string> {
    return this.waitFor(
      `menu #${count}`,
      (screen) =>
        countOf(screen, "? Choose an operation") === 1 &&
        countOf(screen, "Choose an operation") >= count,
    );
  }
}

/** Down presses that move the menu cursor from create_topic to `operation`. */
const position = {
  create_topic: 0,
  publish: 1,
  fetch_messages: 2,
  subscribe: 3,
  fetch_topics: 4,
  alter_topic: 6,
} as const;

async function choose(terminal: Terminal, operation: keyof typeof position): Promise<void> {
  for (let press = 0; press < position[operation]; press++) await terminal.keys("Down");
  await terminal.keys("Enter");
  await terminal.waitFor(
    `'${operation}' chosen`,
    (screen) => screen.includes(`✔ Choose an operation ${operation}`),
  );
}

Deno.test({
  name: "the interactive client menu runs every prototype operation in a real terminal",
  ignore: !hasTmux,
  async fn() {
    const peer = await startPeer();
    const terminal = new Terminal();
    try {
      await terminal.start(
        `${Deno.execPath()} run -A ${mainPath} client --peers ${peer.address}; echo EXIT=$?; read`,
      );
      let screen = await terminal.waitForMenu(1);
      assert.match(screen, new RegExp(`Connected to ${peer.address}`));
      const menu = screen.slice(screen.indexOf("? Choose an operation")).split("\n").slice(1, 10)
        .map((line) => line.replace(/^[❯\s]+/, "").trim());
      // The prototype's operations in its order, with the three extended ones before exit.
      assert.deepEqual(menu, [
        "create_topic",
        "publish",
        "fetch_messages",
        "subscribe",
        "fetch_topics",
        "describe_topic",
        "alter_topic",
        "cluster_status",
        "exit",
      ]);

      await choose(terminal, "create_topic");
      await terminal.type("events");
      screen = await terminal.waitForMenu(2);
      assert.match(
        screen,
        /Response: \{"status":"topic_created","topic":"events"\}\n\(latency \d+\.\d ms\)/,
      );

      await choose(terminal, "publish");
      await terminal.type("events");
      await terminal.waitFor("the message prompt", (screen) => screen.includes("Message:"));
      await terminal.type("hello world");
      screen = await terminal.waitForMenu(3);
      assert.match(
        screen,
        /Response: \{"status":"message_published","topic":"events","offset":0\}/,
      );

      await choose(terminal, "fetch_messages");
      await terminal.type("events");
      screen = await terminal.waitForMenu(4);
      assert.match(screen, /Response: \["hello world"\]\n\(latency \d+\.\d ms\)/);

      await choose(terminal, "subscribe");
      await terminal.type("events");
      await terminal.waitFor(
        "the subscriber prompt",
        (screen) => screen.includes("Subscriber ID:"),
      );
      await terminal.type("menu-reader");
      await terminal.waitFor("the start prompt", (screen) => screen.includes("Start from:"));
      // The first choice, earliest, shows what was published before subscribing.
      await terminal.keys("Enter");
      await terminal.waitFor("subscribed", (screen) => screen.includes("press Enter"));
      await terminal.waitFor(
        "the earlier message",
        (screen) => screen.includes('Message: {"offset":0,"message":"hello world"}'),
      );
      assert.match(
        await terminal.screen(),
        /Response: \{"status":"subscribed","topic":"events","subscriber_id":"menu-reader"\}/,
      );
      const publisher = await PubSubClient.connect({ peers: [peer.address] });
      await publisher.publish("events", "pushed");
      await publisher.close();
      await terminal.waitFor(
        "the pushed message",
        (screen) => screen.includes('Message: {"offset":1,"message":"pushed"}'),
      );
      await terminal.keys("Enter");
      await terminal.waitForMenu(5);

      await choose(terminal, "fetch_topics");
      screen = await terminal.waitForMenu(6);
      assert.match(screen, /Response: \["events"\]/);

      await choose(terminal, "alter_topic");
      await terminal.type("events");
      for (
        const [prompt, answer] of [["max_age_ms", ""], ["max_bytes", ""], ["max_messages", "1000"]]
      ) {
        await terminal.waitFor(
          `the ${prompt} prompt`,
          (screen) => screen.includes(`? ${prompt} (`),
        );
        await terminal.type(answer);
      }
      screen = await terminal.waitForMenu(7);
      assert.match(
        screen,
        /Response: \{"status":"topic_altered","topic":"events","retention":\{"max_messages":1000\}\}/,
      );

      // Ctrl-C at the menu leaves cleanly: exit 0 and no stack trace.
      await terminal.keys("C-c");
      screen = await terminal.waitFor("the exit code", (screen) => screen.includes("EXIT="));
      assert.match(screen, /EXIT=0/);
      assert.doesNotMatch(screen, /ExitPromptError|error:|\bat .*:\d+:\d+/);
    } finally {
      await terminal.kill();
      await peer.stop();
      await Deno.remove(peer.dataDir, { recursive: true });
    }
  },
});
