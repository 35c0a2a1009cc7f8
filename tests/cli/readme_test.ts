/**
 * The README's commands, run exactly as written from a clean clone, with no
 * `deno` on PATH (only Node.js and npm, as on a new user's machine): the
 * first command starts the local cluster, and every one-shot client command
 * of the quick tour must then succeed. Also checks that every relative link
 * in the repository's Markdown files leads to a file that exists.
 */
import assert from "node:assert/strict";
import { PubSubClient } from "../../lib/client/client.ts";

const root = new URL("../../", import.meta.url).pathname;
const readme = await Deno.readTextFile(`${root}README.md`);

/** The lines of the README's `sh` code blocks, comments stripped. */
function shellLines(markdown: string): string[] {
  const lines: string[] = [];
  for (const block of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block[1].split("\n")) {
      const command = line.replace(/\s+#.*$/, "").trim();
      if (command !== "") lines.push(command);
    }
  }
  return lines;
}

/** PATH without any directory that holds a `deno` executable. */
function pathWithoutDeno(): string {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((dir) => {
    try {
      Deno.statSync(`${dir}/deno`);
      return false;
    } catch {
      return dir !== "";
    }
  });
  return dirs.join(":");
}

function portsFree(ports: number[]): boolean {
  for (const port of ports) {
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch {
      return false;
    }
  }
  return true;
}

const clusterPorts = [5001, 5002, 5003];
const hasGit = await new Deno.Command("git", { args: ["--version"], stdout: "null" }).output()
  .then((output) => output.success, () => false);
const free = portsFree(clusterPorts);
const skipReason = !hasGit
  ? "git is not installed"
  : !free
  ? "ports 5001-5003 are in use (a local cluster is running?)"
  : undefined;
if (skipReason !== undefined) console.warn(`SKIPPED README commands test: ${skipReason}`);

Deno.test({
  name: "the README's quick tour runs as written from a clean clone without deno on PATH",
  ignore: skipReason !== undefined,
  sanitizeResources: false,
  fn: async () => {
    const commands = shellLines(readme);
    assert.equal(commands[0], "npx -y deno task start");
    assert.equal(commands[1], "npx -y deno task test");
    const oneShots = commands.filter((line) => /^\.\/pubsub client \S/.test(line));
    assert.ok(oneShots.length >= 5, `README one-shot commands: ${oneShots}`);

    const clone = await Deno.makeTempDir({ prefix: "pubsub-clone-" });
    const cloned = await new Deno.Command("git", {
      args: ["clone", "--quiet", root, clone],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(cloned.success, new TextDecoder().decode(cloned.stderr));
    const env = { PATH: pathWithoutDeno(), HOME: Deno.env.get("HOME") ?? "/root" };
    const which = await new Deno.Command("sh", { args: ["-c", "command -v deno"], env }).output();
    assert.equal(which.success, false, "deno is still on the test's PATH");

    // The README's first command, in the background (no terminal: plain status lines).
    const cluster = new Deno.Command("sh", {
      args: ["-c", commands[0]],
      cwd: clone,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let output = "";
    let exited = false;
    cluster.status.then(() => exited = true);
    const collect = (async () => {
      const streams = [cluster.stdout, cluster.stderr].map(async (stream) => {
        for await (const text of stream.pipeThrough(new TextDecoderStream())) output += text;
      });
      await Promise.all(streams);
    })();
    try {
      const deadline = Date.now() + 120_000;
      while (!/Started 3 peers/.test(output)) {
        if (exited) throw new Error(`The cluster command exited:\n${output}`);
        if (Date.now() > deadline) throw new Error(`The cluster did not start:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      for (const command of oneShots) {
        const run = await new Deno.Command("sh", {
          args: ["-c", command],
          cwd: clone,
          env,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(60_000),
        }).output();
        const text = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
        assert.equal(run.code, 0, `${command} exited ${run.code}:\n${text}`);
      }
      const client = await PubSubClient.connect({ peers: ["127.0.0.1:5001"] });
      try {
        const { messages } = await client.fetch("events", { fromOffset: 0 });
        assert.deepEqual(messages.map((item) => item.message), ["hello"]);
      } finally {
        await client.close();
      }
    } finally {
      // Ctrl-C, as a user stops it: the launcher stops its peers by PID.
      for (const pid of await childPids(cluster.pid)) {
        try {
          Deno.kill(pid, "SIGINT");
        } catch { /* gone */ }
      }
      try {
        cluster.kill("SIGINT");
      } catch { /* gone */ }
      const stopped = await Promise.race([
        cluster.status.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30_000)),
      ]);
      if (!stopped) cluster.kill("SIGKILL");
      await collect;
      await Deno.remove(clone, { recursive: true }).catch(() => {});
    }
  },
});

/** Every process below `pid` (npx -> deno task -> deno), deepest first. */
async function childPids(pid: number): Promise<number[]> {
  const output = await new Deno.Command("ps", { args: ["-e", "-o", "pid=,ppid="], stdout: "piped" })
    .output();
  const parents = new Map<number, number[]>();
  for (const line of new TextDecoder().decode(output.stdout).trim().split("\n")) {
    const [child, parent] = line.trim().split(/\s+/).map(Number);
    parents.set(parent, [...(parents.get(parent) ?? []), child]);
  }
  const found: number[] = [];
  const walk = (id: number) => {
    for (const child of parents.get(id) ?? []) {
      walk(child);
      found.push(child);
    }
  };
  walk(pid);
  return found;
}

Deno.test("every relative link in the repository's Markdown files leads to an existing file", async () => {
  const files = ["README.md", "bench/RESULTS.md"];
  for await (const entry of Deno.readDir(`${root}docs`)) {
    if (entry.name.endsWith(".md")) files.push(`docs/${entry.name}`);
  }
  const broken: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(`${root}${file}`);
    } catch {
      continue;
    }
    const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/") + 1) : "";
    for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1].split("#")[0];
      if (target === "" || /^[a-z]+:/.test(target)) continue;
      const resolved = new URL(target, `file://${root}${dir}`).pathname;
      if (!resolved.startsWith(root)) broken.push(`${file}: ${target} (leaves the repository)`);
      else {
        try {
          await Deno.stat(resolved);
        } catch {
          broken.push(`${file}: ${target}`);
        }
      }
    }
  }
  assert.deepEqual(broken, []);
});
