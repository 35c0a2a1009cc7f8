import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { faultBlockHeader, firstDifference } from "../../lib/bench/fault_suite.ts";

Deno.test("faultBlockHeader prints the prototype's header between two 70-character rules", () => {
  assertEquals(faultBlockHeader(2, 3), [
    "=".repeat(70),
    "FAULT TOLERANCE TEST 2 Simulating failure of Node 3...",
    "=".repeat(70),
  ]);
});

Deno.test("faultBlockHeader names the node by its id and matches the prototype's pattern", () => {
  // What a parser of the prototype's output would match.
  const prototypeHeader = /^FAULT TOLERANCE TEST (\d+) Simulating failure of Node (\d+)\.\.\.$/;
  const match = faultBlockHeader(1, 1)[1].match(prototypeHeader);
  assertEquals(match?.slice(1), ["1", "1"]);
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
