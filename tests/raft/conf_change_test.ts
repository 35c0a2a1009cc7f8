import { deepStrictEqual, equal } from "node:assert/strict";
import {
  applyConfChange,
  decodeConfChange,
  encodeConfChange,
  validateConfChange,
} from "../../lib/raft/conf_change.ts";

Deno.test("applyConfChange adds, promotes and removes one member at a time", () => {
  let conf = { voters: [1, 2, 3], learners: [] as number[] };
  conf = applyConfChange(conf, { type: "addLearner", node: 4 });
  deepStrictEqual(conf, { voters: [1, 2, 3], learners: [4] });
  conf = applyConfChange(conf, { type: "promote", node: 4 });
  deepStrictEqual(conf, { voters: [1, 2, 3, 4], learners: [] });
  conf = applyConfChange(conf, { type: "remove", node: 2 });
  deepStrictEqual(conf, { voters: [1, 3, 4], learners: [] });
});

Deno.test("validateConfChange refuses removing the last voter and promoting a non-learner", () => {
  equal(
    validateConfChange({ voters: [1], learners: [] }, { type: "remove", node: 1 }),
    "Cannot remove the last voter",
  );
  equal(
    validateConfChange({ voters: [1, 2], learners: [] }, { type: "promote", node: 2 }),
    "Node 2 is not a learner",
  );
  equal(
    validateConfChange({ voters: [1, 2], learners: [] }, { type: "addLearner", node: 3 }),
    undefined,
  );
});

Deno.test("encodeConfChange round-trips through decodeConfChange", () => {
  deepStrictEqual(decodeConfChange(encodeConfChange({ type: "addVoter", node: 7 })), {
    type: "addVoter",
    node: 7,
  });
});
