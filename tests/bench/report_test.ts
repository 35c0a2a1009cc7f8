import assert from "node:assert/strict";
import { describeMachine, writeReport } from "../../lib/bench/report.ts";
import { syntheticRun, testMachine } from "./_synthetic_run.ts";

const expectedCharts = [
  "topic_creation_latency.svg",
  "publish_throughput.svg",
  "fetch_latency.svg",
  "latency_percentiles.svg",
  "throughput_over_time.svg",
  "failover_windows.svg",
  "comparison.svg",
];

async function withReport(
  check: (directory: string, html: string, markdown: string) => Promise<void> | void,
  run = syntheticRun(),
): Promise<void> {
  const directory = await Deno.makeTempDir({ prefix: "pubsub_report_" });
  try {
    const written = await writeReport(`${directory}/run`, run, { machine: testMachine });
    assert.deepEqual(written.charts, run.comparison ? expectedCharts : expectedCharts.slice(0, -1));
    const html = await Deno.readTextFile(`${directory}/run/${written.html}`);
    const markdown = await Deno.readTextFile(`${directory}/run/${written.markdown}`);
    await check(`${directory}/run`, html, markdown);
  } finally {
    await Deno.remove(directory, { recursive: true });
  }
}

Deno.test("writeReport writes every chart, index.html and report.md referencing each SVG", async () => {
  await withReport(async (directory, html, markdown) => {
    for (const file of expectedCharts) {
      const svg = await Deno.readTextFile(`${directory}/${file}`);
      assert.ok(svg.startsWith("<svg "), `${file} is an SVG`);
      assert.ok(html.includes(`<img src="${file}"`), `index.html embeds ${file}`);
      assert.ok(markdown.includes(`](${file})`), `report.md links ${file}`);
    }
  });
});

Deno.test("writeReport puts the numbers, configuration, machine and checks in both formats", async () => {
  const run = syntheticRun();
  const p99 = run.latencies.sequentialPublish.summary.p99;
  await withReport((_directory, html, markdown) => {
    for (const document of [html, markdown]) {
      assert.ok(document.includes("replicationFactor"));
      assert.ok(document.includes("6.1.0-test") && document.includes("16 GiB"));
      assert.ok(document.includes("Replica failover") && document.includes("✗ FAIL"));
      assert.ok(document.includes(String(Number(p99.toPrecision(3)))), `p99 ${p99} appears`);
      assert.ok(document.includes("41,000") && document.includes("120,000"));
      assert.ok(document.includes("2.71×"), "ratio 8.4 / 3.1 appears");
      assert.ok(document.includes("2 of 3 passed"));
    }
  }, run);
});

Deno.test("writeReport escapes text for HTML and Markdown", async () => {
  await withReport((_directory, html, markdown) => {
    assert.ok(html.includes("<h1>pubsub bench &lt;3 peers&gt; &amp; friends</h1>"));
    assert.ok(!html.includes("<3 peers>"));
    assert.ok(markdown.startsWith("# pubsub bench \\<3 peers\\> & friends\n"));
    assert.ok(markdown.includes("499 of 500 \\| lagging"), "a | inside a cell is escaped");
  });
});

Deno.test("writeReport leaves out the comparison when there is none", async () => {
  const run = { ...syntheticRun(), comparison: undefined };
  await withReport((directory, html) => {
    assert.ok(!html.includes("comparison.svg") && !html.includes("Comparison with"));
    assert.throws(() => Deno.statSync(`${directory}/comparison.svg`), Deno.errors.NotFound);
  }, run);
});

Deno.test("describeMachine reports the Deno version and CPU count of this process", () => {
  const machine = describeMachine();
  assert.equal(machine.deno, Deno.version.deno);
  assert.equal(machine.cpus, navigator.hardwareConcurrency);
});
