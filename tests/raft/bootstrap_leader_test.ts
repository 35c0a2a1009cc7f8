import assert from "node:assert/strict";
import { RaftNode } from "../../lib/raft/mod.ts";
import type { Message } from "../../lib/raft/types.ts";
import { Prng } from "../../lib/sim/prng.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { blankMessage } from "./_members.ts";

const voters = [1, 2, 3];
const encoder = new TextEncoder();

interface Replica {
  id: number;
  store: MemoryLogStore;
  node: RaftNode;
}

function founding(id: number, store = new MemoryLogStore()): Replica {
  return {
    id,
    store,
    node: new RaftNode({ id, store, rng: new Prng(id), voters, bootstrapLeader: 1 }),
  };
}

/** Handles one Ready in the documented order (persist, sync, advance); returns its messages. */
function handleOne(replica: Replica): Message[] {
  const rd = replica.node.ready();
  replica.store.append(rd.entries);
  if (rd.hardState) replica.store.setHardState(rd.hardState);
  replica.store.syncNow();
  replica.node.advance();
  return rd.messages;
}

function drain(replica: Replica): Message[] {
  const out: Message[] = [];
  while (replica.node.hasReady()) out.push(...handleOne(replica));
  return out;
}

/** Delivers messages until none is left; returns every message type seen. */
function stabilize(replicas: Replica[]): string[] {
  const byId = new Map(replicas.map((replica) => [replica.id, replica]));
  const seen: string[] = [];
  let mailbox = replicas.flatMap(drain);
  while (mailbox.length > 0) {
    for (const message of mailbox) {
      seen.push(message.type);
      byId.get(message.to)?.node.step(message);
    }
    mailbox = replicas.flatMap(drain);
  }
  return seen;
}

Deno.test("A bootstrap leader leads term 1 once its bootstrap is durable, with no vote exchanged", () => {
  const replicas = voters.map((id) => founding(id));
  const [leader] = replicas;
  assert.equal(leader.node.role, "follower", "not before its bootstrap is durable");
  const seen = stabilize(replicas);
  assert.equal(leader.node.role, "leader");
  assert.equal(leader.node.term, 1);
  assert.deepEqual(seen.filter((type) => /vote/i.test(type)), [], "no election");
  for (const replica of replicas.slice(1)) {
    assert.equal(replica.node.leader, 1);
    assert.deepEqual(replica.store.hardState().vote, 1, "the founding vote is durable");
  }
  assert.equal(leader.node.status().lastIndex, 1, "no empty entry: entry 1 is of term 1");
});

Deno.test("A bootstrap leader takes writes and confirms reads in term 1 right away", () => {
  const replicas = voters.map((id) => founding(id));
  stabilize(replicas);
  const [leader] = replicas;
  const index = leader.node.propose(encoder.encode("first"));
  assert.equal(index, 2);
  leader.node.readIndex(encoder.encode("read-1"));
  const confirmed: string[] = [];
  const original = leader.node.ready.bind(leader.node);
  leader.node.ready = () => {
    const rd = original();
    for (const read of rd.readStates) confirmed.push(new TextDecoder().decode(read.context));
    return rd;
  };
  stabilize(replicas);
  assert.deepEqual(confirmed, ["read-1"], "no empty entry needed before a read");
  for (const replica of replicas) {
    assert.equal(replica.node.status().commit, 2);
    assert.equal(replica.store.term(2), 1);
  }
});

Deno.test("A founding replica refuses a vote in term 1 to anyone but the bootstrap leader", () => {
  const follower = founding(2);
  drain(follower);
  follower.node.step({
    type: "vote",
    from: 3,
    to: 2,
    term: 1,
    logTerm: 1,
    index: 1,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
  });
  const answers = drain(follower);
  const answer = answers.find((message) => message.type === "voteResp");
  assert.ok(answer === undefined || answer.reject, "no vote for node 3 in term 1");
  assert.equal(follower.store.hardState().vote, 1);
});

Deno.test("A bootstrap leader that lost its unsynced bootstrap in a crash starts over identically", () => {
  const store = new MemoryLogStore();
  const first = founding(1, store);
  const rd = first.node.ready();
  store.append(rd.entries);
  if (rd.hardState) store.setHardState(rd.hardState);
  store.crash();
  assert.equal(store.lastIndex(), 0, "nothing was durable");
  const again = founding(1, store);
  const replicas = [again, founding(2), founding(3)];
  stabilize(replicas);
  assert.equal(again.node.role, "leader");
  assert.equal(again.node.term, 1);
});

Deno.test("A bootstrap leader restarted after its bootstrap was durable never leads term 1 again", () => {
  const replicas = voters.map((id) => founding(id));
  stabilize(replicas);
  const store = replicas[0].store;
  const restarted: Replica = {
    id: 1,
    store,
    node: new RaftNode({ id: 1, store, rng: new Prng(9), voters, bootstrapLeader: 1 }),
  };
  drain(restarted);
  assert.equal(restarted.node.role, "follower");
  assert.equal(restarted.node.term, 1);
  restarted.node.campaign();
  const messages = drain(restarted);
  assert.ok(messages.length > 0);
  for (const message of messages) {
    assert.ok(
      message.term >= 2,
      `a campaign of the restarted leader uses term 2, not ${message.term}`,
    );
  }
});

Deno.test("A bootstrap leader that sees a later term before its bootstrap is durable does not lead term 1", () => {
  const leader = founding(1);
  leader.node.step(blankMessage("heartbeat", 2, 1, 2));
  drain(leader);
  assert.notEqual(leader.node.role, "leader");
  assert.equal(leader.node.term, 2);
});

Deno.test("RaftNode refuses a bootstrapLeader that is not one of the voters", () => {
  assert.throws(
    () =>
      new RaftNode({
        id: 1,
        store: new MemoryLogStore(),
        rng: new Prng(1),
        voters,
        bootstrapLeader: 4,
      }),
    /'bootstrapLeader' must be one of 'voters'/,
  );
});
