import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { faultBlockHeader, firstDifference } from "../../lib/bench/fault_suite.ts";

Deno.test("faultBlockHeader prints the prototype's header between two 70-character rules", () => {
  assertEquals(faultBlockHeader(2, 1), [
    "=".repeat(70),
    "FAULT TOLERANCE TEST 2 Simulating failure of Node 1...",
    "=".repeat(70),
  ]);
});

Deno.test("firstDifference names the first message that differs", () => {
  assertEquals(firstDifference(["a", "b", "c"], ["a", "x", "c"]), "message 1 differs");
});

Deno.test("firstDifference names a missing tail by the counts", () => {
  assertEquals(firstDifference(["a", "b"], ["a"]), "holds 1 messages, expected 2");
  assertEquals(firstDifference(["a"], ["a", "b"]), "holds 2 messages, expected 1");
});

Deno.test("firstDifference finds equal lists equal", () => {
  assertEquals(firstDifference(["a", "b"], ["a", "b"]), undefined);
});
