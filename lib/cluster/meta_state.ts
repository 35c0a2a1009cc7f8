/**
 * The metadata state machine, replicated by the metadata Raft group: cluster
 * members, topics and their replica placement. Every peer applies the same
 * entries (voters and learners alike), so every peer can route any request.
 *
 * @module
 */

import { getLogger } from "../logging.ts";
import type { Entry } from "../storage/types.ts";
import { describeValue } from "../wire/errors.ts";
import {
  patchRetention,
  type Retention,
  type RetentionPatch,
  validateRetention,
  validateRetentionPatch,
} from "../wire/retention.ts";
import { parseAddress } from "./_address.ts";
import { nodeIdValue, PeerMessageError, topicNameField } from "./_peer_messages.ts";
import { directoryIdPattern } from "./node_identity.ts";
import type { GroupStateMachine } from "./replica_group.ts";

/** Most replicas of one topic (the CLI's --replication-factor limit). */
export const replicasMax = 7;

/** A cluster member as the metadata records it. */
export interface MemberInfo {
  id: number;
  address: string;
  /** True once it was removed or left: it holds no replicas any more. */
  left: boolean;
  /** The random id of its data directory (node_identity.ts), when it told one. */
  directoryId?: string;
  /**
   * The topic epoch counter when this data directory was registered: a
   * topic of a larger epoch was created while the directory existed, so a
   * replica of it found missing there was lost in a crash, not with a
   * replaced disk (a topic group may then start with a known leader, see
   * `ReplicaManager`). Undefined in metadata written before it existed.
   */
  directorySinceEpoch?: number;
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
  /**
   * The topic group's membership (voters and learners) as its leader last
   * reported it after a committed change; undefined until the first report.
   * A replica deletes its data only once this committed record, and the
   * placement, both leave it out.
   */
  members?: number[];
  /**
   * The topic's retention (the limits in force; absent or `{}` keeps
   * everything). Set at creation (the creating peer's defaults filled in)
   * and changed by `alter_retention`.
   */
  retention?: Retention;
}

/** Commands of the metadata group. */
export type MetaCommand =
  | { op: "add_member"; id: number; address: string; directoryId?: string }
  | { op: "remove_member"; id: number }
  | {
    op: "create_topic";
    name: string;
    replicas: number[];
    replicationFactor: number;
    retention?: Retention;
  }
  | { op: "alter_retention"; name: string; patch: RetentionPatch }
  | { op: "delete_topic"; name: string }
  | { op: "set_replicas"; name: string; replicas: number[] }
  | { op: "group_members"; name: string; epoch: number; members: number[] };

/**
 * Validates a metadata command before it is proposed (and again when a
 * committed entry is applied): a malformed command must never enter the log.
 * Throws PeerMessageError (`bad_request`).
 *
 * @example
 * ```ts
 * const command = decodeMetaCommand({ op: "remove_member", id: 3 });
 * ```
 */
export function decodeMetaCommand(value: unknown): MetaCommand {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new PeerMessageError("A metadata command must be an object");
  }
  const fields = value as Record<string, unknown>;
  switch (fields.op) {
    case "add_member": {
      const address = fields.address;
      if (typeof address !== "string" || parseAddress(address) === undefined) {
        throw new PeerMessageError("Field 'address' must be an address \"host:port\"");
      }
      const directoryId = fields.directoryId;
      if (
        directoryId !== undefined &&
        (typeof directoryId !== "string" || !directoryIdPattern.test(directoryId))
      ) {
        throw new PeerMessageError("Field 'directoryId' must be a directory id");
      }
      const command: MetaCommand = { op: "add_member", id: nodeIdValue(fields.id, "id"), address };
      if (directoryId !== undefined) command.directoryId = directoryId;
      return command;
    }
    case "remove_member":
      return { op: "remove_member", id: nodeIdValue(fields.id, "id") };
    case "create_topic": {
      const command: MetaCommand = {
        op: "create_topic",
        name: topicNameField(fields.name, "name"),
        replicas: nodeIds(fields.replicas, "replicas"),
        replicationFactor: factor(fields.replicationFactor),
      };
      if (fields.retention !== undefined) command.retention = validateRetention(fields.retention);
      return command;
    }
    case "alter_retention":
      return {
        op: "alter_retention",
        name: topicNameField(fields.name, "name"),
        patch: validateRetentionPatch(fields.patch, "patch"),
      };
    case "delete_topic":
      return { op: "delete_topic", name: topicNameField(fields.name, "name") };
    case "set_replicas":
      return {
        op: "set_replicas",
        name: topicNameField(fields.name, "name"),
        replicas: nodeIds(fields.replicas, "replicas"),
      };
    case "group_members": {
      const epoch = fields.epoch;
      if (typeof epoch !== "number" || !Number.isSafeInteger(epoch) || epoch < 1) {
        throw new PeerMessageError("Field 'epoch' must be a positive integer");
      }
      return {
        op: "group_members",
        name: topicNameField(fields.name, "name"),
        epoch,
        members: nodeIds(fields.members, "members", 2 * replicasMax),
      };
    }
    default:
      throw new PeerMessageError(`Unknown metadata operation '${describeValue(fields.op)}'`);
  }
}

function nodeIds(value: unknown, label: string, max = replicasMax): number[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > max) {
    throw new PeerMessageError(`Field '${label}' must list 1 to ${max} node ids`);
  }
  const ids = value.map((item, index) => nodeIdValue(item, `${label}[${index}]`));
  if (new Set(ids).size !== ids.length) {
    throw new PeerMessageError(`Field '${label}' lists a node twice`);
  }
  return ids;
}

function factor(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > replicasMax) {
    throw new PeerMessageError(`Field 'replicationFactor' must be between 1 and ${replicasMax}`);
  }
  return value;
}

/** Version of the snapshot image written by `MetaState.snapshot()`. */
export const metaImageVersion = 1;

interface MetaImage {
  version: number;
  appliedIndex: number;
  epoch: number;
  members: MemberInfo[];
  topics: TopicPlacement[];
}

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
  #listeners: ((command?: MetaCommand) => void)[] = [];
  /** Index of the last entry applied (normal or membership change). */
  #appliedIndex = 0;

  /**
   * Calls `listener` after every applied command, with that command, so
   * that reconciliation looks only at what changed; without one (a restored
   * snapshot) anything may have changed.
   */
  onChange(listener: (command?: MetaCommand) => void): void {
    this.#listeners.push(listener);
  }

  apply(entry: Entry): MetaResult | undefined {
    this.#appliedIndex = entry.index;
    if (entry.data.length === 0) return undefined;
    let command: MetaCommand;
    try {
      command = decodeMetaCommand(JSON.parse(decoder.decode(entry.data)));
    } catch (error) {
      // Commands are validated before they are proposed, so only an older
      // version's entry can get here: every replica skips it alike.
      getLogger("cluster").error("Skipped malformed metadata entry {index}: {error}", {
        index: entry.index,
        error: (error as Error).message,
      });
      return undefined;
    }
    const result = this.applyCommand(command);
    for (const listener of this.#listeners) listener(command);
    return result;
  }

  applyCommand(command: MetaCommand): MetaResult {
    switch (command.op) {
      case "add_member": {
        const member: MemberInfo = { id: command.id, address: command.address, left: false };
        const known = this.members.get(command.id);
        const directoryId = command.directoryId ?? known?.directoryId;
        if (directoryId !== undefined) member.directoryId = directoryId;
        const sameDirectory = known !== undefined && known.directoryId === directoryId;
        const since = sameDirectory ? known.directorySinceEpoch : this.#epoch;
        if (since !== undefined) member.directorySinceEpoch = since;
        this.members.set(command.id, member);
        return { ok: true };
      }
      case "remove_member": {
        const member = this.members.get(command.id);
        if (member === undefined) return { ok: false, reason: "not_found" };
        member.left = true;
        return { ok: true };
      }
      case "create_topic": {
        if (this.topics.has(command.name)) return { ok: false, reason: "exists" };
        const placement: TopicPlacement = {
          name: command.name,
          replicas: command.replicas,
          replicationFactor: command.replicationFactor,
          epoch: ++this.#epoch,
          generation: 0,
          // The founding replicas bootstrap the group: its first membership is
          // committed by construction. Recorded now, a founder that is moved
          // away before any conf change still hosts its replica (its vote may
          // be needed) instead of leaving a group that never recorded it.
          members: [...command.replicas].sort((a, b) => a - b),
        };
        if (command.retention !== undefined) placement.retention = command.retention;
        this.topics.set(command.name, placement);
        return { ok: true };
      }
      case "alter_retention": {
        const topic = this.topics.get(command.name);
        if (topic === undefined) return { ok: false, reason: "not_found" };
        topic.retention = patchRetention(topic.retention ?? {}, command.patch);
        return { ok: true };
      }
      case "delete_topic":
        return this.topics.delete(command.name) ? { ok: true } : { ok: false, reason: "not_found" };
      case "set_replicas": {
        const topic = this.topics.get(command.name);
        if (topic === undefined) return { ok: false, reason: "not_found" };
        topic.replicas = command.replicas;
        topic.generation++;
        return { ok: true };
      }
      case "group_members": {
        const topic = this.topics.get(command.name);
        if (topic === undefined || topic.epoch !== command.epoch) {
          return { ok: false, reason: "not_found" };
        }
        topic.members = command.members;
        return { ok: true };
      }
    }
  }

  /** A membership change of the metadata group: only the applied index moves. */
  applyConfChange(entry: Entry): void {
    this.#appliedIndex = entry.index;
  }

  /** The metadata reads nothing back from its log: only entries after the applied one are needed. */
  firstNeededIndex(): number {
    return this.#appliedIndex + 1;
  }

  /** The whole metadata as a versioned JSON image (the store checks its CRC). */
  snapshot(): Uint8Array {
    const image: MetaImage = {
      version: metaImageVersion,
      appliedIndex: this.#appliedIndex,
      epoch: this.#epoch,
      members: [...this.members.values()],
      topics: [...this.topics.values()],
    };
    return encoder.encode(JSON.stringify(image));
  }

  /**
   * Replaces the whole metadata by an image from `snapshot()` taken at
   * `index`, in place, and tells the listeners. Throws RangeError for an
   * image it cannot read.
   */
  restore(data: Uint8Array, index: number): void {
    let image: MetaImage;
    try {
      image = JSON.parse(decoder.decode(data));
    } catch (error) {
      throw new RangeError("Cannot restore the metadata from an image that is not JSON", {
        cause: error,
      });
    }
    if (
      image?.version !== metaImageVersion || !Array.isArray(image.members) ||
      !Array.isArray(image.topics) || typeof image.epoch !== "number"
    ) {
      throw new RangeError(`Cannot restore the metadata from an image of another version`);
    }
    this.members.clear();
    for (const member of image.members) this.members.set(member.id, member);
    this.topics.clear();
    for (const topic of image.topics) this.topics.set(topic.name, topic);
    this.#epoch = image.epoch;
    this.#appliedIndex = index;
    for (const listener of this.#listeners) listener();
  }

  /** Members that have not left, sorted by id. */
  activeMembers(): MemberInfo[] {
    return [...this.members.values()].filter((member) => !member.left).sort((a, b) => a.id - b.id);
  }
}
