/**
 * The simulated network's fault model: directed link blocks (symmetric and
 * asymmetric partitions), loss, duplication and random delay (which also
 * reorders). Delivery itself is scheduled by the simulation.
 *
 * @module
 */

import type { Prng } from "./prng.ts";

/**
 * Which links are cut and how lossy the others are.
 *
 * @example
 * ```ts
 * const network = new SimNetwork(prng, { dropRate: 0.01, duplicateRate: 0, delayMsMin: 1, delayMsMax: 10 });
 * network.partition([1], [2, 3]);
 * network.blocked(1, 2); // true
 * ```
 */
export class SimNetwork {
  readonly #prng: Prng;
  readonly #blocked = new Set<number>();
  dropRate: number;
  duplicateRate: number;
  delayMsMin: number;
  delayMsMax: number;

  constructor(
    prng: Prng,
    rates: { dropRate: number; duplicateRate: number; delayMsMin: number; delayMsMax: number },
  ) {
    this.#prng = prng;
    this.dropRate = rates.dropRate;
    this.duplicateRate = rates.duplicateRate;
    this.delayMsMin = rates.delayMsMin;
    this.delayMsMax = rates.delayMsMax;
  }

  blocked(from: number, to: number): boolean {
    return this.#blocked.has(from * 1024 + to);
  }

  block(from: number, to: number): void {
    this.#blocked.add(from * 1024 + to);
  }

  /** Cuts every link between the two sides, both directions. */
  partition(left: number[], right: number[]): void {
    for (const a of left) {
      for (const b of right) {
        this.block(a, b);
        this.block(b, a);
      }
    }
  }

  heal(): void {
    this.#blocked.clear();
  }

  /** Delays of the copies of one message to deliver (empty when lost). */
  deliveries(): number[] {
    if (this.#prng.chance(this.dropRate)) return [];
    const delays = [this.#delay()];
    if (this.#prng.chance(this.duplicateRate)) delays.push(this.#delay());
    return delays;
  }

  #delay(): number {
    return this.#prng.range(this.delayMsMin, this.delayMsMax);
  }
}
