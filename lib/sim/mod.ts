/**
 * Deterministic cluster simulator: one seed drives a whole Raft cluster
 * through faults while an invariant checker observes.
 *
 * @example
 * ```ts
 * import { formatResult, runSimulation } from "./lib/sim/mod.ts";
 * console.log(formatResult(runSimulation(42)));
 * ```
 *
 * @module
 */

export { formatResult, type RunOptions, runSimulation, type SimResult } from "./simulation.ts";
export { BROKEN_VARIANTS, type BrokenVariant, configFromSeed, type SimConfig } from "./config.ts";
export { type Invariant, InvariantChecker, INVARIANTS, type Violation } from "./checker.ts";
export { Prng } from "./prng.ts";
