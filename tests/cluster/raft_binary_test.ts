/**
 * The binary `peer_raft` form: it decodes (through `decodeRaftFrame`, as the
 * JSON form does) to exactly what was encoded, and any damage to its bytes
 * is refused as a PeerMessageError, never a crash or a message stepped from
 * bytes nobody sent.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  groupIdArbitrary,
  incarnationArbitrary,
  raftMessageArbitrary,
} from "../../fuzz/arbitraries.ts";
import { nodeIdMax, PeerMessageError } from "../../lib/cluster/_peer_messages.ts";
import { decodeRaftFrame } from "../../lib/cluster/peer_rpc.ts";
import {
  binaryRaftMagic,
  decodeBinaryRaftPayload,
  encodeBinaryRaftFrame,
  isBinaryRaftPayload,
  type RaftOutItem,
} from "../../lib/cluster/raft_binary.ts";
import type { Message } from "../../lib/raft/types.ts";
import { FrameDecoder } from "../../lib/wire/frame.ts";

const numRuns = 300;

/** The payload of one encoded frame, read back through the frame decoder. */
function payloadOf(frame: Uint8Array): Uint8Array {
  const events = new FrameDecoder({ frameBytesMax: frame.length }).push(frame);
  assert.equal(events.length, 1);
  assert.equal(events[0].kind, "frame");
  return (events[0] as { payload: Uint8Array }).payload;
}

const frameArbitrary = fc.integer({ min: 1, max: nodeIdMax }).chain((from) =>
  fc.tuple(
    fc.constant(from),
    incarnationArbitrary,
    fc.array(
      fc.tuple(
        groupIdArbitrary,
        fc.oneof(
          raftMessageArbitrary(fc.constant(from)),
          fc.integer({ min: 0, max: 2 ** 52 }).map((quiesce) => ({ quiesce })),
        ),
      ),
      { maxLength: 5 },
    ),
  )
);

function expected(items: RaftOutItem[]) {
  return items.map(([groupId, body]) =>
    "quiesce" in body ? { groupId, quiesceTerm: body.quiesce } : { groupId, message: body }
  );
}

Deno.test("a binary Raft frame decodes through decodeRaftFrame to exactly what was encoded", () => {
  fc.assert(
    fc.property(frameArbitrary, ([from, incarnation, items]) => {
      const batch = items as RaftOutItem[];
      const payload = payloadOf(encodeBinaryRaftFrame(from, incarnation, batch));
      assert.ok(isBinaryRaftPayload(payload));
      const decoded = decodeRaftFrame(decodeBinaryRaftPayload(payload));
      assert.deepStrictEqual(decoded, { from, incarnation, batch: expected(batch) });
    }),
    { numRuns },
  );
});

/** An append from node 1 to node 2 of entries 10, 11, ... each holding `data`. */
function appendOf(data: Uint8Array, entries: number): Message {
  return {
    type: "app",
    from: 1,
    to: 2,
    term: 3,
    logTerm: 3,
    index: 9,
    entries: Array.from(
      { length: entries },
      (_, at) => ({ term: 3, index: 10 + at, type: 0, data }),
    ),
    commit: 9,
    reject: false,
    rejectHint: 0,
  };
}

Deno.test("entry data travels raw: a 512 KiB entry costs 512 KiB plus a small header", () => {
  const data = new Uint8Array(512 * 1024).map((_, index) => index % 251);
  const message = appendOf(data, 1);
  const frame = encodeBinaryRaftFrame(1, "incarnation", [["t:events", message]]);
  assert.ok(frame.length < data.length + 256, `${frame.length} bytes`);
  const decoded = decodeRaftFrame(decodeBinaryRaftPayload(payloadOf(frame)));
  const item = decoded.batch[0] as { message: Message };
  assert.deepStrictEqual(item.message.entries[0].data, data);
});

Deno.test("an owned payload's entries are views of it; otherwise of a copy, so the payload may be reused", () => {
  const data = new Uint8Array(64 * 1024).map((_, index) => index % 253);
  const message = appendOf(data, 2);
  const entriesOf = (payload: Uint8Array, owned: boolean) =>
    (decodeRaftFrame(decodeBinaryRaftPayload(payload, owned)).batch[0] as { message: Message })
      .message.entries;
  const payload = payloadOf(encodeBinaryRaftFrame(1, "incarnation", [["t:events", message]]));
  const owned = entriesOf(payload, true);
  const copied = entriesOf(payload, false);
  for (const entry of owned) {
    assert.equal(entry.data.buffer, payload.buffer, "a view of the payload");
  }
  for (const entry of copied) assert.notEqual(entry.data.buffer, payload.buffer, "a copy");
  assert.deepStrictEqual(owned, copied);
  payload.fill(0);
  for (const entry of copied) {
    assert.deepStrictEqual(entry.data, data, "the copy outlives the payload");
  }
});

Deno.test("decodeBinaryRaftPayload refuses damaged frames with PeerMessageError", () => {
  const message: Message = {
    type: "app",
    from: 1,
    to: 2,
    term: 1,
    logTerm: 1,
    index: 0,
    entries: [{ term: 1, index: 1, type: 0, data: new Uint8Array([1, 2, 3, 4]) }],
    commit: 0,
    reject: false,
    rejectHint: 0,
  };
  const payload = payloadOf(encodeBinaryRaftFrame(1, "i", [["meta", message]]));
  const refused = (bytes: Uint8Array, pattern: RegExp) =>
    assert.throws(() => decodeBinaryRaftPayload(bytes), (error: unknown) => {
      assert.ok(error instanceof PeerMessageError, String(error));
      assert.match(error.message, pattern);
      return true;
    });
  // A byte left over that no field claims.
  refused(new Uint8Array([...payload, 0]), /no field claims/);
  // A blob cut short.
  refused(payload.subarray(0, payload.length - 1), /runs past the end/);
  // A head longer than the payload.
  const longHead = payload.slice();
  new DataView(longHead.buffer).setUint32(1, payload.length);
  refused(longHead, /head of a binary Raft frame claims/);
  // Only the magic byte.
  refused(new Uint8Array([binaryRaftMagic]), /magic byte and head/);
  // A head that ends inside a field: the blobs start where the head says it ends.
  const shortHead = payload.slice();
  new DataView(shortHead.buffer).setUint32(1, 6);
  refused(shortHead, /runs past the frame's head/);
  // A sender of 0 (node ids start at 1).
  const noSender = payload.slice();
  new DataView(noSender.buffer).setUint32(5, 0);
  refused(noSender, /sender must be a node id/);
  // A message whose own sender is not the frame's.
  const other = payloadOf(encodeBinaryRaftFrame(2, "i", [["meta", { ...message, from: 1 }]]));
  refused(other, /claims to come from node 1/);
  // An unknown message type: after the prelude, sender, incarnation, item
  // count, group id and item kind.
  const unknownType = payload.slice();
  const typeAt = 5 + 4 + 1 + "i".length + 2 + 2 + "meta".length + 1;
  unknownType[typeAt] = 200;
  refused(unknownType, /Unknown Raft message type 200/);
});

Deno.test("any damage to a binary Raft frame is refused cleanly or decodes to valid messages, owned or not", () => {
  fc.assert(
    fc.property(
      frameArbitrary,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      fc.nat(),
      ([from, incarnation, items], flips, cut) => {
        const payload = payloadOf(encodeBinaryRaftFrame(from, incarnation, items as RaftOutItem[]))
          .slice();
        for (const [at, value] of flips) payload[at % payload.length] = value;
        const damaged = cut % 3 === 0 ? payload.subarray(0, cut % payload.length) : payload;
        // Owned (views kept) or not (blobs copied), the same bytes get the same verdict.
        const verdict = (owned: boolean) => {
          try {
            return decodeRaftFrame(decodeBinaryRaftPayload(damaged, owned));
          } catch (error) {
            assert.ok(error instanceof PeerMessageError, `threw ${error}`);
            return error.message;
          }
        };
        assert.deepStrictEqual(verdict(true), verdict(false));
      },
    ),
    { numRuns },
  );
});
