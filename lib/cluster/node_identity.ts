/**
 * The identity of a peer's data directory: which node id it belongs to, and
 * a random directory id made when the directory was first used. The cluster
 * records each member's directory id, so a peer whose data directory was
 * wiped (or swapped) cannot rejoin under its old id as if nothing happened:
 * its empty replicas would vote and count toward commits as if they still
 * held what the old directory acknowledged. Kafka's KRaft guards the same
 * hazard with directory ids (KIP-858).
 *
 * @module
 */

import { readFileAtomic, writeFileAtomic } from "../storage/atomic_file.ts";

/** File name of the identity inside a data directory. */
export const identityFileName = "identity.json";
/** Longest directory id accepted from a peer. */
export const directoryIdLengthMax = 64;
/** What a directory id looks like. */
export const directoryIdPattern = /^[A-Za-z0-9-]{1,64}$/;

/** A data directory's identity. */
export interface NodeIdentity {
  nodeId: number;
  directoryId: string;
}

/**
 * The data directory belongs to another node id.
 *
 * @example
 * ```ts
 * throw new NodeIdentityError("Data directory ./data/1 belongs to node 1, not node 2");
 * ```
 */
export class NodeIdentityError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NodeIdentityError";
  }
}

/**
 * Reads the identity of `dataDir`, creating it (durably) on first use.
 * Throws NodeIdentityError when the directory belongs to another node id or
 * its identity file is unreadable.
 *
 * @example
 * ```ts
 * const { directoryId } = await loadNodeIdentity("./data/1", 1);
 * ```
 */
export async function loadNodeIdentity(dataDir: string, nodeId: number): Promise<NodeIdentity> {
  const path = `${dataDir}/${identityFileName}`;
  const bytes = await readFileAtomic(path);
  if (bytes === undefined) {
    const identity = { nodeId, directoryId: crypto.randomUUID() };
    const text = JSON.stringify({ node_id: nodeId, directory_id: identity.directoryId });
    await writeFileAtomic(path, new TextEncoder().encode(`${text}\n`));
    return identity;
  }
  let stored: { node_id?: unknown; directory_id?: unknown };
  try {
    stored = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new NodeIdentityError(`The identity file ${path} is not valid JSON`);
  }
  const directoryId = stored?.directory_id;
  if (typeof directoryId !== "string" || !directoryIdPattern.test(directoryId)) {
    throw new NodeIdentityError(`The identity file ${path} holds no valid directory id`);
  }
  if (stored.node_id !== nodeId) {
    throw new NodeIdentityError(
      `Data directory ${dataDir} belongs to node ${stored.node_id}, not node ${nodeId}; start it with --id ${stored.node_id} or use another --data-dir`,
    );
  }
  return { nodeId, directoryId };
}
