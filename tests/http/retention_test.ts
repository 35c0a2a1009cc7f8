/**
 * Retention over the HTTP API of a real peer process: `POST /api/topics`
 * with a retention, `PATCH /api/topics/{topic}` to change it, the describe
 * fields, reading below retention, and the errors.
 */
import assert from "node:assert/strict";
import { waitFor } from "../_helpers/cluster_process.ts";
import { EventReader, request, startHttpPeer } from "./_http_cluster.ts";

for (const mode of ["replicated", "standalone"]) {
  Deno.test(`a ${mode} peer creates, changes and applies a topic's retention over HTTP`, async (t) => {
    const peer = await startHttpPeer(mode === "standalone" ? ["--standalone"] : []);
    const api = `${peer.url}/api`;
    const patch = (json: unknown) => ({ method: "PATCH", json });
    try {
      await t.step("POST /api/topics takes a retention, GET shows it in force", async () => {
        const created = await request(`${api}/topics`, {
          method: "POST",
          json: { name: "clicks", retention: { max_messages: 50, segment_bytes: 4096 } },
        });
        assert.deepEqual([created.status, created.body], [201, {
          status: "topic_created",
          topic: "clicks",
        }]);
        const described = await request(`${api}/topics/clicks`);
        assert.deepEqual(described.body.retention, { max_messages: 50, segment_bytes: 4096 });
        assert.equal(described.body.messages, 0);
      });

      await t.step("PATCH changes limits and answers the retention in force", async () => {
        const altered = await request(
          `${api}/topics/clicks`,
          patch({
            retention: { max_bytes: 1_000_000, max_messages: null },
          }),
        );
        assert.deepEqual([altered.status, altered.body], [200, {
          status: "topic_altered",
          topic: "clicks",
          retention: { max_bytes: 1_000_000, segment_bytes: 4096 },
        }]);
        const back = await request(
          `${api}/topics/clicks`,
          patch({
            retention: { max_messages: 50, max_bytes: null },
          }),
        );
        assert.deepEqual(back.body.retention, { max_messages: 50, segment_bytes: 4096 });
        assert.deepEqual(
          (await request(`${api}/topics/clicks`)).body.retention,
          back.body.retention,
        );
      });

      await t.step("bad changes are refused with their status", async () => {
        const cases: [string, unknown, number, string, RegExp][] = [
          ["unknown field", { retention: { max_bytes: 1 }, color: 1 }, 400, "bad_request", /color/],
          ["no retention", {}, 400, "bad_request", /'retention' is missing/],
          ["empty change", { retention: {} }, 400, "bad_request", /at least one/],
          ["zero", { retention: { max_bytes: 0 } }, 400, "bad_request", /positive integer/],
          ["a string", { retention: { max_age_ms: "1d" } }, 400, "bad_request", /max_age_ms/],
        ];
        for (const [what, body, status, code, error] of cases) {
          const answer = await request(`${api}/topics/clicks`, patch(body));
          assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body)}`);
          assert.equal(answer.body.status, code, what);
          assert.match(answer.body.error, error, what);
        }
        const missing = await request(`${api}/topics/nope`, patch({ retention: { max_bytes: 1 } }));
        assert.deepEqual([missing.status, missing.body.status], [404, "topic_not_found"]);
      });

      await t.step("reading below retention starts at the first retained offset", async () => {
        const message = "y".repeat(200);
        for (let batch = 0; batch < 20; batch++) {
          const published = await request(`${api}/topics/clicks/messages`, {
            method: "POST",
            json: Array(10).fill(message),
          });
          assert.equal(published.status, 200);
        }
        const described = await waitFor("retention to delete old segments", async () => {
          const answer = await request(`${api}/topics/clicks`);
          // A pass during the publishes may have deleted less: wait for the final decision.
          return answer.body.messages < 100 ? answer.body : undefined;
        }, 30_000);
        assert.ok(described.messages >= 50, `kept ${described.messages} of max_messages 50`);
        assert.equal(described.messages, described.next_offset - described.first_offset);
        const fetched = await request(`${api}/topics/clicks/messages?from=0&max=2`);
        assert.equal(fetched.body.first_offset, described.first_offset);
        assert.deepEqual(
          fetched.body.messages.map((item: { offset: number }) => item.offset),
          [described.first_offset, described.first_offset + 1],
        );
        const events = await EventReader.open(`${api}/topics/clicks/events?from=0`);
        try {
          const subscribed = await events.next();
          assert.equal(subscribed.type, "subscribed");
          const first = (await events.next()).data;
          assert.equal(first.offset, described.first_offset);
          assert.equal(first.skipped, described.first_offset, "the stream says what it skipped");
        } finally {
          await events.close();
        }
        const earliest = await EventReader.open(`${api}/topics/clicks/events?from=earliest`);
        try {
          assert.equal((await earliest.next()).type, "subscribed");
          const first = (await earliest.next()).data;
          assert.ok(first.offset >= described.first_offset);
          assert.equal(first.skipped, undefined, "'earliest' skips nothing");
        } finally {
          await earliest.close();
        }
      });
    } finally {
      await peer.stop();
    }
  });
}
