/**
 * The programs `bench/compare.ts` runs beside pubsub (nats-server,
 * redis-server, a standalone peer): whether one is installed, the one-line
 * error when it is not, and waiting until a started one listens. Installs
 * nothing.
 *
 * @module
 */

/** A program the comparison needs is not on PATH. */
export class ProgramMissingError extends Error {
  /**
   * @example
   * ```ts
   * throw new ProgramMissingError("nats-server");
   * ```
   */
  constructor(program: string, debianPackage = program) {
    super(`${program} is not on PATH: install it (Debian: apt-get install -y ${debianPackage})`);
    this.name = "ProgramMissingError";
  }
}

/**
 * The version line `program --version` prints, or undefined when it does not run.
 *
 * @example
 * ```ts
 * import { programVersion } from "./_programs.ts";
 *
 * console.log(await programVersion("redis-server"));
 * ```
 */
export async function programVersion(program: string): Promise<string | undefined> {
  try {
    const output = await new Deno.Command(program, { args: ["--version"] }).output();
    return output.success ? new TextDecoder().decode(output.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resolves once something accepts TCP connections on 127.0.0.1:`port`;
 * throws naming `what` after `timeoutMs`.
 *
 * @example
 * ```ts
 * import { waitForPort } from "./_programs.ts";
 *
 * await waitForPort(6379, "redis-server", 15_000);
 * ```
 */
export async function waitForPort(port: number, what: string, timeoutMs: number): Promise<void> {
  const deadlineMs = performance.now() + timeoutMs;
  let lastError: unknown;
  while (performance.now() < deadlineMs) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`${what} on port ${port} did not listen within ${timeoutMs} ms`, {
    cause: lastError,
  });
}
