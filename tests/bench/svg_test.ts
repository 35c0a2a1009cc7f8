import assert from "node:assert/strict";
import { XMLValidator } from "fast-xml-parser";
import { LatencyHistogram } from "../../lib/bench/histogram.ts";
import {
  barChart,
  binValues,
  formatNumber,
  histogramChart,
  lineChart,
  nines,
  percentileChart,
  pointChart,
  stepChart,
} from "../../lib/bench/svg.ts";
import { renderPng, renderSkipReason } from "./_render_png.ts";

function latencies(): LatencyHistogram {
  const histogram = new LatencyHistogram();
  for (let index = 1; index <= 10_000; index++) histogram.recordMicroseconds(index * 3 + 200);
  return histogram;
}

/** One chart of each kind, with text that needs escaping. */
const charts: Record<string, () => string> = {
  line: () =>
    lineChart({
      title: 'Throughput <during> kills & "faults"',
      xLabel: "Time (s)",
      yLabel: "Messages/s",
      series: [
        { name: "acknowledged", points: [[0, 900], [1, 950], [2, 10], [3, 940]] },
        { name: "delivered", points: [[0, 880], [1, 930], [2, 0], [3, 920]] },
      ],
      markers: [{ x: 1.5, label: "leader 'p1' killed" }],
    }),
  lineLog: () =>
    lineChart({
      title: "Fetch latency",
      xLabel: "Iteration",
      yLabel: "Latency (ms)",
      yLog: true,
      series: [{ name: "fetch", points: [[1, 0.2], [2, 0], [3, 40], [4, 2]] }],
    }),
  bar: () =>
    barChart({
      title: "pubsub vs NATS",
      xLabel: "Metric",
      yLabel: "Latency (ms)",
      categories: ["publish p50", "publish p99", "a rather long category name"],
      series: [{ name: "pubsub", values: [1.2, 8.4, 3] }, { name: "NATS", values: [0.6, 3.1, 2] }],
    }),
  barLog: () =>
    barChart({
      title: "pubsub ÷ the others",
      xLabel: "Target",
      yLabel: "Ratio",
      logY: true,
      categories: ["pipelined", "p99", "reported"],
      series: [
        { name: "measured ratio", values: [74.2, 0.27, 1.3] },
        { name: "goal", values: [2, 1, 0] },
      ],
    }),
  percentile: () =>
    percentileChart({
      title: "Publish latency by percentile",
      series: [{ name: "sequential", points: latencies().percentileSeries() }],
    }),
  histogram: () =>
    histogramChart({
      title: "Failover windows",
      xLabel: "Unavailability (ms)",
      values: [812, 930, 1004, 1120, 870, 990, 1010],
    }),
  histogramTwoValues: () =>
    histogramChart({
      title: "Failover windows",
      xLabel: "Unavailability after a leader kill (ms)",
      yLabel: "Kills",
      values: [4359.76, 1333.28],
      caption: "How many of the n=2 leader kills left the topic unavailable for how long.",
    }),
  points: () =>
    pointChart({
      title: "Fetch latency",
      xLabel: "Iteration",
      yLabel: "Latency (ms)",
      series: [{ name: "fetch", points: [[1, 25.6], [2, 2.61], [3, 3.1]] }],
      caption: iterationCaption,
    }),
  steps: () =>
    stepChart({
      title: "Publish throughput over time",
      xLabel: "Time since start (s)",
      yLabel: "Acknowledged messages per second",
      series: [{
        name: "publish",
        steps: [
          { from: 0, to: 1, value: 6000 },
          { from: 1, to: 1.1, value: 150 },
          { from: 1.1, to: 1.2, value: 0 },
          { from: 1.2, to: 2.2, value: 4600 },
          { from: 3, to: 4, value: 5000 },
        ],
      }],
      markers: [{ x: 1.02, label: "kill 1: node 2" }],
      caption: "Acknowledged publishes per second, 1 s buckets and 100 ms buckets around kills.",
    }),
  empty: () => lineChart({ title: "Nothing yet", xLabel: "x", yLabel: "y", series: [] }),
};

/** Long enough to wrap onto a second line at 800 pixels. */
const iterationCaption = "One point per iteration, n=3: the time to fetch every message of " +
  "the iteration's topic. Points are not joined: iterations are independent, and the first " +
  "ones include warm-up.";

/** Labels of the y axis ticks (right-aligned tick texts without other attributes). */
function yTickLabels(svg: string): string[] {
  return [...svg.matchAll(/<text x="[\d.]+" y="[\d.]+" text-anchor="end">([^<]*)<\/text>/g)]
    .map((match) => match[1]);
}

/** The caption's lines, in order. */
function captionOf(svg: string): string[] {
  const group = svg.match(/<g class="caption"[^>]*>(.*?)<\/g>/)?.[1] ?? "";
  return [...group.matchAll(/<text [^>]*>([^<]*)<\/text>/g)].map((match) => match[1]);
}

for (const [kind, draw] of Object.entries(charts)) {
  Deno.test(`${kind} chart is well-formed XML with an svg root in sans-serif`, () => {
    const svg = draw();
    assert.equal(XMLValidator.validate(svg), true);
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" [^>]*font-family="sans-serif"/);
  });
  Deno.test(`${kind} chart is byte-identical when drawn twice`, () => {
    assert.equal(draw(), draw());
  });
}

Deno.test("lineChart escapes text and draws markers and a legend for two series", () => {
  const svg = charts.line();
  assert.ok(svg.includes("Throughput &lt;during&gt; kills &amp; &quot;faults&quot;"));
  assert.ok(svg.includes("leader &apos;p1&apos; killed"));
  assert.ok(svg.includes('stroke-dasharray="5 4"'));
  assert.ok(svg.includes(">acknowledged</text>") && svg.includes(">delivered</text>"));
  assert.ok(svg.includes(">Time (s)</text>") && svg.includes(">Messages/s</text>"));
});

Deno.test("lineChart with one series has no legend", () => {
  const svg = lineChart({
    title: "t",
    xLabel: "x",
    yLabel: "y",
    series: [{ name: "only-series", points: [[0, 1], [1, 2]] }],
  });
  assert.ok(!svg.includes("only-series"));
});

Deno.test("lineChart with a log axis labels ticks as plain numbers, not SI prefixes", () => {
  const svg = charts.lineLog();
  assert.ok(svg.includes(">0.1</text>") && svg.includes(">100</text>"));
  assert.ok(!svg.includes(">100m</text>"));
});

Deno.test("percentileChart labels the x axis in nines", () => {
  const svg = charts.percentile();
  for (const label of ["0%", "90%", "99%", "99.9%", "99.99%"]) {
    assert.ok(svg.includes(`>${label}</text>`), `missing tick ${label}`);
  }
  assert.ok(svg.includes(">Latency (ms)</text>"));
});

Deno.test("nines maps 90, 99 and 99.9 percent to 1, 2 and 3", () => {
  assert.equal(nines(0), 0);
  assert.ok(Math.abs(nines(90) - 1) < 1e-9);
  assert.ok(Math.abs(nines(99) - 2) < 1e-9);
  assert.ok(Math.abs(nines(99.9) - 3) < 1e-9);
  assert.ok(Number.isFinite(nines(100)));
});

Deno.test("barChart rejects a series with the wrong number of values", () => {
  assert.throws(
    () =>
      barChart({
        title: "t",
        xLabel: "x",
        yLabel: "y",
        categories: ["a", "b"],
        series: [{ name: "s", values: [1] }],
      }),
    RangeError,
  );
});

Deno.test("barChart labels a narrow bar with one digit less rather than not at all", () => {
  // As bench/compare.ts draws its targets: nine pairs of bars beside a legend.
  const categories = Array.from({ length: 9 }, (_, index) => `target ${index}`);
  const svg = barChart({
    title: "t",
    xLabel: "x",
    yLabel: "y",
    categories,
    series: [
      { name: "measured ratio", values: categories.map((_, index) => index === 5 ? 0.893 : 1.5) },
      { name: "goal (0 = none)", values: categories.map(() => 1) },
    ],
  });
  assert.ok(!svg.includes(">0.893</text>"), "too wide for its bar at three digits");
  assert.ok(svg.includes(">0.89</text>"), "the 0.893 bar is labelled 0.89");
});

Deno.test("barChart with logY draws ratios far apart as bars, and a 0 as none", () => {
  const svg = charts.barLog();
  const rects = /<rect x="[^"]+" y="[^"]+" width="([^"]+)" height="([^"]+)"/g;
  const heights = [...svg.matchAll(rects)]
    .filter((match) => match[1] !== "16") // the legend's swatches
    .map((match) => ({ height: Number(match[2]) }));
  // Five bars: three measured, two goals (the 0 goal is none).
  assert.equal(heights.length, 5, JSON.stringify(heights));
  const [pipelined, p99] = heights;
  assert.ok(p99.height > 0, "a ratio under 1 still has a bar");
  assert.ok(pipelined.height > p99.height * 2, "74x is drawn far taller than 0.27x");
});

Deno.test("binValues counts each value once and includes the top edge in the last bin", () => {
  assert.deepEqual(binValues([0, 5, 9.99, 10, 20, 25], [0, 10, 20]), [3, 2]);
  assert.deepEqual(binValues([], [0, 1]), [0]);
});

Deno.test("formatNumber is the report's number format, re-exported from statistics.ts", () => {
  assert.equal(formatNumber(12_345.6), "12,346");
});

Deno.test("an empty chart says there is no data", () => {
  assert.ok(charts.empty().includes(">No data</text>"));
});

for (const [kind, draw] of Object.entries(charts)) {
  Deno.test({
    name: renderSkipReason === undefined
      ? `${kind} chart renders to a PNG of its own size with rsvg-convert`
      : `${kind} chart renders to a PNG (skipped: ${renderSkipReason})`,
    ignore: renderSkipReason !== undefined,
    fn: async () => {
      const rendered = await renderPng(`svg_${kind}`, draw());
      assert.deepEqual([rendered.width, rendered.height], [800, 420]);
    },
  });
}

Deno.test("lineChart labels a whole-number x axis (iterations) with whole numbers only", () => {
  const svg = lineChart({
    title: "Publish throughput",
    xLabel: "Iteration",
    yLabel: "Messages per second",
    series: [{ name: "pubsub", points: [[1, 2300], [2, 3550], [3, 5080]] }],
  });
  const xLabels = [...svg.matchAll(/>(\d+(?:\.\d+)?)<\/text>/g)].map((match) => match[1]);
  assert.ok(xLabels.includes("2"));
  assert.ok(!xLabels.some((label) => /^[123]\.\d$/.test(label)), `fractional ticks: ${xLabels}`);
});

Deno.test("histogramChart labels its count axis with whole numbers, never 0.0 and 1.0", () => {
  const labels = yTickLabels(charts.histogramTwoValues());
  assert.deepEqual(labels, ["0", "1"]);
  const many = histogramChart({
    title: "t",
    xLabel: "x",
    values: [1, 1, 1, 1, 1, 1, 1, 2, 2, 3],
  });
  const counts = yTickLabels(many);
  assert.ok(counts.length >= 3, `ticks: ${counts}`);
  assert.ok(counts.every((label) => /^\d+$/.test(label)), `fractional count ticks: ${counts}`);
});

Deno.test("pointChart draws one marker per iteration and no line between them", () => {
  const svg = charts.points();
  assert.ok(!svg.includes("<path"), "a per-iteration chart has no path");
  assert.equal([...svg.matchAll(/<circle /g)].length, 3);
  const xLabels = [...svg.matchAll(/text-anchor="middle">(\d+)<\/text>/g)].map((match) => match[1]);
  assert.deepEqual(xLabels, ["1", "2", "3"]);
});

Deno.test("pointChart keeps the first and last iteration off the frame", () => {
  const svg = charts.points();
  const xs = [...svg.matchAll(/<circle cx="([\d.]+)"/g)].map((match) => Number(match[1]));
  // The axes group draws the x axis, then the y axis from the plot's left edge.
  const axes = svg.match(/<g stroke="#333333" stroke-width="1">(.*?)<\/g>/)![1];
  const axisLeft = Number([...axes.matchAll(/<line x1="([\d.]+)"/g)][1][1]);
  assert.ok(xs[0] - axisLeft > 20, `first point at ${xs[0]}, axis at ${axisLeft}`);
});

Deno.test("stepChart draws flat buckets joined by vertical edges, with a gap where buckets do not adjoin", () => {
  const svg = charts.steps();
  const outline = svg.match(/<path d="([^"]+)" fill="none"/)![1];
  assert.match(outline, /^(M[\d.]+,[\d.]+(H[\d.]+|V[\d.]+)+)+$/);
  assert.equal([...outline.matchAll(/M/g)].length, 2, "the 2.2-3 s gap starts a new subpath");
  assert.equal([...outline.matchAll(/H/g)].length, 5, "one flat segment per bucket");
  assert.ok(svg.includes("kill 1: node 2"));
});

Deno.test("every chart with a caption prints it under the plot, wrapped to the width", () => {
  const svg = charts.points();
  const lines = captionOf(svg);
  assert.ok(lines.length >= 2, `caption lines: ${lines}`);
  assert.equal(lines.join(" "), iterationCaption.replaceAll("'", "&apos;"));
  const captionY = Number(svg.match(/<g class="caption"[^>]*><text x="[\d.]+" y="([\d.]+)"/)![1]);
  const xTitleY = Number(
    svg.match(/<text x="[\d.]+" y="([\d.]+)" text-anchor="middle" font-size="13">Iteration</)![1],
  );
  assert.ok(captionY > xTitleY, `caption at ${captionY} is under the axis title at ${xTitleY}`);
  for (const kind of ["histogramTwoValues", "steps"]) {
    assert.equal(captionOf(charts[kind]()).length, 1, `${kind} has a one-line caption`);
  }
  assert.deepEqual(captionOf(charts.line()), [], "no caption, no caption group");
});
