/**
 * The programs `bench/compare.ts` runs beside pubsub (nats-server,
 * redis-server): whether one is installed, and the one-line error when it
 * is not. Installs nothing.
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
