import { deepStrictEqual, equal } from "node:assert/strict";
import type { Message } from "../../lib/raft/types.ts";
import { InvariantChecker } from "../../lib/sim/checker.ts";
import { Prng } from "../../lib/sim/prng.ts";
import { type ReplicaHost, SimReplica } from "../../lib/sim/replica.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { blankMessage } from "../raft/_members.ts";

/** A host that records what the replica does, and runs scheduled actions only when told. */
class RecordingHost implements ReplicaHost {
  readonly checker = new InvariantChecker();
  readonly log: string[] = [];
  #scheduled: (() => void)[] = [];

  now(): number {
    return 0;
  }

  send(message: Message): void {
    this.log.push(`send ${message.type}${message.reject ? " reject" : ""} to n${message.to}`);
  }

  schedule(_replica: SimReplica, _delayMs: number, action: () => void): void {
    this.#scheduled.push(action);
  }

  syncDelayMs(): number {
    return 5;
  }

  trace(): void {}

  onConfApplied(): void {}

  onAcknowledged(): void {}

  onElected(): void {}

  snapshotSource(): undefined {
    return undefined;
  }

  onSnapshotInstalled(): void {}

  /** Runs every scheduled action, including those they schedule. */
  runScheduled(): void {
    while (this.#scheduled.length > 0) this.#scheduled.shift()!();
  }

  get scheduledCount(): number {
    return this.#scheduled.length;
  }
}

/** A store that logs its syncs into the host's log, to see them between the sends. */
class RecordingStore extends MemoryLogStore {
  readonly #log: string[];

  constructor(log: string[]) {
    super();
    this.#log = log;
  }

  override syncNow(): void {
    this.#log.push("sync");
    super.syncNow();
  }
}

function message(type: Message["type"], from: number, term: number): Message {
  return blankMessage(type, from, 3, term);
}

/** Replica 3 of a 3-voter group, in term 2 without a vote, with its host's log cleared. */
function replicaInTermTwo(voteWithoutSync: boolean): { host: RecordingHost; replica: SimReplica } {
  const host = new RecordingHost();
  const replica = new SimReplica(host, 3, {
    founding: [1, 2, 3],
    electionTicks: 10,
    heartbeatTicks: 1,
    unsafe: { voteWithoutSync },
  }, new Prng(3));
  replica.store = new RecordingStore(host.log);
  replica.start();
  host.runScheduled();
  // An answer from a newer term moves the replica to term 2 without voting.
  replica.node!.step(message("appResp", 1, 2));
  replica.pump();
  host.runScheduled();
  equal(replica.node!.status().vote, 0);
  host.log.length = 0;
  return { host, replica };
}

Deno.test("SimReplica sends a vote response only after the vote-only change is synced", () => {
  const { host, replica } = replicaInTermTwo(false);
  replica.node!.step({ ...message("vote", 2, 2), index: 1, logTerm: 1 });
  replica.pump();
  deepStrictEqual(host.log, [], "nothing leaves before the sync");
  equal(host.scheduledCount, 1, "the sync is in flight");
  host.runScheduled();
  deepStrictEqual(host.log, ["sync", "send voteResp to n2"]);
  replica.store.crash();
  equal(replica.store.hardState().vote, 2, "the vote survives power loss");
});

Deno.test("With voteWithoutSync the replica answers a vote before it is durable", () => {
  const { host, replica } = replicaInTermTwo(true);
  replica.node!.step({ ...message("vote", 2, 2), index: 1, logTerm: 1 });
  replica.pump();
  deepStrictEqual(host.log, ["send voteResp to n2"]);
  replica.store.crash();
  equal(replica.store.hardState().vote, 0, "the vote was lost");
});
