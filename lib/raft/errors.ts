/**
 * Named errors thrown by the Raft core for operational refusals. Assertion
 * failures (programmer errors, broken invariants) use `RaftInvariantError`.
 *
 * @module
 */

/**
 * Thrown when a leader-only operation is called on a replica that is not the leader.
 *
 * @example
 * ```ts
 * try { node.propose(data); } catch (e) { if (e instanceof NotLeaderError) redirect(e.leader); }
 * ```
 */
export class NotLeaderError extends Error {
  /** Known leader id, 0 when unknown. */
  readonly leader: number;
  constructor(leader: number, options?: ErrorOptions) {
    super(
      `Cannot accept request as this replica is not the leader: leader is ${leader || "unknown"}`,
      options,
    );
    this.name = "NotLeaderError";
    this.leader = leader;
  }
}

/**
 * Thrown when the leader refuses a proposal it cannot take now (transfer in
 * progress, uncommitted limit reached, membership change pending).
 *
 * @example
 * ```ts
 * try { node.propose(data); } catch (e) { if (e instanceof ProposalDroppedError) retryLater(); }
 * ```
 */
export class ProposalDroppedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProposalDroppedError";
  }
}

/**
 * A violated internal invariant. Assertions stay on in production: the replica
 * stops loudly rather than corrupting data.
 *
 * @example
 * ```ts
 * assert(commit <= lastIndex, "commit beyond last index");
 * ```
 */
export class RaftInvariantError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RaftInvariantError";
  }
}

/**
 * Throws `RaftInvariantError` when `condition` is false. A message built from
 * values goes as a function, built only on failure: these checks run on
 * every message and entry, and a template literal cost a string each time.
 *
 * @example
 * ```ts
 * assert(match <= next - 1, "match beyond next");
 * ```
 */
export function assert(condition: boolean, message: string | (() => string)): asserts condition {
  if (condition) return;
  const text = typeof message === "string" ? message : message();
  throw new RaftInvariantError(`Raft invariant violated: ${text}`);
}
