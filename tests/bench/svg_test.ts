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
} from "../../lib/bench/svg.ts";

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
  empty: () => lineChart({ title: "Nothing yet", xLabel: "x", yLabel: "y", series: [] }),
};

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

Deno.test("binValues counts each value once and includes the top edge in the last bin", () => {
  assert.deepEqual(binValues([0, 5, 9.99, 10, 20, 25], [0, 10, 20]), [3, 2]);
  assert.deepEqual(binValues([], [0, 1]), [0]);
});

Deno.test("formatNumber groups thousands and keeps 3 significant digits below 1000", () => {
  assert.equal(formatNumber(12_345.6), "12,346");
  assert.equal(formatNumber(3.14159), "3.14");
  assert.equal(formatNumber(0.000123456), "0.000123");
  assert.equal(formatNumber(0), "0");
});

Deno.test("an empty chart says there is no data", () => {
  assert.ok(charts.empty().includes(">No data</text>"));
});

/** Whether `rsvg-convert` (Debian package librsvg2-bin) can be run. */
function rsvgAvailable(): boolean {
  try {
    return new Deno.Command("rsvg-convert", { args: ["--version"] }).outputSync().success;
  } catch {
    return false;
  }
}

const canRender = rsvgAvailable();
const pngSignature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

for (const [kind, draw] of Object.entries(charts)) {
  Deno.test({
    name: canRender
      ? `${kind} chart renders to a non-empty PNG with rsvg-convert`
      : `${kind} chart renders to a PNG (skipped: rsvg-convert is not installed, apt-get install librsvg2-bin)`,
    ignore: !canRender,
    fn: async () => {
      const directory = await Deno.makeTempDir({ prefix: "pubsub_svg_" });
      try {
        const source = `${directory}/${kind}.svg`;
        const target = `${directory}/${kind}.png`;
        await Deno.writeTextFile(source, draw());
        const result = await new Deno.Command("rsvg-convert", { args: ["-o", target, source] })
          .output();
        assert.ok(result.success, new TextDecoder().decode(result.stderr));
        const png = await Deno.readFile(target);
        assert.ok(png.length > 1000, `PNG of ${png.length} bytes is too small to hold a chart`);
        assert.deepEqual([...png.subarray(0, 8)], pngSignature);
      } finally {
        await Deno.remove(directory, { recursive: true });
      }
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
