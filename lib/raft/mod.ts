/**
 * Raft as a pure state machine. See `raft_node.ts` for the shell contract.
 *
 * @example
 * ```ts
 * import { RaftNode } from "./lib/raft/mod.ts";
 * const node = new RaftNode({ id: 1, store, rng, voters: [1, 2, 3] });
 * ```
 *
 * @module
 */

export { RaftNode } from "./raft_node.ts";
export type { RaftOptions, UnsafeVariants } from "./options.ts";
export { NotLeaderError, ProposalDroppedError, RaftInvariantError } from "./errors.ts";
export {
  applyConfChange,
  decodeConfChange,
  encodeConfChange,
  validateConfChange,
} from "./conf_change.ts";
export type {
  ConfChange,
  Message,
  MessageType,
  ProgressStatus,
  ReadState,
  Ready,
  Rng,
  Role,
  SoftState,
  Status,
} from "./types.ts";
export { MESSAGE_TYPES } from "./types.ts";
