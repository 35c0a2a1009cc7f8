/**
 * NATS JetStream servers for `bench/compare.ts`: one server (for R1
 * streams) or a 3-server cluster (for R3 streams), on free 127.0.0.1 ports,
 * file storage in a temporary directory, config files written here, every
 * process stopped by its PID.
 *
 * @module
 */

import { freePort } from "../lib/bench/local_cluster.ts";
import { waitForPort } from "./_programs.ts";

/** How long a NATS server may take to accept connections. */
export const natsStartTimeoutMs = 15_000;

/** Options of {@linkcode startNats}. */
export interface NatsOptions {
  /** The nats-server binary (default: `nats-server` on PATH). */
  program?: string;
  /**
   * JetStream fsyncs every write before it acknowledges (`sync_interval:
   * always`, nats-server 2.10 and later): the durability pubsub gives. By
   * default JetStream fsyncs every 2 minutes and relies on replication.
   */
  syncAlways?: boolean;
}

/** The first nats-server minor release with `sync_interval: always`. */
const syncAlwaysSince = [2, 10];

/**
 * Whether the nats-server that printed `version` (`nats-server: v2.10.27`)
 * can fsync every write (`sync_interval: always`).
 *
 * @example
 * ```ts
 * import { natsCanSyncAlways } from "./_nats_servers.ts";
 *
 * console.log(natsCanSyncAlways("nats-server: v2.9.10")); // false
 * console.log(natsCanSyncAlways("nats-server: v2.10.27")); // true
 * ```
 */
export function natsCanSyncAlways(version: string): boolean {
  const match = /v(\d+)\.(\d+)\./.exec(version);
  if (match === null) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major > syncAlwaysSince[0] ||
    (major === syncAlwaysSince[0] && minor >= syncAlwaysSince[1]);
}

/** A running NATS deployment. */
export interface NatsDeployment {
  /** Client URLs, "127.0.0.1:port". */
  servers: string[];
  /** The command lines used, for RESULTS.md. */
  commands: string[];
  stop(): Promise<void>;
}

/**
 * Starts `nodes` NATS servers with JetStream (a cluster when nodes > 1).
 *
 * @example
 * ```ts
 * import { startNats } from "./_nats_servers.ts";
 *
 * const nats = await startNats(3);
 * await nats.stop();
 * ```
 */
export async function startNats(
  nodes: number,
  options: NatsOptions = {},
): Promise<NatsDeployment> {
  const program = options.program ?? "nats-server";
  const root = await Deno.makeTempDir({ prefix: "pubsub-compare-nats-" });
  const clientPorts = Array.from({ length: nodes }, () => freePort());
  const routePorts = Array.from({ length: nodes }, () => freePort());
  const processes: Deno.ChildProcess[] = [];
  const commands: string[] = [];
  const stop = async () => {
    for (const process of processes) {
      try {
        process.kill("SIGTERM");
      } catch { /* already exited */ }
    }
    await Promise.all(processes.map((process) => process.status));
    await Deno.remove(root, { recursive: true }).catch(() => {});
  };
  try {
    for (let index = 0; index < nodes; index++) {
      const config = `${root}/n${index}.conf`;
      const text = configOf(index, root, clientPorts, routePorts, options.syncAlways === true);
      await Deno.writeTextFile(config, text);
      // Its log goes to a file, read back if it does not come up.
      const args = ["-c", config, "-l", `${root}/n${index}.log`];
      commands.push([program, ...args].join(" "));
      processes.push(
        new Deno.Command(program, {
          args,
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn(),
      );
    }
    let started = false;
    const listening = Promise.all(
      clientPorts.map((port) => waitForPort(port, "NATS server", natsStartTimeoutMs)),
    );
    // A server that exits ends the wait at once (nothing will listen on its port).
    const exited = new Promise<never>((_, reject) => {
      processes.forEach((process, index) =>
        process.status.then(({ code }) => {
          if (!started) reject(new Error(`NATS server n${index} exited with code ${code}`));
        })
      );
    });
    // Whichever loses the race settles later, heard by nobody: not an unhandled rejection.
    listening.catch(() => {});
    exited.catch(() => {});
    await Promise.race([listening, exited]);
    started = true;
  } catch (error) {
    const why = await firstLogError(root, nodes);
    await stop();
    const message = `${(error as Error).message}${why === undefined ? "" : ` (${why})`}`;
    throw new NatsDeploymentError(message, { cause: error });
  }
  return { servers: clientPorts.map((port) => `127.0.0.1:${port}`), commands, stop };
}

/** The first error or fatal line in the deployment's server logs, if any. */
async function firstLogError(root: string, nodes: number): Promise<string | undefined> {
  for (let index = 0; index < nodes; index++) {
    const log = await Deno.readTextFile(`${root}/n${index}.log`).catch(() => "");
    const line = log.split("\n").find((line) => / \[(FTL|ERR)\] /.test(line));
    if (line !== undefined) return `n${index}: ${line.replace(/^.*? \[(FTL|ERR)\] /, "")}`;
  }
  return undefined;
}

function configOf(
  index: number,
  root: string,
  clientPorts: number[],
  routePorts: number[],
  syncAlways: boolean,
) {
  const sync = syncAlways ? ", sync_interval: always" : "";
  const lines = [
    `server_name: n${index}`,
    `listen: 127.0.0.1:${clientPorts[index]}`,
    `jetstream { store_dir: "${root}/store${index}"${sync} }`,
  ];
  if (clientPorts.length > 1) {
    const routes = routePorts.map((port) => `nats-route://127.0.0.1:${port}`).join(", ");
    lines.push(
      `cluster { name: bench, listen: 127.0.0.1:${routePorts[index]}, routes: [${routes}] }`,
    );
  }
  return lines.join("\n") + "\n";
}

/**
 * Deployments of a NATS cluster tried before its phase fails: nats-server
 * 2.10.27 did not create its R3 stream within 30 s in 2 of 8 deployments
 * of three servers (session 14), and in session 15 ended two 3-round runs
 * that way and by a server that never listened; a new deployment of the
 * same configuration then works.
 */
export const natsDeploymentAttempts = 3;

/**
 * A NATS deployment that did not come up: a server exited or did not listen,
 * or the cluster never accepted the benchmark's stream (see
 * `natsDeploymentAttempts`).
 */
export class NatsDeploymentError extends Error {
  override name = "NatsDeploymentError";
}

/**
 * Runs `deploy` (a phase that starts a NATS cluster, measures it and stops
 * it) again, on a new deployment, while its stream is not created, up to
 * `attempts` times; any other error ends it at once.
 *
 * @example
 * ```ts
 * import { withRedeploys } from "./_nats_servers.ts";
 * console.log(await withRedeploys(() => Promise.resolve(42))); // 42
 * ```
 */
export async function withRedeploys<T>(
  deploy: () => Promise<T>,
  attempts = natsDeploymentAttempts,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await deploy();
    } catch (error) {
      if (!(error instanceof NatsDeploymentError) || attempt >= attempts) {
        throw error;
      }
      const next = attempt + 1;
      console.warn(`${error.message}; deploying it again (attempt ${next} of ${attempts})`);
    }
  }
}
