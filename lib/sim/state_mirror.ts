/**
 * The real topic state machine (`TopicState` of lib/peer) running next to
 * the simulator's `TopicModel` on every simulated replica: it applies the
 * same entries, is snapshotted with the model and restored through its own
 * `restore` path when a replica restarts or installs a transferred
 * snapshot. After each restore and each applied entry the replica compares
 * the answers of both (`InvariantChecker.observeStateAgreement`), so a
 * snapshot that loses or changes state shows up as a violation.
 *
 * @module
 */

import { encodeCommand } from "../peer/topic_commands.ts";
import { type ApplyResult, TopicState } from "../peer/topic_state.ts";
import type { TopicCommand, TopicModel, TopicOutcome } from "./topic_model.ts";

/**
 * A replica's real topic state, fed with the simulator's commands.
 *
 * @example
 * ```ts
 * const mirror = new StateMirror();
 * mirror.apply(1, { kind: "publish", id: "u1" }); // "stored@0"
 * ```
 */
export class StateMirror {
  state = new TopicState();

  /** Applies the entry at `index` (a command, or an empty entry); returns what it answered. */
  apply(index: number, command: TopicCommand | undefined): string {
    if (command === undefined) {
      this.state.apply(index, new Uint8Array());
      return "";
    }
    if (command.kind === "ack") {
      this.state.apply(
        index,
        encodeCommand({ kind: "ack", offsets: { [command.subscriber]: command.offset } }),
      );
      return `acked@${this.state.subscribers.get(command.subscriber)}`;
    }
    const message = command.producer === undefined
      ? command.id
      : `${command.producer}.${command.sequence}`;
    const result = this.state.apply(
      index,
      encodeCommand({
        kind: "publish",
        parts: [{
          messages: [message],
          ...(command.producer === undefined
            ? {}
            : { producerId: command.producer, sequence: command.sequence }),
        }],
      }),
    );
    return describeResult(result);
  }

  /** A membership change at `index`. */
  skip(index: number): void {
    this.state.skip(index);
  }

  /** What the state says about the model's producers and subscribers (compare with `describeModel`). */
  describe(model: TopicModel): string {
    const producers = model.producerLasts().map(({ producer, last }) => {
      const previous = this.state.checkSequence(producer, last);
      const next = this.state.checkSequence(producer, last + 1);
      const stored = previous.kind === "duplicate" ? `@${previous.result.firstOffset}` : "";
      return `${producer}:${previous.kind}${stored}/${next.kind}`;
    });
    return `next ${this.state.nextOffset}; subscribers ${
      describeSubscribers(this.state.subscribers)
    }; producers ${producers.sort().join(" ")}`;
  }
}

/** The model's side of `StateMirror.describe`. */
export function describeModel(model: TopicModel): string {
  const producers = model.producerLasts().map(({ producer, offset }) =>
    `${producer}:duplicate@${offset}/new`
  );
  return `next ${model.nextOffset}; subscribers ${
    describeSubscribers(model.subscribers)
  }; producers ${producers.sort().join(" ")}`;
}

/**
 * The model's outcome in the form `StateMirror.apply` answers. The state
 * remembers more sequences per producer than the model (1024, not 64): a
 * retry the model refuses as too old may be a duplicate for the state.
 */
export function agreeingOutcome(model: TopicOutcome, actual: string): string {
  switch (model.kind) {
    case "stored":
      return `stored@${model.offset}`;
    case "duplicate":
      return `duplicate@${model.offset}`;
    case "refused":
      return actual.startsWith("duplicate@") ? actual : "refused";
    case "acked":
      return `acked@${model.offset}`;
    case "none":
      return "";
  }
}

function describeResult(result: ApplyResult): string {
  if (result.kind !== "published") return "";
  const part = result.parts[0];
  if ("rejected" in part) return "refused";
  return `${part.duplicate ? "duplicate" : "stored"}@${part.firstOffset}`;
}

function describeSubscribers(subscribers: Map<string, number>): string {
  return [...subscribers].map(([name, offset]) => `${name}=${offset}`).sort().join(",");
}

/**
 * A simulated replica's snapshot image: the model's and the state's, one
 * after the other (`[model bytes u32][model][state]`).
 *
 * @example
 * ```ts
 * const image = encodeImage(model.serialize(), mirror.state.snapshot());
 * ```
 */
export function encodeImage(model: Uint8Array, state: Uint8Array): Uint8Array {
  const image = new Uint8Array(4 + model.length + state.length);
  new DataView(image.buffer).setUint32(0, model.length);
  image.set(model, 4);
  image.set(state, 4 + model.length);
  return image;
}

/** Splits an image written by `encodeImage`. */
export function decodeImage(image: Uint8Array): { model: Uint8Array; state: Uint8Array } {
  const length = new DataView(image.buffer, image.byteOffset, image.byteLength).getUint32(0);
  return { model: image.subarray(4, 4 + length), state: image.subarray(4 + length) };
}
