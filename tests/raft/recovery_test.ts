import { deepEqual, equal, throws } from "node:assert/strict";
import { RaftNode } from "../../lib/raft/mod.ts";
import type { Message } from "../../lib/raft/types.ts";
import { Prng } from "../../lib/sim/prng.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";

/** Three nodes, a mailbox, and the documented Ready order, synchronously. */
class Group {
  readonly stores = new Map<number, MemoryLogStore>();
  readonly nodes = new Map<number, RaftNode>();
  readonly recoveredAt: number[] = [];
  mailbox: Message[] = [];

  constructor(ids: number[]) {
    for (const id of ids) {
      const store = new MemoryLogStore();
      this.stores.set(id, store);
      this.nodes.set(id, new RaftNode({ id, store, rng: new Prng(id), voters: ids }));
    }
  }

  node(id: number): RaftNode {
    return this.nodes.get(id)!;
  }

  /** Rebuilds `id` empty, keeping only its hard state's term and vote, recovering after that term. */
  wipe(id: number): number {
    const { term, vote } = this.stores.get(id)!.hardState();
    const store = new MemoryLogStore();
    store.setHardState({ term, vote, commit: 0 });
    store.syncNow();
    this.stores.set(id, store);
    this.nodes.set(id, new RaftNode({ id, store, rng: new Prng(id), recoveringTerm: term }));
    this.mailbox = this.mailbox.filter((message) => message.to !== id && message.from !== id);
    return term;
  }

  drain(): void {
    for (const [id, node] of this.nodes) {
      const store = this.stores.get(id)!;
      while (node.hasReady()) {
        const rd = node.ready();
        if (rd.snapshot) void store.applySnapshot(rd.snapshot);
        store.append(rd.entries);
        if (rd.hardState) store.setHardState(rd.hardState);
        store.syncNow();
        this.mailbox.push(...rd.messages);
        if (rd.recovered) this.recoveredAt.push(id);
        node.advance();
      }
    }
  }

  /** Delivers messages until none is left; `drop` loses those to or from these nodes. */
  stabilize(drop: number[] = []): void {
    this.drain();
    for (let round = 0; round < 50 && this.mailbox.length > 0; round++) {
      const round = this.mailbox;
      this.mailbox = [];
      for (const message of round) {
        if (drop.includes(message.to) || drop.includes(message.from)) continue;
        this.nodes.get(message.to)?.step(message);
      }
      this.drain();
    }
  }

  propose(id: number, text: string): number {
    return this.node(id).propose(new TextEncoder().encode(text));
  }
}

function voteRequest(type: "vote" | "preVote", from: number, to: number, term: number): Message {
  return {
    type,
    from,
    to,
    term,
    logTerm: 99,
    index: 99,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
  };
}

Deno.test("A recovering replica starts in the term after recoveringTerm and never bootstraps", () => {
  const store = new MemoryLogStore();
  const node = new RaftNode({ id: 2, store, rng: new Prng(2), recoveringTerm: 7 });
  const status = node.status();
  equal(status.term, 8);
  equal(status.vote, 0);
  equal(status.lastIndex, 0);
  equal(status.recovering, true);
  equal(node.recovering, true);
  const rd = node.ready();
  deepEqual(rd.hardState, { term: 8, vote: 0, commit: 0 });
  equal(rd.mustSync, true);
  throws(
    () => new RaftNode({ id: 2, store, rng: new Prng(2), voters: [1, 2], recoveringTerm: 7 }),
    /cannot bootstrap/,
  );
  throws(() => new RaftNode({ id: 2, store, rng: new Prng(2), recoveringTerm: -1 }), RangeError);
});

Deno.test("A recovering replica refuses (pre-)votes to a candidate whose log ends in the lost term or before, however long", () => {
  const node = new RaftNode({
    id: 3,
    store: new MemoryLogStore(),
    rng: new Prng(3),
    recoveringTerm: 4,
  });
  node.step({ ...voteRequest("preVote", 2, 3, 6), logTerm: 4 });
  node.step({ ...voteRequest("vote", 2, 3, 6), logTerm: 4 });
  const answers = node.ready().messages;
  deepEqual(answers.map((message) => [message.type, message.reject]), [
    ["preVoteResp", true],
    ["voteResp", true],
  ]);
  equal(node.status().vote, 0);
});

Deno.test("A recovering replica votes for a candidate whose log holds an entry of a later term", () => {
  const node = new RaftNode({
    id: 3,
    store: new MemoryLogStore(),
    rng: new Prng(3),
    recoveringTerm: 4,
  });
  node.step({ ...voteRequest("preVote", 2, 3, 7), logTerm: 5 });
  node.step({ ...voteRequest("vote", 2, 3, 7), logTerm: 5 });
  const answers = node.ready().messages;
  deepEqual(answers.map((message) => [message.type, message.reject]), [
    ["preVoteResp", false],
    ["voteResp", false],
  ]);
  equal(node.status().vote, 2);
  equal(node.recovering, true, "voting does not end the recovery; catching up does");
});

Deno.test("A recovering voter does not campaign, not on election timeout nor on TimeoutNow", async () => {
  const store = new MemoryLogStore();
  // A snapshot makes it a voter of [1, 2, 3] before it caught up with any leader.
  await store.applySnapshot({
    index: 1,
    term: 1,
    conf: { voters: [1, 2, 3], learners: [] },
    data: new Uint8Array(),
  });
  const node = new RaftNode({ id: 3, store, rng: new Prng(3), recoveringTerm: 5 });
  equal(node.status().conf.voters.join(","), "1,2,3");
  for (let tick = 0; tick < 100; tick++) node.tick();
  node.step({ ...voteRequest("vote", 1, 3, node.term), type: "timeoutNow" });
  const sent = node.ready().messages;
  equal(sent.length, 0);
  equal(node.role, "follower");
  equal(node.term, 6);
});

Deno.test("A committed entry of the recovering term does not end the recovery; one of a later term does", () => {
  const group = new Group([1, 2, 3]);
  group.node(1).campaign();
  group.stabilize();
  group.propose(1, "a");
  group.stabilize();
  const lostTerm = group.wipe(3);
  // The leader of the lost incarnation's term replicates to n3 (n3's newer
  // term is hidden from it): n3 catches up but must stay recovering, since
  // its lost incarnation may have acknowledged entries of that term that a
  // later commit counted.
  const leader = group.node(1);
  equal(leader.term, lostTerm);
  group.mailbox = [];
  group.node(3).step({
    type: "app",
    from: 1,
    to: 3,
    term: lostTerm,
    logTerm: 0,
    index: 0,
    entries: leader.entries(1, leader.status().lastIndex + 1),
    commit: leader.status().commit,
    reject: false,
    rejectHint: 0,
  });
  group.drain();
  equal(group.node(3).status().lastIndex, 0, "an append of the older term is refused");
  equal(group.node(3).recovering, true);
  // Delivered normally, n3's newer term deposes n1; n1 or n2 wins term 4
  // without n3, and n3 recovers on its first committed entry of that term.
  for (let tick = 0; tick < 40 && group.recoveredAt.length === 0; tick++) {
    for (const node of group.nodes.values()) node.tick();
    group.stabilize();
  }
  deepEqual(group.recoveredAt, [3]);
  const recovered = group.node(3).status();
  equal(recovered.recovering, false);
  equal(recovered.term > lostTerm, true);
  equal(group.node(recovered.leader).status().commit, recovered.commit);
});

Deno.test("A replica restarted mid-recovery stays recovering and reports recovered exactly once", () => {
  const group = new Group([1, 2, 3]);
  group.node(1).campaign();
  group.stabilize();
  const lostTerm = group.wipe(2);
  const store = group.stores.get(2)!;
  group.drain();
  // Restart before catching up: the persisted flag comes back with the same term.
  group.nodes.set(2, new RaftNode({ id: 2, store, rng: new Prng(5), recoveringTerm: lostTerm }));
  equal(group.node(2).recovering, true);
  equal(group.node(2).term, lostTerm + 1);
  for (let tick = 0; tick < 40 && group.recoveredAt.length === 0; tick++) {
    for (const node of group.nodes.values()) node.tick();
    group.stabilize();
  }
  deepEqual(group.recoveredAt, [2]);
  group.stabilize();
  deepEqual(group.recoveredAt, [2]);
  // Now it votes again: with n1 gone, n2 and n3 elect a leader.
  const leader = [...group.nodes.values()].find((node) => node.role === "leader")!;
  group.nodes.delete(leader.id);
  for (let tick = 0; tick < 60; tick++) {
    for (const node of group.nodes.values()) node.tick();
    group.stabilize();
  }
  equal([...group.nodes.values()].some((node) => node.role === "leader"), true);
});

Deno.test("RaftNode.resetProgress makes the leader forget a follower's match and probe from its last index", () => {
  const group = new Group([1, 2, 3]);
  group.node(1).campaign();
  group.stabilize();
  for (const text of ["a", "b", "c"]) group.propose(1, text);
  group.stabilize();
  const leader = group.node(1);
  const last = leader.status().lastIndex;
  equal(leader.status().progress[3].match, last);
  group.node(2).resetProgress(3);
  leader.resetProgress(1);
  equal(leader.status().progress[1].match, last, "the leader's own progress stays");
  leader.resetProgress(3);
  const progress = leader.status().progress[3];
  deepEqual([progress.match, progress.next, progress.state], [0, last + 1, "probe"]);
  group.drain();
  const probe = group.mailbox.find((message) => message.to === 3 && message.type === "app")!;
  deepEqual([probe.index, probe.entries.length], [last, 0]);
  group.stabilize();
  equal(leader.status().progress[3].match, last, "the follower's answer restores match");
});

Deno.test("A leader reports how many ticks ago each follower answered", () => {
  const group = new Group([1, 2, 3]);
  group.node(1).campaign();
  group.stabilize();
  const leader = group.node(1);
  equal(leader.status().progress[1].heardTicksAgo, 0);
  equal(leader.status().progress[2].heardTicksAgo, 0);
  leader.tick();
  leader.tick();
  group.stabilize([3]);
  const progress = leader.status().progress;
  equal(progress[2].heardTicksAgo! <= 1, true);
  equal(progress[3].heardTicksAgo, 2);
});

Deno.test("A leader reports how many ticks ago each follower's log last reached the commit index", () => {
  const group = new Group([1, 2, 3]);
  group.node(1).campaign();
  group.stabilize();
  const leader = group.node(1);
  equal(leader.status().progress[1].caughtUpTicksAgo, 0);
  equal(leader.status().progress[3].caughtUpTicksAgo, 0);
  // n3 stops answering: its age grows while n2 keeps catching up.
  for (let tick = 0; tick < 4; tick++) {
    leader.tick();
    group.propose(1, `m${tick}`);
    group.stabilize([3]);
  }
  const progress = leader.status().progress;
  equal(progress[2].caughtUpTicksAgo, 0);
  equal(progress[3].caughtUpTicksAgo, 4);
  // A restart forgets it entirely, until the follower catches up again.
  leader.resetProgress(2);
  equal(leader.status().progress[2].caughtUpTicksAgo, undefined);
  for (let round = 0; round < 3; round++) {
    // Heartbeats show the lagging n3 and the re-probed n2 what to resend.
    leader.tick();
    group.stabilize();
  }
  equal(leader.status().progress[2].caughtUpTicksAgo, 0);
  equal(leader.status().progress[3].caughtUpTicksAgo, 0);
});
