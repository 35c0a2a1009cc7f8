/**
 * `pubsub cluster`: starts N local peers as child processes and shows a live
 * view of nodes, topics and leaders that refreshes in place, until Ctrl-C
 * stops them all. Restarting it reuses the data under `--data-dir`.
 *
 * @module
 */

import { ensureSecretFile } from "../cluster/secret_file.ts";
import { sleep } from "../async.ts";
import { PubSubClient } from "../client/client.ts";
import { ExitCode, integerOption, newProgram, runProgram } from "./_command.ts";
import { type ClusterSnapshot, type NodeRow, renderClusterView } from "./_cluster_view.ts";

interface ClusterFlags {
  nodes: number;
  basePort: number;
  host: string;
  dataDir: string;
  replicationFactor: number;
  heartbeatMs: number;
  refreshMs: number;
  live: boolean;
  httpBasePort?: number;
  http: boolean;
}

/** A peer child process of the local cluster. */
interface Child {
  id: number;
  address: string;
  process: Deno.ChildProcess;
  exited: Deno.CommandStatus | undefined;
  client: PubSubClient | undefined;
  /** The peer's web console and HTTP API, as it printed it. */
  httpUrl: string | undefined;
}

/** Most topics the live view lists. */
const viewTopicsMax = 15;
const mainPath = new URL("../../main.ts", import.meta.url).pathname;

/** Runs `pubsub cluster` with `args`; resolves to the exit code. */
export function clusterCommand(args: string[]): Promise<number> {
  const program = newProgram("pubsub cluster", "Start a local cluster with a live status view")
    .option("--nodes <n>", "number of peers", integerOption(1, 8), 3)
    .option(
      "--base-port <port>",
      "port of peer 1; peer i listens on base+i-1",
      integerOption(1, 65528),
      5001,
    )
    .option("--host <host>", "address the peers listen on", "127.0.0.1")
    .option("--data-dir <dir>", "data directory; peer i uses <dir>/<i>", "./data")
    .option("--replication-factor <n>", "replicas per topic", integerOption(1, 7), 3)
    .option("--heartbeat-ms <ms>", "node heartbeat interval", integerOption(10, 600_000), 3000)
    .option("--refresh-ms <ms>", "live view refresh interval", integerOption(100, 60_000), 1000)
    .option("--no-live", "print one status line per refresh instead of redrawing")
    .option(
      "--http-base-port <port>",
      "HTTP port (API, web console) of peer 1; peer i uses base+i-1 (default: --base-port + 100)",
      integerOption(1, 65528),
    )
    .option("--no-http", "do not serve the HTTP API and web console")
    .action(async (flags: ClusterFlags) => {
      throw new ExitCode(await runCluster(flags));
    });
  return runProgram(program, args);
}

async function runCluster(flags: ClusterFlags): Promise<number> {
  const addresses = Array.from(
    { length: flags.nodes },
    (_, index) => `${flags.host}:${flags.basePort + index}`,
  );
  const peerList = addresses.map((address, index) => `${index + 1}@${address}`).join(",");
  const children: Child[] = [];
  const stop = stopSignal();
  await Deno.mkdir(flags.dataDir, { recursive: true });
  // Peers prove to each other that they know this secret before any peer action.
  const secretFile = await ensureSecretFile(`${flags.dataDir}/cluster.secret`);
  try {
    for (let id = 1; id <= flags.nodes; id++) {
      children.push(await spawnPeer(id, addresses[id - 1], peerList, flags, secretFile));
    }
    await Promise.all(
      children.map(async (child) => child.client = await connectQuietly(child.address)),
    );
    await waitForFormation(children, stop.signal);
    console.log(`Started ${flags.nodes} peers (data in ${flags.dataDir}). Connect a client with:`);
    console.log(`  ./pubsub client --peers ${addresses.join(",")}`);
    const hint = `Connect a client: ./pubsub client --peers ${addresses.join(",")}`;
    const consoles = children.flatMap((child) => child.httpUrl ?? []);
    if (consoles.length > 0) {
      console.log(`Web console: ${consoles[0]} (every peer serves one: ${consoles.join(" ")})`);
    }
    const consoleHint = consoles.length > 0 ? `\nWeb console: ${consoles[0]}` : "";
    await liveView(children, flags, stop.signal, hint + consoleHint);
  } finally {
    stop.dispose();
    await stopAll(children);
  }
  console.log("All peers stopped.");
  return 0;
}

/** Most time the launcher waits for the peers to form one cluster. */
const formationMsMax = 30_000;

/**
 * Waits (bounded) until every peer follows a controller and sees all the
 * others alive: until then a killed peer could take the only copy of the
 * metadata with it.
 */
async function waitForFormation(children: Child[], signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + formationMsMax;
  while (Date.now() < deadline && !signal.aborted) {
    const formed = await Promise.all(children.map(async (child) => {
      try {
        child.client ??= await connectQuietly(child.address);
        const status = await child.client!.clusterStatus();
        const alive = status.nodes.filter((node) => node.state === "alive").length;
        return status.metaLeader !== null && alive >= children.length;
      } catch {
        return false;
      }
    }));
    if (formed.every(Boolean)) return;
    await sleep(200, signal);
  }
}

async function spawnPeer(
  id: number,
  address: string,
  peerList: string,
  flags: ClusterFlags,
  secretFile: string,
): Promise<Child> {
  const dataDir = `${flags.dataDir}/${id}`;
  await Deno.mkdir(dataDir, { recursive: true });
  const log = await Deno.open(`${dataDir}/peer.log`, { append: true, create: true });
  const port = address.slice(address.lastIndexOf(":") + 1);
  const process = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      mainPath,
      "peer",
      ...["--id", String(id), "--port", port, "--host", flags.host, "--peers", peerList],
      ...["--data-dir", dataDir, "--replication-factor", String(flags.replicationFactor)],
      ...["--heartbeat-ms", String(flags.heartbeatMs)],
      ...["--cluster-secret-file", secretFile],
      ...httpArgs(id, flags),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const child: Child = {
    id,
    address,
    process,
    exited: undefined,
    client: undefined,
    httpUrl: undefined,
  };
  const ready = Promise.withResolvers<void>();
  let output = "";
  let recent = "";
  const pipe = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      if (child.httpUrl === undefined) {
        // The peer prints its console's address on stdout, maybe after the log says it listens.
        recent = (recent + new TextDecoder().decode(chunk)).slice(-1000);
        child.httpUrl = /web console and HTTP API at (\S+)/.exec(recent)?.[1];
      }
      if (!output.includes("listening on")) {
        output += new TextDecoder().decode(chunk);
        if (output.includes("listening on")) ready.resolve();
      }
      await log.write(chunk);
    }
  };
  const pipes = Promise.all([pipe(process.stdout), pipe(process.stderr)]);
  process.status.then(async (status) => {
    child.exited = status;
    await pipes;
    log.close();
    ready.reject(new Error(`Peer ${id} exited with code ${status.code}: ${lastLine(output)}`));
  });
  const timer = setTimeout(
    () => ready.reject(new Error(`Peer ${id} did not start within 30 s`)),
    30_000,
  );
  try {
    await ready.promise;
  } finally {
    clearTimeout(timer);
  }
  return child;
}

/**
 * The `--http-port` of peer `id`: base+id-1, or a free port chosen by the
 * peer when that one is taken (the printed URL names it either way).
 */
function httpArgs(id: number, flags: ClusterFlags): string[] {
  if (!flags.http) return [];
  const port = (flags.httpBasePort ?? flags.basePort + 100) + id - 1;
  return ["--http-port", String(port <= 65535 && portFree(flags.host, port) ? port : 0)];
}

function portFree(hostname: string, port: number): boolean {
  try {
    Deno.listen({ hostname, port }).close();
    return true;
  } catch {
    return false;
  }
}

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1) ?? "no output";
}

async function connectQuietly(address: string): Promise<PubSubClient | undefined> {
  try {
    return await PubSubClient.connect({ peers: [address], requestTimeoutMs: 1000, retries: 0 });
  } catch {
    return undefined;
  }
}

async function liveView(
  children: Child[],
  flags: ClusterFlags,
  signal: AbortSignal,
  connectHint: string,
): Promise<void> {
  const live = flags.live && Deno.stdout.isTerminal();
  const startedAt = Date.now();
  while (!signal.aborted) {
    const snapshot = { ...await takeSnapshot(children, Date.now() - startedAt), connectHint };
    const view = renderClusterView(snapshot, { color: live });
    if (live) {
      // Cursor home and clear: the view redraws in place.
      await Deno.stdout.write(
        new TextEncoder().encode(`\x1b[H\x1b[2J${view}\nCtrl-C stops the cluster.\n`),
      );
    } else {
      console.log(view.split("\n").filter((line) => line.startsWith(" node ")).join(" | ") || view);
    }
    await sleep(flags.refreshMs, signal);
  }
}

async function takeSnapshot(children: Child[], uptimeMs: number): Promise<ClusterSnapshot> {
  const nodes: NodeRow[] = [];
  let topics: ClusterSnapshot["topics"] = [];
  let metaLeader: number | null = null;
  for (const child of children) {
    const row: NodeRow = {
      id: child.id,
      address: child.address,
      pid: child.process.pid,
      state: "down",
    };
    if (child.exited !== undefined) {
      row.state = `exited (${child.exited.code})`;
    } else {
      child.client ??= await connectQuietly(child.address);
      try {
        const status = await child.client!.clusterStatus();
        row.state = "up";
        row.view = status.nodes.map((node) => `${node.id}:${node.state}`).join(" ");
        metaLeader ??= status.metaLeader;
        if (topics.length === 0) topics = await describeTopics(child.client!);
      } catch {
        row.state = "unreachable";
      }
    }
    nodes.push(row);
  }
  return { nodes, topics, metaLeader, uptimeMs };
}

async function describeTopics(client: PubSubClient): Promise<ClusterSnapshot["topics"]> {
  const names = await client.topics();
  const shown = names.slice(0, viewTopicsMax);
  const rows = await Promise.all(shown.map(async (name) => {
    const info = await client.describeTopic(name);
    return {
      name,
      leader: info.leader,
      replicas: info.replicas,
      inSync: info.inSync,
      firstOffset: info.firstOffset,
      nextOffset: info.nextOffset,
    };
  }));
  if (names.length > shown.length) {
    rows.push({
      name: `... ${names.length - shown.length} more`,
      leader: null,
      replicas: [],
      inSync: [],
      firstOffset: 0,
      nextOffset: 0,
    });
  }
  return rows;
}

async function stopAll(children: Child[]): Promise<void> {
  await Promise.all(children.map(async (child) => {
    await child.client?.close().catch(() => {});
    if (child.exited !== undefined) return;
    try {
      child.process.kill("SIGTERM");
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        child.process.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 10_000);
    await child.process.status;
    clearTimeout(timer);
  }));
}

function stopSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  const handler = () => controller.abort();
  for (const name of signals) Deno.addSignalListener(name, handler);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const name of signals) Deno.removeSignalListener(name, handler);
    },
  };
}
