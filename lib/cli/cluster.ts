/**
 * `pubsub cluster`: starts N local peers as child processes and shows a live
 * view of nodes, topics and leaders that refreshes in place, until Ctrl-C
 * stops them all. Restarting it reuses the data under `--data-dir`.
 *
 * @module
 */

import { peerV8Flags } from "../peer/memory_trim.ts";
import { ensureSecretFile } from "../cluster/secret_file.ts";
import { sleep } from "../async.ts";
import { PubSubClient } from "../client/client.ts";
import { RequestTimeoutError } from "../client/errors.ts";
import { dataDirHolder } from "../peer/data_dir_lock.ts";
import { ExitCode, integerOption, newProgram, runProgram } from "./_command.ts";
import {
  type ClusterSnapshot,
  type NodeRow,
  renderClusterView,
  type TopicRow,
} from "./_cluster_view.ts";

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
  dataDir: string;
  /** Set while the live view restarts it. */
  restarting?: boolean;
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
    const restart = async (index: number) => {
      const old = children[index];
      old.restarting = true;
      try {
        await old.client?.close().catch(() => {});
        children[index] = await spawnPeer(old.id, old.address, peerList, flags, secretFile);
      } finally {
        old.restarting = false;
      }
    };
    await liveView(children, flags, stop.signal, hint + consoleHint, restart);
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
        // Until every peer votes in the metadata group (up to 5), losing the
        // controller could leave the cluster without a quorum.
        return status.metaLeader !== null && alive >= children.length &&
          status.metaVoters.length >= Math.min(children.length, 5);
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
      peerV8Flags,
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
    dataDir,
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

/** What the live view remembers between refreshes. */
interface ViewMemory {
  topics: TopicRow[];
  topicsAt: number | undefined;
}

async function liveView(
  children: Child[],
  flags: ClusterFlags,
  signal: AbortSignal,
  connectHint: string,
  restart: (index: number) => Promise<void>,
): Promise<void> {
  const live = flags.live && Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  const startedAt = Date.now();
  const memory: ViewMemory = { topics: [], topicsAt: undefined };
  const keys = live ? listenForKeys(children, signal, restart) : undefined;
  let notice = "";
  keys?.onNotice((text) => notice = text);
  try {
    while (!signal.aborted) {
      const snapshot = {
        ...await takeSnapshot(children, Date.now() - startedAt, memory),
        connectHint,
        keysHint: live
          ? `Press 1-${children.length} to restart a peer that is down, Ctrl-C to stop them all.` +
            (notice === "" ? "" : `\n${notice}`)
          : undefined,
      };
      const view = renderClusterView(snapshot, { color: live });
      if (live) {
        // Cursor home and clear: the view redraws in place.
        await Deno.stdout.write(new TextEncoder().encode(`\x1b[H\x1b[2J${view}\n`));
      } else {
        const nodes = snapshot.nodes.map((node) =>
          `node ${node.id} ${node.state}${node.detail ? ` (${node.detail})` : ""}`
        );
        console.log(nodes.join(" | "));
      }
      await sleep(flags.refreshMs, signal).catch(() => {});
    }
  } finally {
    keys?.stop();
  }
}

/**
 * Reads single key presses in raw mode: a digit restarts that peer when it is
 * down; Ctrl-C (which raw mode no longer turns into SIGINT) and q stop.
 */
function listenForKeys(
  children: Child[],
  signal: AbortSignal,
  restart: (index: number) => Promise<void>,
): { stop(): void; onNotice(listener: (text: string) => void): void } {
  let noticeListener: (text: string) => void = () => {};
  let stopped = false;
  Deno.stdin.setRaw(true, { cbreak: true });
  const reader = Deno.stdin.readable.getReader();
  (async () => {
    while (!stopped) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done || value === undefined) break;
      for (const byte of value) {
        if (byte === 3 || byte === 0x71) {
          Deno.kill(Deno.pid, "SIGINT");
          continue;
        }
        const index = byte - 0x31;
        if (index < 0 || index >= children.length || signal.aborted) continue;
        const child = children[index];
        if (child.exited === undefined || child.restarting) {
          noticeListener(`Peer ${child.id} is running; nothing to restart.`);
          continue;
        }
        noticeListener(`Restarting peer ${child.id}...`);
        restart(index).then(
          () => noticeListener(`Peer ${child.id} restarted.`),
          (error) => noticeListener(`Peer ${child.id} did not restart: ${error.message}`),
        );
      }
    }
  })();
  return {
    stop: () => {
      stopped = true;
      reader.cancel().catch(() => {});
      try {
        reader.releaseLock();
      } catch { /* a read is still pending */ }
      try {
        Deno.stdin.setRaw(false);
      } catch { /* not a terminal any more */ }
    },
    onNotice: (listener) => noticeListener = listener,
  };
}

async function takeSnapshot(
  children: Child[],
  uptimeMs: number,
  memory: ViewMemory,
): Promise<ClusterSnapshot> {
  const answers = await Promise.all(children.map((child) => askPeer(child)));
  const nodes = answers.map((answer) => answer.row);
  const metaLeader = answers.find((answer) => answer.metaLeader !== null)?.metaLeader ?? null;
  // Topics from the first peer that can list them; the last known ones otherwise.
  for (const answer of answers) {
    if (answer.client === undefined) continue;
    try {
      memory.topics = await describeTopics(answer.client);
      memory.topicsAt = Date.now();
      break;
    } catch {
      // This peer cannot list them right now (no leader yet): ask the next one.
    }
  }
  return {
    nodes,
    topics: memory.topics,
    topicsKnown: memory.topicsAt !== undefined,
    topicsAgeMs: memory.topicsAt === undefined ? undefined : Date.now() - memory.topicsAt,
    metaLeader,
    uptimeMs,
  };
}

/** One peer's row: asked over the protocol, whoever runs it (this launcher or a person). */
async function askPeer(
  child: Child,
): Promise<{ row: NodeRow; metaLeader: number | null; client?: PubSubClient }> {
  const ours = child.exited === undefined;
  const pid = ours ? child.process.pid : await dataDirHolder(child.dataDir);
  const row: NodeRow = { id: child.id, address: child.address, pid, state: "down" };
  if (!ours) {
    row.detail = pid === undefined ? `exited ${child.exited!.code}` : "restarted by hand";
  }
  child.client ??= await connectQuietly(child.address);
  if (child.client === undefined) {
    if (ours) row.state = "no answer";
    return { row, metaLeader: null };
  }
  try {
    const status = await child.client.clusterStatus();
    row.state = "up";
    row.view = status.nodes.map((node) => `${node.id}:${node.state}`).join(" ");
    return { row, metaLeader: status.metaLeader, client: child.client };
  } catch (error) {
    // Refused: nothing listens. A timeout: something does, but did not answer.
    row.state = error instanceof RequestTimeoutError || (ours && pid !== undefined)
      ? "no answer"
      : "down";
    if (!(error instanceof RequestTimeoutError)) {
      await child.client.close().catch(() => {});
      child.client = undefined;
    }
    return { row, metaLeader: null };
  }
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
    if (child.exited !== undefined) {
      // A peer restarted by hand on this cluster's data directory is stopped too.
      const pid = await dataDirHolder(child.dataDir);
      if (pid !== undefined) await stopPid(pid);
      return;
    }
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

/** SIGTERM, then SIGKILL after 10 s; resolves once the process is gone. */
async function stopPid(pid: number): Promise<void> {
  const alive = () => {
    try {
      Deno.statSync(`/proc/${pid}`);
      return true;
    } catch {
      return false;
    }
  };
  try {
    Deno.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + 10_000;
  while (alive() && Date.now() < deadline) await sleep(50);
  if (alive()) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
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
