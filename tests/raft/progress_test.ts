import { equal } from "node:assert/strict";
import { Progress } from "../../lib/raft/progress.ts";

Deno.test("Progress in replicate state pauses at inflightAppendsMax and resumes on acknowledgement", () => {
  const progress = new Progress({ next: 1, inflightAppendsMax: 2, learner: false });
  progress.becomeReplicate();
  progress.sentEntries(3, 3);
  progress.sentEntries(5, 2);
  equal(progress.isPaused(), true);
  equal(progress.next, 6);
  progress.maybeUpdate(3);
  equal(progress.isPaused(), false);
  equal(progress.match, 3);
});

Deno.test("Progress in probe state sends one append at a time until answered", () => {
  const progress = new Progress({ next: 10, inflightAppendsMax: 4, learner: false });
  progress.sentEntries(12, 3);
  equal(progress.isPaused(), true);
  progress.onHeartbeatResponse();
  equal(progress.isPaused(), false);
});

Deno.test("Progress in probe state jumps back to the follower's hint on rejection", () => {
  const progress = new Progress({ next: 101, inflightAppendsMax: 4, learner: false });
  equal(progress.maybeDecreaseTo(100, 40), true);
  equal(progress.next, 41);
  equal(progress.maybeDecreaseTo(100, 10), false, "a stale rejection is ignored");
});

Deno.test("Progress in replicate state falls back to match + 1 on rejection", () => {
  const progress = new Progress({ next: 1, inflightAppendsMax: 4, learner: false });
  progress.maybeUpdate(5);
  progress.becomeReplicate();
  progress.sentEntries(9, 4);
  equal(progress.maybeDecreaseTo(7, 2), true);
  equal(progress.next, 6);
});
