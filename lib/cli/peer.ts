/**
 * `pubsub peer`: runs one cluster peer until SIGINT/SIGTERM. In a terminal
 * without `--id`/`--port` it asks for them, like the prototype's
 * `Enter node ID:` / `Enter port:`.
 *
 * @module
 */

import { input } from "@inquirer/prompts";
import { InvalidArgumentError, Option } from "commander";
import { configureLogging, type LogFormat, type LogLevelName } from "../logging.ts";
import { ClusterBroker } from "../cluster/cluster_broker.ts";
import { ClusterSecret } from "../cluster/peer_auth.ts";
import { AccessPolicy, AuthFileError, fullAccessToken, loadAuthFile } from "../peer/auth.ts";
import {
  applyHelperThreadPolicy,
  helperThreadPolicies,
  type HelperThreadPolicy,
} from "../peer/helper_threads.ts";
import { spinUsDefault, spinUsMax, startIdleSpin } from "../peer/idle_spin.ts";
import { startPeer } from "../peer/peer.ts";
import { frameBytesMaxDefault } from "../wire/frame.ts";
import type { Retention } from "../wire/retention.ts";
import {
  defaultPeerList,
  ExitCode,
  integerOption,
  newProgram,
  parsePeerList,
  type PeerAddress,
  runProgram,
  UsageError,
} from "./_command.ts";

interface PeerFlags {
  id?: number;
  port?: number;
  host: string;
  advertiseAddress?: string;
  peers: PeerAddress[];
  dataDir?: string;
  replicationFactor: number;
  heartbeatMs: number;
  deadAfter: number;
  maxFrame: number;
  idleTimeout: number;
  requestTimeout: number;
  authTokenFile?: string;
  authFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  clusterSecretFile?: string;
  insecure: boolean;
  metricsPort?: number;
  httpPort?: number;
  metricsTokenFile?: string;
  logLevel: LogLevelName;
  logFormat: LogFormat;
  leaveOnExit: boolean;
  standalone: boolean;
  maxTopics: number;
  snapshotEntries: number;
  retentionMs?: number;
  retentionBytes?: number;
  retentionMessages?: number;
  helperThreads: HelperThreadPolicy;
  spinUs: number;
}

/** Runs `pubsub peer` with `args`; resolves to the exit code. */
export function peerCommand(args: string[]): Promise<number> {
  const program = newProgram("pubsub peer", "Run one pubsub cluster peer until Ctrl-C")
    .option(
      "--id <n>",
      "this peer's node id (asked for in a terminal)",
      integerOption(1, 1_000_000),
    )
    .option(
      "--port <port>",
      "client and peer port (asked for in a terminal)",
      integerOption(0, 65535),
    )
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option(
      "--advertise-address <host:port>",
      "address other peers dial to reach this one, e.g. a proxy (default: --host:--port)",
      advertiseAddressOption,
    )
    .addOption(
      new Option("--peers <list>", "discovery list id@host:port,...; the first bootstraps")
        .argParser(parsePeerList)
        .default(parsePeerList(defaultPeerList), "1@localhost:5001,...,8@localhost:5008"),
    )
    .option("--data-dir <dir>", "where this peer stores its logs (default ./data/<id>)")
    .option("--replication-factor <n>", "replicas per topic", integerOption(1, 7), 3)
    .option("--heartbeat-ms <ms>", "node heartbeat interval", integerOption(10, 600_000), 3000)
    .option(
      "--dead-after <ms>",
      "declare a silent peer dead after this long",
      integerOption(100, 86_400_000),
      30_000,
    )
    .option(
      "--max-frame <bytes>",
      "largest request frame accepted",
      integerOption(64, 0xffffffff),
      frameBytesMaxDefault,
    )
    .option(
      "--idle-timeout <ms>",
      "close a connection stuck in a partial frame after",
      integerOption(100, 86_400_000),
      30_000,
    )
    .option(
      "--request-timeout <ms>",
      "answer 'unavailable' when a request takes longer",
      integerOption(10, 600_000),
      5_000,
    )
    .option("--auth-token-file <file>", "require clients to authenticate with this token")
    .option(
      "--auth-file <file>",
      "require clients to authenticate; JSON of tokens with per-topic permissions (see README)",
    )
    .option("--tls-cert <file>", "serve TLS with this certificate (needs --tls-key)")
    .option("--tls-key <file>", "private key for --tls-cert")
    .option(
      "--tls-ca <file>",
      "CA certificate that peers' TLS certificates must chain to (with --tls-cert)",
    )
    .option(
      "--cluster-secret-file <file>",
      "shared secret peers prove they know before any peer action is accepted",
    )
    .option(
      "--insecure",
      "allow listening on a non-loopback address without --cluster-secret-file",
      false,
    )
    .option(
      "--http-port <port>",
      "serve the HTTP API, the web console and /metrics on this port (default: off)",
      integerOption(0, 65535),
    )
    .option(
      "--metrics-port <port>",
      "serve Prometheus metrics on this port",
      integerOption(0, 65535),
    )
    .option(
      "--metrics-token-file <file>",
      "require this Bearer token on /metrics (default: open; it names every topic)",
    )
    .option("--log-level <level>", "debug, info, warning or error", "info")
    .option("--log-format <format>", "pretty or json", "pretty")
    .option(
      "--max-topics <n>",
      "most topics; creating more answers 'overloaded' (default: 10,000 replicas per peer, so 10000 topics on 3 peers at replication factor 3 and more with more peers; 10000 with --standalone)",
      integerOption(1, 1_000_000),
    )
    .option(
      "--retention-ms <ms>",
      "default retention of new topics: delete whole segments older than this (default: keep)",
      integerOption(1, Number.MAX_SAFE_INTEGER),
    )
    .option(
      "--retention-bytes <bytes>",
      "default retention of new topics: keep about this many bytes per replica (default: all)",
      integerOption(1, Number.MAX_SAFE_INTEGER),
    )
    .option(
      "--retention-messages <n>",
      "default retention of new topics: keep at least the newest n messages (default: all)",
      integerOption(1, Number.MAX_SAFE_INTEGER),
    )
    .option(
      "--snapshot-entries <n>",
      "entries a group applies between two snapshots (its log is compacted behind each)",
      integerOption(1, Number.MAX_SAFE_INTEGER),
      10_000,
    )
    .option(
      "--standalone",
      "serve alone without replication (no cluster; each topic a one-voter Raft group)",
      false,
    )
    .option("--leave-on-exit", "move this peer's replicas away before exiting on SIGTERM", false)
    .option(
      "--helper-threads <policy>",
      "idle: on Linux, V8's compiler and GC helper threads run at SCHED_IDLE and never delay the event loop; normal: leave them",
      helperThreadsOption,
      "idle",
    )
    .option(
      "--spin-us <us>",
      `on Linux, keep a core busy at SCHED_IDLE for this long after network activity, so that the next wakeup finds it running (0: off; at most ${spinUsMax})`,
      integerOption(0, spinUsMax),
      spinUsDefault,
    )
    .action(async (flags: PeerFlags) => {
      throw new ExitCode(await runPeer(flags));
    });
  return runProgram(program, args);
}

async function runPeer(flags: PeerFlags): Promise<number> {
  configureLoggingFrom(flags);
  applyHelperThreadPolicy(flags.helperThreads);
  const { id, port } = await askMissing(flags);
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new UsageError("Options --tls-cert and --tls-key must be given together");
  }
  const authToken = flags.authTokenFile === undefined
    ? undefined
    : await readToken(flags.authTokenFile);
  const access = await readAccess(flags, authToken);
  const metricsToken = await readMetricsToken(flags);
  if (flags.tlsCa !== undefined && flags.tlsCert === undefined) {
    throw new UsageError("Option --tls-ca needs --tls-cert and --tls-key");
  }
  const tls = flags.tlsCert === undefined ? undefined : {
    cert: await readFlagFile("--tls-cert", flags.tlsCert),
    key: await readFlagFile("--tls-key", flags.tlsKey!),
    ca: flags.tlsCa === undefined ? undefined : await readFlagFile("--tls-ca", flags.tlsCa),
  };
  const clusterSecret = await readClusterSecret(flags);
  const spin = startIdleSpin(flags.spinUs);
  try {
    const peer = await startPeer({
      id,
      host: flags.host,
      port,
      dataDir: flags.dataDir ?? `./data/${id}`,
      frameBytesMax: flags.maxFrame,
      idleTimeoutMs: flags.idleTimeout,
      requestTimeoutMs: flags.requestTimeout,
      authToken,
      access,
      tls,
      clusterSecret,
      metricsPort: flags.metricsPort,
      httpPort: flags.httpPort,
      metricsToken,
      peers: flags.peers,
      advertiseAddress: flags.advertiseAddress,
      replicationFactor: flags.replicationFactor,
      heartbeatMs: flags.heartbeatMs,
      deadAfterMs: flags.deadAfter,
      standalone: flags.standalone,
      topicsMax: flags.maxTopics,
      retentionDefaults: retentionDefaultsOf(flags),
      snapshotEntries: flags.snapshotEntries,
    });
    if (peer.httpPort !== undefined) {
      // Printed before the "listening on" line, which launchers wait for.
      const host = flags.host.includes(":") ? `[${flags.host}]` : flags.host;
      const scheme = tls === undefined ? "http" : "https";
      console.log(
        `pubsub peer ${id} web console and HTTP API at ${scheme}://${host}:${peer.httpPort}/`,
      );
    }
    console.log(`pubsub peer ${id} listening on ${flags.host}:${peer.port}`);
    // A cluster that refuses this peer (e.g. its data directory was replaced)
    // ends it with the reason, like a start-up failure.
    const fatal = peer.broker instanceof ClusterBroker
      ? peer.broker.fatal
      : new Promise<Error>(() => {});
    const refused = await Promise.race([untilSignal().then(() => undefined), fatal]);
    if (refused !== undefined) {
      await peer.close();
      throw refused;
    }
    console.log(`pubsub peer ${id} stopping`);
    if (flags.leaveOnExit) {
      await peer.leave().catch((error) => console.error(`pubsub: leave failed: ${error.message}`));
    }
    await peer.close();
    return 0;
  } finally {
    spin?.stop();
  }
}

function helperThreadsOption(value: string): HelperThreadPolicy {
  const policy = helperThreadPolicies.find((known) => known === value);
  if (policy === undefined) {
    throw new InvalidArgumentError(`must be ${helperThreadPolicies.join(" or ")}`);
  }
  return policy;
}

/** The `--retention-*` flags as the retention of topics created without one. */
function retentionDefaultsOf(flags: PeerFlags): Retention {
  const retention: Retention = {};
  if (flags.retentionMs !== undefined) retention.max_age_ms = flags.retentionMs;
  if (flags.retentionBytes !== undefined) retention.max_bytes = flags.retentionBytes;
  if (flags.retentionMessages !== undefined) retention.max_messages = flags.retentionMessages;
  return retention;
}

/** Parses `--advertise-address`: "host:port" or "[v6]:port". */
function advertiseAddressOption(value: string): string {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]\/]+):(\d{1,5})$/.exec(value.trim());
  const port = Number(match?.[2]);
  if (match === null || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`Expected host:port, got '${value}'.`);
  }
  return value.trim();
}

function configureLoggingFrom(flags: PeerFlags): void {
  try {
    configureLogging({ level: flags.logLevel, format: flags.logFormat });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

async function askMissing(flags: PeerFlags): Promise<{ id: number; port: number }> {
  if (flags.id !== undefined && flags.port !== undefined) return { id: flags.id, port: flags.port };
  if (!Deno.stdin.isTerminal()) {
    throw new UsageError(`Missing required option --${flags.id === undefined ? "id" : "port"}`);
  }
  const id = flags.id ?? Number(
    await input({ message: "Enter node ID:", validate: validInteger(1, 1_000_000) }),
  );
  const port = flags.port ?? Number(
    await input({
      message: "Enter port:",
      default: String(5000 + id),
      validate: validInteger(1, 65535),
    }),
  );
  return { id, port };
}

function validInteger(min: number, max: number) {
  return (value: string) => {
    const number = Number(value);
    return /^\d+$/.test(value.trim()) && number >= min && number <= max
      ? true
      : `Enter an integer between ${min} and ${max}`;
  };
}

/** Reads a file named by a flag; a missing or unreadable file is a usage error naming the flag. */
async function readFlagFile(flag: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`Cannot read ${flag} file ${path}: ${(error as Error).message}`);
  }
}

/**
 * The cluster secret, or none; a peer reachable from other hosts needs one
 * (or an explicit --insecure), since without it anyone who can reach the
 * port can act as a peer.
 */
async function readClusterSecret(flags: PeerFlags): Promise<ClusterSecret | undefined> {
  if (flags.clusterSecretFile === undefined) {
    if (!flags.standalone && !flags.insecure && !isLoopback(flags.host)) {
      throw new UsageError(
        `Refusing to listen on ${flags.host} without --cluster-secret-file: any host that reaches it could act as a peer (pass --insecure to allow)`,
      );
    }
    return undefined;
  }
  const text = await readFlagFile("--cluster-secret-file", flags.clusterSecretFile);
  try {
    return ClusterSecret.fromText(text);
  } catch (error) {
    throw new UsageError(
      `Cluster secret file ${flags.clusterSecretFile}: ${(error as Error).message}`,
    );
  }
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\./.test(host);
}

/**
 * The client tokens of --auth-file, plus the token of --auth-token-file (if
 * given) with every permission; undefined without --auth-file.
 */
async function readAccess(
  flags: PeerFlags,
  authToken: string | undefined,
): Promise<AccessPolicy | undefined> {
  if (flags.authFile === undefined) return undefined;
  try {
    const entries = await loadAuthFile(flags.authFile);
    return new AccessPolicy(
      authToken === undefined ? entries : [fullAccessToken(authToken), ...entries],
    );
  } catch (error) {
    if (!(error instanceof AuthFileError)) throw error;
    throw new UsageError(`Invalid --auth-file ${flags.authFile}: ${error.message}`);
  }
}

async function readMetricsToken(flags: PeerFlags): Promise<string | undefined> {
  if (flags.metricsTokenFile === undefined) return undefined;
  if (flags.metricsPort === undefined && flags.httpPort === undefined) {
    throw new UsageError("Option --metrics-token-file needs --metrics-port");
  }
  let token: string;
  try {
    token = (await Deno.readTextFile(flags.metricsTokenFile)).trim();
  } catch (error) {
    throw new UsageError(
      `Cannot read --metrics-token-file ${flags.metricsTokenFile}: ${(error as Error).message}`,
    );
  }
  if (token.length === 0) {
    throw new UsageError(`Option --metrics-token-file ${flags.metricsTokenFile} is empty`);
  }
  return token;
}

async function readToken(path: string): Promise<string> {
  const token = (await Deno.readTextFile(path)).trim();
  if (token.length === 0) throw new UsageError(`Auth token file ${path} is empty`);
  return token;
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    const handler = () => {
      for (const signal of signals) Deno.removeSignalListener(signal, handler);
      resolve();
    };
    for (const signal of signals) Deno.addSignalListener(signal, handler);
  });
}
