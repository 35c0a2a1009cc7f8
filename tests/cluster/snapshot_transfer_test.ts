/**
 * Snapshot catch-up between three in-process replicas of a topic with real
 * segment files: a follower cut off while its leader retained only the
 * newest messages and compacted the rest away is caught up by a snapshot
 * transfer (the image and the retained entries pulled in chunks through
 * the peer RPC's codec), and ends with the same messages at the same
 * offsets as the leader, without ever holding the deleted history. Also the
 * transfer's own rules: chunking, one chunk in flight, and a restart when
 * the leader moved on.
 */

import assert from "node:assert/strict";
import {
  decodeSnapshotChunkAnswer,
  decodeSnapshotChunkRequest,
  snapshotChunkAnswer,
  snapshotChunkRequest,
} from "../../lib/cluster/peer_rpc.ts";
import { decodeRaftMessage, encodeRaftMessage } from "../../lib/cluster/raft_codec.ts";
import { TopicMachine } from "../../lib/cluster/raft_topic.ts";
import { ReplicaGroup } from "../../lib/cluster/replica_group.ts";
import {
  pullSnapshot,
  serveSnapshotChunk,
  type SnapshotChunk,
  type SnapshotChunkRequest,
  SnapshotPull,
} from "../../lib/cluster/snapshot_transfer.ts";
import type { Message } from "../../lib/raft/types.ts";
import { encodeCommand } from "../../lib/peer/topic_commands.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { SegmentLogStore } from "../../lib/storage/segment_log_store.ts";
import { EntryType, type Snapshot } from "../../lib/storage/types.ts";
import { waitFor } from "../_helpers/cluster_process.ts";

interface Replica {
  id: number;
  group: ReplicaGroup;
  machine: TopicMachine;
  store: SegmentLogStore;
}

/** Three replicas whose messages travel through the event loop; `cut` drops a node's traffic. */
async function startReplicas(root: string) {
  const replicas = new Map<number, Replica>();
  const cut = new Set<number>();
  const chunkRequests: SnapshotChunkRequest[] = [];
  let inFlight = 0;
  let inFlightMax = 0;
  const send = (_groupId: string, messages: readonly Message[]) => {
    for (const message of messages) {
      if (cut.has(message.to) || cut.has(message.from)) continue;
      // Encoded as on a peer link.
      const wire = JSON.parse(JSON.stringify(encodeRaftMessage(message)));
      setTimeout(() => replicas.get(message.to)?.group.step(decodeRaftMessage(wire)), 0);
    }
  };
  const fetchSnapshotChunk = async (leader: number, request: SnapshotChunkRequest) => {
    chunkRequests.push(request);
    inFlight++;
    inFlightMax = Math.max(inFlightMax, inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1));
      const wire = JSON.parse(JSON.stringify(snapshotChunkRequest(request)));
      const served = replicas.get(leader)!.group.serveSnapshotChunk(
        decodeSnapshotChunkRequest(wire),
      );
      const answer = JSON.parse(JSON.stringify(snapshotChunkAnswer(served)));
      return decodeSnapshotChunkAnswer(answer, request);
    } finally {
      inFlight--;
    }
  };
  for (const id of [1, 2, 3]) {
    const store = await SegmentLogStore.open(`${root}/${id}`, { segmentBytes: 4096 });
    const machine = new TopicMachine(store);
    const group = new ReplicaGroup({
      groupId: "t:events",
      nodeId: id,
      store,
      rng: { next: () => 0.5 },
      stateMachine: machine,
      send,
      voters: [1, 2, 3],
      snapshotEntries: 1_000_000,
      fetchSnapshotChunk,
    });
    // As RaftTopic does: each replica compacts once it applied a `retain`.
    machine.onRetained = () => group.requestCompaction();
    replicas.set(id, { id, group, machine, store });
  }
  const ticker = setInterval(() => {
    for (const replica of replicas.values()) replica.group.tick();
  }, 5);
  return {
    replicas,
    cut,
    chunkRequests,
    inFlightMax: () => inFlightMax,
    async close() {
      clearInterval(ticker);
      for (const replica of replicas.values()) await replica.group.close();
    },
  };
}

function messagesOf(replica: Replica): { offset: number; message: string }[] {
  const state = replica.machine.state;
  return replica.machine.reader.read(0, 1_000_000, state.nextOffset).messages;
}

Deno.test("a follower cut off while its leader compacted is caught up by snapshot transfer and holds the same retained messages", async () => {
  const root = await Deno.makeTempDir({ prefix: "snapshot_transfer_" });
  const cluster = await startReplicas(root);
  const { replicas } = cluster;
  try {
    const leader = replicas.get(1)!;
    leader.group.campaign();
    await waitFor("a leader", () => leader.group.isLeader);
    const publish = (text: string) =>
      leader.group.propose(
        encodeCommand({ kind: "publish", parts: [{ messages: [text, `${text}+`] }] }),
      );
    for (let number = 0; number < 30; number++) await publish(`early-${number}`);
    await waitFor(
      "replica 3 applied the early messages",
      () => replicas.get(3)!.machine.state.nextOffset === 60,
    );
    cluster.cut.add(3);
    for (let number = 0; number < 300; number++) await publish(`late-${number}-${"x".repeat(40)}`);
    // Retention decided through the log: every replica keeps offsets from 500 on.
    // Each replica compacts when it applies the `retain` (onRetained above), not
    // when the leader's proposal returns: replica 2 may apply it later.
    await leader.group.propose(encodeCommand({ kind: "retain", firstOffset: 500 }));
    await waitFor(
      "the leader compacted past replica 3's log",
      () =>
        leader.store.firstIndex() > replicas.get(3)!.store.lastIndex() + 1 &&
        replicas.get(2)!.store.firstIndex() > 1,
    );
    const leaderFirst = leader.store.firstIndex();
    assert.ok(leader.store.snapshot()!.index >= leaderFirst, "retained entries below the snapshot");

    cluster.cut.delete(3);
    const follower = replicas.get(3)!;
    await waitFor(
      "replica 3 caught up",
      () =>
        follower.machine.state.nextOffset === leader.machine.state.nextOffset &&
        follower.machine.state.firstOffset === 500,
      30_000,
    );
    assert.ok(cluster.chunkRequests.some((request) => request.part === "entries"));
    assert.equal(cluster.inFlightMax(), 1, "one chunk in flight");
    // Only the retained range travelled: never the deleted history.
    assert.ok(follower.store.firstIndex() >= leaderFirst, `${follower.store.firstIndex()}`);
    assert.ok(follower.store.snapshot() !== undefined);
    assert.deepEqual(messagesOf(follower), messagesOf(leader));
    assert.equal(messagesOf(follower)[0].offset, 500);
    // It keeps replicating normally afterwards.
    await publish("after");
    await waitFor(
      "replica 3 applied the next publish",
      () => follower.machine.state.nextOffset === leader.machine.state.nextOffset,
    );
    assert.deepEqual(messagesOf(follower), messagesOf(leader));
  } finally {
    await cluster.close();
    await Deno.remove(root, { recursive: true });
  }
});

function snapshotOf(index: number, term: number, data: Uint8Array): Snapshot {
  return { index, term, conf: { voters: [1], learners: [] }, data };
}

Deno.test("SnapshotPull pulls the image and the retained entries in chunks and refuses out-of-turn chunks", async () => {
  const store = new MemoryLogStore();
  const entries = Array.from({ length: 40 }, (_, offset) => ({
    index: offset + 1,
    term: 2,
    type: EntryType.Normal,
    data: new Uint8Array(100).fill(offset),
  }));
  store.append(entries);
  store.syncNow();
  const image = new Uint8Array(2500).map((_, position) => position % 251);
  await store.compact(snapshotOf(35, 2, image), 11);
  assert.equal(store.firstIndex(), 11);
  const requests: SnapshotChunkRequest[] = [];
  const pull = new SnapshotPull("t:a", snapshotOf(35, 2, new Uint8Array()));
  const result = await pullSnapshot(pull, (request) => {
    requests.push(request);
    return Promise.resolve(serveSnapshotChunk(store, request, 1000));
  });
  assert.deepEqual(result.snapshot.data, image);
  assert.deepEqual(
    result.retained.map((entry) => entry.index),
    entries.slice(10, 35).map((e) => e.index),
  );
  assert.deepEqual(
    requests.map((request) => `${request.part}@${request.offset}`),
    ["image@0", "image@1000", "image@2000", "entries@11", "entries@21", "entries@31"],
  );
  const stray = new SnapshotPull("t:a", snapshotOf(35, 2, new Uint8Array()));
  assert.throws(
    () => stray.accept({ part: "entries", entries: [] } as SnapshotChunk),
    RangeError,
  );
});

Deno.test("serveSnapshotChunk tells the receiver to start over once the leader's snapshot moved on", async () => {
  const store = new MemoryLogStore();
  store.append([1, 2, 3, 4].map((index) => ({
    index,
    term: 1,
    type: EntryType.Normal,
    data: new Uint8Array([index]),
  })));
  store.syncNow();
  await store.compact(snapshotOf(2, 1, new Uint8Array([9])));
  const request: SnapshotChunkRequest = {
    groupId: "t:a",
    index: 2,
    term: 1,
    part: "image",
    offset: 0,
  };
  assert.equal(serveSnapshotChunk(store, request).part, "image");
  await store.compact(snapshotOf(4, 1, new Uint8Array([9])));
  assert.throws(() => serveSnapshotChunk(store, request), /replaced by a newer one/);
  assert.throws(
    () => serveSnapshotChunk(store, { ...request, index: 4, part: "entries", offset: 1 }),
    /no longer held/,
  );
});
