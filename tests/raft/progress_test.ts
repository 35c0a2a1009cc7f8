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
  equal(progress.maybeDecreaseTo(7, 6), true);
  equal(progress.next, 6);
  equal(progress.match, 5);
});

Deno.test("Progress in replicate state ignores a rejection below match as stale", () => {
  const progress = new Progress({ next: 1, inflightAppendsMax: 4, learner: false });
  progress.maybeUpdate(5);
  progress.becomeReplicate();
  equal(progress.maybeDecreaseTo(4, 1), false);
  equal(progress.maybeDecreaseTo(5, 5), false, "a rejection at match with a hint at match");
  equal(progress.match, 5);
});

Deno.test("Progress lowers match when a rejection hints below it (the follower's log went backwards)", () => {
  const progress = new Progress({ next: 1, inflightAppendsMax: 4, learner: false });
  progress.maybeUpdate(50);
  progress.becomeReplicate();
  progress.sentEntries(60, 10);
  // Replicate state: the follower cut its log to 20 and rejects the append after 50.
  equal(progress.maybeDecreaseTo(50, 20), true);
  equal(progress.match, 20);
  equal(progress.next, 21);
  // Probe state, as the leader then switches to: the probe at 20 is answered with a lower hint.
  progress.becomeProbe();
  equal(progress.maybeDecreaseTo(20, 12), true);
  equal(progress.match, 12);
  equal(progress.next, 13);
  equal(progress.maybeDecreaseTo(20, 3), false, "a rejection of an older probe stays stale");
});

Deno.test("Progress in probe state at match lowers match on a lower hint instead of probing there forever", () => {
  const progress = new Progress({ next: 1, inflightAppendsMax: 4, learner: false });
  progress.maybeUpdate(30);
  progress.becomeProbe();
  equal(progress.next, 31);
  equal(progress.maybeDecreaseTo(30, 9), true);
  equal(progress.match, 9);
  equal(progress.next, 10);
});

Deno.test("Progress.reset forgets match and probes from the given next", () => {
  const progress = new Progress({ next: 1, inflightAppendsMax: 2, learner: false });
  progress.maybeUpdate(40);
  progress.becomeReplicate();
  progress.sentEntries(44, 4);
  progress.sentEntries(48, 4);
  equal(progress.isPaused(), true);
  progress.reset(49);
  equal(progress.match, 0);
  equal(progress.next, 49);
  equal(progress.state, "probe");
  equal(progress.isPaused(), false);
  equal(progress.commitSent, 0);
});

Deno.test("Progress.status reports how long ago the peer was heard from", () => {
  const progress = new Progress({ next: 1, inflightAppendsMax: 2, learner: false });
  equal(progress.status(7).heardTicksAgo, undefined);
  progress.lastHeardTick = 3;
  equal(progress.status(7).heardTicksAgo, 4);
});
