import assert from "node:assert/strict";
import { describeMachine, writeReport } from "../../lib/bench/report.ts";
import { renderPng, renderSkipReason } from "./_render_png.ts";
import { quickRun, syntheticRun, testMachine } from "./_synthetic_run.ts";

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
      assert.ok(document.includes(String(Number(p99!.toPrecision(3)))), `p99 ${p99} appears`);
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

/** The rows of the `index`-th Markdown table whose header starts with `firstHeader`, as cells. */
function markdownTable(markdown: string, firstHeader: string, index = 0): string[][] {
  const lines = markdown.split("\n");
  const starts = lines.flatMap((line, at) => line.startsWith(`| ${firstHeader} |`) ? [at] : []);
  const start = starts[index];
  assert.ok(start !== undefined, `no table ${index} starting with ${firstHeader}`);
  const rows: string[][] = [];
  for (let at = start; at < lines.length && lines[at].startsWith("|"); at++) {
    if (at !== start + 1) rows.push(lines[at].slice(2, -2).split(" | "));
  }
  return rows;
}

Deno.test("writeReport names statistics as the text output does and leaves unsupported percentiles blank", async () => {
  await withReport((_directory, _html, markdown) => {
    const [header, sequential, pipelined] = markdownTable(markdown, "Operation");
    assert.deepEqual(header, [
      "Operation",
      "Unit",
      "n",
      "min",
      "mean",
      "median",
      "p90",
      "p99",
      "p99.9",
      "max",
    ]);
    assert.equal(sequential[2], "463");
    assert.notEqual(sequential[7], "–", "463 samples support a p99");
    assert.equal(sequential[8], "–", "463 samples do not support a p99.9");
    assert.notEqual(pipelined[8], "–", "16,128 samples support a p99.9");
    const [failoverHeader, failover] = markdownTable(markdown, "Measure", 1);
    assert.deepEqual(failoverHeader, [
      "Measure",
      "Unit",
      "n",
      "min",
      "mean",
      "median",
      "p90",
      "p99",
      "max",
    ]);
    assert.deepEqual(failover, [
      "Unavailability after a leader kill",
      "ms",
      "2",
      "1,333",
      "2,847",
      "–",
      "–",
      "–",
      "4,360",
    ]);
    assert.ok(
      markdown.includes(
        "–: too few samples (n) for this statistic. A percentile needs one sample above it and one below (median 3, p90 10, p99 100, p99.9 1,000)",
      ),
    );
    assert.ok(!markdown.includes("p999"), "tables say p99.9, as the text output does");
  }, quickRun());
});

Deno.test("writeReport draws per-iteration series as points and throughput over time as steps", async () => {
  await withReport(async (directory) => {
    for (
      const file of ["topic_creation_latency.svg", "publish_throughput.svg", "fetch_latency.svg"]
    ) {
      const svg = await Deno.readTextFile(`${directory}/${file}`);
      assert.ok(!svg.includes("<path"), `${file} joins no points`);
      assert.equal([...svg.matchAll(/<circle /g)].length, 3, `${file} has one point per iteration`);
    }
    const throughput = await Deno.readTextFile(`${directory}/throughput_over_time.svg`);
    const outline = throughput.match(/<path d="([^"]+)" fill="none"/)![1];
    assert.match(outline, /^M[\d.]+,[\d.]+((H|V)[\d.]+)+$/, "one run of flat steps");
    const widths = [...outline.matchAll(/H([\d.]+)/g)].map((match) => Number(match[1]))
      .map((x, index, all) => index === 0 ? Number.NaN : x - all[index - 1]).slice(1);
    assert.ok(Math.min(...widths) < Math.max(...widths) / 5, "buckets are finer around kills");
    assert.ok(throughput.includes("kill 1: node 2") && throughput.includes("kill 2: node 1"));
  }, quickRun());
});

Deno.test("writeReport puts a sentence with the sample count under every chart", async () => {
  await withReport(async (directory, html, markdown) => {
    for (const file of expectedCharts) {
      const svg = await Deno.readTextFile(`${directory}/${file}`);
      const group = svg.match(/<g class="caption"[^>]*>(.*?)<\/g>/)?.[1];
      assert.ok(group !== undefined, `${file} has a caption`);
      const caption = [...group.matchAll(/>([^<]+)<\/text>/g)].map((match) => match[1]).join(" ");
      assert.ok(
        /n=\d|\d+ workload metrics/.test(caption),
        `${file} caption gives a count: ${caption}`,
      );
      assert.ok(caption.endsWith("."), `${file} caption is a sentence: ${caption}`);
    }
    assert.ok(html.includes('alt="Fetch latency. One point per iteration, n=20: '));
    assert.ok(
      markdown.includes(
        "![Failover windows. How many of the n=30 leader kills with an acknowledged publish",
      ),
    );
  });
});

for (const [name, run] of [["full", syntheticRun()], ["quick", quickRun()]] as const) {
  Deno.test({
    name: renderSkipReason === undefined
      ? `every chart of a ${name} report renders to a PNG with rsvg-convert`
      : `every chart of a ${name} report renders to a PNG (skipped: ${renderSkipReason})`,
    ignore: renderSkipReason !== undefined,
    fn: async () => {
      await withReport(async (directory) => {
        for (const file of run.comparison ? expectedCharts : expectedCharts.slice(0, -1)) {
          const svg = await Deno.readTextFile(`${directory}/${file}`);
          const rendered = await renderPng(`report_${name}_${file.replace(".svg", "")}`, svg);
          assert.deepEqual([rendered.width, rendered.height], [800, 420], file);
        }
      }, run);
    },
  });
}

Deno.test("writeReport says so under the failover charts when no leader was killed", async () => {
  const run = {
    ...quickRun(),
    throughputOverTime: { steps: [], kills: [] },
    failoverWindowsMs: [],
  };
  await withReport(async (directory) => {
    for (const file of ["throughput_over_time.svg", "failover_windows.svg"]) {
      const svg = await Deno.readTextFile(`${directory}/${file}`);
      assert.ok(svg.includes(">No data</text>"), `${file} has no data`);
      assert.ok(svg.includes("The leader-kill workload did not run (n=0 kills"), file);
    }
  }, run);
});
