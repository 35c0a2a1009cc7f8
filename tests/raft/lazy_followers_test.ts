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
function electFirst(count: number, lazyFollowers: boolean): Member[] {
  const members = makeMembers(count, undefined, { lazyFollowers });
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
  // Follower 3's log is now ahead of follower 2's: it is needed, 2 is not.
  const second = propose(members);
  deepEqual(second.lazy, [2]);
  settle(members, second.appends, [2]);
  equal(members[0].node.commit, members[0].node.status().lastIndex);
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
