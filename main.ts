/**
 * `pubsub`: one program that is a cluster peer, a client, a local cluster
 * launcher, a benchmark and a simulator. Only this file reads `Deno.args`.
 *
 * @module
 */

import { reportError } from "./lib/cli/_command.ts";

const usage = `Usage: pubsub <command> [options]

Commands:
  peer      run one cluster peer
  client    interactive menu, or one-shot commands (create-topic, publish, fetch, ...)
  cluster   start a local cluster with a live status view
  bench     fault-tolerance checks and performance report
  sim       deterministic simulation of the Raft core, or of whole clusters (--cluster)
  verify    Jepsen-style check of a live cluster under injected faults

Run 'pubsub <command> --help' for a command's options.`;

type CommandRunner = (args: string[]) => Promise<number>;

const commands: Record<string, () => Promise<CommandRunner>> = {
  peer: async () => (await import("./lib/cli/peer.ts")).peerCommand,
  client: async () => (await import("./lib/cli/client.ts")).clientCommand,
  cluster: async () => (await import("./lib/cli/cluster.ts")).clusterCommand,
  bench: async () => (await import("./lib/cli/bench.ts")).benchCommand,
  sim: async () => (await import("./lib/cli/sim.ts")).simCommand,
  verify: async () => (await import("./lib/cli/verify.ts")).verifyCommand,
};

async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage);
    return name === undefined ? 2 : 0;
  }
  const load = commands[name];
  if (load === undefined) {
    console.error(
      `pubsub: unknown command '${name}' (expected one of ${Object.keys(commands).join(", ")})`,
    );
    return 2;
  }
  try {
    return await (await load())(rest);
  } catch (error) {
    return reportError(error);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
