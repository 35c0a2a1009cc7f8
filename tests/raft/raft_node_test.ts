import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { NotLeaderError, RaftNode } from "../../lib/raft/mod.ts";
import type { Message } from "../../lib/raft/types.ts";
import { Prng } from "../../lib/sim/prng.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { type Entry, EntryType } from "../../lib/storage/types.ts";
import { blankMessage } from "./_members.ts";

function makeNode(id: number, voters: number[], store = new MemoryLogStore()): RaftNode {
  return new RaftNode({ id, store, rng: new Prng(id), voters });
}

/**
 * Handles Readys in the documented order; returns the messages to send, and
 * adds the entries handed out for applying to `committed` when given.
 */
function drain(node: RaftNode, store: MemoryLogStore, committed?: Entry[]): Message[] {
  const out: Message[] = [];
  while (node.hasReady()) {
    const rd = node.ready();
    store.append(rd.entries);
    if (rd.hardState) store.setHardState(rd.hardState);
    store.syncNow();
    out.push(...rd.messages);
    committed?.push(...rd.committedEntries);
    node.advance();
  }
  return out;
}

Deno.test("RaftNode.propose throws NotLeaderError on a follower", () => {
  const node = makeNode(1, [1, 2, 3]);
  throws(
    () => node.propose(new Uint8Array([1])),
    (error) => error instanceof NotLeaderError && error.name === "NotLeaderError",
  );
});

Deno.test("RaftNode rejects heartbeatTicks not below electionTicks", () => {
  throws(
    () =>
      new RaftNode({
        id: 1,
        store: new MemoryLogStore(),
        rng: new Prng(1),
        electionTicks: 2,
        heartbeatTicks: 2,
      }),
    RangeError,
  );
});

Deno.test("A single-voter leader commits a proposal only after advance() reports it persisted", () => {
  const store = new MemoryLogStore();
  const node = makeNode(1, [1], store);
  node.campaign();
  drain(node, store);
  equal(node.role, "leader");
  const index = node.propose(new TextEncoder().encode("x"));
  const rd = node.ready();
  equal(rd.entries.at(-1)?.index, index);
  equal(
    rd.committedEntries.some((entry) => entry.index === index),
    false,
    "not committed before persistence",
  );
  store.append(rd.entries);
  store.syncNow();
  node.advance();
  equal(node.status().commit, index);
  const next = node.ready();
  equal(next.committedEntries.at(-1)?.index, index);
  node.advance();
});

Deno.test("Proposals between two Readys travel in one append message per follower", () => {
  const stores = [1, 2, 3].map(() => new MemoryLogStore());
  const nodes = [1, 2, 3].map((id) => makeNode(id, [1, 2, 3], stores[id - 1]));
  nodes[0].campaign();
  let queue = drain(nodes[0], stores[0]);
  for (let round = 0; round < 10 && queue.length > 0; round++) {
    const next: Message[] = [];
    for (const message of queue) {
      nodes[message.to - 1].step(message);
      next.push(...drain(nodes[message.to - 1], stores[message.to - 1]));
    }
    queue = next;
  }
  equal(nodes[0].role, "leader");
  for (let i = 0; i < 50; i++) nodes[0].propose(new TextEncoder().encode(`p${i}`));
  const appends = drain(nodes[0], stores[0]).filter((message) => message.type === "app");
  equal(appends.length, 2);
  equal(appends[0].entries.length, 50);
});

Deno.test("A restarted node recovers its membership from the log", () => {
  const store = new MemoryLogStore();
  const node = makeNode(1, [1], store);
  node.campaign();
  drain(node, store);
  const restarted = new RaftNode({ id: 1, store, rng: new Prng(9) });
  drain(restarted, store);
  equal(restarted.status().conf.voters.join(","), "1");
});

/** Brings node 3 of a 3-voter group into term 2 without a vote (an answer from a newer term). */
function nodeInTermTwoWithoutVote(options: { voteWithoutSync?: boolean } = {}) {
  const store = new MemoryLogStore();
  const node = new RaftNode({
    id: 3,
    store,
    rng: new Prng(3),
    voters: [1, 2, 3],
    unsafe: { voteWithoutSync: options.voteWithoutSync },
  });
  drain(node, store);
  node.step(blankMessage("appResp", 1, 3, 2));
  drain(node, store);
  equal(node.status().term, 2);
  equal(node.status().vote, 0);
  return { node, store };
}

Deno.test("A vote-only change of the hard state requires a sync before the vote response", () => {
  const { node } = nodeInTermTwoWithoutVote();
  node.step({ ...blankMessage("vote", 2, 3, 2), index: 1, logTerm: 1 });
  const rd = node.ready();
  equal(rd.hardState?.term, 2, "the term did not change");
  equal(rd.hardState?.vote, 2, "only the vote changed");
  equal(rd.entries.length, 0);
  equal(rd.mustSync, true, "the vote must be durable before the response leaves");
  const response = rd.messages.find((message) => message.type === "voteResp");
  equal(response?.reject, false);
  node.advance();
});

Deno.test("The unsafe voteWithoutSync switch answers a vote-only change without a sync", () => {
  const { node } = nodeInTermTwoWithoutVote({ voteWithoutSync: true });
  node.step({ ...blankMessage("vote", 2, 3, 2), index: 1, logTerm: 1 });
  const rd = node.ready();
  equal(rd.hardState?.vote, 2);
  equal(rd.mustSync, false);
  node.advance();
});

/** A rejection from follower 2 whose log ends at `lastIndex`. */
function rejection(leader: RaftNode, index: number, lastIndex: number): Message {
  return {
    type: "appResp",
    from: 2,
    to: 1,
    term: leader.term,
    logTerm: 0,
    index,
    entries: [],
    commit: 0,
    reject: true,
    rejectHint: lastIndex,
  };
}

Deno.test("A leader whose log holds entries below its snapshot sends them, not the snapshot, to a follower that needs them", async () => {
  const store = new MemoryLogStore({ segmentEntries: 4 });
  const leader = makeNode(1, [1], store);
  leader.campaign();
  drain(leader, store);
  for (let number = 0; number < 20; number++) {
    leader.propose(new Uint8Array([number]));
    drain(leader, store);
  }
  await store.compact(leader.createSnapshot(new Uint8Array([7])), 9);
  equal(store.firstIndex(), 9);
  equal(store.snapshot()!.index > 20, true);
  leader.proposeConfChange({ type: "addLearner", node: 2 });
  const probe = drain(leader, store).find((message) => message.to === 2 && message.type === "app");
  equal(probe !== undefined, true);
  // The learner's log ends at 10 (it was down since): entries 11.. are still held.
  leader.step(rejection(leader, probe!.index, 10));
  const retry = drain(leader, store).filter((message) => message.to === 2);
  equal(retry.some((message) => message.type === "snap"), false, "no snapshot while entries exist");
  const append = retry.find((message) => message.type === "app")!;
  equal(append.index, 10);
  equal(append.entries[0].index, 11);
  // A log that ends below the first held entry (minus one) needs the snapshot.
  leader.step(rejection(leader, append.index, 3));
  const below = drain(leader, store).filter((message) => message.to === 2);
  equal(below.some((message) => message.type === "snap"), true);
});

Deno.test("A committed conf change is handed out for applying only once a synced hard state covers its commit", () => {
  const store = new MemoryLogStore();
  const node = makeNode(1, [1], store);
  node.campaign();
  drain(node, store);
  const confIndex = node.proposeConfChange({ type: "addLearner", node: 2 });
  const persist = node.ready();
  store.append(persist.entries);
  if (persist.hardState) store.setHardState(persist.hardState);
  store.syncNow();
  node.advance();
  // The entry is durable and committed (one voter); the new commit index is not yet.
  const commit = node.ready();
  equal(commit.hardState?.commit, confIndex);
  equal(commit.committedEntries.some((entry) => entry.index === confIndex), false);
  equal(commit.mustSync, true, "the commit covering the conf change must be fsynced first");
  store.setHardState(commit.hardState!);
  store.syncNow();
  node.advance();
  const apply = node.ready();
  equal(apply.committedEntries.at(-1)?.index, confIndex);
  node.advance();
  equal(node.status().conf.learners.includes(2), true);
  // A normal entry's commit still needs no fsync of its own before it is applied.
  const index = node.propose(new TextEncoder().encode("x"));
  drainUntilCommitted(node, store, index);
});

/** Persists Readys until `index` is handed out; asserts its commit-only Ready needed no fsync. */
function drainUntilCommitted(node: RaftNode, store: MemoryLogStore, index: number): void {
  for (let round = 0; round < 5; round++) {
    const rd = node.ready();
    store.append(rd.entries);
    if (rd.hardState) store.setHardState(rd.hardState);
    if (rd.mustSync) store.syncNow();
    const handed = rd.committedEntries.some((entry) => entry.index === index);
    if (handed) equal(rd.mustSync, false);
    node.advance();
    if (handed) return;
  }
  throw new Error(`Entry ${index} was never handed out`);
}

/** The indices of the normal entries the first Readys of `node` hand out for applying. */
function committedAtStart(node: RaftNode, store: MemoryLogStore): number[] {
  const committed: Entry[] = [];
  drain(node, store, committed);
  return committed.filter((entry) => entry.type === EntryType.Normal && entry.data.length > 0)
    .map((entry) => entry.index);
}

Deno.test("A restarted sole voter commits its whole stored log before it campaigns (a full disk cannot write the vote)", () => {
  const store = new MemoryLogStore();
  const node = makeNode(1, [1], store);
  node.campaign();
  drain(node, store);
  const proposed = ["a", "b", "c"].map((text) => node.propose(new TextEncoder().encode(text)));
  // The entries are synced, and the process stops before the hard state
  // that commits them is written (a `SegmentLogStore` does not write a
  // commit-only hard state at all).
  const rd = node.ready();
  store.append(rd.entries);
  store.syncNow();
  node.advance();
  store.crash();
  ok(store.hardState().commit < proposed[0], `stored commit ${store.hardState().commit}`);
  const restarted = new RaftNode({ id: 1, store, rng: new Prng(9) });
  equal(restarted.role, "follower");
  deepEqual(committedAtStart(restarted, store), proposed);
});

Deno.test("A restarted sole voter with a conf change past its stored commit index commits nothing more", () => {
  const store = new MemoryLogStore();
  const node = makeNode(1, [1], store);
  node.campaign();
  drain(node, store);
  const before = store.hardState().commit;
  // Written and synced, then a crash before the Ready is advanced: not committed.
  node.propose(new TextEncoder().encode("a"));
  node.proposeConfChange({ type: "addVoter", node: 2 });
  const rd = node.ready();
  store.append(rd.entries);
  store.syncNow();
  store.crash();
  equal(store.hardState().commit, before);
  ok(store.lastIndex() > before);
  const restarted = new RaftNode({ id: 1, store, rng: new Prng(9) });
  deepEqual(committedAtStart(restarted, store), []);
  equal(restarted.status().commit, before);
});

Deno.test("A restarted replica of a 3-voter group does not commit past its stored commit index", () => {
  const store = new MemoryLogStore();
  const node = new RaftNode({
    id: 1,
    store,
    rng: new Prng(1),
    voters: [1, 2, 3],
    bootstrapLeader: 1,
  });
  drain(node, store);
  equal(node.role, "leader");
  node.propose(new TextEncoder().encode("never acknowledged"));
  drain(node, store);
  store.crash();
  const stored = store.hardState().commit;
  ok(store.lastIndex() > stored);
  const restarted = new RaftNode({ id: 1, store, rng: new Prng(9) });
  deepEqual(committedAtStart(restarted, store), []);
  equal(restarted.status().commit, stored);
});
