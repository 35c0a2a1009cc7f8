import { deepStrictEqual, equal, ok, throws } from "node:assert/strict";
import {
  faultDescriptions,
  faultKinds,
  faultSlotMsMax,
  planFaults,
} from "../../lib/verify/nemesis.ts";
import { usableKinds } from "../../lib/verify/run.ts";
import type { VerifyNode } from "../../lib/verify/cluster.ts";

Deno.test("planFaults derives the same schedule from the same seed, and another from another", () => {
  const options = { durationMs: 60_000, kinds: faultKinds };
  deepStrictEqual(planFaults(7, options), planFaults(7, options));
  const kindsOf = (seed: number) => planFaults(seed, options).map((step) => step.kind).join(",");
  ok(kindsOf(7) !== kindsOf(8));
});

Deno.test("planFaults injects every kind in its first round, however short the run", () => {
  const steps = planFaults(3, { durationMs: 1_000, kinds: faultKinds });
  deepStrictEqual(steps.map((step) => step.kind).sort(), [...faultKinds].sort());
  ok(steps.every((step) => step.firstRound));
  for (let index = 1; index < steps.length; index++) {
    ok(steps[index].atMs > steps[index - 1].atMs);
  }
});

Deno.test("planFaults fills a long run with rounds of bounded faults", () => {
  const steps = planFaults(11, { durationMs: 200_000, kinds: faultKinds });
  ok(steps.length > faultKinds.length * 1.5, `${steps.length} steps`);
  ok(steps.every((step) => step.atMs < 200_000 || step.firstRound));
  ok(steps.every((step) => step.durationMs > 0 && step.durationMs <= faultSlotMsMax));
  ok(steps.every((step) => step.choices.every((choice) => choice >= 0 && choice < 1)));
  for (const kind of faultKinds) ok(steps.filter((step) => step.kind === kind).length >= 2, kind);
});

Deno.test("planFaults plans nothing without kinds and refuses a non-positive duration", () => {
  deepStrictEqual(planFaults(1, { durationMs: 10_000, kinds: [] }), []);
  throws(() => planFaults(1, { durationMs: 0, kinds: faultKinds }), RangeError);
});

Deno.test("every fault kind is described", () => {
  for (const kind of faultKinds) ok(faultDescriptions[kind].length > 20, kind);
});

Deno.test("usableKinds leaves out what an existing cluster cannot do, with the reason", () => {
  const members: VerifyNode[] = [1, 2, 3].map((id) => ({
    id,
    address: `127.0.0.1:${5000 + id}`,
    proxyAddress: undefined,
    pid: undefined,
    dataDir: undefined,
    state: "up",
  }));
  const { kinds, skippedKinds } = usableKinds({
    members: () => members,
    limits: { kill: "no restart", pause: undefined, proxy: "no proxy", membership: "no spare" },
  }, faultKinds);
  deepStrictEqual(kinds, ["pause"]);
  equal(skippedKinds.length, faultKinds.length - 1);
  equal(skippedKinds.find((entry) => entry.kind === "bridge")?.reason, "no proxy");
});
