/**
 * The README's curl examples ("HTTP and web console") run as written
 * against a 3-peer cluster, with only the ports 5101-5103 of `deno task
 * start` replaced by the test cluster's HTTP ports. Skipped, saying so, when
 * curl is not installed.
 */
import assert from "node:assert/strict";
import { startHttpCluster } from "./_http_cluster.ts";

const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
const curlMissing = await new Deno.Command("curl", { args: ["--version"], stdout: "null" })
  .output().then((output) => !output.success, () => true);
if (curlMissing) console.warn("SKIPPED README curl examples: curl is not installed");

/** The lines of the first sh block of the README section `## HTTP and web console`. */
function curlExamples(): string[] {
  const section = readme.split(/^## /m).find((part) => part.startsWith("HTTP and web console"));
  assert.ok(section, "README has no 'HTTP and web console' section");
  const block = /```sh\n([^]*?)```/.exec(section);
  assert.ok(block, "the section has no sh block");
  return block[1].trim().split("\n");
}

Deno.test({
  name: "the README's curl examples run as written against a cluster",
  ignore: curlMissing,
  fn: async () => {
    const commands = curlExamples();
    assert.ok(commands.length >= 5);
    assert.ok(commands.every((command) => command.startsWith("curl ")));
    const cluster = await startHttpCluster(3);
    const local = (command: string) =>
      command.replace(/127\.0\.0\.1:510([1-3])/g, (_, id) => new URL(cluster.url(Number(id))).host);
    try {
      const tail = commands.filter((command) => command.startsWith("curl -N "));
      assert.equal(tail.length, 1, "one tail (curl -N) example");
      for (const command of commands.filter((command) => !command.startsWith("curl -N "))) {
        const output = await new Deno.Command("sh", {
          args: ["-c", local(command)],
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(15_000),
        }).output();
        const text = new TextDecoder().decode(output.stdout);
        assert.equal(output.code, 0, `${command}\n${new TextDecoder().decode(output.stderr)}`);
        const answer = JSON.parse(text);
        assert.ok(
          Array.isArray(answer) || !("error" in answer),
          `${command} answered an error: ${text}`,
        );
      }
      const follower = new Deno.Command("sh", {
        args: ["-c", `exec ${local(tail[0])}`],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      let text = "";
      try {
        const deadline = Date.now() + 15_000;
        const reader = follower.stdout.pipeThrough(new TextDecoderStream()).getReader();
        while ((text.match(/^data: /gm) ?? []).length < 5 && Date.now() < deadline) {
          const { value, done } = await Promise.race([
            reader.read(),
            new Promise<{ value: undefined; done: true }>((resolve) =>
              setTimeout(() => resolve({ value: undefined, done: true }), 1000)
            ),
          ]);
          if (value !== undefined) text += value;
          else if (done && (text.match(/^data: /gm) ?? []).length >= 5) break;
        }
        reader.releaseLock();
      } finally {
        Deno.kill(follower.pid, "SIGTERM");
        await follower.status;
        await follower.stdout.cancel().catch(() => {});
      }
      const messages = [...text.matchAll(/^data: (.*)$/gm)].map((match) => JSON.parse(match[1]));
      assert.deepEqual(messages.map((message) => message.message ?? message.status), [
        "subscribed",
        "hello",
        "hola",
        "salut",
        "once",
      ]);
      assert.match(text, /^id: 3$/m);
    } finally {
      await cluster.dispose();
    }
  },
});
