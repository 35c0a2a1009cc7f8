/**
 * Encoding of single-step membership changes carried in `ConfChange` log
 * entries, and their pure application to a `ConfState`.
 *
 * @module
 */

import type { ConfState } from "../storage/types.ts";
import type { ConfChange } from "./types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes a change as the `data` of a `ConfChange` entry.
 *
 * @example
 * ```ts
 * const data = encodeConfChange({ type: "addLearner", node: 4 });
 * ```
 */
export function encodeConfChange(change: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(change));
}

/**
 * Decodes the `data` of a `ConfChange` entry.
 *
 * @example
 * ```ts
 * decodeConfChange(encodeConfChange({ type: "remove", node: 3 })); // { type: "remove", node: 3 }
 * ```
 */
export function decodeConfChange(data: Uint8Array): ConfChange {
  return JSON.parse(decoder.decode(data)) as ConfChange;
}

/**
 * Returns the conf after `change`, without mutating `conf`. Changes that do
 * not apply (promoting a non-learner, adding an existing voter) are no-ops so
 * that replaying a log is idempotent.
 *
 * @example
 * ```ts
 * applyConfChange({ voters: [1, 2], learners: [3] }, { type: "promote", node: 3 });
 * // { voters: [1, 2, 3], learners: [] }
 * ```
 */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  const voters = conf.voters.filter((id) => id !== nodeOf(change));
  const learners = conf.learners.filter((id) => id !== nodeOf(change));
  switch (change.type) {
    case "bootstrap":
      return { voters: [...change.voters], learners: [...change.learners] };
    case "addVoter":
      return { voters: [...voters, change.node].sort(byNumber), learners };
    case "addLearner":
      if (conf.voters.includes(change.node)) return conf;
      return { voters, learners: [...learners, change.node].sort(byNumber) };
    case "promote":
      if (!conf.learners.includes(change.node)) return conf;
      return { voters: [...voters, change.node].sort(byNumber), learners };
    case "remove":
      return { voters, learners };
  }
}

/**
 * Returns why `change` is not a valid single-step change of `conf`, or
 * undefined when it is valid.
 *
 * @example
 * ```ts
 * validateConfChange({ voters: [1], learners: [] }, { type: "remove", node: 1 }); // "Cannot remove the last voter"
 * ```
 */
export function validateConfChange(conf: ConfState, change: ConfChange): string | undefined {
  if (change.type === "bootstrap") return "Cannot propose a bootstrap change";
  if (!Number.isInteger(change.node) || change.node <= 0) {
    return `Cannot change membership as 'node' must be a positive integer: current value is ${change.node}`;
  }
  const voter = conf.voters.includes(change.node);
  const learner = conf.learners.includes(change.node);
  if (change.type === "addVoter" && voter) return `Node ${change.node} is already a voter`;
  if (change.type === "addLearner" && (voter || learner)) {
    return `Node ${change.node} is already a member`;
  }
  if (change.type === "promote" && !learner) return `Node ${change.node} is not a learner`;
  if (change.type === "remove" && !voter && !learner) return `Node ${change.node} is not a member`;
  if (change.type === "remove" && voter && conf.voters.length === 1) {
    return "Cannot remove the last voter";
  }
  return undefined;
}

function nodeOf(change: ConfChange): number {
  return change.type === "bootstrap" ? 0 : change.node;
}

function byNumber(a: number, b: number): number {
  return a - b;
}
