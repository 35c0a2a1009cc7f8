/**
 * Validation of incoming membership messages at the edge: a message that
 * passes becomes a typed value the membership trusts; one that does not
 * throws PeerMessageError, answered as `bad_request`.
 *
 * @module
 */

import { ProtocolError } from "../wire/errors.ts";
import { validateTopicName } from "../wire/requests.ts";
import { parseAddress } from "./_address.ts";
import type { Heartbeat, MemberAddress } from "./membership.ts";

/** Largest node id (the CLI's `--id` limit). */
export const nodeIdMax = 1_000_000;

/**
 * A peer message that is malformed.
 *
 * @example
 * ```ts
 * throw new PeerMessageError("Field 'from' must be a node id");
 * ```
 */
export class PeerMessageError extends ProtocolError {
  constructor(message: string, options?: ErrorOptions) {
    super("bad_request", message, options);
    this.name = "PeerMessageError";
  }
}

/** Validates a `peer_heartbeat`; members beyond `membersMax` are refused. */
export function decodeHeartbeat(
  message: Record<string, unknown>,
  membersMax: number,
): Heartbeat {
  const from = nodeIdField(message, "from");
  const address = addressField(message.address, "address");
  if (!Array.isArray(message.members)) {
    throw new PeerMessageError("Field 'members' must be an array of {id, address}");
  }
  if (message.members.length > membersMax) {
    throw new PeerMessageError(
      `Field 'members' lists ${message.members.length} members, more than the ${membersMax} allowed`,
    );
  }
  const members: MemberAddress[] = message.members.map((member, index) => {
    if (typeof member !== "object" || member === null) {
      throw new PeerMessageError(`Member ${index} must be an object {id, address}`);
    }
    const record = member as Record<string, unknown>;
    return {
      id: nodeIdField(record, "id", `members[${index}].id`),
      address: addressField(record.address, `members[${index}].address`),
    };
  });
  if (typeof message.sent_at !== "number" || !Number.isFinite(message.sent_at)) {
    throw new PeerMessageError("Field 'sent_at' must be a number of milliseconds");
  }
  return { from, address, members };
}

/** Validates a `peer_leave` and returns the leaving node's id. */
export function decodeLeave(message: Record<string, unknown>): number {
  return nodeIdField(message, "from");
}

/** Validates a node id; throws PeerMessageError naming `label`. */
export function nodeIdValue(value: unknown, label: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > nodeIdMax) {
    throw new PeerMessageError(`Field '${label}' must be a node id between 1 and ${nodeIdMax}`);
  }
  return value;
}

/** Validates `record[key]` as a node id. */
export function nodeIdField(record: Record<string, unknown>, key: string, label = key): number {
  return nodeIdValue(record[key], label);
}

/** Validates a topic name from a peer (the client rules); throws PeerMessageError. */
export function topicNameField(value: unknown, field: string): string {
  try {
    return validateTopicName(value, field);
  } catch (error) {
    throw new PeerMessageError((error as Error).message);
  }
}

function addressField(value: unknown, label: string): string {
  if (typeof value !== "string" || parseAddress(value) === undefined) {
    throw new PeerMessageError(`Field '${label}' must be an address "host:port"`);
  }
  return value;
}
