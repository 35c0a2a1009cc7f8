/**
 * `pubsub cluster`'s live view in a real terminal (tmux): it shows a killed
 * peer as down while the others stay up and the topics stay listed, restarts
 * it on a key press, shows a peer restarted by hand as up, and stops that
 * one too on Ctrl-C.
 */
import assert from "node:assert/strict";
import { PubSubClient } from "../../lib/client/client.ts";
import { freePortRun } from "../_helpers/peer_process.ts";
import { Terminal, tmuxUnavailable } from "../_helpers/terminal.ts";

const mainPath = new URL("../../main.ts", import.meta.url).pathname;
const tmuxMissing = tmuxUnavailable();
if (tmuxMissing !== undefined) {
  console.warn(`tests/cli/cluster_live_test.ts: the live view test is ignored: ${tmuxMissing}`);
}

/** The last redraw of the live view on the screen. */
function lastFrame(screen: string): string {
  const start = screen.lastIndexOf("pubsub local cluster:");
  return start < 0 ? "" : screen.slice(start);
}

async function lockHolder(dataDir: string): Promise<number> {
  return Number((await Deno.readTextFile(`${dataDir}/LOCK`)).trim());
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "the live view shows a killed peer down, restarts it on a key press, and sees and stops a peer restarted by hand",
  ignore: tmuxMissing !== undefined,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "pubsub-live-" });
    const base = freePortRun(3);
    const addresses = [0, 1, 2].map((offset) => `127.0.0.1:${base + offset}`);
    const terminal = new Terminal({ timeoutMs: 60_000 });
    let handStarted: Deno.ChildProcess | undefined;
    try {
      await terminal.start(
        `${Deno.execPath()} run -A ${mainPath} cluster --base-port ${base} --data-dir ${dataDir} ` +
          `--no-http --refresh-ms 300 --heartbeat-ms 200; echo EXIT=$?; sleep 60`,
      );
      await terminal.waitFor("3 peers up", (screen) => /3\/3 peers up/.test(lastFrame(screen)));
      const client = await PubSubClient.connect({ peers: addresses });
      await client.createTopic("live");
      await client.publish("live", "one");
      await client.close();
      await terminal.waitFor("the topic", (screen) => /live +\d/.test(lastFrame(screen)));

      // A follower killed: down, the others up, the topic still listed.
      Deno.kill(await lockHolder(`${dataDir}/2`), "SIGKILL");
      let frame = lastFrame(
        await terminal.waitFor(
          "peer 2 down",
          (screen) =>
            /2\/3 peers up/.test(lastFrame(screen)) && /down \(exited/.test(lastFrame(screen)),
        ),
      );
      assert.match(frame, new RegExp(`2 +127\\.0\\.0\\.1:${base + 1} +- +down \\(exited 137\\)`));
      assert.match(frame, /live +\d/);
      assert.doesNotMatch(frame, /No quorum/);

      // A key press restarts it.
      await terminal.keys("2");
      frame = lastFrame(
        await terminal.waitFor("peer 2 back", (screen) => /3\/3 peers up/.test(lastFrame(screen))),
      );
      assert.match(frame, /Peer 2 restarted|Restarting peer 2/);

      // Peer 3 killed and restarted by hand on its data directory: shown up.
      Deno.kill(await lockHolder(`${dataDir}/3`), "SIGKILL");
      await terminal.waitFor("peer 3 down", (screen) => /2\/3 peers up/.test(lastFrame(screen)));
      handStarted = new Deno.Command(Deno.execPath(), {
        args: [
          ...["run", "-A", mainPath, "peer", "--id", "3", "--port", String(base + 2)],
          ...["--host", "127.0.0.1", "--data-dir", `${dataDir}/3`, "--heartbeat-ms", "200"],
          ...["--peers", addresses.map((address, index) => `${index + 1}@${address}`).join(",")],
          ...["--cluster-secret-file", `${dataDir}/cluster.secret`],
        ],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      frame = lastFrame(
        await terminal.waitFor(
          "peer 3 up again",
          (screen) => /3\/3 peers up/.test(lastFrame(screen)),
        ),
      );
      assert.match(
        frame,
        new RegExp(
          `3 +127\\.0\\.0\\.1:${base + 2} +${handStarted.pid} +up \\(restarted by hand\\)`,
        ),
      );

      // Ctrl-C stops every peer, the hand-started one included.
      await terminal.keys("C-c");
      const screen = await terminal.waitFor("the exit", (screen) => screen.includes("EXIT="));
      assert.match(screen, /All peers stopped/);
      assert.match(screen, /EXIT=0/);
      const status = await Promise.race([
        handStarted.status,
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 15_000)),
      ]);
      assert.notEqual(status, undefined, "the hand-started peer was not stopped");
      for (const address of addresses) {
        const [hostname, port] = address.split(":");
        await assert.rejects(Deno.connect({ hostname, port: Number(port) }));
      }
    } finally {
      await terminal.kill();
      if (handStarted !== undefined && alive(handStarted.pid)) {
        handStarted.kill("SIGKILL");
        await handStarted.status;
      }
      for (const id of [1, 2, 3]) {
        const pid = await lockHolder(`${dataDir}/${id}`).catch(() => undefined);
        if (pid !== undefined && alive(pid)) Deno.kill(pid, "SIGKILL");
      }
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});
