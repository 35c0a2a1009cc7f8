/**
 * The `./pubsub` launcher on a machine with no `deno` on PATH (it runs the
 * Deno that `npx -y deno` provides): a SIGTERM sent to the PID a user or a
 * script started stops the peer cleanly. Through `npx` it used to stop
 * only `npx`, and the peer ran on as an orphan.
 *
 * @module
 */

import assert from "node:assert/strict";
import { freePort } from "../_helpers/peer_process.ts";

const root = new URL("../../", import.meta.url).pathname;

/** PATH without any directory that holds a `deno` executable. */
function pathWithoutDeno(): string {
  return (Deno.env.get("PATH") ?? "").split(":").filter((dir) => {
    try {
      Deno.statSync(`${dir}/deno`);
      return false;
    } catch {
      return dir !== "";
    }
  }).join(":");
}

/** Whether a process with `pid` is alive (signal 0 would do; Deno has no such call). */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** The PIDs of processes whose command line names `port` (the peer, whatever runs it). */
function processesOnPort(port: number): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).replaceAll("\0", " ");
      if (cmdline.includes(`--port ${port} `) && cmdline.includes("main.ts")) {
        found.push(Number(entry.name));
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

Deno.test({
  name: "a SIGTERM to the PID `./pubsub peer` started as stops the peer, with no deno on PATH",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const port = freePort();
    const dataDir = await Deno.makeTempDir({ prefix: "pubsub-launcher-" });
    const peer = new Deno.Command(`${root}pubsub`, {
      args: ["peer", "--id", "1", "--port", String(port), "--peers", `1@127.0.0.1:${port}`],
      env: { PATH: pathWithoutDeno(), HOME: Deno.env.get("HOME") ?? "/root" },
      cwd: dataDir,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    let output = "";
    const collect = (async () => {
      for await (const text of peer.stdout.pipeThrough(new TextDecoderStream())) output += text;
    })();
    try {
      const deadline = Date.now() + 120_000;
      while (!output.includes("listening")) {
        assert.ok(Date.now() < deadline, `the peer did not start:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      peer.kill("SIGTERM");
      const status = await Promise.race([
        peer.status,
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 20_000)),
      ]);
      assert.ok(status !== undefined, "the launched process did not exit on SIGTERM");
      // The peer itself must be gone too, not only what the PID named.
      const goneBy = Date.now() + 10_000;
      while (processesOnPort(port).some(alive) && Date.now() < goneBy) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.deepEqual(processesOnPort(port).filter(alive), [], "no peer process is left");
      await collect;
      assert.match(output, /stopping/, "the peer shut down cleanly");
    } finally {
      for (const pid of processesOnPort(port)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      try {
        peer.kill("SIGKILL");
      } catch { /* gone */ }
      await peer.status;
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});
