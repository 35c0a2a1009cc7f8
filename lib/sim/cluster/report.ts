/**
 * How `pubsub sim --cluster` reports runs: one seed as text, and the hash
 * of many seeds' hashes (equal for two runs of the same seeds).
 *
 * @module
 */

import type { ClusterSimResult } from "./cluster_sim.ts";
import { RunTrace } from "./sim_trace.ts";

/**
 * One run as text; `full` adds the trace tail of a failed run. Nothing in it
 * depends on the host (no timings), so a replay prints the same bytes.
 *
 * @example
 * ```ts
 * console.log(formatClusterResult(await runClusterSeed(7), true));
 * ```
 */
export function formatClusterResult(result: ClusterSimResult, full: boolean): string {
  const faults = Object.entries(result.faults).map(([kind, count]) => `${kind}=${count}`)
    .join(" ");
  const lines = [
    `seed ${result.seed}${result.broken === null ? "" : ` (broken: ${result.broken})`}: ${
      result.violationCount === 0 ? "ok" : `${result.violationCount} violations`
    }, ${result.nodes} nodes, ${result.topics} topics, ${result.acknowledged} acknowledged, ${result.events} events, ${result.frames} frames, ${
      result.virtualMs / 1000
    } s virtual; faults: ${faults === "" ? "none" : faults}; hash ${result.hash}`,
  ];
  for (const violation of result.violations) {
    lines.push(`  ${violation.invariant} at ${violation.at} ms: ${violation.detail}`);
  }
  if (result.violationCount > 0) {
    if (full) lines.push("  last events:", ...result.trace.map((line) => `    ${line}`));
    lines.push(
      `  reproduce with: pubsub sim --cluster --seed ${result.seed}${
        result.broken === null ? "" : ` --broken ${result.broken}`
      }`,
    );
  }
  return lines.join("\n");
}

/**
 * The hash of a series of runs.
 *
 * @example
 * ```ts
 * const hash = new SeedsHash();
 * hash.add(1, "0e4024fa4d2dbf21");
 * hash.hex();
 * ```
 */
export class SeedsHash {
  readonly #trace = new RunTrace();

  add(seed: number, hash: string): void {
    this.#trace.event(0, "seed", 0, `${seed} ${hash}`);
  }

  hex(): string {
    return this.#trace.hex();
  }
}
