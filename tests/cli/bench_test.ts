import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { type ProgramRun, runPubsub } from "../_helpers/peer_process.ts";

/** Runs `pubsub bench` with `args` to its exit. */
function runBench(args: string[]): Promise<ProgramRun> {
  return runPubsub(["bench", ...args]);
}

const passedChecks = [
  "[TEST 1] Checking primary node availability...\n  ✓ Primary node (port ",
  "[TEST 2] Checking data consistency before failure...\n  ✓ Data is consistent across all nodes",
  "[TEST 3] Testing replica failover when primary is down...\n  ✓ Successfully retrieved data from replica (port ",
  "[TEST 4] Verifying node recovery...\n  ✓ Node recovered and is back online",
  "[TEST 5] Validating data consistency after recovery...\n  ✓ Data consistency verified",
];

Deno.test({
  name:
    "pubsub bench --quick passes a fault-tolerance block, prints a JSON summary and writes the report",
  fn: async () => {
    const out = await Deno.makeTempDir({ prefix: "pubsub-bench-test-" });
    try {
      const { code, stdout, stderr } = await runBench([
        ...["--quick", "--json", "--out", out, "--duration", "2", "--iterations", "2"],
        ...["--kills", "1", "--pipeline", "32"],
      ]);
      equal(code, 0, stderr);
      // The prototype's header, with the node named by its id (1..3) as everywhere else.
      const header = stderr.match(
        /={70}\nFAULT TOLERANCE TEST (\d+) Simulating failure of Node (\d+)\.\.\.\n={70}\n/,
      );
      ok(header !== null, stderr);
      equal(header[1], "1");
      ok(["1", "2", "3"].includes(header[2]), `node ${header[2]} is not a node id`);
      for (const check of passedChecks) {
        ok(stderr.includes(check), `missing '${check}' in:\n${stderr}`);
      }
      const summary = JSON.parse(stdout.trim());
      equal(summary.ok, true);
      equal(summary.checks_passed, 5);
      equal(summary.checks_total, 5);
      equal(summary.iterations, 2);
      ok(summary.sequential_publish_ms.count > 0);
      ok(summary.sequential_publish_ms.max >= summary.sequential_publish_ms.min);
      // One kill: no median or p99 of one window, only the window itself.
      equal(summary.failover_window_ms.p50, null);
      equal(summary.failover_window_ms.p99, null);
      equal(summary.failover_window_p99_ms, null);
      ok(
        /^Failover windows: n=1 leader kills, min ([\d,.]+) ms, max \1 ms \(too few for median, needs 3; p99, needs 100\)$/m
          .test(stderr) || summary.failovers_without_ack === 1,
        stderr,
      );
      ok(/^Sequential publish: n=[\d,]+ publishes, /m.test(stderr), stderr);
      ok(summary.pipelined_throughput_per_second > 0);
      // The raw-protocol yardstick ran the same load.
      ok(summary.raw_pipelined_throughput_per_second > 0);
      ok(
        /^Raw protocol, same load: [\d,.]+ msgs\/s \(PubSubClient ÷ raw = [\d,.]+\)$/m.test(stderr),
        stderr,
      );
      ok(summary.publish_to_delivery_ms.count > 0);
      equal(summary.failover_windows_ms.length + summary.failovers_without_ack, 1);
      equal(summary.report.html, `${out}/index.html`);
      const files = [...Deno.readDirSync(out)].map((entry) => entry.name).sort();
      deepStrictEqual(files, [
        "comparison.svg",
        "failover_windows.svg",
        "fetch_latency.svg",
        "index.html",
        "latency_percentiles.svg",
        "publish_throughput.svg",
        "report.md",
        "throughput_over_time.svg",
        "topic_creation_latency.svg",
      ]);
      ok(Deno.readTextFileSync(`${out}/index.html`).includes("Fault-tolerance checks"));
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("pubsub bench rejects a bad flag value with one line and exit code 2", async () => {
  const { code, stdout, stderr } = await runBench(["--duration", "zero"]);
  equal(code, 2);
  equal(stdout, "");
  equal(stderr.trim().split("\n").length, 1);
  ok(stderr.includes("--duration"), stderr);
});

Deno.test("pubsub bench rejects --pids without --peers with one line and exit code 2", async () => {
  const { code, stderr } = await runBench(["--pids", "123"]);
  equal(code, 2);
  equal(stderr.trim(), "pubsub: Option --pids needs --peers");
});
