import assert from "node:assert/strict";
import { type FuzzReport, parseFuzzArgs, UsageError } from "../../fuzz/fuzz.ts";

const fuzzPath = new URL("../../fuzz/fuzz.ts", import.meta.url).pathname;

/** Cases of the CI run: every target and tail, in well under 30 s on a quiet machine. */
const ciCases = 20_000;
/** A fixed seed, so that CI runs the same inputs every time. */
const ciSeed = 20_240_909;
/** Longest the fuzz run may take before the test stops it by PID. */
const runTimeoutMs = 180_000;

/** Runs `deno task fuzz` as a child process, stopping it by PID if it overruns. */
async function runFuzzProcess(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", fuzzPath, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // SIGTERM first: the fuzzer then stops its peers by PID before it exits.
  const signal = (name: Deno.Signal) => {
    try {
      child.kill(name);
    } catch { /* already exited */ }
  };
  const terminate = setTimeout(() => signal("SIGTERM"), runTimeoutMs);
  const kill = setTimeout(() => signal("SIGKILL"), runTimeoutMs + 20_000);
  try {
    const output = await child.output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } finally {
    clearTimeout(terminate);
    clearTimeout(kill);
  }
}

Deno.test("deno task fuzz runs 20,000 cases against the decoders and a live 3-peer cluster with no crash, hang or unexpected answer", async () => {
  const { code, stdout, stderr } = await runFuzzProcess([
    "--cases",
    String(ciCases),
    "--seed",
    String(ciSeed),
    "--json",
  ]);
  let report: FuzzReport;
  try {
    report = JSON.parse(stdout);
  } catch {
    throw new Error(`The fuzzer printed no JSON report (exit ${code}):\n${stdout}\n${stderr}`);
  }
  const failures = report.failures.map((failure) =>
    `${failure.kind} in ${failure.target}: ${failure.detail} (input ${failure.input})`
  ).join("\n");
  assert.deepStrictEqual(
    {
      crashes: report.totals.crashes,
      hangs: report.totals.hangs,
      unexpected: report.totals.unexpected,
    },
    { crashes: 0, hangs: 0, unexpected: 0 },
    `${failures}\nreproduce with: ${report.command}`,
  );
  assert.equal(code, 0, stderr);
  assert.ok(report.ok);
  assert.ok(report.cases >= ciCases, `only ${report.cases} cases ran`);
  // Every decoder and every family of live input was exercised.
  const expectedTargets = [
    "frame",
    "request",
    "peer_raft",
    "peer_join",
    "peer_forward",
    "peer_meta",
    "peer_subscribe_start",
    "peer_wait",
    "peer_heartbeat",
    "peer_leave",
    "raft_message",
    "meta_command",
    "handshake_listener",
    "handshake_dialer",
    "peer_answers",
    "live_client_invalid",
    "live_client_mutated",
    "live_peer_action",
    "live_peer_handshake",
    "live_garbage_payload",
    "live_tail_too_large",
    "live_tail_truncated_frame",
    "live_tail_random_bytes",
    "live_tail_failed_proof",
    "live_idle_partial_frame",
  ];
  for (const target of expectedTargets) {
    assert.ok((report.targets[target]?.cases ?? 0) > 0, `no cases of ${target}`);
  }
  // The well-behaved client kept publishing, and everything acknowledged is stored.
  assert.equal(report.cluster?.peers, 3);
  assert.ok(report.watch !== undefined && report.watch.acknowledged > 0);
  assert.equal(report.watch.verified, true);
  assert.equal(report.watch.publishErrors, 0);
  assert.ok(report.watch.pings > 0);
  // Every peer the fuzzer started is gone: it stops them by PID.
  for (const pid of report.cluster!.pids) {
    assert.throws(() => Deno.kill(pid, "SIGCONT"), `peer process ${pid} is still running`);
  }
});

Deno.test("deno task fuzz refuses a bad flag with a one-line message and exit code 2", async () => {
  const { code, stderr, stdout } = await runFuzzProcess(["--cases", "many"]);
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.match(stderr, /^fuzz: Option --cases must be an integer between 1 and 1000000000\n$/);
});

Deno.test("parseFuzzArgs reads every flag and names the bad one", () => {
  const options = parseFuzzArgs(["--cases", "5", "--seed", "9", "--live-share", "0.5", "--json"]);
  assert.deepStrictEqual(options, { cases: 5, seed: 9, liveShare: 0.5, json: true, help: false });
  assert.equal(parseFuzzArgs(["--help"]).help, true);
  assert.equal(parseFuzzArgs([]).cases, 1_000_000);
  assert.throws(() => parseFuzzArgs(["--seed", "-1"]), UsageError);
  assert.throws(() => parseFuzzArgs(["--live-share", "2"]), /--live-share/);
  assert.throws(() => parseFuzzArgs(["--verbose"]), /Unknown option '--verbose'/);
});
