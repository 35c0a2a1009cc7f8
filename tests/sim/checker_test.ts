import { equal } from "node:assert/strict";
import { InvariantChecker, INVARIANTS } from "../../lib/sim/checker.ts";
import { type Entry, EntryType } from "../../lib/storage/types.ts";

const encoder = new TextEncoder();

function entry(index: number, term: number, data: string): Entry {
  return { index, term, type: EntryType.Normal, data: encoder.encode(data) };
}

/** The invariant of the checker's first violation (a function, so TypeScript does not narrow it). */
function firstViolation(checker: InvariantChecker): string | undefined {
  return checker.violation?.invariant;
}

/** A log holding `terms[i]` at index i + 1. */
function log(terms: number[]) {
  return { firstIndex: () => 1, termAt: (index: number) => terms[index - 1] };
}

Deno.test("InvariantChecker reports two leaders of one term", () => {
  const checker = new InvariantChecker();
  checker.observeLeader(3, 1);
  checker.observeLeader(3, 1);
  equal(firstViolation(checker), undefined);
  checker.observeLeader(3, 2);
  equal(firstViolation(checker), INVARIANTS.electionSafety);
});

Deno.test("InvariantChecker reports an (index, term) written with another payload", () => {
  const checker = new InvariantChecker();
  checker.observeEntries(1, [entry(1, 1, "a"), entry(2, 1, "b")], 0);
  checker.observeEntries(2, [entry(2, 1, "b")], 1);
  equal(firstViolation(checker), undefined);
  checker.observeEntries(3, [entry(2, 1, "c")], 1);
  equal(firstViolation(checker), INVARIANTS.logMatching);
});

Deno.test("InvariantChecker reports an (index, term) written after an entry of another term", () => {
  const checker = new InvariantChecker();
  const shared = entry(3, 4, "x");
  checker.observeEntries(1, [shared], 2);
  checker.observeEntries(2, [shared], 3);
  equal(firstViolation(checker), INVARIANTS.logMatching);
});

Deno.test("InvariantChecker reports a leader elected without an entry committed before its term", () => {
  const checker = new InvariantChecker();
  for (let index = 1; index <= 3; index++) checker.observeCommitted(1, index, 2, 2);
  checker.observeLeader(2, 1, log([2, 2, 2]));
  // A leader of the term the entries were committed in is not held to them.
  checker.observeLeader(2, 1, log([2]));
  checker.observeLeader(3, 2, log([2, 2, 2, 3]));
  equal(firstViolation(checker), undefined);
  checker.observeLeader(4, 3, log([2, 2, 3, 4]));
  equal(firstViolation(checker), INVARIANTS.leaderCompleteness);
});

Deno.test("InvariantChecker reports an index committed with two terms", () => {
  const checker = new InvariantChecker();
  checker.observeCommitted(1, 5, 2, 2);
  checker.observeCommitted(2, 5, 2, 3);
  equal(firstViolation(checker), undefined);
  checker.observeCommitted(3, 5, 3, 3);
  equal(firstViolation(checker), INVARIANTS.stateMachineSafety);
});

Deno.test("InvariantChecker reports an entry applied before any replica committed it", () => {
  const checker = new InvariantChecker();
  checker.observeCommitted(1, 1, 1, 1);
  checker.observeApply(1, 1, 1, "p1", { kind: "stored", offset: 0 });
  equal(firstViolation(checker), undefined);
  checker.observeApply(1, 2, 1, "p2", { kind: "stored", offset: 1 });
  equal(firstViolation(checker), INVARIANTS.applyCommitted);
});

Deno.test("InvariantChecker reports a second vote in a term and a vote forgotten at a restart", () => {
  const forgotten = new InvariantChecker();
  forgotten.observeVote(1, 5, 2);
  forgotten.observeRestart(1, 5, 2);
  equal(firstViolation(forgotten), undefined);
  forgotten.observeRestart(1, 4, 0);
  equal(firstViolation(forgotten), INVARIANTS.voteDurable);

  const twice = new InvariantChecker();
  twice.observeVote(1, 5, 2);
  twice.observeVote(1, 5, 2);
  equal(firstViolation(twice), undefined);
  twice.observeVote(1, 5, 3);
  equal(firstViolation(twice), INVARIANTS.oneVotePerTerm);
});

Deno.test("InvariantChecker reports a retried publish stored twice", () => {
  const checker = new InvariantChecker();
  for (let index = 1; index <= 3; index++) checker.observeCommitted(1, index, 1, 1);
  const stored = { kind: "stored", offset: 0, producer: "P1", sequence: 7 } as const;
  checker.observeApply(1, 1, 1, "u1", stored);
  checker.observeApply(1, 2, 1, "u2", {
    kind: "duplicate",
    offset: 0,
    producer: "P1",
    sequence: 7,
  });
  equal(firstViolation(checker), undefined);
  checker.observeApply(1, 3, 1, "u3", { ...stored, offset: 1 });
  equal(firstViolation(checker), INVARIANTS.noDuplicatePublish);
});

Deno.test("InvariantChecker reports a durable subscriber resuming past what it was delivered", () => {
  const checker = new InvariantChecker();
  for (let offset = 0; offset <= 3; offset++) {
    checker.observeDelivery("S1", 1, offset, `m${offset}`);
  }
  checker.observeResume("S1", 2, 3);
  checker.observeResume("S1", 2, 1);
  checker.observeDelivery("S1", 2, 2, "m2");
  equal(firstViolation(checker), undefined);
  checker.observeResume("S1", 3, 4);
  equal(firstViolation(checker), INVARIANTS.subscriberNoSkip);
});
