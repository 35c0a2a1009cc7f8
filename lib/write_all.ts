/**
 * Writing a whole buffer to a socket, file or stream whose `write` may take
 * only part of it. One copy of the loop for every writer in the project
 * (peer links, benchmarks' load generators, the fuzzer's live client).
 *
 * @module
 */

/** Anything with Deno's `write` (a `Deno.Conn`, `Deno.FsFile`, ...). */
export interface Writer {
  write(bytes: Uint8Array): Promise<number>;
}

/** Anything with Deno's `writeSync` (a `Deno.FsFile`, `Deno.stdout`, ...). */
export interface SyncWriter {
  writeSync(bytes: Uint8Array): number;
}

/**
 * Writes all of `bytes`; a view is made only when a write comes up short.
 *
 * @example
 * ```ts
 * import { writeAll } from "./write_all.ts";
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 5001 });
 * await writeAll(conn, new TextEncoder().encode("hello"));
 * ```
 */
export async function writeAll(writer: Writer, bytes: Uint8Array): Promise<void> {
  let written = await writer.write(bytes);
  while (written < bytes.length) written += await writer.write(bytes.subarray(written));
}

/**
 * Writes all of `bytes` synchronously; a view is made only when a write
 * comes up short.
 *
 * @example
 * ```ts
 * import { writeAllSync } from "./write_all.ts";
 * writeAllSync(Deno.stdout, new TextEncoder().encode("hello\n"));
 * ```
 */
export function writeAllSync(writer: SyncWriter, bytes: Uint8Array): void {
  let written = writer.writeSync(bytes);
  while (written < bytes.length) written += writer.writeSync(bytes.subarray(written));
}
