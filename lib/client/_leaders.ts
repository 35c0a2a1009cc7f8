/**
 * What a client knows about where topics live: the node id behind each
 * bootstrap address (from `ping`) and the leader of each topic it publishes
 * to (from `describe_topic`), with the time it learned it. Publishes go
 * straight to a topic's leader when the client holds a connection to it;
 * anything unknown or stale goes through the client's home connection,
 * which forwards, so routing is an optimization and never a requirement.
 *
 * @module
 */

/** Topics whose leader a client remembers; the least recently learned one is forgotten. */
export const leaderEntriesMax = 10_000;
/** How long a learned leader is trusted before the next publish asks again (in the background). */
export const leaderRefreshMsDefault = 2000;

/** One topic's learned leader. */
interface LeaderEntry {
  /** The leader's node id; null when the topic had none when asked. */
  node: number | null;
  learnedAt: number;
}

/**
 * Leader and address knowledge of one client.
 *
 * @example
 * ```ts
 * const leaders = new LeaderDirectory({ refreshMs: 2000 });
 * leaders.learnNode("127.0.0.1:5001", 1);
 * leaders.learnLeader("events", 1, Date.now());
 * leaders.leaderOf("events"); // 1
 * ```
 */
export class LeaderDirectory {
  readonly #refreshMs: number;
  readonly #leaders = new Map<string, LeaderEntry>();
  readonly #nodeOfAddress = new Map<string, number>();

  constructor(options: { refreshMs: number }) {
    this.#refreshMs = options.refreshMs;
  }

  /** Records that `address` answered `ping` as node `node`. */
  learnNode(address: string, node: number): void {
    this.#nodeOfAddress.set(address, node);
  }

  /** The node id behind `address`, when known. */
  nodeAt(address: string): number | undefined {
    return this.#nodeOfAddress.get(address);
  }

  /** The bootstrap address of node `node`, when one answered as it. */
  addressOf(node: number): string | undefined {
    for (const [address, id] of this.#nodeOfAddress) if (id === node) return address;
    return undefined;
  }

  /** Records the leader of `topic` as learned at `now`. */
  learnLeader(topic: string, node: number | null, now: number): void {
    this.#leaders.delete(topic);
    if (this.#leaders.size >= leaderEntriesMax) {
      const oldest = this.#leaders.keys().next().value;
      if (oldest !== undefined) this.#leaders.delete(oldest);
    }
    this.#leaders.set(topic, { node, learnedAt: now });
  }

  /** The last learned leader of `topic`, if any. */
  leaderOf(topic: string): number | undefined {
    return this.#leaders.get(topic)?.node ?? undefined;
  }

  /** True when `topic`'s leader is unknown or was learned more than `refreshMs` ago. */
  stale(topic: string, now: number): boolean {
    const entry = this.#leaders.get(topic);
    return entry === undefined || now - entry.learnedAt >= this.#refreshMs;
  }

  /** Forgets the leader of `topic` (it answered as no longer leading). */
  forgetTopic(topic: string): void {
    this.#leaders.delete(topic);
  }

  /** Forgets every topic led by `node` (its connection was lost). */
  forgetNode(node: number): void {
    for (const [topic, entry] of this.#leaders) {
      if (entry.node === node) this.#leaders.delete(topic);
    }
  }
}
