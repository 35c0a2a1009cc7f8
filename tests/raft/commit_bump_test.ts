/**
 * A leader sends a new commit index to its followers at once, also to a
 * follower whose appends are paused (every `inflightAppendsMax` slot in
 * flight): follower replicas then apply, and serve their subscribers,
 * without waiting for their own acknowledgement or the next heartbeat.
 *
 * @module
 */

import { deepEqual, equal } from "node:assert/strict";
import type { Message } from "../../lib/raft/types.ts";
import { drain, makeMembers, type Member } from "./_members.ts";

/** Delivers messages (and every answer) until none is left. */
function stabilize(members: Member[], queue: Message[]): void {
  for (let round = 0; round < 20 && queue.length > 0; round++) {
    const next: Message[] = [];
    for (const message of queue) {
      const target = members[message.to - 1];
      target.node.step(message);
      next.push(...drain(target));
    }
    queue = next;
  }
}

function electFirst(members: Member[]): void {
  members[0].node.campaign();
  stabilize(members, drain(members[0]));
  equal(members[0].node.role, "leader");
}

const data = new TextEncoder().encode("m");

/**
 * The leader proposes one entry and `followers` store it and answer (the
 * others get their append, returned, but not yet); the leader has not yet
 * handled the Ready that follows.
 */
function proposeAnsweredBy(
  leader: Member,
  followers: Member[],
): { index: number; appends: Message[] } {
  const index = leader.node.propose(data);
  const appends = drain(leader);
  for (const follower of followers) {
    follower.node.step(appends.find((message) => message.to === follower.node.id)!);
    for (const answer of drain(follower)) leader.node.step(answer);
  }
  return { index, appends };
}

Deno.test("A leader sends the new commit at once to a follower whose appends are all in flight", () => {
  const members = makeMembers(3, 1);
  electFirst(members);
  const [leader, fast, slow] = members;
  const index = leader.node.propose(data);
  const appends = drain(leader);
  const toSlow = appends.filter((message) => message.to === 3);
  const toFast = appends.filter((message) => message.to === 2);
  equal(toSlow.length, 1);
  // The fast follower answers; the slow one's only slot stays in flight.
  fast.node.step(toFast[0]);
  const answers = drain(fast);
  for (const answer of answers) leader.node.step(answer);
  const out = drain(leader);
  equal(leader.node.commit, index);
  const bump = out.find((message) => message.to === 3);
  equal(bump?.type, "app", "the paused follower gets the commit now");
  equal(bump?.commit, index);
  deepEqual(bump?.entries, []);
  // Arriving after the append it follows, the bump commits the entry there.
  slow.node.step(toSlow[0]);
  slow.node.step(bump!);
  drain(slow);
  equal(slow.node.commit, index);
  equal(slow.applied, index);
});

Deno.test("A follower that lost the appends before a commit bump rejects it and is probed again", () => {
  const members = makeMembers(3, 1);
  electFirst(members);
  const [leader, fast, slow] = members;
  const { index } = proposeAnsweredBy(leader, [fast]);
  const bump = drain(leader).find((message) => message.to === 3)!;
  // The append to the slow follower was lost: it must not commit beyond its log.
  slow.node.step(bump);
  const rejection = drain(slow);
  equal(slow.node.commit < index, true);
  equal(rejection[0].reject, true);
  stabilize(members, rejection);
  equal(slow.node.commit, index);
  equal(slow.node.status().lastIndex, leader.node.status().lastIndex);
});

Deno.test("An unpaused follower gets the new commit in the Ready that follows the commit", () => {
  const members = makeMembers(3, 16);
  electFirst(members);
  const [leader, fast] = members;
  const { index } = proposeAnsweredBy(leader, [fast]);
  const out = drain(leader);
  const toSlow = out.filter((message) => message.to === 3 && message.type === "app");
  equal(toSlow.length, 1);
  equal(toSlow[0].commit, index);
});

Deno.test("A follower does not answer a commit notice it accepts", () => {
  const members = makeMembers(3, 16);
  electFirst(members);
  const [leader, fast, slow] = members;
  const { index } = proposeAnsweredBy(leader, [fast, slow]);
  const notices = drain(leader).filter((message) => message.type === "app");
  equal(notices.length, 2);
  for (const notice of notices) {
    equal(notice.commitNotice, true);
    deepEqual(notice.entries, []);
    const follower = members[notice.to - 1];
    follower.node.step(notice);
    deepEqual(drain(follower), [], "an accepted notice gets no answer");
    equal(follower.node.commit, index);
  }
});

Deno.test("A lost acknowledgement is made good by a resend that is answered, not by a notice", () => {
  const members = makeMembers(3, 16);
  electFirst(members);
  const [leader, fast, slow] = members;
  const { index, appends } = proposeAnsweredBy(leader, [fast]);
  // The slow follower stores the entry, but its answer is lost.
  slow.node.step(appends.find((message) => message.to === 3)!);
  drain(slow);
  const notice = drain(leader).find((message) => message.to === 3)!;
  equal(notice.commitNotice, true);
  slow.node.step(notice);
  deepEqual(drain(slow), []);
  equal(
    leader.node.status().progress?.[3]?.match !== index,
    true,
    "the leader still lacks the ack",
  );
  // A heartbeat answer makes the leader send again; that append is answered.
  leader.node.tick();
  const heartbeat = drain(leader).find((message) =>
    message.to === 3 && message.type === "heartbeat"
  )!;
  slow.node.step(heartbeat);
  for (const answer of drain(slow)) leader.node.step(answer);
  leader.node.tick(); // the leader's next Ready carries the resend
  const resend = drain(leader).find((message) => message.to === 3 && message.type === "app")!;
  equal(resend.commitNotice, undefined);
  slow.node.step(resend);
  const answers = drain(slow);
  equal(answers.length, 1);
  leader.node.step(answers[0]);
  equal(leader.node.status().progress?.[3]?.match, index);
});
