import assert from "node:assert/strict";
import {
  createBrokerMetrics,
  droppedLabelSetsMetricName,
  labelSetsMax,
  metricsContentType,
  MetricsRegistry,
  serveMetrics,
} from "../../lib/peer/metrics.ts";

function sampleLines(text: string, prefix: string): string[] {
  return text.split("\n").filter((line) => line.startsWith(prefix));
}

Deno.test("MetricsRegistry renders counters and gauges with HELP, TYPE and sorted label sets", () => {
  const registry = new MetricsRegistry();
  const requests = registry.counter("requests_total", "Requests handled", ["action", "status"]);
  const connections = registry.gauge("connections", "Open connections");
  requests.inc({ status: "ok", action: "publish" }, 2);
  requests.inc({ action: "fetch", status: "ok" });
  connections.set({}, 5);
  connections.add({}, -2);
  const text = registry.render();
  assert.ok(
    text.includes("# HELP requests_total Requests handled\n# TYPE requests_total counter\n"),
  );
  assert.deepEqual(sampleLines(text, "requests_total"), [
    'requests_total{action="fetch",status="ok"} 1',
    'requests_total{action="publish",status="ok"} 2',
  ]);
  assert.ok(text.includes("# TYPE connections gauge\nconnections 3\n"));
  assert.ok(text.endsWith("\n"));
});

Deno.test("MetricsRegistry escapes label values and help text", () => {
  const registry = new MetricsRegistry();
  registry.gauge("lag", 'Lag with a \\ and a\nnewline and "quotes"', ["topic"])
    .set({ topic: 'a"b\\c\nd' }, 1);
  const text = registry.render();
  assert.ok(text.includes('# HELP lag Lag with a \\\\ and a\\nnewline and "quotes"\n'));
  assert.ok(text.includes('lag{topic="a\\"b\\\\c\\nd"} 1\n'));
});

Deno.test("MetricsRegistry runs its collectors at every render, so gauges show the state at the scrape", () => {
  const registry = new MetricsRegistry();
  const terms = registry.gauge("raft_term", "Term", ["group"]);
  let groups = new Map([["a", 1], ["b", 2]]);
  let collected = 0;
  const stop = registry.onCollect(() => {
    collected++;
    terms.clear();
    for (const [group, term] of groups) terms.set({ group }, term);
  });
  assert.equal(collected, 0, "nothing runs between scrapes");
  assert.deepEqual(sampleLines(registry.render(), "raft_term{"), [
    'raft_term{group="a"} 1',
    'raft_term{group="b"} 2',
  ]);
  groups = new Map([["b", 3]]);
  assert.deepEqual(sampleLines(registry.render(), "raft_term{"), ['raft_term{group="b"} 3']);
  assert.equal(collected, 2);
  stop();
  registry.render();
  assert.equal(collected, 2, "a removed collector runs no more");
});

Deno.test("Histogram renders cumulative buckets, +Inf, sum and count", () => {
  const registry = new MetricsRegistry();
  const latency = registry.histogram("latency_seconds", "Latency", { buckets: [0.01, 0.1, 1] });
  for (const seconds of [0.005, 0.01, 0.05, 0.5, 3]) latency.observe(seconds);
  assert.deepEqual(sampleLines(registry.render(), "latency_seconds"), [
    'latency_seconds_bucket{le="0.01"} 2',
    'latency_seconds_bucket{le="0.1"} 3',
    'latency_seconds_bucket{le="1"} 4',
    'latency_seconds_bucket{le="+Inf"} 5',
    "latency_seconds_sum 3.565",
    "latency_seconds_count 5",
  ]);
});

Deno.test("MetricsRegistry rejects bad names, duplicate names, bad buckets and wrong labels", () => {
  const registry = new MetricsRegistry();
  assert.throws(() => registry.counter("bad-name", "x"), RangeError);
  assert.throws(() => registry.counter("ok_total", "x", ["__reserved"]), RangeError);
  registry.counter("once_total", "x");
  assert.throws(() => registry.gauge("once_total", "x"), /already registered/);
  assert.throws(() => registry.histogram("h", "x", { buckets: [1, 1] }), RangeError);
  assert.throws(() => registry.histogram("h", "x", { buckets: [] }), RangeError);
  const counter = registry.counter("labelled_total", "x", ["topic"]);
  assert.throws(() => counter.inc({ other: "a" }), TypeError);
  assert.throws(() => counter.inc({ topic: "a" }, -1), RangeError);
});

Deno.test("MetricsRegistry drops label sets above labelSetsMax and counts them", () => {
  const registry = new MetricsRegistry();
  const lag = registry.gauge("lag_entries", "Lag", ["topic"]);
  for (let index = 0; index <= labelSetsMax; index++) lag.set({ topic: `t${index}` }, index);
  const text = registry.render();
  assert.equal(sampleLines(text, "lag_entries{").length, labelSetsMax);
  assert.ok(text.includes(`${droppedLabelSetsMetricName}{metric="lag_entries"} 1\n`));
  assert.equal(lag.value({ topic: `t${labelSetsMax}` }), 0);
});

Deno.test("createBrokerMetrics declares every broker metric name", () => {
  const metrics = createBrokerMetrics();
  const text = metrics.registry.render();
  for (
    const line of [
      "# TYPE pubsub_requests_total counter",
      "# TYPE pubsub_publish_latency_seconds histogram",
      "# TYPE pubsub_fetch_latency_seconds histogram",
      "# TYPE pubsub_raft_term gauge",
      "# TYPE pubsub_leader_changes_total counter",
      "# TYPE pubsub_replica_lag_entries gauge",
      "# TYPE pubsub_bytes_stored gauge",
      "# TYPE pubsub_connections gauge",
    ]
  ) {
    assert.ok(text.includes(line + "\n"), `missing ${line}`);
  }
});

Deno.test("serveMetrics answers GET /metrics over HTTP and 404 elsewhere", async () => {
  const metrics = createBrokerMetrics();
  metrics.requests.inc({ action: "publish", status: "ok" });
  metrics.raftTerm.set({ group: "meta" }, 4);
  const server = serveMetrics(0, metrics.registry);
  try {
    assert.ok(server.port > 0);
    const response = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), metricsContentType);
    const body = await response.text();
    assert.ok(body.includes('pubsub_requests_total{action="publish",status="ok"} 1\n'));
    assert.ok(body.includes('pubsub_raft_term{group="meta"} 4\n'));
    const missing = await fetch(`http://127.0.0.1:${server.port}/other`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const posted = await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: "POST" });
    assert.equal(posted.status, 405);
    await posted.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("serveMetrics rejects a port outside 0..65535", () => {
  assert.throws(
    () => serveMetrics(70000, new MetricsRegistry()),
    new RangeError(
      "Cannot serve metrics as 'port' must be an integer between 0 and 65535: current value is 70000",
    ),
  );
});

Deno.test("Label sets whose values hold NULs keep separate values", () => {
  const registry = new MetricsRegistry();
  const counter = registry.counter("nul_total", "Label values with NULs", ["a", "b"]);
  counter.inc({ a: "x\u0000", b: "" });
  counter.inc({ a: "x", b: "\u0000" }, 2);
  counter.inc({ a: "x", b: "" }, 5);
  assert.equal(counter.value({ a: "x\u0000", b: "" }), 1);
  assert.equal(counter.value({ a: "x", b: "\u0000" }), 2);
  assert.equal(counter.value({ a: "x", b: "" }), 5);
});
