import { deepStrictEqual, equal, ok } from "node:assert/strict";
import {
  anomalyKinds,
  checkHistory,
  copyDifference,
  type FinalState,
} from "../../lib/verify/checker.ts";
import type { HistoryData, PublishOp } from "../../lib/verify/history.ts";

/** Publishes m0..m(n-1) by one producer, one at a time, acknowledged at offsets 0..n-1. */
function sequentialPublishes(count: number, producer = 0): PublishOp[] {
  return Array.from({ length: count }, (_, index) => ({
    producer,
    session: 0,
    message: `m${index}`,
    invokedMs: index * 10,
    completedMs: index * 10 + 5,
    outcome: "ok" as const,
    offset: index,
  }));
}

function history(overrides: Partial<HistoryData> = {}): HistoryData {
  return {
    publishes: sequentialPublishes(5),
    deliveries: [0, 1, 2, 3, 4].map((offset) => ({
      subscriber: 0,
      session: 0,
      offset,
      message: `m${offset}`,
      atMs: 100 + offset,
    })),
    acks: [{ subscriber: 0, session: 0, offset: 4, invokedMs: 110, completedMs: 111, ok: true }],
    fetches: [{
      fetcher: 0,
      invokedMs: 26,
      completedMs: 27,
      fromOffset: 1,
      max: 10,
      acknowledgedBefore: 2,
      messages: [{ offset: 1, message: "m1" }, { offset: 2, message: "m2" }],
      nextOffset: 3,
    }],
    faults: [],
    ...overrides,
  };
}

const log = ["m0", "m1", "m2", "m3", "m4"];

function final(overrides: Partial<FinalState> = {}): FinalState {
  return {
    log,
    replicas: [1, 2, 3].map((node) => ({ node, source: "files" as const, messages: [...log] })),
    converged: true,
    ...overrides,
  };
}

/** The anomaly kinds with a non-zero count. */
function flagged(report: ReturnType<typeof checkHistory>): Record<string, number> {
  return Object.fromEntries(Object.entries(report.counts).filter(([, count]) => count > 0));
}

Deno.test("checkHistory passes a history with no anomaly", () => {
  const report = checkHistory(history(), final());
  deepStrictEqual(flagged(report), {});
  ok(report.ok);
  equal(report.acknowledged, 5);
  equal(report.replicasCompared, 3);
  deepStrictEqual(report.unverified, []);
});

Deno.test("checkHistory catches an acknowledged publish missing from its offset as lost", () => {
  const report = checkHistory(history(), final({ log: ["m0", "m1", "m3", "m4"] }));
  equal(report.counts.lost, 3); // m2 is gone; m3 and m4 moved below their acknowledged offsets
  ok(!report.ok);
  ok(report.examples.some((example) => example.detail.includes('"m2"')));
});

Deno.test("checkHistory catches a retried idempotent publish stored twice as duplicated", () => {
  const twice = ["m0", "m1", "m2", "m3", "m4", "m3"];
  const report = checkHistory(
    history(),
    final({ log: twice, replicas: [{ node: 1, source: "files", messages: twice }] }),
  );
  deepStrictEqual(flagged(report), { duplicated: 1 });
  ok(report.examples[0].detail.includes("offsets 3, 5"));
});

Deno.test("checkHistory catches a publish that got an offset below one acknowledged before it", () => {
  const publishes = sequentialPublishes(5);
  // m4 was invoked after m3 was acknowledged at 3, yet the log put it first.
  publishes[3].offset = 4;
  publishes[4].offset = 3;
  const swapped = ["m0", "m1", "m2", "m4", "m3"];
  const report = checkHistory(
    history({ publishes, deliveries: [], fetches: [] }),
    final({ log: swapped, replicas: [] }),
  );
  deepStrictEqual(flagged(report), { reordered: 1 });
  ok(report.examples[0].detail.includes("the same producer's"));
});

Deno.test("checkHistory catches two pipelined publishes of one stream stored against their order", () => {
  const publishes: PublishOp[] = [
    { ...sequentialPublishes(1)[0], invokedMs: 0, completedMs: 50, offset: 1 },
    { ...sequentialPublishes(2)[1], invokedMs: 1, completedMs: 40, offset: 0 },
  ];
  const report = checkHistory(
    history({ publishes, deliveries: [], fetches: [], acks: [] }),
    final({ log: ["m1", "m0"], replicas: [] }),
  );
  deepStrictEqual(flagged(report), { reordered: 1 });
  // After a failure of the session the next publish may be on a new stream.
  publishes.push({
    producer: 0,
    session: 0,
    message: "failed",
    invokedMs: 0,
    completedMs: 30,
    outcome: "unknown",
  });
  ok(
    checkHistory(history({ publishes, deliveries: [], fetches: [], acks: [] }), {
      log: ["m1", "m0"],
      replicas: [],
      converged: true,
    }).ok,
  );
});

Deno.test("checkHistory catches a durable subscriber that skipped offsets after its ack", () => {
  const deliveries = [
    { subscriber: 0, session: 0, offset: 0, message: "m0", atMs: 100 },
    { subscriber: 0, session: 0, offset: 1, message: "m1", atMs: 101 },
    // A new session resumed after offset 3 although only 1 was ever delivered.
    { subscriber: 0, session: 1, offset: 4, message: "m4", atMs: 120 },
  ];
  const acks = [{
    subscriber: 0,
    session: 0,
    offset: 1,
    invokedMs: 102,
    completedMs: 103,
    ok: true,
  }];
  const report = checkHistory(history({ deliveries, acks }), final());
  deepStrictEqual(flagged(report), { subscriber_gaps: 1 });
  ok(report.examples[0].detail.includes("offsets 2-3 were skipped"), report.examples[0].detail);
  ok(report.examples[0].detail.includes("last confirmed ack 1"));
});

Deno.test("checkHistory accepts redeliveries to a resumed subscriber", () => {
  const deliveries = [0, 1, 2, 1, 2, 3, 4].map((offset, index) => ({
    subscriber: 0,
    session: index < 3 ? 0 : 1,
    offset,
    message: `m${offset}`,
    atMs: 100 + index,
  }));
  ok(checkHistory(history({ deliveries }), final()).ok);
});

Deno.test("checkHistory catches a stale fetch that missed a publish acknowledged before it", () => {
  const fetches = [{
    fetcher: 0,
    invokedMs: 46,
    completedMs: 48,
    fromOffset: 2,
    max: 10,
    acknowledgedBefore: 4,
    messages: [{ offset: 2, message: "m2" }, { offset: 3, message: "m3" }],
    nextOffset: 4,
  }];
  const report = checkHistory(history({ fetches }), final());
  deepStrictEqual(flagged(report), { stale_reads: 1 });
  // A full window (max reached) says nothing about later offsets.
  fetches[0].max = 2;
  ok(checkHistory(history({ fetches }), final()).ok);
});

Deno.test("checkHistory catches a fetch window with a hole as stale", () => {
  const fetches = [{
    fetcher: 0,
    invokedMs: 46,
    completedMs: 48,
    fromOffset: 0,
    max: 10,
    acknowledgedBefore: 2,
    messages: [{ offset: 0, message: "m0" }, { offset: 2, message: "m2" }],
    nextOffset: 3,
  }];
  deepStrictEqual(flagged(checkHistory(history({ fetches }), final())), { stale_reads: 1 });
});

Deno.test("checkHistory catches data served that is not in the final log as a dirty read", () => {
  const deliveries = [{ subscriber: 0, session: 0, offset: 0, message: "truncated", atMs: 100 }];
  const fetches = [{
    fetcher: 0,
    invokedMs: 46,
    completedMs: 48,
    fromOffset: 4,
    max: 10,
    acknowledgedBefore: 3,
    messages: [{ offset: 4, message: "m4" }, { offset: 5, message: "uncommitted" }],
    nextOffset: 6,
  }];
  const report = checkHistory(history({ deliveries, fetches }), final());
  deepStrictEqual(flagged(report), { dirty_reads: 2 });
});

Deno.test("checkHistory catches a stored message whose publish was refused for sure", () => {
  const publishes = sequentialPublishes(5);
  publishes[4] = { ...publishes[4], outcome: "failed", offset: undefined, error: "out_of_order" };
  const report = checkHistory(history({ publishes }), final({ log: [...log, "stranger"] }));
  equal(report.counts.unexpected, 2);
  equal(report.counts.diverged, 3); // the replicas lack the stranger
});

Deno.test("checkHistory catches replicas that diverged or silently fell behind", () => {
  const report = checkHistory(
    history(),
    final({
      replicas: [
        { node: 1, source: "files", messages: [...log] },
        { node: 2, source: "files", messages: log.slice(0, 3) },
        { node: 3, source: "subscription", messages: ["m0", "m1", "x", "m3", "m4"] },
      ],
    }),
  );
  deepStrictEqual(flagged(report), { diverged: 2 });
  ok(report.examples.some((example) =>
    example.detail.includes("node 2") &&
    example.detail.includes("fell behind")
  ));
  ok(report.examples.some((example) => example.detail.includes("at offset 2")));
});

Deno.test("checkHistory fails without claiming an anomaly when a replica cannot be read", () => {
  const report = checkHistory(
    history(),
    final({ replicas: [{ node: 2, source: "files", error: "no replica directory" }] }),
  );
  deepStrictEqual(flagged(report), {});
  ok(!report.ok);
  deepStrictEqual(report.unverified, ["node 2: no replica directory"]);
});

Deno.test("checkHistory reports a cluster that never converged after healing", () => {
  const report = checkHistory(history(), final({ converged: false, convergence: "in_sync [1]" }));
  deepStrictEqual(flagged(report), { not_converged: 1 });
});

Deno.test("checkHistory counts unknown publishes and those that were stored", () => {
  const publishes = sequentialPublishes(5);
  delete publishes[4].completedMs;
  delete publishes[4].outcome;
  delete publishes[4].offset;
  publishes.push({ producer: 1, session: 0, message: "lost-answer", invokedMs: 0 });
  const report = checkHistory(history({ publishes, fetches: [] }), final());
  ok(report.ok);
  equal(report.acknowledged, 4);
  equal(report.unknown, 2);
  equal(report.unknownStored, 1);
});

Deno.test("copyDifference says where a copy first differs", () => {
  equal(copyDifference(["a", "b"], ["a", "b"]), undefined);
  ok(copyDifference(["a", "b"], ["a"])!.includes("fell behind"));
  ok(copyDifference(["a"], ["a", "b"])!.includes("1 more"));
  ok(copyDifference(["a", "b"], ["a", "c"])!.includes("offset 1"));
  equal(anomalyKinds.length, 9);
});
