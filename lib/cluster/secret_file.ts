/**
 * The cluster secret file of a local cluster (`pubsub cluster`, the
 * benchmark): created once with a fresh random secret, readable by its owner
 * only, and reused on every later start so restarted peers still prove they
 * belong to the same cluster.
 *
 * @module
 */

import { ClusterSecret } from "./peer_auth.ts";

/**
 * Returns `path`, creating the secret file first when it does not exist.
 *
 * @example
 * ```ts
 * const file = await ensureSecretFile("./data/cluster.secret");
 * // pass `--cluster-secret-file ${file}` to every peer
 * ```
 */
export async function ensureSecretFile(path: string): Promise<string> {
  try {
    ClusterSecret.fromText(await Deno.readTextFile(path));
    return path;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  await Deno.writeTextFile(path, `${ClusterSecret.generateText()}\n`, {
    mode: 0o600,
    createNew: true,
  });
  return path;
}
