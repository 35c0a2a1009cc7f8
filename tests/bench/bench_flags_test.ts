/**
 * Every benchmark script a user runs by hand answers `--help` with its
 * usage (exit 0) and a wrong flag with one line naming it (exit 2), before
 * it starts any process.
 *
 * @module
 */

import assert from "node:assert/strict";
import { programOutput } from "../_helpers/peer_process.ts";

const here = new URL("../..", import.meta.url).pathname.replace(/\/+$/, "");

async function run(script: string, args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${here}/${script}`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    // Without Deno's own status lines (a first run downloads npm packages).
    stderrLines: programOutput(output.stderr).trim().split("\n"),
  };
}

const cases: { script: string; bad: string[]; says: RegExp }[] = [
  { script: "bench/topics.ts", bad: ["--bogus", "1"], says: /'--bogus' is not a flag/ },
  { script: "bench/topics.ts", bad: ["--topics", "0"], says: /must be a positive integer/ },
  { script: "bench/http_publish.ts", bad: ["--bogus", "1"], says: /'--bogus' is not a flag/ },
  { script: "bench/http_publish.ts", bad: ["--rounds", "x"], says: /must be a positive integer/ },
  { script: "bench/retention_soak.ts", bad: ["--bogus"], says: /Unknown option '--bogus'/ },
  { script: "bench/retention_soak.ts", bad: ["--seconds", "0"], says: /--seconds must be/ },
  { script: "bench/compare.ts", bad: ["--warm-up", "-1"], says: /bad option '--warm-up -1'/ },
  { script: "bench/compare.ts", bad: ["--rounds", "0"], says: /bad option '--rounds 0'/ },
  {
    script: "bench/compare.ts",
    bad: ["--nats-server", "/nonexistent/nats-server"],
    says: /--nats-server '\/nonexistent\/nats-server' does not run '--version'/,
  },
  { script: "bench/compare.ts", bad: ["--nats-server"], says: /bad option '--nats-server'/ },
];

for (const { script, bad, says } of cases) {
  Deno.test(`${script} ${bad.join(" ")} exits 2 with one line`, async () => {
    const result = await run(script, bad);
    assert.equal(result.code, 2);
    assert.equal(result.stderrLines.length, 1, result.stderrLines.join("\n"));
    assert.match(result.stderrLines[0], says);
  });
}

const scripts = ["bench/topics.ts", "bench/http_publish.ts", "bench/retention_soak.ts"];
for (const script of [...scripts, "bench/compare.ts"]) {
  Deno.test(`${script} --help prints its usage and exits 0`, async () => {
    const result = await run(script, ["--help"]);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: /);
    assert.match(result.stdout, /--help/);
  });
}
