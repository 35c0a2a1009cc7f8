/**
 * Where a client's subscriptions live. A subscription is held by one
 * connection: the subscribe, its acks and its unsubscribe all go there (a
 * peer releases flow control only for acks on the connection that holds
 * the subscription). It goes to the topic's leader when the client knows
 * it and holds a connection to it (the leader pushes a message as soon as
 * it commits; a follower first waits to learn the commit), else to the home
 * connection, and moves to the leader once that is learned.
 *
 * A move subscribes on the new connection from right after the last
 * offset received, then unsubscribes on the old one; the offsets both push
 * meanwhile are dropped by the subscription, which acks them again on the
 * new connection so its window never fills with duplicates. A lost
 * connection resubscribes the same way (leader if known, else home), with
 * backoff, and fails the subscription only after `retries` attempts:
 * at-least-once from the last acked offset, never a gap.
 *
 * @module
 */

import type { MessageEvent } from "../wire/responses.ts";
import type { Connection } from "./_connection.ts";
import { PubSubError } from "./errors.ts";
import { Subscription, type SubscriptionHost, type SubscriptionOptions } from "./subscription.ts";

/** Error codes after which a resubscribe is tried again (anything else ends the subscription). */
const transientCodes: readonly string[] = ["disconnected", "timeout", "unavailable"];

/** What the table needs from its client. */
export interface SubscriptionsClient {
  /**
   * Sends `body`, first on `connection` when given and open (`strict`:
   * fails instead of going elsewhere when it is closed), else home.
   */
  call(
    body: Record<string, unknown>,
    options: { retry: boolean; connection?: Connection; strict?: boolean },
  ): Promise<{ response: unknown; connection: Connection }>;
  /** The home connection, when open. */
  home(): Connection | undefined;
  /** The open connection to `topic`'s leader, when known (never without `leaderDirect`). */
  leaderConnection(topic: string): Connection | undefined;
  /** Asks in the background who leads `topic` when unknown or stale; calls `placeTopic` after. */
  refreshLeader(topic: string): void;
  /** Forgets who leads `topic` (its leader refused a subscribe). */
  forgetLeader(topic: string): void;
  /** Stops sending new requests home on `connection` (it answered `unavailable`). */
  retire(connection: Connection): void;
  /** Connects home again; once connected the client calls `resubscribeLost`. */
  reconnect(): void;
  /** True once the client closed. */
  readonly closed: boolean;
}

/** Settings of the table. */
export interface SubscriptionsOptions {
  /** Failed resubscribes in a row after which the subscription fails. */
  retries: number;
  /** Period of the check that moves subscriptions to their topic's leader; 0 never moves them. */
  placeEveryMs: number;
  /** Pause before resubscribe attempt `round` (1-based). */
  backoffMs(round: number): number;
}

interface Entry {
  readonly subscription: Subscription;
  /** The connection holding it; undefined until the first subscribe is answered (or pushes). */
  connection?: Connection;
  /** The connection a subscribe is in flight on (a move or a resubscribe). */
  moving?: Connection;
  /** True while a subscribe for it is in flight. */
  busy: boolean;
  /** Resubscribe attempts that failed in a row. */
  failures: number;
  /** The pending retry of a failed resubscribe. */
  retryTimer?: ReturnType<typeof setTimeout>;
}

/**
 * The subscriptions of one client.
 *
 * @example
 * ```ts
 * const table = new SubscriptionTable(client, { retries: 6, placeEveryMs: 2000, backoffMs: () => 100 });
 * const subscription = await table.open("events", "billing", { maxInFlight: 100, autoAck: true });
 * table.connectionOf("events", "billing")?.address;
 * ```
 */
export class SubscriptionTable {
  readonly #client: SubscriptionsClient;
  readonly #options: SubscriptionsOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #byTopic = new Map<string, Set<Entry>>();
  readonly #host: SubscriptionHost;
  #placeTimer: ReturnType<typeof setInterval> | undefined;

  constructor(client: SubscriptionsClient, options: SubscriptionsOptions) {
    this.#client = client;
    this.#options = options;
    this.#host = {
      request: async (body, { retry }) => {
        const entry = this.#entries.get(keyOf(body.topic_name, body.subscriber_id));
        // An unsubscribe elsewhere could end the subscription's next home.
        const strict = body.action === "unsubscribe";
        return (await client.call(body, { retry, connection: entry?.connection, strict }))
          .response;
      },
      detach: (subscription) => this.#remove(subscription),
    };
  }

  /** Subscriptions open. */
  get size(): number {
    return this.#entries.size;
  }

  /** The connection holding a subscription, if any (for tests and diagnostics). */
  connectionOf(topic: string, subscriberId: string): Connection | undefined {
    return this.#entries.get(keyOf(topic, subscriberId))?.connection;
  }

  /** Subscribes; resolves once a peer answered `subscribed`. */
  async open(
    topic: string,
    subscriberId: string,
    options: Required<Pick<SubscriptionOptions, "maxInFlight" | "autoAck">> & SubscriptionOptions,
  ): Promise<Subscription> {
    const key = keyOf(topic, subscriberId);
    if (this.#entries.has(key)) {
      throw new PubSubError(
        "bad_request",
        `Subscriber '${subscriberId}' of '${topic}' is already open`,
      );
    }
    const subscription = new Subscription(this.#host, topic, subscriberId, options);
    const entry: Entry = { subscription, busy: true, failures: 0 };
    // Registered before the request so that frames pushed right after `subscribed` find it.
    this.#add(key, entry);
    try {
      const { connection } = await this.#client.call(subscription.subscribeRequest(), {
        retry: true,
        connection: this.#client.leaderConnection(topic),
      });
      entry.connection = connection;
    } catch (error) {
      this.#remove(subscription);
      throw error;
    } finally {
      entry.busy = false;
    }
    this.#settled(entry);
    return subscription;
  }

  /** Hands a pushed message to its subscription. */
  deliver(event: MessageEvent, connection: Connection): void {
    const entry = this.#entries.get(keyOf(event.topic, event.subscriber_id));
    if (entry === undefined) return;
    // A push follows the `subscribed` answer: the subscription lives there from now on.
    if (entry.connection === undefined || entry.moving === connection) {
      entry.connection = connection;
    }
    entry.subscription.deliver(event.offset, event.message, event.skipped);
  }

  /**
   * `connection` closed: its subscriptions resubscribe now when the home
   * connection is open. Returns true when some need the home connection
   * back (the client reconnects, then calls `resubscribeLost`).
   */
  connectionLost(connection: Connection): boolean {
    let waiting = false;
    for (const entry of this.#entries.values()) {
      if (entry.busy || entry.connection !== connection) continue;
      if (this.#client.home() === undefined) waiting = true;
      else this.#place(entry);
    }
    return waiting;
  }

  /** Resubscribes every subscription whose connection was lost (after a reconnect). */
  resubscribeLost(): void {
    for (const entry of this.#entries.values()) {
      if (!entry.busy && entry.connection?.closed) this.#place(entry);
    }
  }

  /** Moves the subscriptions of `topic` to its leader when that is known now. */
  placeTopic(topic: string): void {
    const entries = this.#byTopic.get(topic);
    if (entries === undefined) return;
    for (const entry of entries) this.#place(entry);
  }

  /** Ends every subscription whose connection is lost with `error` (no peer is reachable). */
  failLost(error: Error): void {
    for (const entry of [...this.#entries.values()]) {
      if (!entry.busy && entry.connection?.closed) entry.subscription.fail(error);
    }
  }

  /** Closes every subscription (flushing acks, unsubscribing). */
  async closeAll(): Promise<void> {
    const subscriptions = [...this.#entries.values()].map((entry) => entry.subscription);
    await Promise.allSettled(subscriptions.map((subscription) => subscription.close()));
  }

  /** Stops the timers (the client closed). */
  stop(): void {
    clearInterval(this.#placeTimer);
    this.#placeTimer = undefined;
    for (const entry of this.#entries.values()) clearTimeout(entry.retryTimer);
  }

  #add(key: string, entry: Entry): void {
    this.#entries.set(key, entry);
    const topic = entry.subscription.topic;
    let entries = this.#byTopic.get(topic);
    if (entries === undefined) this.#byTopic.set(topic, entries = new Set());
    entries.add(entry);
  }

  #remove(subscription: Subscription): void {
    const key = keyOf(subscription.topic, subscription.subscriberId);
    const entry = this.#entries.get(key);
    if (entry?.subscription !== subscription) return;
    clearTimeout(entry.retryTimer);
    this.#entries.delete(key);
    const entries = this.#byTopic.get(subscription.topic);
    entries?.delete(entry);
    if (entries?.size === 0) this.#byTopic.delete(subscription.topic);
  }

  /**
   * Puts `entry` where it belongs: on the leader's connection when known
   * and open, else (only when its connection is lost) home.
   */
  #place(entry: Entry): void {
    const { subscription } = entry;
    if (this.#client.closed || subscription.closed || entry.busy) return;
    clearTimeout(entry.retryTimer);
    entry.retryTimer = undefined;
    const lost = entry.connection === undefined || entry.connection.closed;
    const target = this.#client.leaderConnection(subscription.topic) ??
      (lost ? this.#client.home() : undefined);
    if (target === undefined) {
      if (lost) this.#client.reconnect();
      return;
    }
    if (target !== entry.connection) this.#move(entry, target);
  }

  /** Subscribes on `target`, then unsubscribes on the connection it held before. */
  #move(entry: Entry, target: Connection): void {
    const { subscription } = entry;
    const previous = entry.connection;
    entry.busy = true;
    entry.moving = target;
    this.#client.call(subscription.subscribeRequest(), { retry: false, connection: target }).then(
      ({ connection }) => {
        entry.busy = false;
        entry.moving = undefined;
        entry.connection = connection;
        entry.failures = 0;
        if (previous !== undefined && previous !== connection && !previous.closed) {
          this.#unsubscribe(entry, previous);
        }
        if (subscription.closed) {
          // Closed while the subscribe was on its way: end it there too.
          if (!this.#client.closed) this.#unsubscribe(entry, connection);
          return;
        }
        // Acks sent on the old connection do not count on this one.
        subscription.reack();
        this.#settled(entry);
      },
      (error: Error) => {
        entry.busy = false;
        entry.moving = undefined;
        if (this.#client.closed || subscription.closed) return;
        // A move that failed: the subscription stays where it is, and the leader is asked again.
        if (previous !== undefined && !previous.closed) {
          if (target === this.#client.leaderConnection(subscription.topic)) {
            this.#client.forgetLeader(subscription.topic);
          }
          this.#watch();
          return;
        }
        entry.failures++;
        const transient = error instanceof PubSubError && transientCodes.includes(error.code);
        if (!transient || entry.failures > this.#options.retries) {
          subscription.fail(error);
          return;
        }
        // A home peer that cannot serve it now: the next attempt goes to the next address.
        if ((error as PubSubError).code === "unavailable") this.#client.retire(target);
        entry.retryTimer = setTimeout(
          () => this.#place(entry),
          this.#options.backoffMs(entry.failures),
        );
      },
    );
  }

  #unsubscribe(entry: Entry, connection: Connection): void {
    this.#client.call({
      action: "unsubscribe",
      topic_name: entry.subscription.topic,
      subscriber_id: entry.subscription.subscriberId,
    }, { retry: false, connection, strict: true }).catch(() => {
      // The connection is gone, and the subscription it held with it.
    });
  }

  /** After a subscribe landed: its connection may have died meanwhile, or not be the leader's. */
  #settled(entry: Entry): void {
    if (entry.connection?.closed) {
      this.#place(entry);
      return;
    }
    this.#watch();
  }

  /**
   * Runs the placement check every `placeEveryMs` while some subscription
   * is not on its topic's leader's connection: it asks who leads (the
   * answer calls `placeTopic`).
   */
  #watch(): void {
    if (this.#options.placeEveryMs <= 0 || this.#placeTimer !== undefined) return;
    if (this.#client.closed) return;
    this.#placeTimer = setInterval(() => this.#check(), this.#options.placeEveryMs);
    this.#check();
  }

  #check(): void {
    let misplaced = false;
    for (const [topic, entries] of this.#byTopic) {
      const leader = this.#client.leaderConnection(topic);
      for (const entry of entries) {
        if (entry.busy || entry.subscription.closed || entry.connection === leader) continue;
        misplaced = true;
        if (leader !== undefined) this.#place(entry);
        else this.#client.refreshLeader(topic);
      }
    }
    if (!misplaced || this.#client.closed) {
      clearInterval(this.#placeTimer);
      this.#placeTimer = undefined;
    }
  }
}

function keyOf(topic: unknown, subscriberId: unknown): string {
  return `${topic}\u0000${subscriberId}`;
}
