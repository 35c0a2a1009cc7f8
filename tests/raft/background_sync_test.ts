/**
 * A leader's own entries written in the background (`Ready.syncInBackground`,
 * `advance({ entriesDurable: false })`, `persisted()`): two followers commit
 * without the leader's fsync, the leader counts itself only once it reports
 * the write, entries are never handed out twice, and a leader that steps
 * down with a write in flight answers for those entries only after a sync.
 *
 * @module
 */

import { deepEqual, equal, ok, throws } from "node:assert/strict";
import type { BackgroundWrite } from "../../lib/raft/raft_node.ts";
import type { Message, Ready } from "../../lib/raft/types.ts";
import { drain, makeMembers, type Member } from "./_members.ts";
import { EntryType } from "../../lib/storage/types.ts";

function deliver(members: Member[], messages: Message[]): Message[] {
  const answers: Message[] = [];
  for (const message of messages) {
    members[message.to - 1].node.step(message);
    answers.push(...drain(members[message.to - 1]));
  }
  return answers;
}

function electFirst(members: Member[]): Member {
  members[0].node.campaign();
  let queue = drain(members[0]);
  for (let round = 0; round < 10 && queue.length > 0; round++) queue = deliver(members, queue);
  equal(members[0].node.role, "leader");
  return members[0];
}

const data = new TextEncoder().encode("m");

/** The leader proposes one entry and takes its Ready in the background. */
function proposeInBackground(leader: Member): { rd: Ready; write: BackgroundWrite } {
  leader.node.propose(data);
  const rd = leader.node.ready();
  ok(rd.syncInBackground, "a leader's new entries may be written in the background");
  leader.store.append(rd.entries);
  if (rd.hardState) leader.store.setHardState(rd.hardState);
  const write = leader.node.advance({ entriesDurable: false });
  ok(write !== undefined);
  return { rd, write };
}

Deno.test("two followers commit a leader's entry before the leader's own write is durable", () => {
  const members = makeMembers(3);
  const leader = electFirst(members);
  const { rd, write } = proposeInBackground(leader);
  const index = rd.entries[0].index;
  equal(write.index, index);
  // Not handed out again while in progress.
  if (leader.node.hasReady()) {
    deepEqual(leader.node.ready().entries, []);
    leader.node.advance();
  }
  const answers = deliver(members, rd.messages);
  for (const answer of answers) leader.node.step(answer);
  equal(leader.node.commit, index, "committed by the two followers");
  equal(leader.store.syncedIndex() < index, true, "the leader's write is not durable yet");
  leader.store.syncNow();
  leader.node.persisted(write);
  equal(leader.node.commit, index);
});

Deno.test("with one follower answering, the commit waits for the leader's persisted write", () => {
  const members = makeMembers(3);
  const leader = electFirst(members);
  const { rd, write } = proposeInBackground(leader);
  const index = rd.entries[0].index;
  const toSecond = rd.messages.filter((message) => message.to === 2);
  for (const answer of deliver(members, toSecond)) leader.node.step(answer);
  ok(leader.node.commit < index, "one follower is not a majority of three");
  leader.store.syncNow();
  leader.node.persisted(write);
  equal(leader.node.commit, index, "leader + one follower");
});

Deno.test("a leader that hands over with a write in flight answers for it only once durable", () => {
  const members = makeMembers(3);
  const leader = electFirst(members);
  const { rd } = proposeInBackground(leader);
  const index = rd.entries[0].index;
  /** The old leader's Readys: synced only when they say so; its answers checked. */
  const handleOld = (): Message[] => {
    const out: Message[] = [];
    while (leader.node.hasReady()) {
      const ready = leader.node.ready();
      leader.store.append(ready.entries);
      if (ready.hardState) leader.store.setHardState(ready.hardState);
      if (ready.mustSync) leader.store.syncNow();
      for (const message of ready.messages) {
        if (message.type === "appResp" && !message.reject && message.index >= index) {
          ok(leader.store.syncedIndex() >= index, "an answer promises the entry durable");
        }
      }
      out.push(...ready.messages);
      leader.node.advance();
    }
    return out;
  };
  // Node 2 stores the entry and answers; the leader hands leadership to it.
  for (const answer of deliver(members, rd.messages.filter((message) => message.to === 2))) {
    leader.node.step(answer);
  }
  leader.node.transferLeadership(2);
  let queue = handleOld();
  for (let round = 0; round < 20 && queue.length > 0; round++) {
    const next: Message[] = [];
    for (const message of queue) {
      members[message.to - 1].node.step(message);
      next.push(...(message.to === 1 ? handleOld() : drain(members[message.to - 1])));
    }
    queue = next;
  }
  equal(members[1].node.role, "leader");
  equal(leader.node.role, "follower");
  ok(members[1].node.commit >= index, "the entry committed under the new leader");
  ok(leader.store.syncedIndex() >= index);
});

Deno.test("a lone voter never writes in the background", () => {
  const [solo] = makeMembers(1);
  solo.node.campaign();
  drain(solo);
  equal(solo.node.role, "leader");
  solo.node.propose(data);
  const rd = solo.node.ready();
  ok(rd.entries.length > 0);
  equal(rd.syncInBackground, false);
  throws(() => solo.node.advance({ entriesDurable: false }), /durable entries/);
});

Deno.test("entries in progress are not handed out again, and new ones are", () => {
  const members = makeMembers(3);
  const leader = electFirst(members);
  const first = proposeInBackground(leader);
  leader.node.propose(data);
  const rd = leader.node.ready();
  deepEqual(rd.entries.map((entry) => entry.index), [first.write.index + 1]);
  equal(rd.entries[0].type, EntryType.Normal);
  leader.store.append(rd.entries);
  leader.node.advance({ entriesDurable: false });
});
