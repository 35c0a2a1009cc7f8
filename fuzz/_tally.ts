/**
 * Counting for the fuzzer: cases per target, failures by kind (a crash, a
 * hang, an unexpected answer or exception), the first few failures in
 * detail, and the derivation of every batch's seed from the run's seed.
 *
 * @module
 */

/** What went wrong. */
export type FailureKind = "crash" | "hang" | "unexpected";

/** One failed case. */
export interface FuzzFailure {
  target: string;
  kind: FailureKind;
  detail: string;
  /** The input, shortened. */
  input: string;
}

/** Failures kept in detail; the rest are only counted. */
export const failuresKeptMax = 20;

/** Counts of one target. */
export interface TargetCounts {
  cases: number;
  crashes: number;
  hangs: number;
  unexpected: number;
}

/**
 * Cases and failures per target.
 *
 * @example
 * ```ts
 * const tally = new Tally();
 * tally.count("request", 100);
 * tally.fail({ target: "request", kind: "unexpected", detail: "TypeError", input: "{}" });
 * ```
 */
export class Tally {
  readonly targets = new Map<string, TargetCounts>();
  readonly kept: FuzzFailure[] = [];
  failures = 0;

  #target(name: string): TargetCounts {
    let counts = this.targets.get(name);
    if (counts === undefined) {
      counts = { cases: 0, crashes: 0, hangs: 0, unexpected: 0 };
      this.targets.set(name, counts);
    }
    return counts;
  }

  count(target: string, cases = 1): void {
    this.#target(target).cases += cases;
  }

  fail(failure: FuzzFailure): void {
    const counts = this.#target(failure.target);
    if (failure.kind === "crash") counts.crashes++;
    else if (failure.kind === "hang") counts.hangs++;
    else counts.unexpected++;
    this.failures++;
    if (this.kept.length < failuresKeptMax) this.kept.push(failure);
  }

  /** Sums over every target. */
  totals(): TargetCounts {
    const sum: TargetCounts = { cases: 0, crashes: 0, hangs: 0, unexpected: 0 };
    for (const counts of this.targets.values()) {
      sum.cases += counts.cases;
      sum.crashes += counts.crashes;
      sum.hangs += counts.hangs;
      sum.unexpected += counts.unexpected;
    }
    return sum;
  }
}

/**
 * A 32-bit seed for batch `index` of `label`, derived from the run's seed
 * (FNV-1a), so that one `--seed` reproduces every input.
 *
 * @example
 * ```ts
 * const seed = seedFor(42, "request", 0);
 * ```
 */
export function seedFor(seed: number, label: string, index: number): number {
  let hash = 0x811c9dc5;
  for (const char of `${seed}:${label}:${index}`) {
    hash ^= char.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}

/** A short text of any input (bytes as hex, deep values cut), for failure reports. */
export function previewInput(value: unknown, lengthMax = 300): string {
  let text: string;
  try {
    text = JSON.stringify(value, (_key, item) =>
      item instanceof Uint8Array
        ? `<bytes ${
          [...item.subarray(0, 64)].map((byte) => byte.toString(16).padStart(2, "0")).join("")
        }${item.length > 64 ? "..." : ""}>`
        : item) ?? String(value);
  } catch (error) {
    text = `<unprintable: ${(error as Error).message}>`;
  }
  return text.length > lengthMax ? `${text.slice(0, lengthMax)}... (${text.length} chars)` : text;
}
