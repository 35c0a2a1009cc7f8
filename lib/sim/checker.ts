/**
 * The invariant checker: it only observes what replicas report (leaders,
 * votes, entries written, commit indices, applied entries and their
 * outcomes, acknowledgements, reads, subscriber deliveries) and records the
 * first violation. It never influences the simulation.
 *
 * Every check is incremental, so that it runs after every event at a cost
 * proportional to what the event changed: an entry is checked when a replica
 * writes it, a commit index when it moves, a leader when it is elected.
 *
 * @module
 */

import type { Entry } from "../storage/types.ts";
import { describeOutcome, type TopicOutcome } from "./topic_model.ts";

/** The invariants checked, by the name a violation reports. */
export const INVARIANTS = {
  electionSafety: "at most one leader per term",
  oneVotePerTerm: "a replica grants at most one vote per term",
  voteDurable: "a replica never forgets a vote it granted",
  logMatching: "log matching",
  leaderCompleteness: "a leader holds every entry committed before its term",
  stateMachineSafety: "committed entries agree on every replica",
  applyCommitted: "replicas apply only committed entries",
  ackedNotDuplicated: "acknowledged entries are not duplicated",
  ackedNotLost: "acknowledged entries are never lost",
  linearizableReads: "linearizable reads are not stale",
  noDuplicatePublish: "no duplicate from a retried idempotent publish",
  producerOrder: "per-producer order",
  subscriberNoSkip: "durable subscribers never skip an offset",
  snapshotMatchesState:
    "a topic state restored from a snapshot answers like the one it was taken from",
  replicaAssertions: "replica assertions hold (a replica stopped on a broken invariant)",
  noException: "no exception escapes a replica or the simulator",
  liveness: "liveness: with faults healed the cluster converges and commits",
  stability: "a partitioned follower does not disrupt a healthy leader",
} as const;

/** The name of one invariant. */
export type Invariant = typeof INVARIANTS[keyof typeof INVARIANTS];

/** The first invariant that failed, with a human-readable detail. */
export interface Violation {
  invariant: Invariant;
  detail: string;
}

/** What the checker may read of a replica's log. */
export interface LogView {
  id: number;
  firstIndex(): number;
  lastIndex: number;
  termAt(index: number): number | undefined;
  entries(low: number, high: number): Entry[];
}

/** One (index, term) ever written to some log: its payload and the term of the entry before it. */
interface WrittenEntry {
  term: number;
  previousTerm: number | undefined;
  data: Uint8Array;
}

/** The highest index first seen committed while its replica was in `term`. */
interface CommitMark {
  term: number;
  index: number;
}

/**
 * Observes a simulation and remembers the first violated invariant.
 *
 * @example
 * ```ts
 * const checker = new InvariantChecker();
 * checker.observeLeader(3, 1);
 * checker.observeLeader(3, 2);
 * checker.violation?.invariant; // "at most one leader per term"
 * ```
 */
export class InvariantChecker {
  violation: Violation | undefined;
  readonly #leaderOfTerm = new Map<number, number>();
  /** Per voter, the candidate it granted its vote to in each term, and its last such term. */
  readonly #votes = new Map<number, { byTerm: Map<number, number>; lastTerm: number }>();
  /** Every (index, term) ever written to a log, by index. */
  readonly #written: WrittenEntry[][] = [];
  /** Term of the entry committed at each index, from the first replica committing it. */
  readonly #committedTerm: number[] = [];
  #committedMax = 0;
  readonly #commitMarks: CommitMark[] = [];
  /** Signature (term/id/outcome) of the entry applied at each index, from the first replica applying it. */
  readonly #history: (string | undefined)[] = [];
  readonly #indexOfKey = new Map<string, number>();
  readonly #acked = new Map<string, number>();
  /** Offset of every stored idempotent publish, by `<producer>.<sequence>`. */
  readonly #publishOffsets = new Map<string, number>();
  readonly #producerLast = new Map<string, { sequence: number; offset: number }>();
  /** Message stored at each offset, from the first replica storing it. */
  readonly #messageAt: string[] = [];
  /** Per durable subscriber, the offset up to which every offset was delivered at least once. */
  readonly #covered = new Map<string, number>();
  ackedIndexMax = 0;
  readsServed = 0;
  elections = 0;
  deliveries = 0;

  get ackCount(): number {
    return this.#acked.size;
  }

  get historyLength(): number {
    return this.#history.length - 1;
  }

  fail(invariant: Invariant, detail: string): void {
    this.violation ??= { invariant, detail };
  }

  /**
   * `id` acted as leader of `term` (it became leader, or sent a message only
   * a leader sends). With `log`, it was just elected: its log must hold
   * every entry committed before its term (Leader Completeness).
   */
  observeLeader(term: number, id: number, log?: Pick<LogView, "firstIndex" | "termAt">): void {
    const known = this.#leaderOfTerm.get(term);
    if (known === undefined) {
      this.#leaderOfTerm.set(term, id);
      this.elections++;
    } else if (known !== id) {
      this.fail(INVARIANTS.electionSafety, `n${known} and n${id} both lead term ${term}`);
      return;
    }
    if (log) this.#checkLeaderCompleteness(term, id, log);
  }

  #checkLeaderCompleteness(
    term: number,
    id: number,
    log: Pick<LogView, "firstIndex" | "termAt">,
  ): void {
    // The highest index first seen committed in an earlier term: by Log
    // Matching (checked on every write) holding it means holding every
    // committed entry before it.
    let mark: CommitMark | undefined;
    for (let position = this.#commitMarks.length - 1; position >= 0; position--) {
      if (this.#commitMarks[position].term < term) {
        mark = this.#commitMarks[position];
        break;
      }
    }
    if (!mark || mark.index < log.firstIndex() - 1) return;
    const expected = this.#committedTerm[mark.index];
    const found = log.termAt(mark.index);
    if (found !== expected) {
      this.fail(
        INVARIANTS.leaderCompleteness,
        `n${id} became leader of term ${term} without entry ${mark.index} (term ${expected}), committed in term ${mark.term}; its log has ${
          found === undefined ? "no entry" : `an entry of term ${found}`
        } there`,
      );
    }
  }

  /**
   * `voter` granted its vote in `term` to `candidate`: a voteResp sent (not
   * a pre-vote), or a vote request, which a candidate sends having voted for
   * itself.
   */
  observeVote(voter: number, term: number, candidate: number): void {
    let votes = this.#votes.get(voter);
    if (votes === undefined) {
      votes = { byTerm: new Map(), lastTerm: 0 };
      this.#votes.set(voter, votes);
    }
    const known = votes.byTerm.get(term);
    if (known === undefined) {
      votes.byTerm.set(term, candidate);
      votes.lastTerm = Math.max(votes.lastTerm, term);
    } else if (known !== candidate) {
      this.fail(
        INVARIANTS.oneVotePerTerm,
        `n${voter} voted for n${known} and then for n${candidate} in term ${term}`,
      );
    }
  }

  /**
   * `node` restarted from its durable hard state (`term`, `vote`): the last
   * vote it granted must be there, or it could grant that term's vote again.
   */
  observeRestart(node: number, term: number, vote: number): void {
    const votes = this.#votes.get(node);
    if (votes === undefined || votes.lastTerm < term) return;
    const granted = votes.byTerm.get(votes.lastTerm)!;
    if (votes.lastTerm > term) {
      this.fail(
        INVARIANTS.voteDurable,
        `n${node} restarted in term ${term} after voting for n${granted} in term ${votes.lastTerm}`,
      );
    } else if (vote !== granted) {
      this.fail(
        INVARIANTS.voteDurable,
        `n${node} restarted in term ${term} with its vote for ${
          vote === 0 ? "nobody" : `n${vote}`
        }, after voting for n${granted}`,
      );
    }
  }

  /**
   * Replica `node` wrote `entries` to its log after an entry of
   * `previousTerm` (undefined when unknown). Each (index, term) must always
   * carry the same payload after the same term, which by induction makes
   * logs that share an (index, term) identical up to it (Log Matching).
   */
  observeEntries(node: number, entries: readonly Entry[], previousTerm: number | undefined): void {
    let previous = previousTerm;
    for (const entry of entries) {
      const written = this.#written[entry.index] ??= [];
      const known = written.find((candidate) => candidate.term === entry.term);
      if (known === undefined) {
        written.push({ term: entry.term, previousTerm: previous, data: entry.data });
      } else if (!sameBytes(known.data, entry.data)) {
        this.fail(
          INVARIANTS.logMatching,
          `n${node} wrote (${entry.index}, term ${entry.term}) with a payload that differs from another replica's`,
        );
        return;
      } else if (previous !== undefined && known.previousTerm === undefined) {
        known.previousTerm = previous;
      } else if (previous !== undefined && known.previousTerm !== previous) {
        this.fail(
          INVARIANTS.logMatching,
          `n${node} wrote (${entry.index}, term ${entry.term}) after an entry of term ${previous} where another replica has one of term ${known.previousTerm}`,
        );
        return;
      }
      previous = entry.term;
    }
  }

  /** Replica `node`, in `inTerm`, has index `index` of term `term` committed. */
  observeCommitted(node: number, index: number, term: number, inTerm: number): void {
    const known = this.#committedTerm[index];
    if (known === undefined) {
      this.#committedTerm[index] = term;
      if (index > this.#committedMax) {
        this.#committedMax = index;
        const last = this.#commitMarks.at(-1);
        if (last?.term === inTerm) last.index = index;
        else this.#commitMarks.push({ term: inTerm, index });
      }
    } else if (known !== term) {
      this.fail(
        INVARIANTS.stateMachineSafety,
        `n${node} committed index ${index} of term ${term} where an entry of term ${known} was committed`,
      );
    }
  }

  /**
   * Replica `node` applied the entry at (`index`, `term`): proposal `id`
   * ("" for a no-op, "conf" for a membership change) with `outcome`.
   */
  observeApply(node: number, index: number, term: number, id: string, outcome: TopicOutcome): void {
    const committed = this.#committedTerm[index];
    if (committed === undefined) {
      this.fail(
        INVARIANTS.applyCommitted,
        `n${node} applied index ${index} (term ${term}) before any replica committed it`,
      );
      return;
    }
    if (committed !== term) {
      this.fail(
        INVARIANTS.stateMachineSafety,
        `n${node} applied index ${index} of term ${term} where an entry of term ${committed} was committed`,
      );
      return;
    }
    this.#checkOutcome(node, id, outcome);
    const signature = `${term}/${id}/${describeOutcome(outcome)}`;
    const known = this.#history[index];
    if (known === undefined) {
      this.#history[index] = signature;
    } else if (known !== signature) {
      this.fail(
        INVARIANTS.stateMachineSafety,
        `n${node} applied ${signature} at index ${index} where ${known} was applied before`,
      );
      return;
    }
    if (id === "" || id === "conf") return;
    const seen = this.#indexOfKey.get(id);
    if (seen === undefined) this.#indexOfKey.set(id, index);
    else if (seen !== index) {
      this.fail(INVARIANTS.ackedNotDuplicated, `proposal ${id} committed at ${seen} and ${index}`);
    }
  }

  /** Idempotence and order of one producer's publishes, on every replica. */
  #checkOutcome(node: number, id: string, outcome: TopicOutcome): void {
    if (outcome.kind === "stored") {
      const { producer, sequence, offset } = outcome;
      const message = producer === undefined ? id : `${producer}.${sequence}`;
      this.#messageAt[offset] ??= message;
      if (producer === undefined || sequence === undefined) return;
      const first = this.#publishOffsets.get(message);
      if (first === undefined) {
        this.#publishOffsets.set(message, offset);
        this.#checkProducerOrder(node, producer, sequence, offset);
      } else if (first !== offset) {
        this.fail(
          INVARIANTS.noDuplicatePublish,
          `n${node} stored ${producer}#${sequence} at offset ${offset}, already stored at offset ${first}`,
        );
      }
    } else if (outcome.kind === "duplicate") {
      const first = this.#publishOffsets.get(`${outcome.producer}.${outcome.sequence}`);
      if (first !== outcome.offset) {
        this.fail(
          INVARIANTS.noDuplicatePublish,
          `n${node} answered a retry of ${outcome.producer}#${outcome.sequence} with offset ${outcome.offset}, but it was stored at ${
            first ?? "no offset"
          }`,
        );
      }
    }
  }

  #checkProducerOrder(node: number, producer: string, sequence: number, offset: number): void {
    const last = this.#producerLast.get(producer);
    this.#producerLast.set(producer, { sequence, offset });
    if (last === undefined || (sequence === last.sequence + 1 && offset > last.offset)) return;
    this.fail(
      INVARIANTS.producerOrder,
      `n${node} stored ${producer}#${sequence} at offset ${offset} after ${producer}#${last.sequence} at offset ${last.offset}`,
    );
  }

  /** A replica restored proposal `id` at `index` from a snapshot: it must match what was applied there. */
  observeRestored(node: number, index: number, id: string): void {
    const known = this.#history[index];
    if (known !== undefined && known.split("/")[1] !== id) {
      this.fail(
        INVARIANTS.stateMachineSafety,
        `n${node} restored ${id} at index ${index} from a snapshot where ${known} was applied`,
      );
    }
  }

  /**
   * The real topic state machine (`TopicState`, restored from snapshots
   * through its own restore path) and the model of the same replica must
   * give the same answers: `expected` is the model's, `actual` the state's,
   * after a restore or after applying the entry at `index`.
   */
  observeStateAgreement(node: number, index: number, expected: string, actual: string): void {
    if (expected === actual) return;
    this.fail(
      INVARIANTS.snapshotMatchesState,
      `n${node} at index ${index}: the topic state answers ${actual} where the model answers ${expected}`,
    );
  }

  /** A client was told that proposal `id` is durable at `index`. */
  observeAck(id: string, index: number): void {
    const previous = this.#acked.get(id);
    if (previous !== undefined && previous !== index) {
      this.fail(
        INVARIANTS.ackedNotDuplicated,
        `proposal ${id} acknowledged at ${previous} and ${index}`,
      );
    }
    this.#acked.set(id, index);
    this.ackedIndexMax = Math.max(this.ackedIndexMax, index);
  }

  /** A linearizable read issued when `requiredIndex` was acknowledged was served at `servedIndex`. */
  observeRead(node: number, requiredIndex: number, servedIndex: number): void {
    this.readsServed++;
    if (servedIndex < requiredIndex) {
      this.fail(
        INVARIANTS.linearizableReads,
        `n${node} served a read at index ${servedIndex} after index ${requiredIndex} was acknowledged`,
      );
    }
  }

  /**
   * Durable `subscriber` resumes after `position`, the last offset replica
   * `node` holds as acknowledged: every offset up to it must have been
   * delivered before, or the subscriber skips the rest.
   */
  observeResume(subscriber: string, node: number, position: number): void {
    const covered = this.#covered.get(subscriber) ?? -1;
    if (position > covered) {
      this.fail(
        INVARIANTS.subscriberNoSkip,
        `${subscriber} resumed after offset ${position} (its position on n${node}) but was delivered offsets up to ${covered} only: ${
          covered + 1
        }..${position} are skipped`,
      );
    }
  }

  /** `subscriber` was delivered `message` at `offset` by replica `node`. */
  observeDelivery(subscriber: string, node: number, offset: number, message: string): void {
    this.deliveries++;
    const covered = this.#covered.get(subscriber) ?? -1;
    if (offset > covered + 1) {
      this.fail(
        INVARIANTS.subscriberNoSkip,
        `n${node} delivered offset ${offset} to ${subscriber}, which has offsets up to ${covered} only`,
      );
      return;
    }
    if (offset === covered + 1) this.#covered.set(subscriber, offset);
    const expected = this.#messageAt[offset];
    if (expected !== undefined && expected !== message) {
      this.fail(
        INVARIANTS.stateMachineSafety,
        `n${node} delivered ${message} at offset ${offset} where ${expected} was stored`,
      );
    }
  }

  /** Log matching over whole logs (run once at the end; the incremental checks run throughout). */
  checkLogMatching(views: LogView[]): void {
    for (let a = 0; a < views.length && !this.violation; a++) {
      for (let b = a + 1; b < views.length && !this.violation; b++) {
        this.#checkPair(views[a], views[b]);
      }
    }
  }

  #checkPair(left: LogView, right: LogView): void {
    const low = Math.max(left.firstIndex(), right.firstIndex());
    let high = Math.min(left.lastIndex, right.lastIndex);
    while (high >= low && left.termAt(high) !== right.termAt(high)) high--;
    if (high < low) return;
    const leftEntries = left.entries(low, high + 1);
    const rightEntries = right.entries(low, high + 1);
    for (let offset = 0; offset < leftEntries.length; offset++) {
      const one = leftEntries[offset];
      const other = rightEntries[offset];
      if (one.term !== other.term || !sameBytes(one.data, other.data)) {
        this.fail(
          INVARIANTS.logMatching,
          `n${left.id} and n${right.id} agree at (${high}, ${
            left.termAt(high)
          }) but differ at index ${one.index}`,
        );
        return;
      }
    }
  }

  /** After convergence: every acknowledged proposal is applied at its index on every live member. */
  checkAcknowledged(node: number, applied: Map<number, string>): void {
    for (const [id, index] of this.#acked) {
      const found = applied.get(index);
      if (found !== id) {
        this.fail(
          INVARIANTS.ackedNotLost,
          `proposal ${id} acknowledged at index ${index} but n${node} applied ${
            found ?? "nothing"
          } there`,
        );
        return;
      }
    }
  }
}

function sameBytes(left: Uint8Array, right: Uint8Array): boolean {
  if (left === right) return true;
  if (left.byteLength !== right.byteLength) return false;
  for (let i = 0; i < left.byteLength; i++) if (left[i] !== right[i]) return false;
  return true;
}
