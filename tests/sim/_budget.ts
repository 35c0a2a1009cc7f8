/**
 * The simulator's CI budget: the seeds `deno task test` runs of the correct
 * implementation (tests/sim/sim_test.ts), and within which every broken
 * variant must be caught (tests/sim/broken_variants_test.ts). `deno task
 * sim:long` runs 10,000 seeds.
 *
 * @module
 */

/** Seeds 1..CI_SEEDS. */
export const CI_SEEDS = 300;
