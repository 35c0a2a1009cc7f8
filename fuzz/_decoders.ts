/**
 * The in-process phase of `deno task fuzz`: the decoder worker started,
 * its reports tallied, and a watchdog that ends it when it stops reporting
 * (a decoder that never returns is a hang, and must not hang the fuzzer).
 *
 * @module
 */

import type { WorkerReport } from "./_decoder_worker.ts";
import type { Tally } from "./_tally.ts";

/** Longest the worker may go without reporting a batch. */
export const workerStallMsMax = 60_000;

/** Options of {@linkcode runDecoders}. */
export interface DecoderOptions {
  seed: number;
  cases: number;
  tally: Tally;
  /** Called after each batch with the in-process cases run so far. */
  progress?: (cases: number) => void;
}

/**
 * Runs `cases` in-process cases over every decoder target in a worker.
 *
 * @example
 * ```ts
 * const tally = new Tally();
 * await runDecoders({ seed: 1, cases: 10_000, tally });
 * ```
 */
export function runDecoders(options: DecoderOptions): Promise<void> {
  const { tally } = options;
  const worker = new Worker(new URL("./_decoder_worker.ts", import.meta.url), { type: "module" });
  const finished = Promise.withResolvers<void>();
  let done = 0;
  let lastTarget = "decoders";
  const stall = () =>
    setTimeout(() => {
      tally.fail({
        target: lastTarget,
        kind: "hang",
        detail: `the decoder worker reported nothing for ${workerStallMsMax} ms`,
        input: "",
      });
      finished.resolve();
    }, workerStallMsMax);
  let watchdog = stall();
  worker.onmessage = (event: MessageEvent<WorkerReport>) => {
    clearTimeout(watchdog);
    const report = event.data;
    if (report.kind === "done") return finished.resolve();
    lastTarget = report.target;
    tally.count(report.target, report.cases);
    for (const failure of report.failures) tally.fail(failure);
    done += report.cases;
    options.progress?.(done);
    watchdog = stall();
  };
  worker.onerror = (event) => {
    event.preventDefault();
    clearTimeout(watchdog);
    tally.fail({ target: lastTarget, kind: "crash", detail: event.message, input: "" });
    finished.resolve();
  };
  worker.postMessage({ seed: options.seed, cases: options.cases });
  return finished.promise.finally(() => {
    clearTimeout(watchdog);
    worker.terminate();
  });
}
