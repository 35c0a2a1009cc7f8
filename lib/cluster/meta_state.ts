/**
 * The metadata state machine, replicated by the metadata Raft group: cluster
 * members, topics and their replica placement. Every peer applies the same
 * entries (voters and learners alike), so every peer can route any request.
 *
 * @module
 */

import type { Entry } from "../storage/types.ts";
import type { GroupStateMachine } from "./replica_group.ts";

/** A cluster member as the metadata records it. */
export interface MemberInfo {
  id: number;
  address: string;
  /** True once it was removed or left: it holds no replicas any more. */
  left: boolean;
}

/** A topic and where its replicas live (the first one is its preferred leader). */
export interface TopicPlacement {
  name: string;
  replicas: number[];
  replicationFactor: number;
  /** Bumped on every create, so a re-created topic never reuses an old replica's log. */
  epoch: number;
  /** Number of replica-list changes since creation; 0 means the founding replicas. */
  generation: number;
}

/** Commands of the metadata group. */
export type MetaCommand =
  | { op: "add_member"; id: number; address: string }
  | { op: "remove_member"; id: number }
  | { op: "create_topic"; name: string; replicas: number[]; replicationFactor: number }
  | { op: "delete_topic"; name: string }
  | { op: "set_replicas"; name: string; replicas: number[] };

/** What applying a command did. */
export type MetaResult = { ok: true } | { ok: false; reason: "exists" | "not_found" };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a metadata command as entry data. */
export function encodeMetaCommand(command: MetaCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

/**
 * Metadata state.
 *
 * @example
 * ```ts
 * const meta = new MetaState();
 * meta.applyCommand({ op: "add_member", id: 1, address: "127.0.0.1:5001" });
 * ```
 */
export class MetaState implements GroupStateMachine {
  readonly members = new Map<number, MemberInfo>();
  readonly topics = new Map<string, TopicPlacement>();
  #epoch = 0;
  #listeners: (() => void)[] = [];

  /** Calls `listener` after every applied command. */
  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  apply(entry: Entry): MetaResult | undefined {
    if (entry.data.length === 0) return undefined;
    const result = this.applyCommand(JSON.parse(decoder.decode(entry.data)));
    for (const listener of this.#listeners) listener();
    return result;
  }

  applyCommand(command: MetaCommand): MetaResult {
    switch (command.op) {
      case "add_member":
        this.members.set(command.id, { id: command.id, address: command.address, left: false });
        return { ok: true };
      case "remove_member": {
        const member = this.members.get(command.id);
        if (member === undefined) return { ok: false, reason: "not_found" };
        member.left = true;
        return { ok: true };
      }
      case "create_topic":
        if (this.topics.has(command.name)) return { ok: false, reason: "exists" };
        this.topics.set(command.name, {
          name: command.name,
          replicas: command.replicas,
          replicationFactor: command.replicationFactor,
          epoch: ++this.#epoch,
          generation: 0,
        });
        return { ok: true };
      case "delete_topic":
        return this.topics.delete(command.name) ? { ok: true } : { ok: false, reason: "not_found" };
      case "set_replicas": {
        const topic = this.topics.get(command.name);
        if (topic === undefined) return { ok: false, reason: "not_found" };
        topic.replicas = command.replicas;
        topic.generation++;
        return { ok: true };
      }
    }
  }

  /** Members that have not left, sorted by id. */
  activeMembers(): MemberInfo[] {
    return [...this.members.values()].filter((member) => !member.left).sort((a, b) => a.id - b.id);
  }
}
