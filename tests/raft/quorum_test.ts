import { equal } from "node:assert/strict";
import fc from "fast-check";
import { majorityIndex, voteResult } from "../../lib/raft/quorum.ts";

Deno.test("majorityIndex is the highest index a majority has reached", () => {
  equal(majorityIndex([5, 3, 9]), 5);
  equal(majorityIndex([1, 2, 3, 4]), 2);
  equal(majorityIndex([7]), 7);
});

Deno.test("majorityIndex never exceeds what a majority acknowledged", () => {
  fc.assert(
    fc.property(fc.array(fc.nat(1000), { minLength: 1, maxLength: 7 }), (matches) => {
      const index = majorityIndex(matches);
      const atLeast = matches.filter((match) => match >= index).length;
      equal(atLeast > matches.length / 2, true);
    }),
  );
});

Deno.test("voteResult wins with a majority, loses when a majority refused, else pends", () => {
  equal(voteResult([1, 2, 3], new Map([[1, true], [2, true]])), "won");
  equal(voteResult([1, 2, 3], new Map([[1, true], [2, false], [3, false]])), "lost");
  equal(voteResult([1, 2, 3, 4], new Map([[1, true], [2, true]])), "pending");
  equal(voteResult([1, 2, 3], new Map([[9, true], [8, true]])), "pending");
});
