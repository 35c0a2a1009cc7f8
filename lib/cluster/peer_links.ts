/**
 * The links from this node to every other member, keyed by node id: created
 * on first use from the member list, replaced when a member's address
 * changes, closed when it leaves the list, and all closed together.
 *
 * @module
 */

import { parseAddress } from "./_address.ts";
import type { LinkTarget, PeerTransport } from "./transport.ts";
import {
  PeerLink,
  type PeerLinkOptions,
  type PeerLinkState,
  type PeerMessage,
  PeerUnavailableError,
  type RequestOptions,
} from "./peer_link.ts";

/** Default cap on links (one per other member). */
export const linksMaxDefault = 1024;
/** Cap on link state listeners. */
export const stateListenersMax = 64;

export type { LinkTarget } from "./transport.ts";

/** Settings of the link map; `link` applies to every link. */
export interface PeerLinksOptions {
  link?: Omit<PeerLinkOptions, "host" | "port">;
  /** Cap on links (default 1024); members beyond it are not linked. */
  linksMax?: number;
}

/**
 * Node id → PeerLink.
 *
 * @example
 * ```ts
 * const links = new PeerLinks({ link: { authToken: "secret" } });
 * links.update([{ id: 2, address: "127.0.0.1:5002" }]);
 * links.send(2, { action: "peer_leave", from: 1 });
 * await links.close();
 * ```
 */
export class PeerLinks implements PeerTransport {
  readonly #options: PeerLinksOptions;
  readonly #linksMax: number;
  readonly #addresses = new Map<number, string>();
  readonly #links = new Map<number, PeerLink>();
  readonly #closing = new Set<Promise<void>>();
  readonly #stateListeners = new Set<(nodeId: number, state: PeerLinkState) => void>();
  #closed = false;

  constructor(options: PeerLinksOptions = {}) {
    this.#options = options;
    this.#linksMax = options.linksMax ?? linksMaxDefault;
    if (!Number.isInteger(this.#linksMax) || this.#linksMax < 1) {
      throw new RangeError(
        `Cannot create peer links as 'linksMax' must be a positive integer: current value is ${this.#linksMax}`,
      );
    }
  }

  /** Number of open links. */
  get size(): number {
    return this.#links.size;
  }

  /**
   * Replaces the member list: links of members no longer listed, or listed
   * at another address, are closed; new members get a link on first use.
   * Members with an unusable address or beyond `linksMax` are skipped.
   */
  update(targets: readonly LinkTarget[]): void {
    if (this.#closed) return;
    this.#addresses.clear();
    for (const target of targets) {
      if (this.#addresses.size >= this.#linksMax) break;
      if (parseAddress(target.address) !== undefined) {
        this.#addresses.set(target.id, target.address);
      }
    }
    for (const [id, link] of this.#links) {
      if (this.#addresses.get(id) !== link.address) this.#retire(id, link);
    }
  }

  /** The link to member `id`, created now if needed; undefined for an unknown member. */
  link(id: number): PeerLink | undefined {
    if (this.#closed) return undefined;
    const existing = this.#links.get(id);
    if (existing !== undefined) return existing;
    const address = this.#addresses.get(id);
    if (address === undefined) return undefined;
    const { host, port } = parseAddress(address)!;
    const link = new PeerLink({
      ...this.#options.link,
      host,
      port,
      // A retired link's last change ("closed") is told too: listeners read the state anew.
      onStateChange: (state) => {
        for (const listener of this.#stateListeners) listener(id, state);
      },
    });
    this.#links.set(id, link);
    return link;
  }

  /** Where the link to member `id` is (created now if needed); undefined for an unknown member. */
  state(id: number): PeerLinkState | undefined {
    return this.link(id)?.state;
  }

  /** Why the link to member `id` cannot be established, if it cannot (without creating it). */
  lastError(id: number): string | undefined {
    return this.#links.get(id)?.lastError;
  }

  /** Calls `listener` whenever a link changes state; returns an unsubscribe function. */
  onStateChange(listener: (nodeId: number, state: PeerLinkState) => void): () => void {
    if (this.#stateListeners.size >= stateListenersMax) {
      throw new RangeError(
        `Cannot add a link state listener beyond the ${stateListenersMax} allowed`,
      );
    }
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /** Sends a one-way message; false when it was dropped (unknown member, link down, queue full). */
  send(id: number, message: PeerMessage): boolean {
    return this.link(id)?.send(message) ?? false;
  }

  /** Sends a prebuilt one-way frame; false when it was dropped (see {@linkcode PeerLink.sendFrame}). */
  sendFrame(id: number, frame: Uint8Array | readonly Uint8Array[]): boolean {
    return this.link(id)?.sendFrame(frame) ?? false;
  }

  /** Sends a request to member `id`; see {@linkcode PeerLink.request}. */
  request(id: number, message: PeerMessage, options?: RequestOptions): Promise<unknown> {
    const link = this.link(id);
    if (link === undefined) {
      return Promise.reject(
        new PeerUnavailableError(`node ${id}`, `Node ${id} is not a known member`),
      );
    }
    return link.request(message, options);
  }

  #retire(id: number, link: PeerLink): void {
    this.#links.delete(id);
    const closing = link.close();
    this.#closing.add(closing);
    closing.finally(() => this.#closing.delete(closing));
  }

  /** Closes every link; pending requests reject with PeerUnavailableError. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const [id, link] of this.#links) this.#retire(id, link);
    await Promise.all([...this.#closing]);
  }
}
