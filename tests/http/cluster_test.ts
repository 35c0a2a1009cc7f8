/**
 * The HTTP API of a 3-peer cluster (with a cluster secret, as `pubsub
 * cluster` runs): any peer answers any request by forwarding to the topic's
 * leader, concurrent publishers through every peer get dense, unique
 * offsets with idempotent retries stored once, and a topic without a
 * quorum answers 503 with Retry-After.
 */
import assert from "node:assert/strict";
import { waitFor } from "../_helpers/cluster_process.ts";
import { request, startHttpCluster } from "./_http_cluster.ts";

const workers = 30;
const publishesPerWorker = 20;

Deno.test("any peer answers any HTTP request, under concurrent load, and 503 without a quorum", async (t) => {
  const cluster = await startHttpCluster(3, { args: () => ["--request-timeout", "1500"] });
  const urls = [1, 2, 3].map((id) => cluster.url(id));
  try {
    await t.step("a topic created on one peer is the same topic on every peer", async () => {
      const created = await request(`${urls[1]}/api/topics`, {
        method: "POST",
        json: { name: "load", replication_factor: 3 },
      });
      assert.equal(created.status, 201);
      const descriptions = await waitFor("every peer to describe 'load' alike", async () => {
        const answers = await Promise.all(urls.map((url) => request(`${url}/api/topics/load`)));
        const leaders = new Set(answers.map((answer) => answer.body.leader));
        return answers.every((answer) => answer.status === 200) && leaders.size === 1 &&
          answers;
      });
      assert.deepEqual(descriptions[0].body.replicas, [1, 2, 3]);
      const nodes = descriptions.map((answer) => answer.headers.get("x-pubsub-node"));
      assert.deepEqual(nodes, ["1", "2", "3"]);
      for (const url of urls) {
        const status = await request(`${url}/api/cluster`);
        assert.equal(status.body.nodes.length, 3);
        assert.ok(status.body.meta_leader >= 1);
      }
    });

    await t.step(
      `${workers} concurrent HTTP publishers through every peer get dense offsets`,
      async () => {
        const offsets: number[] = [];
        const started = performance.now();
        await Promise.all(Array.from({ length: workers }, async (_, worker) => {
          const url = urls[worker % 3];
          const idempotent = worker % 2 === 0;
          for (let index = 0; index < publishesPerWorker; index++) {
            const send = () =>
              request(`${url}/api/topics/load/messages`, {
                method: "POST",
                body: `w${worker}-${index}`,
                headers: idempotent
                  ? { "producer-id": `w${worker}`, "sequence": String(index) }
                  : {},
              });
            const answer = await send();
            assert.equal(answer.status, 200, JSON.stringify(answer.body));
            offsets.push(answer.body.offset);
            if (idempotent) {
              // A retry after a lost answer: stored once, answered with the same offset.
              const retried = await send();
              assert.equal(retried.body.offset, answer.body.offset);
            }
          }
        }));
        const total = workers * publishesPerWorker;
        const seconds = (performance.now() - started) / 1000;
        console.log(
          `${total} publishes (+${total / 2} retries) over HTTP in ${seconds.toFixed(1)} s`,
        );
        assert.deepEqual(offsets.sort((a, b) => a - b), Array.from({ length: total }, (_, i) => i));
        for (const url of urls) {
          const fetched = await request(`${url}/api/topics/load/messages?from=0&max=10000`);
          assert.equal(fetched.body.next_offset, total);
          const messages = fetched.body.messages.map((item: { message: string }) => item.message);
          assert.equal(new Set(messages).size, total);
          // Each worker's messages keep their order.
          for (let worker = 0; worker < workers; worker++) {
            const own = messages.filter((message: string) => message.startsWith(`w${worker}-`));
            assert.deepEqual(
              own,
              own.slice().sort((a: string, b: string) =>
                Number(a.split("-")[1]) - Number(b.split("-")[1])
              ),
            );
          }
        }
      },
    );

    await t.step(
      "without a quorum a publish answers 503 unavailable with Retry-After",
      async () => {
        const survivor = 1;
        await Promise.all([2, 3].map((id) => cluster.peer(id).kill("SIGKILL")));
        const answer = await request(`${urls[survivor - 1]}/api/topics/load/messages`, {
          method: "POST",
          body: "no quorum",
        });
        assert.equal(answer.status, 503, JSON.stringify(answer.body));
        assert.equal(answer.body.status, "unavailable");
        assert.equal(answer.headers.get("retry-after"), "1");
        const status = await request(`${urls[survivor - 1]}/api/cluster`);
        assert.equal(status.status, 200);
      },
    );
  } finally {
    await cluster.dispose();
  }
});
