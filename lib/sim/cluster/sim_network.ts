/**
 * The simulated network of the whole-cluster simulator. Every peer process
 * gets a `SimTransport` (the production `PeerTransport` interface), and
 * every message crosses the network as the bytes of a real frame
 * (`encodeFrame`, or the binary `peer_raft` frame RaftHost builds), decoded
 * at the far end as the listener decodes it and handed to the peer's real
 * `peerHandler`, whose answer travels back the same way.
 *
 * Faults, all drawn from the run's seed:
 * - per-link delay, with jitter that may reorder one-way messages (a
 *   request and its answer keep their order, as on one TCP connection);
 * - loss of any message, and duplication of one-way messages (Raft traffic
 *   and heartbeats tolerate both; a request lost simply times out);
 * - partitions: a blocked link (one-way or both ways) silently drops what
 *   crosses it, as a dropped route does; an established link stays
 *   "connected" (requests time out), a link that was down cannot come up.
 *
 * A crashed process's link state drops at once (connection reset): its
 * pending requests fail, and messages in flight to or from it are lost.
 *
 * @module
 */

import { concatFrames, encodeFrame } from "../../wire/frame.ts";
import { decodeBinaryRaftPayload, isBinaryRaftPayload } from "../../cluster/raft_binary.ts";
import { errorResponse, ProtocolError } from "../../wire/errors.ts";
import type { ManualScheduler } from "../../cluster/manual_scheduler.ts";
import type { PeerHandler } from "../../cluster/peer_handler.ts";
import {
  type PeerLinkState,
  type PeerMessage,
  PeerTimeoutError,
  PeerUnavailableError,
  type RequestOptions,
} from "../../cluster/peer_link.ts";
import type { LinkTarget, PeerTransport } from "../../cluster/transport.ts";
import type { Scheduler } from "../../cluster/runtime.ts";
import type { Prng } from "../prng.ts";

/** How links behave. */
export interface NetworkProfile {
  delayMsMin: number;
  delayMsMax: number;
  /** Chance a message is lost. */
  loss: number;
  /** Chance a one-way message arrives twice. */
  duplicate: number;
  /** Chance a one-way message ignores the link's order (arrives after later ones). */
  reorder: number;
}

/** A calm network: 1-3 ms, nothing lost. */
export const calmNetwork: NetworkProfile = {
  delayMsMin: 1,
  delayMsMax: 3,
  loss: 0,
  duplicate: 0,
  reorder: 0,
};

/** Default timeout of a request when the caller sets none (as PeerLink's). */
const requestTimeoutMsDefault = 5000;

/**
 * Sees every frame delivered, with its decoded message (the checker reads
 * Raft traffic, the trace hashes the bytes).
 */
export type FrameObserver = (
  from: number,
  to: number,
  message: Record<string, unknown>,
  bytes: Uint8Array,
) => void;

interface Endpoint {
  incarnation: number;
  handler: PeerHandler;
  transport: SimTransport;
}

/**
 * The network between all peers.
 *
 * @example
 * ```ts
 * const network = new SimNetwork(scheduler, new Prng(1), calmNetwork);
 * const transport = network.transport(1, nodeScheduler);
 * network.listen(1, transport, broker.peerHandler);
 * network.block(1, 2); // 1 -> 2 drops from now on
 * ```
 */
export class SimNetwork {
  readonly #scheduler: ManualScheduler;
  readonly #rng: Prng;
  profile: NetworkProfile;
  readonly #endpoints = new Map<number, Endpoint>();
  readonly #transports = new Set<SimTransport>();
  readonly #blocked = new Set<string>();
  /** Latest delivery time per link, to keep a link's order. */
  readonly #lastDelivery = new Map<string, number>();
  #incarnations = 0;
  observer: FrameObserver | undefined;
  /** Frames delivered, lost and duplicated (for the report). */
  readonly counts = { delivered: 0, lost: 0, duplicated: 0 };

  constructor(scheduler: ManualScheduler, rng: Prng, profile: NetworkProfile) {
    this.#scheduler = scheduler;
    this.#rng = rng;
    this.profile = profile;
  }

  /** A new process of peer `nodeId` gets its transport (not yet listening). */
  transport(nodeId: number, scheduler: Scheduler): SimTransport {
    const transport = new SimTransport(this, nodeId, ++this.#incarnations, scheduler);
    this.#transports.add(transport);
    return transport;
  }

  /** The process's listener is up: other peers' links to it connect. */
  listen(nodeId: number, transport: SimTransport, handler: PeerHandler): void {
    this.#endpoints.set(nodeId, { incarnation: transport.incarnation, handler, transport });
    this.#refreshLinks();
  }

  /** The process of `nodeId` died: links to it reset, its own transport is silenced. */
  crash(nodeId: number): void {
    const endpoint = this.#endpoints.get(nodeId);
    this.#endpoints.delete(nodeId);
    for (const transport of [...this.#transports]) {
      if (transport.nodeId === nodeId) {
        transport.silence();
        this.#transports.delete(transport);
      }
    }
    if (endpoint !== undefined) this.#refreshLinks();
  }

  /** Drops messages from `from` to `to` (a one-way partition). */
  block(from: number, to: number): void {
    this.#blocked.add(`${from}>${to}`);
  }

  /** Splits the peers into sides that cannot talk to each other. */
  partition(sides: number[][]): void {
    for (const side of sides) {
      for (const other of sides) {
        if (other === side) continue;
        for (const from of side) for (const to of other) this.block(from, to);
      }
    }
  }

  /** Removes every partition; links that were down reconnect. */
  heal(): void {
    this.#blocked.clear();
    this.#refreshLinks();
  }

  isBlocked(from: number, to: number): boolean {
    return this.#blocked.has(`${from}>${to}`);
  }

  /** Whether `to` has a listening process and the link both ways is open. */
  canConnect(from: number, to: number): boolean {
    return this.#endpoints.has(to) && !this.isBlocked(from, to) && !this.isBlocked(to, from);
  }

  /** The incarnation now listening as `nodeId` (0 when none). */
  listening(nodeId: number): number {
    return this.#endpoints.get(nodeId)?.incarnation ?? 0;
  }

  /**
   * Carries `bytes` from `source` to node `to` (the incarnation listening
   * now); `answer` receives the reply frame of a request.
   */
  carry(source: SimTransport, to: number, bytes: Uint8Array, oneWay: boolean): void {
    const target = this.#endpoints.get(to)?.incarnation;
    if (target === undefined) return;
    if (this.#rng.chance(this.profile.loss)) {
      this.counts.lost++;
      return;
    }
    const copies = oneWay && this.#rng.chance(this.profile.duplicate) ? 2 : 1;
    if (copies === 2) this.counts.duplicated++;
    for (let copy = 0; copy < copies; copy++) {
      this.#after(source.nodeId, to, oneWay, () => this.#arrive(source, to, target, bytes));
    }
  }

  #after(from: number, to: number, oneWay: boolean, task: () => void): void {
    const link = `${from}>${to}`;
    const now = this.#scheduler.now();
    const delay = this.#rng.range(this.profile.delayMsMin, this.profile.delayMsMax);
    let at = now + delay;
    if (!(oneWay && this.#rng.chance(this.profile.reorder))) {
      at = Math.max(at, this.#lastDelivery.get(link) ?? 0);
      this.#lastDelivery.set(link, at);
    }
    this.#scheduler.schedule(at - now, task);
  }

  #arrive(source: SimTransport, to: number, target: number, bytes: Uint8Array): void {
    const endpoint = this.#endpoints.get(to);
    if (endpoint === undefined || endpoint.incarnation !== target) return;
    if (this.isBlocked(source.nodeId, to) || source.silenced) return;
    this.counts.delivered++;
    // Each delivery reads its own copy, as each arrives in its own socket buffer.
    const payload = bytes.slice(4);
    const message = isBinaryRaftPayload(payload)
      ? decodeBinaryRaftPayload(payload)
      : JSON.parse(new TextDecoder().decode(payload));
    this.observer?.(source.nodeId, to, message, bytes);
    const id = message.id;
    const handled = endpoint.handler(message, { peerId: source.nodeId }).then(
      (response) => response,
      (error) => answerOfError(error),
    );
    if (typeof id !== "number") return;
    handled.then((response) => {
      const answer = typeof response === "object" && response !== null && !Array.isArray(response)
        ? { ...response, id }
        : response;
      this.#reply(endpoint, source, encodeFrame(answer));
    });
  }

  #reply(from: Endpoint, to: SimTransport, bytes: Uint8Array): void {
    if (this.#endpoints.get(from.transport.nodeId) !== from || to.silenced) return;
    if (this.#rng.chance(this.profile.loss)) {
      this.counts.lost++;
      return;
    }
    this.#after(from.transport.nodeId, to.nodeId, false, () => {
      if (to.silenced || this.isBlocked(from.transport.nodeId, to.nodeId)) return;
      this.counts.delivered++;
      const answer = JSON.parse(new TextDecoder().decode(bytes.subarray(4)));
      this.observer?.(from.transport.nodeId, to.nodeId, answer, bytes);
      to.answer(answer);
    });
  }

  #refreshLinks(): void {
    for (const transport of this.#transports) transport.refresh();
  }
}

/** What the listener answers when a peer handler throws (as `connection.ts` does). */
function answerOfError(error: unknown): unknown {
  if (error instanceof ProtocolError) return errorResponse(error.code, error.message);
  return errorResponse("unavailable", `unexpected: ${(error as Error)?.message ?? error}`);
}

interface Pending {
  to: number;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/**
 * One process's links to the other members, over the simulated network.
 *
 * @example
 * ```ts
 * const transport = network.transport(1, scheduler);
 * transport.update([{ id: 2, address: "10.0.0.2:5002" }]);
 * transport.send(2, { action: "peer_heartbeat", ... });
 * ```
 */
export class SimTransport implements PeerTransport {
  readonly nodeId: number;
  readonly incarnation: number;
  readonly #network: SimNetwork;
  readonly #scheduler: Scheduler;
  readonly #targets = new Map<number, string>();
  readonly #states = new Map<number, PeerLinkState>();
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Set<(nodeId: number, state: PeerLinkState) => void>();
  #nextId = 1;
  #closed = false;
  #silenced = false;

  constructor(network: SimNetwork, nodeId: number, incarnation: number, scheduler: Scheduler) {
    this.#network = network;
    this.nodeId = nodeId;
    this.incarnation = incarnation;
    this.#scheduler = scheduler;
  }

  /** True once the process died: nothing it sends leaves, nothing arrives. */
  get silenced(): boolean {
    return this.#silenced;
  }

  update(targets: readonly LinkTarget[]): void {
    const ids = new Set(targets.map((target) => target.id));
    for (const id of [...this.#targets.keys()]) {
      if (!ids.has(id)) {
        this.#targets.delete(id);
        this.#states.delete(id);
        this.#failPending(id, "The link was removed");
      }
    }
    for (const target of targets) {
      if (target.id === this.nodeId) continue;
      this.#targets.set(target.id, target.address);
      if (!this.#states.has(target.id)) this.#states.set(target.id, "connecting");
    }
    this.refresh();
  }

  send(nodeId: number, message: PeerMessage): boolean {
    if (this.#closed || this.#states.get(nodeId) !== "connected") return false;
    this.#network.carry(this, nodeId, encodeFrame(actionFirst(message)), true);
    return true;
  }

  /**
   * A prebuilt one-way frame (the binary Raft form), whole or in parts
   * (the header, then entry data as stored): the bytes a socket would carry.
   */
  sendFrame(nodeId: number, frame: Uint8Array | readonly Uint8Array[]): boolean {
    if (this.#closed || this.#states.get(nodeId) !== "connected") return false;
    this.#network.carry(this, nodeId, frame instanceof Uint8Array ? frame : joined(frame), true);
    return true;
  }

  request(nodeId: number, message: PeerMessage, options: RequestOptions = {}): Promise<unknown> {
    const address = this.#targets.get(nodeId) ?? `node ${nodeId}`;
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    if (this.#closed) {
      return Promise.reject(new PeerUnavailableError(address, `The link to ${address} is closed`));
    }
    if (this.#states.get(nodeId) !== "connected") {
      return Promise.reject(new PeerUnavailableError(address, `Peer ${address} is unreachable`));
    }
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    const timeoutMs = options.timeoutMs ?? requestTimeoutMsDefault;
    const settle = () => {
      this.#pending.delete(id);
      cancel();
      options.signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      settle();
      reject(options.signal!.reason);
    };
    const cancel = this.#scheduler.schedule(timeoutMs, () => {
      settle();
      reject(new PeerTimeoutError(address, `Peer ${address} did not answer in ${timeoutMs} ms`));
    });
    options.signal?.addEventListener("abort", onAbort, { once: true });
    this.#pending.set(id, {
      to: nodeId,
      resolve: (value) => {
        settle();
        resolve(value);
      },
      reject: (error) => {
        settle();
        reject(error);
      },
    });
    this.#network.carry(this, nodeId, encodeFrame({ ...actionFirst(message), id }), false);
    return promise;
  }

  state(nodeId: number): PeerLinkState | undefined {
    return this.#states.get(nodeId);
  }

  lastError(nodeId: number): string | undefined {
    return this.#states.get(nodeId) === "backoff" ? "connection refused" : undefined;
  }

  onStateChange(listener: (nodeId: number, state: PeerLinkState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const id of [...this.#targets.keys()]) {
      this.#failPending(id, "The link is closed");
      this.#setState(id, "closed");
    }
    return Promise.resolve();
  }

  /** An answer frame arrived. */
  answer(answer: Record<string, unknown>): void {
    if (typeof answer?.id === "number") this.#pending.get(answer.id)?.resolve(answer);
  }

  /** The process died: pending requests never settle (nobody is left to see them). */
  silence(): void {
    this.#silenced = true;
    this.#closed = true;
    this.#pending.clear();
  }

  /** Recomputes each link's state from the network (a crash, a restart, a heal). */
  refresh(): void {
    if (this.#closed) return;
    for (const id of this.#targets.keys()) {
      const current = this.#states.get(id);
      const listening = this.#network.listening(id);
      // An established link survives a partition (its requests time out).
      if (current === "connected" && listening !== 0 && listening === this.#connectedTo.get(id)) {
        continue;
      }
      // Its peer died or restarted: the connection reset, and what was pending with it fails.
      if (current === "connected") this.#failPending(id, "The connection was lost");
      if (this.#network.canConnect(this.nodeId, id)) {
        this.#connectedTo.set(id, listening);
        this.#setState(id, "connected");
      } else {
        this.#setState(id, "backoff");
      }
    }
  }

  /** The incarnation each connected link reached. */
  readonly #connectedTo = new Map<number, number>();

  #failPending(nodeId: number, why: string): void {
    const address = this.#targets.get(nodeId) ?? `node ${nodeId}`;
    for (const pending of [...this.#pending.values()]) {
      if (pending.to === nodeId) pending.reject(new PeerUnavailableError(address, why));
    }
  }

  #setState(nodeId: number, state: PeerLinkState): void {
    if (this.#states.get(nodeId) === state) return;
    this.#states.set(nodeId, state);
    for (const listener of [...this.#listeners]) listener(nodeId, state);
  }
}

/** The parts of a frame as one buffer (a copy: the parts may be the sender's stored entries). */
function joined(parts: readonly Uint8Array[]): Uint8Array {
  // concatFrames hands a lone part back as it is.
  return parts.length === 1 ? parts[0].slice() : concatFrames(parts);
}

/** Peer frames start with their action, as PeerLink sends them. */
function actionFirst(message: PeerMessage): PeerMessage {
  const { action, ...rest } = message;
  return { action, ...rest };
}
