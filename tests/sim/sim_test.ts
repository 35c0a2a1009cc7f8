import { equal } from "node:assert/strict";
import { formatResult, runSimulation } from "../../lib/sim/simulation.ts";
import { simCommand } from "../../lib/cli/sim.ts";

Deno.test("The simulator finds no violation in 200 seeds of the correct implementation", () => {
  const failures: string[] = [];
  for (let seed = 1; seed <= 200; seed++) {
    const result = runSimulation(seed);
    if (result.violation) failures.push(formatResult(result));
  }
  equal(failures.length, 0, failures.slice(0, 3).join("\n\n"));
});

Deno.test("A seed replays byte for byte", () => {
  const first = formatResult(runSimulation(4242, { broken: "vote-without-log-check" }));
  const second = formatResult(runSimulation(4242, { broken: "vote-without-log-check" }));
  equal(first, second);
});

Deno.test("pubsub sim returns 2 with one line for a bad flag", async () => {
  const errors: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args.join(" "));
  try {
    equal(await simCommand(["--seeds", "zero"]), 2);
    equal(await simCommand(["--nope"]), 2);
    equal(await simCommand(["--broken", "everything"]), 2);
  } finally {
    console.error = original;
  }
  equal(errors.length, 3);
  equal(errors.every((line) => !line.includes("\n") && line.startsWith("pubsub sim: ")), true);
});

Deno.test("pubsub sim --json prints one JSON object and exits 1 on a violation", async () => {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  let code: number;
  try {
    code = await simCommand([
      "--seeds",
      "40",
      "--seed",
      "1",
      "--json",
      "--broken",
      "vote-without-log-check",
    ]);
  } finally {
    console.log = original;
  }
  equal(code, 1);
  equal(lines.length, 1);
  const summary = JSON.parse(lines[0]);
  equal(summary.seeds, 40);
  equal(summary.violations > 0, true);
  equal(summary.failed_seeds.length, summary.violations);
  equal(typeof summary.elapsed_ms, "number");
});
