/**
 * Test helpers: small Raft groups of `RaftNode`s over `MemoryLogStore`s,
 * driven by hand (each Ready appended, synced and advanced at once), and a
 * message with every field at its blank value.
 *
 * @module
 */

import { RaftNode } from "../../lib/raft/raft_node.ts";
import type { RaftOptions } from "../../lib/raft/options.ts";
import type { Message } from "../../lib/raft/types.ts";
import { Prng } from "../../lib/sim/prng.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";

/** One replica: its node, its store and the last index it applied. */
export interface Member {
  node: RaftNode;
  store: MemoryLogStore;
  applied: number;
}

/** Members 1..count, all voters, with `inflightAppendsMax` and other `options` if given. */
export function makeMembers(
  count: number,
  inflightAppendsMax?: number,
  options: Partial<RaftOptions> = {},
): Member[] {
  const voters = Array.from({ length: count }, (_, index) => index + 1);
  return voters.map((id) => {
    const store = new MemoryLogStore();
    const node = new RaftNode({
      ...options,
      id,
      store,
      rng: new Prng(id),
      voters,
      inflightAppendsMax,
    });
    return { node, store, applied: 0 };
  });
}

/** Handles a member's Readys in the documented order; returns the messages to send. */
export function drain(member: Member): Message[] {
  const out: Message[] = [];
  while (member.node.hasReady()) {
    const rd = member.node.ready();
    member.store.append(rd.entries);
    if (rd.hardState) member.store.setHardState(rd.hardState);
    member.store.syncNow();
    out.push(...rd.messages);
    const last = rd.committedEntries.at(-1);
    if (last) member.applied = last.index;
    member.node.advance();
  }
  return out;
}

export { blankMessage } from "../../lib/raft/types.ts";
