import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { anomalyKinds } from "../../lib/verify/checker.ts";
import { faultKinds } from "../../lib/verify/nemesis.ts";
import {
  freePort,
  type PeerProcess,
  type ProgramRun,
  runPubsub,
  startPeer,
} from "../_helpers/peer_process.ts";

/** Runs `pubsub verify` with `args` to its exit. */
function runVerify(args: string[]): Promise<ProgramRun> {
  return runPubsub(["verify", ...args]);
}

/** Command lines of running processes that mention `text`. */
async function processesMentioning(text: string): Promise<string[]> {
  const output = await new Deno.Command("ps", { args: ["-eo", "args"], stdout: "piped" }).output();
  return new TextDecoder().decode(output.stdout).split("\n").filter((line) => line.includes(text));
}

Deno.test({
  name:
    "pubsub verify --duration 15 injects every fault kind into a local cluster, finds no anomaly and stops every peer",
  fn: async () => {
    const { code, stdout, stderr } = await runVerify([
      ...["--duration", "15", "--seed", "20240601", "--json", "--drain-timeout", "60"],
    ]);
    equal(code, 0, stderr);
    const summary = JSON.parse(stdout.trim());
    equal(summary.ok, true, stderr);
    equal(summary.seed, 20240601);
    for (const kind of anomalyKinds) equal(summary[kind], 0, `${kind}: ${stderr}`);
    deepStrictEqual(summary.unverified, []);
    for (const kind of faultKinds) ok(summary.faults[kind] >= 1, `${kind} not injected: ${stderr}`);
    deepStrictEqual(summary.skipped_kinds, {});
    ok(summary.acknowledged > 100, `only ${summary.acknowledged} acknowledged`);
    ok(summary.deliveries > 0 && summary.fetches > 0);
    // Every acknowledged (and every stored unknown) publish is in the log, once.
    equal(summary.log_length, summary.acknowledged + summary.unknown_stored);
    equal(summary.replicas.length, 3);
    for (const replica of summary.replicas) {
      equal(replica.source, "files");
      equal(replica.messages, summary.log_length);
    }
    ok(summary.proxied.connections >= 6 && summary.proxied.bytes > 0);
    ok(stderr.includes("Verdict: PASS"), stderr);
    ok(stderr.includes("Reproduce the fault schedule: pubsub verify --seed 20240601"), stderr);
    // The temporary cluster is gone: no process of it runs, its directory was removed.
    const root = /data in (\S+)/.exec(summary.cluster)?.[1];
    ok(root !== undefined && root.includes("pubsub-verify-"), summary.cluster);
    equal(summary.kept_data, null);
    deepStrictEqual(await processesMentioning(root), []);
    ok(!(await Deno.stat(root).then(() => true, () => false)), `${root} was left behind`);
  },
});

Deno.test("pubsub verify --peers checks a running cluster with what it can do without owning it", async () => {
  const ports = [freePort(), freePort(), freePort()];
  const proxyPorts = [freePort(), freePort(), freePort()];
  const discovery = proxyPorts.map((port, index) => `${index + 1}@127.0.0.1:${port}`).join(",");
  const peers: PeerProcess[] = [];
  try {
    for (const [index, port] of ports.entries()) {
      peers.push(
        await startPeer({
          id: index + 1,
          port,
          peers: discovery,
          args: [
            ...["--advertise-address", `127.0.0.1:${proxyPorts[index]}`],
            ...["--heartbeat-ms", "500", "--dead-after", "5000"],
          ],
        }),
      );
    }
    const { code, stdout, stderr } = await runVerify([
      ...["--peers", peers.map((peer) => peer.address).join(",")],
      ...["--pids", peers.map((peer) => peer.pid).join(",")],
      ...["--proxy-ports", proxyPorts.map((port, index) => `${index + 1}=${port}`).join(",")],
      ...["--faults", "kill,pause,isolate-leader,drop", "--duration", "4", "--seed", "9"],
      ...["--json", "--drain-timeout", "60"],
    ]);
    equal(code, 0, stderr);
    const summary = JSON.parse(stdout.trim());
    equal(summary.ok, true, stderr);
    for (const kind of ["pause", "isolate-leader", "drop"]) {
      ok(summary.faults[kind] >= 1, `${kind} not injected: ${stderr}`);
    }
    equal(summary.faults.kill, undefined);
    ok(summary.skipped_kinds.kill.includes("cannot restart"), summary.skipped_kinds.kill);
    equal(summary.replicas.length, 3);
    for (const replica of summary.replicas) {
      equal(replica.source, "subscription");
      equal(replica.messages, summary.log_length);
    }
    // The peers verify did not start still run, none left paused.
    for (const peer of peers) {
      const state = await Deno.readTextFile(`/proc/${peer.pid}/stat`);
      ok(!/^\d+ \(.*\) T /.test(state), `peer ${peer.id} is stopped: ${state}`);
    }
  } finally {
    for (const peer of peers) {
      await peer.stop();
      await Deno.remove(peer.dataDir, { recursive: true });
    }
  }
});

Deno.test("pubsub verify refuses bad flags with one line and exit code 2", async () => {
  for (
    const [args, flag] of [
      [["--duration", "zero"], "--duration"],
      [["--faults", "kill,meteor"], "meteor"],
      [["--pids", "123"], "--pids"],
      [["--nodes", "2"], "--nodes"],
    ] as const
  ) {
    const { code, stdout, stderr } = await runVerify([...args]);
    equal(code, 2, stderr);
    equal(stdout, "");
    equal(stderr.trim().split("\n").length, 1, stderr);
    ok(stderr.includes(flag), stderr);
  }
});

Deno.test("pubsub verify --help describes every fault kind", async () => {
  const { code, stdout } = await runVerify(["--help"]);
  equal(code, 0);
  for (const kind of faultKinds) ok(stdout.includes(`  ${kind}`), kind);
  ok(stdout.includes("--seed"));
});
