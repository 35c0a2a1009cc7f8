/**
 * The in-process fuzz, run in a worker so that the main thread can notice
 * a decoder that never returns (the worker stops reporting progress) and
 * end it, and so that it runs beside the live fuzz on another core.
 *
 * Receives `{ seed, cases }`; posts `{ kind: "batch", target, cases,
 * failures }` after every batch and `{ kind: "done" }` at the end.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import fc from "fast-check";
import { decoderTargets } from "./_decoder_targets.ts";
import { type FuzzFailure, previewInput, seedFor } from "./_tally.ts";

/** Cases generated and run per batch. */
export const batchCases = 250;
/** Longest one decoder call may take before it counts as a hang. */
export const caseMsMax = 2_000;

/** A message from the worker. */
export type WorkerReport =
  | { kind: "batch"; target: string; cases: number; failures: FuzzFailure[] }
  | { kind: "done" };

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Splits `cases` over the targets by weight. */
function shares(cases: number, weights: number[]): number[] {
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  const result = weights.map((weight) => Math.floor((cases * weight) / total));
  let left = cases - result.reduce((sum, share) => sum + share, 0);
  for (let index = 0; left > 0; index = (index + 1) % result.length, left--) result[index]++;
  return result;
}

function runBatch(
  target: ReturnType<typeof decoderTargets>[number],
  inputs: unknown[],
): FuzzFailure[] {
  const failures: FuzzFailure[] = [];
  for (const input of inputs) {
    const started = performance.now();
    try {
      target.run(input);
    } catch (error) {
      failures.push({
        target: target.name,
        kind: "unexpected",
        detail: describe(error).slice(0, 500),
        input: previewInput(input),
      });
    }
    const took = performance.now() - started;
    if (took > caseMsMax) {
      failures.push({
        target: target.name,
        kind: "hang",
        detail: `took ${Math.round(took)} ms`,
        input: previewInput(input),
      });
    }
  }
  return failures;
}

function run(seed: number, cases: number): void {
  const targets = decoderTargets();
  const left = shares(cases, targets.map((target) => target.weight));
  const batches = targets.map(() => 0);
  // Round-robin over targets, one batch at a time, so progress covers all of them.
  while (left.some((count) => count > 0)) {
    for (const [index, target] of targets.entries()) {
      const count = Math.min(batchCases, left[index]);
      if (count === 0) continue;
      const inputs = fc.sample(target.arbitrary, {
        seed: seedFor(seed, target.name, batches[index]++),
        numRuns: count,
      });
      const failures = runBatch(target, inputs);
      left[index] -= count;
      self.postMessage({ kind: "batch", target: target.name, cases: count, failures });
    }
  }
  self.postMessage({ kind: "done" });
}

self.onmessage = (event: MessageEvent<{ seed: number; cases: number }>) => {
  run(event.data.seed, event.data.cases);
};
