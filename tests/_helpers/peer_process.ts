/**
 * Test helpers that run real `pubsub peer` child processes on 127.0.0.1 and
 * stop them by PID.
 *
 * @module
 */

import { peerV8Flags } from "../../lib/peer/memory_trim.ts";

const mainPath = new URL("../../main.ts", import.meta.url).pathname;

/**
 * Test ports come from below Linux's ephemeral range (32768-60999), which
 * outgoing connections draw their local ports from: a port picked there could
 * be taken by some client socket before a test's peer binds (or rebinds) it.
 */
const testPortMin = 20_000;
const testPortMax = 32_000;

/**
 * Ports handed out are reserved for this long, across every test process
 * (a file per port in {@linkcode reservationDir}): a test that stops a peer
 * and starts it again on its port later (after a removal, up to a minute)
 * found it taken by a peer of a test running in parallel, which had drawn
 * the same free port meanwhile ("address already in use", CI of a6a90eb).
 */
const reservationMs = 30 * 60_000;
const reservationDir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/pubsub-test-ports`;

/** Reserves `port` for this test run; false when another test holds it. */
function reservePort(port: number): boolean {
  const path = `${reservationDir}/${port}`;
  try {
    Deno.mkdirSync(reservationDir, { recursive: true });
    Deno.writeTextFileSync(path, "", { createNew: true });
    return true;
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) return true;
  }
  // A reservation older than reservationMs is an earlier run's.
  const mtime = Deno.statSync(path).mtime?.getTime() ?? 0;
  if (Date.now() - mtime < reservationMs) return false;
  Deno.writeTextFileSync(path, "");
  return true;
}

/**
 * A port that is free right now, outside the ephemeral range (see
 * `testPortMin`), and reserved so that no other test draws it for a while.
 */
export function freePort(): number {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = testPortMin + Math.floor(Math.random() * (testPortMax - testPortMin));
    if (!reservePort(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch {
      // Taken: try another.
    }
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** The first of `count` consecutive ports that are free right now (clusters number peers from a base). */
export function freePortRun(count = 3): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = freePort();
    if (base + count > 65535) continue;
    const listeners: Deno.Listener[] = [];
    try {
      for (let offset = 1; offset < count; offset++) {
        if (!reservePort(base + offset)) throw new Error("Reserved by another test");
        listeners.push(Deno.listen({ hostname: "127.0.0.1", port: base + offset }));
      }
      return base;
    } catch {
      // Taken: try another base.
    } finally {
      for (const listener of listeners) listener.close();
    }
  }
  throw new Error(`No run of ${count} free ports found`);
}

/** Options of {@linkcode startPeer}. */
export interface StartPeerOptions {
  id?: number;
  port?: number;
  dataDir?: string;
  /** The --peers list; defaults to this peer alone. */
  peers?: string;
  args?: string[];
  /** How long to wait for the peer to listen. */
  readyTimeoutMs?: number;
}

/** A peer child process. */
export interface PeerProcess {
  id: number;
  port: number;
  dataDir: string;
  pid: number;
  address: string;
  /** Everything the peer printed so far. */
  output(): string;
  /** SIGTERM, then wait; SIGKILL if it does not exit within `graceMs` (default 10 s). */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
  /** Sends a signal (SIGKILL by default) and waits for exit (except SIGSTOP/SIGCONT). */
  kill(signal?: Deno.Signal): Promise<void>;
  status: Promise<Deno.CommandStatus>;
}

/**
 * Data directories `startPeer` made itself. Tests restart peers on them
 * (`startPeer({ dataDir: peer.dataDir })`), so they stay until the test
 * module ends, and are removed then.
 */
const madeDataDirs = new Set<string>();
globalThis.addEventListener("unload", () => {
  for (const dir of madeDataDirs) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* removed by the test already */ }
  }
});

async function makeDataDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "pubsub-test-" });
  madeDataDirs.add(dir);
  return dir;
}

/** Starts `pubsub peer` and resolves once it prints that it listens. */
export async function startPeer(options: StartPeerOptions = {}): Promise<PeerProcess> {
  const id = options.id ?? 1;
  const port = options.port ?? freePort();
  const dataDir = options.dataDir ?? await makeDataDir();
  const peers = options.peers ?? `${id}@127.0.0.1:${port}`;
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      peerV8Flags,
      mainPath,
      "peer",
      "--id",
      String(id),
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--peers",
      peers,
      "--data-dir",
      dataDir,
      "--log-level",
      // PUBSUB_TEST_LOG=debug shows the peers' logs in a failing test's output.
      Deno.env.get("PUBSUB_TEST_LOG") ?? "warning",
      ...(options.args ?? []),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const child = command.spawn();
  let output = "";
  const ready = Promise.withResolvers<void>();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      output += text;
      if (output.includes(`listening on 127.0.0.1:${port}`)) ready.resolve();
    }
  };
  const streams = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const status = child.status.then(async (status) => {
    await streams;
    await keepOutput(id, child.pid, output);
    ready.reject(new Error(`Peer ${id} exited with ${status.code} before listening:\n${output}`));
    return status;
  });
  const timer = setTimeout(
    () => ready.reject(new Error(`Peer ${id} did not listen in time:\n${output}`)),
    options.readyTimeoutMs ?? 30_000,
  );
  try {
    await ready.promise;
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await status;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const kill = async (signal: Deno.Signal = "SIGKILL") => {
    try {
      child.kill(signal);
    } catch { /* already exited */ }
    if (signal !== "SIGSTOP" && signal !== "SIGCONT") await status;
  };
  return {
    id,
    port,
    dataDir,
    pid: child.pid,
    address: `127.0.0.1:${port}`,
    output: () => output,
    status,
    kill,
    stop: async (graceMs = 10_000) => {
      const timeout = setTimeout(() => kill("SIGKILL"), graceMs);
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      const result = await status;
      clearTimeout(timeout);
      return result;
    },
  };
}

/**
 * With PUBSUB_TEST_LOG_DIR set, writes an exited peer's whole output to
 * `<dir>/peer-<id>-<pid>.log`, so a rare failure stays diagnosable (pair it
 * with PUBSUB_TEST_LOG=debug or info).
 */
async function keepOutput(id: number, pid: number, output: string): Promise<void> {
  const dir = Deno.env.get("PUBSUB_TEST_LOG_DIR");
  if (dir === undefined || dir === "") return;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/peer-${id}-${pid}.log`, output);
}

/**
 * A child's stderr as the program wrote it: without the status lines Deno
 * itself may print before running it (waiting for another process's lock on
 * node_modules, downloads), which depend on what else runs at that moment.
 */
export function programOutput(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes).split("\n")
    .filter((line) => !denoStatusLine.test(stripColours(line)))
    .join("\n");
}

const denoStatusLine = /^(Blocking waiting for file lock|Download |Initialize )/;
/** ANSI colour escapes (ESC [ ... m): Deno colours its status lines when it thinks stderr is a terminal. */
// deno-lint-ignore no-control-regex
const colourEscape = /\x1b\[[0-9;]*m/g;

function stripColours(line: string): string {
  return line.replace(colourEscape, "");
}

/** What a `pubsub` command run to its exit printed, and its exit code. */
export interface ProgramRun {
  code: number;
  stdout: string;
  /** Without Deno's own status lines (see `programOutput`). */
  stderr: string;
}

/**
 * Runs `pubsub <args>` (any command) to its exit; SIGKILL after
 * `timeoutMs` so a command that does not exit fails the test instead of
 * hanging it.
 *
 * @example
 * ```ts
 * const { code, stderr } = await runPubsub(["sim", "--seeds", "abc"]);
 * ```
 */
export async function runPubsub(args: string[], timeoutMs = 300_000): Promise<ProgramRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", peerV8Flags, mainPath, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, timeoutMs);
  try {
    const output = await child.output();
    return {
      code: output.code,
      stdout: new TextDecoder().decode(output.stdout),
      stderr: programOutput(output.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `pubsub peer <args>` expecting it to exit by itself (a refusal at
 * start), within `timeoutMs`.
 */
export function runPeerToExit(args: string[], timeoutMs = 30_000): Promise<ProgramRun> {
  return runPubsub(["peer", ...args], timeoutMs);
}
