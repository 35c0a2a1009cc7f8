import assert from "node:assert/strict";
import { AbHelpRequested, formatAb, parseAbArgs, runAb } from "../../bench/ab.ts";

const here = new URL("../..", import.meta.url).pathname.replace(/\/+$/, "");

Deno.test("bench/ab.ts parses its flags and names a wrong one", () => {
  const settings = parseAbArgs(
    ["--old", "/tmp/x/", "--seconds", "30", "--slice-ms", "50", "--v8-b", "--a,--b", "--plain"],
    here,
  );
  assert.equal(settings.oldDir, "/tmp/x");
  assert.equal(settings.seconds, 30);
  assert.equal(settings.sliceMs, 50);
  assert.equal(settings.v8A, "");
  assert.equal(settings.v8B, "--a,--b");
  assert.equal(settings.plain, true);
  assert.equal(parseAbArgs([], here).oldDir, here);
  assert.throws(() => parseAbArgs(["--bogus"], here), /'--bogus' is not a flag of bench\/ab.ts/);
  assert.throws(() => parseAbArgs(["--seconds"], here), /'--seconds' needs a value/);
  assert.throws(() => parseAbArgs(["--seconds", "0"], here), /from 1 to 3600/);
  assert.throws(() => parseAbArgs(["--slice-ms", "5"], here), /from 10 to 10000/);
  assert.throws(() => parseAbArgs(["--help"], here), AbHelpRequested);
});

Deno.test("bench/ab.ts exits 2 with one line for a bad flag, 0 with its usage for --help", async () => {
  const run = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${here}/bench/ab.ts`, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
  const bad = await run(["--seconds", "x"]);
  assert.equal(bad.code, 2);
  const lines = new TextDecoder().decode(bad.stderr).trim().split("\n");
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^bench\/ab.ts: Cannot run as '--seconds' must be an integer/);
  const notCheckout = await run(["--old", "/nonexistent"]);
  assert.equal(notCheckout.code, 2);
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(new TextDecoder().decode(help.stdout), /^Usage: deno task bench:ab/);
});

Deno.test("bench/ab.ts runs both arms in turns against real clusters and stops them", async () => {
  const [a, b] = await runAb(parseAbArgs(["--seconds", "2", "--slice-ms", "50"], here));
  for (const arm of [a, b]) {
    assert.ok(arm.publishes > 10, `${arm.name}: ${arm.publishes} publishes`);
    assert.ok(arm.p50Ms > 0 && arm.p50Ms <= arm.p99Ms, `${arm.name}: p50 ${arm.p50Ms}`);
    assert.ok(arm.peersCpuUs > 0, `${arm.name}: the peers' CPU is counted`);
  }
  const table = formatAb([a, b]);
  assert.match(table, /\| p99 \(ms\) \| [\d.]+ \| [\d.]+ \| [\d.]+× \|/);
});
