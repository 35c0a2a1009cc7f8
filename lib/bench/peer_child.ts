/**
 * A `pubsub peer` child process of a local cluster (the benchmark's and
 * `pubsub verify`'s): started with given arguments, its output appended to a
 * log file, and ready once it prints that it listens.
 *
 * @module
 */

/** How long a started peer may take to print that it listens. */
export const peerStartTimeoutMs = 30_000;

/**
 * A peer process could not be started.
 *
 * @example
 * ```ts
 * throw new PeerStartError("Peer 2 exited with code 1: pubsub: Cannot listen on 127.0.0.1:5002");
 * ```
 */
export class PeerStartError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PeerStartError";
  }
}

/** What a spawned peer records about its process. */
export interface PeerChild {
  id: number;
  /** "host:port", as the peer prints it when it listens. */
  address: string;
  pid: number | undefined;
  /** The running process; undefined once it exited. */
  process: Deno.ChildProcess | undefined;
  /** Settles when the process exited (and its output reached the log). */
  exited: Promise<void> | undefined;
}

/**
 * Starts `deno <args>` for `node`, appends its output to `logPath`, and
 * resolves once it listens; rejects with PeerStartError when it exits first
 * or does not listen within `peerStartTimeoutMs`.
 *
 * @example
 * ```ts
 * await spawnPeerChild(node, ["run", "-A", "main.ts", "peer", "--id", "1", "--port", "5001"], "1.log");
 * ```
 */
export async function spawnPeerChild(
  node: PeerChild,
  args: string[],
  logPath: string,
): Promise<void> {
  const log = await Deno.open(logPath, { append: true, create: true });
  const process = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  node.process = process;
  node.pid = process.pid;
  const ready = Promise.withResolvers<void>();
  const marker = `listening on ${node.address}`;
  let output = "";
  const pipe = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      if (!output.includes(marker)) {
        output += new TextDecoder().decode(chunk);
        if (output.includes(marker)) ready.resolve();
      }
      await log.write(chunk);
    }
  };
  const pipes = Promise.all([pipe(process.stdout), pipe(process.stderr)]);
  node.exited = process.status.then(async (status) => {
    await pipes.catch(() => {});
    log.close();
    if (node.process === process) node.process = undefined;
    ready.reject(
      new PeerStartError(`Peer ${node.id} exited with code ${status.code}: ${lastLine(output)}`),
    );
  });
  const timer = setTimeout(
    () =>
      ready.reject(
        new PeerStartError(`Peer ${node.id} did not listen within ${peerStartTimeoutMs} ms`),
      ),
    peerStartTimeoutMs,
  );
  try {
    await ready.promise;
  } finally {
    clearTimeout(timer);
  }
}

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1) ?? "no output";
}
