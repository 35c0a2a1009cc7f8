import assert from "node:assert/strict";
import { PeerMessageError } from "../../lib/cluster/_peer_messages.ts";
import { backoffDelayMs } from "../../lib/cluster/_backoff.ts";
import { parseAddress } from "../../lib/cluster/_address.ts";
import {
  type MemberChange,
  type MemberRecord,
  Membership,
  memberState,
} from "../../lib/cluster/membership.ts";
import { createPeerHandler } from "../../lib/cluster/peer_handler.ts";

/** A clock that moves only when the test says so. */
class FakeClock {
  nowMs = 1_000_000;
  now(): number {
    return this.nowMs;
  }
  advance(ms: number): void {
    this.nowMs += ms;
  }
}

const timing = { heartbeatMs: 100, deadAfterMs: 1000 };

function record(fields: Partial<MemberRecord>): MemberRecord {
  return {
    id: 2,
    address: "127.0.0.1:5002",
    heardAt: undefined,
    knownSince: 0,
    left: false,
    removed: false,
    ...fields,
  };
}

function newMembership(clock: FakeClock, seeds = [{ id: 2, address: "127.0.0.1:5002" }]) {
  return new Membership({
    self: { id: 1, address: "127.0.0.1:5001" },
    seeds,
    ...timing,
    clock,
  });
}

function heartbeatFrom(id: number, members: { id: number; address: string }[] = []) {
  return { from: id, address: `127.0.0.1:${5000 + id}`, members };
}

Deno.test("memberState is alive within 2 heartbeats, suspect after, dead at deadAfterMs", () => {
  const heard = record({ heardAt: 0 });
  assert.equal(memberState(heard, 0, timing), "alive");
  assert.equal(memberState(heard, 200, timing), "alive");
  assert.equal(memberState(heard, 201, timing), "suspect");
  assert.equal(memberState(heard, 999, timing), "suspect");
  assert.equal(memberState(heard, 1000, timing), "dead");
});

Deno.test("memberState keeps a never-heard member suspect until deadAfterMs since it was learned", () => {
  const unheard = record({ knownSince: 500 });
  assert.equal(memberState(unheard, 500, timing), "suspect");
  assert.equal(memberState(unheard, 1499, timing), "suspect");
  assert.equal(memberState(unheard, 1500, timing), "dead");
});

Deno.test("memberState reports left regardless of heartbeats", () => {
  assert.equal(memberState(record({ heardAt: 0, left: true }), 0, timing), "left");
});

Deno.test("a seeded member goes suspect, then alive on a heartbeat, then suspect and dead in silence", () => {
  const clock = new FakeClock();
  const membership = newMembership(clock);
  const changes: MemberChange[] = [];
  membership.onChange((change) => changes.push(change));
  assert.equal(membership.view()[1].state, "suspect");
  clock.advance(50);
  membership.receiveHeartbeat(heartbeatFrom(2));
  assert.deepEqual(changes, [{
    id: 2,
    address: "127.0.0.1:5002",
    previous: "suspect",
    state: "alive",
  }]);
  clock.advance(200);
  assert.deepEqual(membership.tick(), []);
  clock.advance(1);
  assert.deepEqual(membership.tick().map((change) => change.state), ["suspect"]);
  clock.advance(799);
  assert.deepEqual(membership.tick().map((change) => change.state), ["dead"]);
  assert.deepEqual(membership.tick(), []);
  membership.receiveHeartbeat(heartbeatFrom(2));
  assert.deepEqual(changes.map((change) => `${change.previous}->${change.state}`), [
    "suspect->alive",
    "alive->suspect",
    "suspect->dead",
    "dead->alive",
  ]);
});

Deno.test("a seeded member that never answers is dead deadAfterMs after start", () => {
  const clock = new FakeClock();
  const membership = newMembership(clock);
  clock.advance(999);
  assert.equal(membership.view()[1].state, "suspect");
  assert.equal(membership.view()[1].last_heartbeat_ms_ago, 999);
  clock.advance(1);
  assert.equal(membership.view()[1].state, "dead");
});

Deno.test("view lists self first as alive with 0 ms and every member sorted by id", () => {
  const clock = new FakeClock();
  const membership = newMembership(clock, [
    { id: 3, address: "127.0.0.1:5003" },
    { id: 2, address: "127.0.0.1:5002" },
    { id: 1, address: "127.0.0.1:9999" },
  ]);
  clock.advance(30);
  membership.receiveHeartbeat(heartbeatFrom(3));
  clock.advance(20);
  assert.deepEqual(membership.view(), [
    { id: 1, address: "127.0.0.1:5001", state: "alive", last_heartbeat_ms_ago: 0 },
    { id: 2, address: "127.0.0.1:5002", state: "suspect", last_heartbeat_ms_ago: 50 },
    { id: 3, address: "127.0.0.1:5003", state: "alive", last_heartbeat_ms_ago: 20 },
  ]);
});

Deno.test("a heartbeat teaches its sender and the members it lists, never self", () => {
  const clock = new FakeClock();
  const membership = newMembership(clock, []);
  const changes: MemberChange[] = [];
  membership.onChange((change) => changes.push(change));
  membership.receiveHeartbeat(heartbeatFrom(4, [
    { id: 1, address: "10.0.0.1:1" },
    { id: 5, address: "127.0.0.1:5005" },
  ]));
  assert.deepEqual(
    membership.view().map(({ id, address, state }) => ({ id, address, state })),
    [
      { id: 1, address: "127.0.0.1:5001", state: "alive" },
      { id: 4, address: "127.0.0.1:5004", state: "alive" },
      { id: 5, address: "127.0.0.1:5005", state: "suspect" },
    ],
  );
  assert.deepEqual(changes.map((change) => [change.id, change.previous, change.state]), [
    [4, undefined, "alive"],
    [5, undefined, "suspect"],
  ]);
  assert.deepEqual(membership.heartbeatMessage(), {
    action: "peer_heartbeat",
    from: 1,
    address: "127.0.0.1:5001",
    members: [{ id: 4, address: "127.0.0.1:5004" }, { id: 5, address: "127.0.0.1:5005" }],
    sent_at: clock.nowMs,
  });
});

Deno.test("gossip does not change a known member's address but its own heartbeat does", () => {
  const clock = new FakeClock();
  const membership = newMembership(clock);
  membership.receiveHeartbeat(heartbeatFrom(3, [{ id: 2, address: "10.9.9.9:1" }]));
  assert.equal(membership.record(2)?.address, "127.0.0.1:5002");
  membership.receiveHeartbeat({ from: 2, address: "127.0.0.1:6002", members: [] });
  assert.equal(membership.record(2)?.address, "127.0.0.1:6002");
});

Deno.test("a member that leaves is left and no longer a heartbeat target until it heartbeats again", () => {
  const clock = new FakeClock();
  const membership = newMembership(clock);
  membership.receiveHeartbeat(heartbeatFrom(2));
  membership.receiveLeave(2);
  assert.equal(membership.view()[1].state, "left");
  assert.deepEqual(membership.targets(), []);
  clock.advance(5000);
  assert.equal(membership.view()[1].state, "left");
  membership.receiveHeartbeat(heartbeatFrom(2));
  assert.equal(membership.view()[1].state, "alive");
});

Deno.test("a removed member stays left even when it heartbeats", () => {
  const clock = new FakeClock();
  const membership = newMembership(clock);
  membership.remove(2);
  membership.receiveHeartbeat(heartbeatFrom(2));
  assert.equal(membership.view()[1].state, "left");
});

Deno.test("gossip beyond membersMax is ignored", () => {
  const membership = new Membership({
    self: { id: 1, address: "127.0.0.1:5001" },
    ...timing,
    membersMax: 2,
    clock: new FakeClock(),
  });
  membership.receiveHeartbeat(heartbeatFrom(2, [
    { id: 3, address: "127.0.0.1:5003" },
    { id: 4, address: "127.0.0.1:5004" },
  ]));
  assert.deepEqual(membership.view().map((node) => node.id), [1, 2, 3]);
});

Deno.test("Membership refuses a deadAfterMs that is not above two heartbeats", () => {
  assert.throws(
    () =>
      new Membership({
        self: { id: 1, address: "127.0.0.1:5001" },
        heartbeatMs: 3000,
        deadAfterMs: 6000,
      }),
    /'deadAfterMs' must be an integer above 2 × heartbeatMs \(6000\): current value is 6000/,
  );
});

Deno.test("a throwing change listener does not stop the others", () => {
  const clock = new FakeClock();
  const membership = newMembership(clock);
  const seen: number[] = [];
  membership.onChange(() => {
    throw new Error("listener bug");
  });
  membership.onChange((change) => seen.push(change.id));
  membership.receiveHeartbeat(heartbeatFrom(2));
  assert.deepEqual(seen, [2]);
});

Deno.test("the peer handler answers heartbeats with ok and marks the sender alive", async () => {
  const membership = newMembership(new FakeClock());
  const handler = createPeerHandler(membership);
  assert.deepEqual(
    await handler({ action: "peer_heartbeat", ...heartbeatFrom(2), sent_at: 1 }),
    { status: "ok", from: 1 },
  );
  assert.equal(membership.view()[1].state, "alive");
  assert.deepEqual(await handler({ action: "peer_leave", from: 2 }), { status: "ok", from: 1 });
  assert.equal(membership.view()[1].state, "left");
});

Deno.test("the peer handler answers malformed and unknown peer messages with bad_request", async () => {
  const membership = newMembership(new FakeClock());
  const handler = createPeerHandler(membership, { membersMax: 1 });
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ action: "peer_nope" }, /Unknown peer action 'peer_nope'/],
    [{ action: "peer_heartbeat", from: 0, address: "h:1", members: [], sent_at: 1 }, /'from'/],
    [{ action: "peer_heartbeat", from: 2, address: "h", members: [], sent_at: 1 }, /'address'/],
    [{ action: "peer_heartbeat", from: 2, address: "h:1", members: {}, sent_at: 1 }, /'members'/],
    [{ action: "peer_heartbeat", from: 2, address: "h:1", members: [], sent_at: "x" }, /sent_at/],
    [
      { action: "peer_heartbeat", from: 2, address: "h:1", members: [{ id: 3 }], sent_at: 1 },
      /members\[0\]\.address/,
    ],
    [
      {
        action: "peer_heartbeat",
        from: 2,
        address: "h:1",
        members: [{ id: 3, address: "h:3" }, { id: 4, address: "h:4" }],
        sent_at: 1,
      },
      /more than the 1 allowed/,
    ],
    [{ action: "peer_heartbeat", ...heartbeatFrom(1), sent_at: 1 }, /own id/],
    [{ action: "peer_leave", from: "2" }, /'from'/],
  ];
  for (const [message, error] of cases) {
    const answer = await handler(message) as { status: string; error: string };
    assert.equal(answer.status, "bad_request", JSON.stringify(message));
    assert.match(answer.error, error);
  }
  assert.equal(membership.view()[1].state, "suspect");
});

Deno.test("the peer handler serves registered actions and refuses duplicates", async () => {
  const handler = createPeerHandler(newMembership(new FakeClock()));
  handler.register("peer_raft", (message) => ({ status: "ok", echoed: message.term }));
  assert.deepEqual(await handler({ action: "peer_raft", term: 7 }), { status: "ok", echoed: 7 });
  assert.throws(() => handler.register("peer_raft", () => null), /already registered/);
  assert.throws(() => handler.register("raft", () => null), /must match/);
});

Deno.test("the peer handler's now() runs an action at once: its result as it is, its throw as thrown", async () => {
  const handler = createPeerHandler(newMembership(new FakeClock()));
  handler.register("peer_raft", (message) => {
    if (message.term === 0) throw new PeerMessageError("The term must be positive");
    return { status: "ok", echoed: message.term };
  });
  handler.register("peer_later", async () => await Promise.resolve({ status: "ok" }));
  assert.deepEqual(handler.now({ action: "peer_raft", term: 7 }), { status: "ok", echoed: 7 });
  assert.throws(() => handler.now({ action: "peer_raft", term: 0 }), PeerMessageError);
  const later = handler.now({ action: "peer_later" });
  assert.ok(later instanceof Promise);
  assert.deepEqual(await later, { status: "ok" });
  assert.deepEqual(handler.now({ action: "peer_nothing" }), {
    status: "bad_request",
    error: "Unknown peer action 'peer_nothing'.",
  });
  // The promise form maps the same throw to its answer.
  assert.deepEqual(await handler({ action: "peer_raft", term: 0 }), {
    status: "bad_request",
    error: "The term must be positive.",
  });
});

Deno.test("backoffDelayMs doubles from the minimum, caps at the maximum and jitters by half", () => {
  const bounds = { backoffMinMs: 50, backoffMaxMs: 2000 };
  assert.deepEqual([0, 1, 2, 3, 10, 1000].map((n) => backoffDelayMs(n, bounds, () => 0.999999)), [
    50,
    100,
    200,
    400,
    2000,
    2000,
  ]);
  assert.deepEqual([0, 1, 10].map((n) => backoffDelayMs(n, bounds, () => 0)), [25, 50, 1000]);
});

Deno.test("parseAddress accepts host:port and bracketed IPv6 and refuses the rest", () => {
  assert.deepEqual(parseAddress("127.0.0.1:5001"), { host: "127.0.0.1", port: 5001 });
  assert.deepEqual(parseAddress("[::1]:5001"), { host: "::1", port: 5001 });
  for (const bad of ["", "host", ":5001", "host:0", "host:65536", "ho st:1", "host:1x"]) {
    assert.equal(parseAddress(bad), undefined, bad);
  }
});
