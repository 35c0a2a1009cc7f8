/**
 * Lazy followers (`RaftOptions.lazyFollowers`): a leader marks its appends
 * `lazySync` to the voters a commit does not need, the ones furthest along
 * stay eager, and a follower that stops answering is passed by a lazy one.
 *
 * @module
 */

import { deepEqual, equal } from "node:assert/strict";
import type { Message } from "../../lib/raft/types.ts";
import { drain, makeMembers, type Member } from "./_members.ts";

/** Delivers `messages` (those to `dropped` are lost); returns the answers. */
function deliver(members: Member[], messages: Message[], dropped: number[] = []): Message[] {
  const answers: Message[] = [];
  for (const message of messages) {
    if (dropped.includes(message.to)) continue;
    members[message.to - 1].node.step(message);
    answers.push(...drain(members[message.to - 1]));
  }
  return answers;
}

/** Delivers until no message is left. */
function settle(members: Member[], messages: Message[], dropped: number[] = []): void {
  for (let round = 0; round < 20 && messages.length > 0; round++) {
    messages = deliver(members, messages, dropped);
  }
}

/** Member 1 leads, every follower in replicate state. */
function electFirst(count: number, lazyFollowers: boolean, appendBytesMax?: number): Member[] {
  const members = makeMembers(count, undefined, { lazyFollowers, appendBytesMax });
  members[0].node.campaign();
  settle(members, drain(members[0]));
  equal(members[0].node.role, "leader");
  // The first append's answers move every follower to replicate state.
  members[0].node.propose(new Uint8Array([0]));
  settle(members, drain(members[0]));
  return members;
}

/** The leader proposes one entry; returns its appends by receiver, and which are lazy. */
function propose(members: Member[]): { appends: Message[]; lazy: number[] } {
  members[0].node.propose(new Uint8Array([1]));
  const appends = drain(members[0]).filter((message) =>
    message.type === "app" && message.entries.length > 0
  );
  const lazy = appends.filter((message) => message.lazySync === true).map((message) => message.to);
  return { appends, lazy: lazy.sort() };
}

Deno.test("a leader of 3 marks its appends to one follower lazySync: the higher id on a tie", () => {
  const members = electFirst(3, true);
  for (let round = 0; round < 3; round++) {
    const { appends, lazy } = propose(members);
    equal(appends.length, 2);
    deepEqual(lazy, [3]);
    settle(members, appends);
  }
  equal(members[0].node.commit, members[0].node.status().lastIndex);
});

Deno.test("without lazyFollowers no append is lazy", () => {
  const members = electFirst(3, false);
  const { appends, lazy } = propose(members);
  equal(appends.length, 2);
  deepEqual(lazy, []);
});

Deno.test("a follower that stops answering is passed by the lazy one, which becomes eager", () => {
  const members = electFirst(3, true);
  // Follower 2 is eager but its answers are lost; the lazy follower 3
  // answers late but does answer, and the leader commits with it.
  const first = propose(members);
  deepEqual(first.lazy, [3]);
  const index = members[0].node.status().lastIndex;
  settle(members, first.appends, [2]);
  equal(members[0].node.commit, index, "leader + the lazy follower commit");
  // Follower 3 is needed now and gets the next entry unmarked; follower 2,
  // lazy now, gets nothing while its append is unanswered.
  const second = propose(members);
  deepEqual(second.appends.map((append) => append.to), [3]);
  deepEqual(second.lazy, []);
  settle(members, second.appends, [2]);
  equal(members[0].node.commit, members[0].node.status().lastIndex);
});

Deno.test("a lazy follower has one append in flight: what comes meanwhile goes in one append once it answers", () => {
  const members = electFirst(3, true);
  // Two ticks pass before the first append goes out (their heartbeats are lost).
  for (let tick = 0; tick < 2; tick++) {
    members[0].node.tick();
    drain(members[0]);
  }
  const first = propose(members);
  deepEqual(first.lazy, [3]);
  const held = first.appends.filter((append) => append.to === 3);
  // Follower 2 answers each publish at once; follower 3 holds its append.
  let toThree: Message[] = [];
  let answers = deliver(members, first.appends.filter((append) => append.to === 2));
  for (let publish = 0; publish < 3; publish++) {
    deliver(members, answers);
    const sent = drain(members[0]);
    toThree.push(...sent.filter((message) => message.to === 3));
    const next = propose(members);
    deepEqual(next.appends.map((append) => append.to), [2], "nothing more to the lazy follower");
    answers = deliver(members, next.appends);
  }
  deliver(members, answers);
  toThree.push(...drain(members[0]).filter((message) => message.to === 3));
  const lastIndex = members[0].node.status().lastIndex;
  equal(members[0].node.commit, lastIndex, "committed with follower 2");
  deepEqual(toThree, [], "no append and no commit notice reach follower 3 meanwhile");
  for (let tick = 0; tick < 3; tick++) {
    members[0].node.tick();
    drain(members[0]);
  }
  // Follower 3 answers; the three entries that came meanwhile go in one lazy
  // append. It held all the leader had when its append went out: caught up
  // as of then, three ticks ago, though the commit index has moved on.
  toThree = deliver(members, deliver(members, held)).filter((message) =>
    message.to === 3 && message.type === "app"
  );
  equal(toThree.length, 1);
  equal(toThree[0].entries.length, 3);
  equal(toThree[0].lazySync, true, "follower 2 answered those: follower 3 stays lazy");
  equal(toThree[0].index + toThree[0].entries.length, lastIndex);
  equal(members[0].node.status().progress[3].caughtUpTicksAgo, 3);
});

Deno.test("a leader of 5 keeps two followers eager and marks two lazy", () => {
  const members = electFirst(5, true);
  for (let round = 0; round < 3; round++) {
    const { appends, lazy } = propose(members);
    equal(appends.length, 4);
    deepEqual(lazy, [4, 5]);
    settle(members, appends);
  }
});

Deno.test("a leader of 2 voters marks nothing lazy: it needs its one follower", () => {
  const members = electFirst(2, true);
  const { appends, lazy } = propose(members);
  equal(appends.length, 1);
  deepEqual(lazy, []);
});

Deno.test("a lazy follower whose append in flight was lost gets the entries again after a heartbeat", () => {
  const members = electFirst(3, true);
  const first = propose(members);
  deepEqual(first.lazy, [3]);
  // Follower 3's append is lost; the entries after it are held for its answer.
  settle(members, first.appends, [3]);
  for (let publish = 0; publish < 3; publish++) settle(members, propose(members).appends, [3]);
  const lastIndex = members[0].node.status().lastIndex;
  equal(members[0].node.status().progress[3].match < lastIndex, true);
  // A heartbeat answer shows the follower lagging: the leader resends and it catches up.
  for (let tick = 0; tick < 10; tick++) {
    members[0].node.tick();
    settle(members, drain(members[0]));
  }
  equal(members[0].node.status().progress[3].match, lastIndex);
  equal(members[2].store.lastIndex(), lastIndex);
});

Deno.test("a lazy follower more than one append behind gets full appends without waiting", () => {
  // Entries of 1 byte, appends of at most 4 bytes.
  const members = electFirst(3, true, 4);
  const first = propose(members);
  settle(members, first.appends, [3]);
  const toThree: Message[] = [];
  for (let publish = 0; publish < 10; publish++) {
    const { appends } = propose(members);
    toThree.push(...appends.filter((append) => append.to === 3));
    settle(members, appends, [3]);
  }
  // Its first append unanswered, follower 3 lacks 11 entries: the leader held
  // them while they fit in one append, then sent them 4 at a time.
  deepEqual(toThree.map((append) => append.entries.length), [4, 4]);
  equal(toThree.every((append) => append.lazySync === true), true);
});
