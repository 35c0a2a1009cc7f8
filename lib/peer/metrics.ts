/**
 * A small Prometheus metrics registry and its `/metrics` HTTP endpoint.
 *
 * Counters, gauges and fixed-bucket histograms with labels, rendered in the
 * text exposition format 0.0.4. The broker's own metric names are declared
 * once in {@linkcode createBrokerMetrics} so that dashboards and code agree.
 *
 * Gauges that describe state (terms, lag, stored bytes) are computed when
 * scraped, by collectors (`MetricsRegistry.onCollect`), not on a timer: a
 * peer with thousands of topics then spends nothing on them between scrapes.
 *
 * @module
 */

import { digestToken, tokenMatches } from "./auth.ts";

/** Label values of one sample, by label name. */
export type Labels = Readonly<Record<string, string>>;

/**
 * Label sets one metric keeps at most. A label such as `topic` grows with
 * user input; past this limit new label sets are dropped and counted in
 * `pubsub_metrics_dropped_label_sets_total` instead of growing memory.
 */
export const labelSetsMax = 10_000;

/** Name of the counter of label sets dropped at {@linkcode labelSetsMax}. */
export const droppedLabelSetsMetricName = "pubsub_metrics_dropped_label_sets_total";

/** Content type of the text exposition format 0.0.4. */
export const metricsContentType = "text/plain; version=0.0.4; charset=utf-8";

const metricNamePattern = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelNamePattern = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

type MetricType = "counter" | "gauge" | "histogram";

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  renderSamples(lines: string[]): void;
}

/** One label set's value, with its labels in declared order. */
interface LabelledEntry<T> {
  labels: Labels;
  value: T;
}

/**
 * Keeps one value per label set, bounded by {@linkcode labelSetsMax}. The
 * sets are found through one map per label, in declared order (the last
 * one holds the entries): a lookup runs once per request, and this way it
 * builds no key string and no array.
 */
class LabelledValues<T> {
  #labelNames: readonly string[];
  /** Maps of maps, one level per label name; the entry of a set without labels is `#only`. */
  #tree = new Map<string, unknown>();
  #only: LabelledEntry<T> | undefined;
  #entries: LabelledEntry<T>[] = [];
  #metricName: string;
  #onDrop: () => void;

  constructor(metricName: string, labelNames: readonly string[], onDrop: () => void) {
    this.#metricName = metricName;
    this.#labelNames = labelNames;
    this.#onDrop = onDrop;
  }

  /** The entry of `labels`, created by `create`; undefined when dropped at the limit. */
  entry(labels: Labels, create: () => T): LabelledEntry<T> | undefined {
    const found = this.#find(labels);
    if (found !== undefined) return found;
    if (this.#entries.length >= labelSetsMax) {
      this.#onDrop();
      return undefined;
    }
    // Kept in declared label order so that rendering does not depend on the caller's.
    const ordered = Object.fromEntries(this.#labelNames.map((name) => [name, labels[name]]));
    const created = { labels: ordered, value: create() };
    this.#entries.push(created);
    const names = this.#labelNames;
    if (names.length === 0) {
      this.#only = created;
      return created;
    }
    let level = this.#tree;
    for (let index = 0; index < names.length - 1; index++) {
      const value = labels[names[index]];
      let next = level.get(value) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }
    level.set(labels[names[names.length - 1]], created);
    return created;
  }

  /** The value of `labels` without creating it. */
  get(labels: Labels): T | undefined {
    return this.#find(labels)?.value;
  }

  /** Forgets every label set. */
  clear(): void {
    this.#tree = new Map();
    this.#only = undefined;
    this.#entries = [];
  }

  /** Entries sorted by label values, so that output does not depend on arrival order. */
  sorted(): LabelledEntry<T>[] {
    const names = this.#labelNames;
    return this.#entries
      .map((entry) => ({ order: JSON.stringify(names.map((name) => entry.labels[name])), entry }))
      .sort((left, right) => (left.order < right.order ? -1 : left.order > right.order ? 1 : 0))
      .map(({ entry }) => entry);
  }

  /** The entry of `labels` if there is one; throws unless `labels` are exactly the declared names. */
  #find(labels: Labels): LabelledEntry<T> | undefined {
    const names = this.#labelNames;
    let count = 0;
    for (const _ in labels) count++;
    if (count !== names.length) this.#wrongLabels(labels);
    if (names.length === 0) return this.#only;
    let level: Map<string, unknown> | undefined = this.#tree;
    for (let index = 0; index < names.length; index++) {
      const value = labels[names[index]];
      if (typeof value !== "string") this.#wrongLabels(labels);
      if (level === undefined) continue;
      const next: unknown = level.get(value);
      if (index === names.length - 1) return next as LabelledEntry<T> | undefined;
      level = next as Map<string, unknown> | undefined;
    }
    return undefined;
  }

  #wrongLabels(labels: Labels): never {
    throw new TypeError(
      `Cannot record ${this.#metricName} as its labels must be exactly [${
        this.#labelNames.join(", ")
      }]: current labels are [${Object.keys(labels).join(", ")}]`,
    );
  }
}

/**
 * A value that only goes up (requests served, leader changes).
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./metrics.ts";
 *
 * const requests = new MetricsRegistry().counter("requests_total", "Requests", ["action"]);
 * requests.inc({ action: "publish" });
 * ```
 */
export class Counter implements Metric {
  readonly type = "counter";
  readonly name: string;
  readonly help: string;
  #values: LabelledValues<{ total: number }>;

  constructor(name: string, help: string, labelNames: readonly string[], onDrop: () => void) {
    this.name = name;
    this.help = help;
    this.#values = new LabelledValues(name, labelNames, onDrop);
  }

  /** Adds `amount` (default 1, never negative) to the counter of `labels`. */
  inc(labels: Labels = {}, amount = 1): void {
    if (!(amount >= 0 && Number.isFinite(amount))) {
      throw new RangeError(
        `Cannot increment ${this.name} as 'amount' must be finite and >= 0: current value is ${amount}`,
      );
    }
    const entry = this.#values.entry(labels, () => ({ total: 0 }));
    if (entry !== undefined) entry.value.total += amount;
  }

  /** Current value for `labels`; 0 when never incremented. */
  value(labels: Labels = {}): number {
    return this.#values.get(labels)?.total ?? 0;
  }

  renderSamples(lines: string[]): void {
    for (const { labels, value } of this.#values.sorted()) {
      lines.push(`${this.name}${formatLabels(labels)} ${formatValue(value.total)}`);
    }
  }
}

/**
 * A value that goes up and down (connections, replica lag).
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./metrics.ts";
 *
 * const connections = new MetricsRegistry().gauge("connections", "Open connections");
 * connections.set({}, 3);
 * connections.add({}, -1);
 * ```
 */
export class Gauge implements Metric {
  readonly type = "gauge";
  readonly name: string;
  readonly help: string;
  #values: LabelledValues<{ current: number }>;

  constructor(name: string, help: string, labelNames: readonly string[], onDrop: () => void) {
    this.name = name;
    this.help = help;
    this.#values = new LabelledValues(name, labelNames, onDrop);
  }

  /** Sets the gauge of `labels` to `value`. */
  set(labels: Labels, value: number): void {
    const entry = this.#values.entry(labels, () => ({ current: 0 }));
    if (entry !== undefined) entry.value.current = value;
  }

  /** Adds `delta` (may be negative) to the gauge of `labels`. */
  add(labels: Labels, delta: number): void {
    const entry = this.#values.entry(labels, () => ({ current: 0 }));
    if (entry !== undefined) entry.value.current += delta;
  }

  /** Current value for `labels`; 0 when never set. */
  value(labels: Labels = {}): number {
    return this.#values.get(labels)?.current ?? 0;
  }

  /**
   * Forgets every label set, so that a collector that sets the current
   * ones drops those of groups or topics that are gone.
   */
  clear(): void {
    this.#values.clear();
  }

  renderSamples(lines: string[]): void {
    for (const { labels, value } of this.#values.sorted()) {
      lines.push(`${this.name}${formatLabels(labels)} ${formatValue(value.current)}`);
    }
  }
}

interface HistogramState {
  /** Non-cumulative count per bucket; the last slot is +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

/**
 * Observations (durations in seconds) counted into fixed buckets.
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./metrics.ts";
 *
 * const latency = new MetricsRegistry().histogram("publish_latency_seconds", "Publish latency", {
 *   buckets: [0.001, 0.01, 0.1, 1],
 * });
 * latency.observe(0.004);
 * ```
 */
export class Histogram implements Metric {
  readonly type = "histogram";
  readonly name: string;
  readonly help: string;
  readonly buckets: readonly number[];
  #values: LabelledValues<HistogramState>;

  constructor(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames: readonly string[],
    onDrop: () => void,
  ) {
    this.name = name;
    this.help = help;
    this.buckets = buckets;
    this.#values = new LabelledValues(name, labelNames, onDrop);
  }

  /** Counts one observation of `value` (seconds for latencies). */
  observe(value: number, labels: Labels = {}): void {
    if (Number.isNaN(value)) {
      throw new RangeError(`Cannot observe ${this.name} as the value is NaN`);
    }
    const entry = this.#values.entry(labels, () => ({
      counts: new Array(this.buckets.length + 1).fill(0),
      sum: 0,
      count: 0,
    }));
    if (entry === undefined) return;
    const buckets = this.buckets;
    let slot = 0;
    while (slot < buckets.length && !(value <= buckets[slot])) slot++;
    entry.value.counts[slot]++;
    entry.value.sum += value;
    entry.value.count++;
  }

  renderSamples(lines: string[]): void {
    for (const { labels, value } of this.#values.sorted()) {
      let cumulative = 0;
      const bounds = [...this.buckets, Number.POSITIVE_INFINITY];
      bounds.forEach((upper, slot) => {
        cumulative += value.counts[slot];
        const bucketLabels = { ...labels, le: formatValue(upper) };
        lines.push(`${this.name}_bucket${formatLabels(bucketLabels)} ${cumulative}`);
      });
      lines.push(`${this.name}_sum${formatLabels(labels)} ${formatValue(value.sum)}`);
      lines.push(`${this.name}_count${formatLabels(labels)} ${value.count}`);
    }
  }
}

/** Options of {@linkcode MetricsRegistry.histogram}. */
export interface HistogramOptions {
  /** Upper bounds, strictly increasing and finite; +Inf is added. */
  buckets: readonly number[];
  /** Label names. Default none. */
  labelNames?: readonly string[];
}

/**
 * Holds metrics and renders them in the Prometheus text format.
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./metrics.ts";
 *
 * const registry = new MetricsRegistry();
 * registry.counter("jobs_total", "Jobs done").inc();
 * console.log(registry.render());
 * ```
 */
export class MetricsRegistry {
  #metrics = new Map<string, Metric>();
  #collectors = new Set<() => void>();
  #dropped: Counter;

  constructor() {
    this.#dropped = this.counter(
      droppedLabelSetsMetricName,
      `Label sets not recorded because a metric already held ${labelSetsMax}`,
      ["metric"],
    );
  }

  /** Registers a counter; a name can be registered once. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#register(
      new Counter(name, help, labelNames, this.#onDrop(name)),
      labelNames,
    );
  }

  /** Registers a gauge; a name can be registered once. */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#register(new Gauge(name, help, labelNames, this.#onDrop(name)), labelNames);
  }

  /** Registers a histogram with fixed buckets; a name can be registered once. */
  histogram(name: string, help: string, options: HistogramOptions): Histogram {
    const buckets = options.buckets;
    const increasing = buckets.every((upper, index) =>
      Number.isFinite(upper) && (index === 0 || upper > buckets[index - 1])
    );
    if (buckets.length === 0 || !increasing) {
      throw new RangeError(
        `Cannot register ${name} as 'buckets' must be finite and strictly increasing: current value is [${
          buckets.join(", ")
        }]`,
      );
    }
    const labelNames = options.labelNames ?? [];
    if (labelNames.includes("le")) {
      throw new RangeError(`Cannot register ${name} as the label name 'le' is reserved`);
    }
    return this.#register(
      new Histogram(name, help, buckets, labelNames, this.#onDrop(name)),
      labelNames,
    );
  }

  /**
   * Runs `collector` at the start of every {@linkcode MetricsRegistry.render}
   * (each scrape), to set gauges from the current state; returns a function
   * that removes it.
   *
   * @example
   * ```ts
   * import { MetricsRegistry } from "./metrics.ts";
   *
   * const registry = new MetricsRegistry();
   * const heap = registry.gauge("heap_bytes", "Heap in use");
   * const stop = registry.onCollect(() => heap.set({}, Deno.memoryUsage().heapUsed));
   * registry.render();
   * stop();
   * ```
   */
  onCollect(collector: () => void): () => void {
    const once = () => collector();
    this.#collectors.add(once);
    return () => this.#collectors.delete(once);
  }

  /** Every metric in the text exposition format 0.0.4, in registration order. */
  render(): string {
    for (const collector of this.#collectors) collector();
    const lines: string[] = [];
    for (const metric of this.#metrics.values()) {
      lines.push(`# HELP ${metric.name} ${escapeHelp(metric.help)}`);
      lines.push(`# TYPE ${metric.name} ${metric.type}`);
      metric.renderSamples(lines);
    }
    return lines.join("\n") + "\n";
  }

  #onDrop(name: string): () => void {
    return () => this.#dropped.inc({ metric: name });
  }

  #register<T extends Metric>(metric: T, labelNames: readonly string[]): T {
    if (!metricNamePattern.test(metric.name)) {
      throw new RangeError(
        `Cannot register metric as its name must match ${metricNamePattern}: current value is '${metric.name}'`,
      );
    }
    for (const label of labelNames) {
      if (!labelNamePattern.test(label) || label.startsWith("__")) {
        throw new RangeError(
          `Cannot register ${metric.name} as label names must match ${labelNamePattern} without a leading __: current value is '${label}'`,
        );
      }
    }
    if (this.#metrics.has(metric.name)) {
      throw new RangeError(`Cannot register ${metric.name} as it is already registered`);
    }
    this.#metrics.set(metric.name, metric);
    return metric;
  }
}

/** Latency buckets in seconds: 0.5 ms to 10 s, covering local and WAN clusters. */
export const latencyBucketsSeconds: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** The broker's metrics, named in one place. */
export interface BrokerMetrics {
  registry: MetricsRegistry;
  /** `pubsub_requests_total{action,status}`. */
  requests: Counter;
  /** `pubsub_publish_latency_seconds`: request received to publish acknowledged. */
  publishLatency: Histogram;
  /** `pubsub_fetch_latency_seconds`. */
  fetchLatency: Histogram;
  /** `pubsub_raft_term{group}`. */
  raftTerm: Gauge;
  /** `pubsub_leader_changes_total`. */
  leaderChanges: Counter;
  /** `pubsub_replica_lag_entries{topic}`: leader last index minus slowest follower match. */
  replicaLag: Gauge;
  /** `pubsub_bytes_stored`. */
  bytesStored: Gauge;
  /** `pubsub_connections`. */
  connections: Gauge;
  /** `pubsub_messages_delivered_total{topic}`: messages this peer pushed to subscribers (TCP and HTTP). */
  messagesDelivered: Counter;
}

/**
 * Registers the broker's metrics in `registry` (a new one by default).
 *
 * @example
 * ```ts
 * import { createBrokerMetrics } from "./metrics.ts";
 *
 * const metrics = createBrokerMetrics();
 * metrics.requests.inc({ action: "publish", status: "ok" });
 * metrics.publishLatency.observe(0.0021);
 * ```
 */
export function createBrokerMetrics(registry = new MetricsRegistry()): BrokerMetrics {
  return {
    registry,
    requests: registry.counter("pubsub_requests_total", "Client requests handled", [
      "action",
      "status",
    ]),
    publishLatency: registry.histogram(
      "pubsub_publish_latency_seconds",
      "Time from receiving a publish to acknowledging it, in seconds",
      { buckets: latencyBucketsSeconds },
    ),
    fetchLatency: registry.histogram(
      "pubsub_fetch_latency_seconds",
      "Time to answer a fetch, in seconds",
      { buckets: latencyBucketsSeconds },
    ),
    raftTerm: registry.gauge("pubsub_raft_term", "Current Raft term of each group", ["group"]),
    leaderChanges: registry.counter(
      "pubsub_leader_changes_total",
      "Leader changes observed by this peer",
    ),
    replicaLag: registry.gauge(
      "pubsub_replica_lag_entries",
      "Entries the slowest replica of a topic is behind its leader",
      ["topic"],
    ),
    bytesStored: registry.gauge("pubsub_bytes_stored", "Bytes of log stored on this peer"),
    connections: registry.gauge("pubsub_connections", "Open client and peer connections"),
    messagesDelivered: registry.counter(
      "pubsub_messages_delivered_total",
      "Messages this peer pushed to subscribers",
      ["topic"],
    ),
  };
}

/** Options of {@linkcode serveMetrics}. */
export interface ServeMetricsOptions {
  /** Address to listen on. Default "127.0.0.1": metrics are not public by default. */
  hostname?: string;
  /**
   * When set, requests must carry `Authorization: Bearer <token>`; others get
   * 401. Default: none, so anyone who reaches the port reads the metrics,
   * which name every topic.
   */
  token?: string;
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The port listened on (useful with port 0). */
  readonly port: number;
  /** Stops listening and waits for open requests to finish. */
  close(): Promise<void>;
}

/**
 * Serves `registry` at `GET /metrics` on `port` (0 picks a free port); every
 * other path answers 404. With `options.token`, a request without that
 * Bearer token answers 401 whatever its path.
 *
 * @example
 * ```ts
 * import { createBrokerMetrics, serveMetrics } from "./metrics.ts";
 *
 * const metrics = createBrokerMetrics();
 * const server = serveMetrics(9464, metrics.registry);
 * // ... later
 * await server.close();
 * ```
 */
export function serveMetrics(
  port: number,
  registry: MetricsRegistry,
  options: ServeMetricsOptions = {},
): MetricsServer {
  if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new RangeError(
      `Cannot serve metrics as 'port' must be an integer between 0 and 65535: current value is ${port}`,
    );
  }
  const expected = options.token === undefined ? undefined : digestToken(options.token);
  const server = Deno.serve(
    { port, hostname: options.hostname ?? "127.0.0.1", onListen: () => {} },
    (request) => answer(request, registry, expected),
  );
  return {
    port: server.addr.port,
    close: () => server.shutdown(),
  };
}

/**
 * The handler `serveMetrics` runs, for a server that serves more than
 * metrics (the peer's HTTP port): `GET /metrics` answers the registry, and
 * with `options.token` a request without that Bearer token answers 401.
 *
 * @example
 * ```ts
 * import { createBrokerMetrics, metricsHandler } from "./metrics.ts";
 *
 * const handle = metricsHandler(createBrokerMetrics().registry, { token: "scrape-secret" });
 * const response = handle(new Request("http://127.0.0.1:5101/metrics"));
 * ```
 */
export function metricsHandler(
  registry: MetricsRegistry,
  options: Pick<ServeMetricsOptions, "token"> = {},
): (request: Request) => Response {
  const expected = options.token === undefined ? undefined : digestToken(options.token);
  return (request) => answer(request, registry, expected);
}

function answer(
  request: Request,
  registry: MetricsRegistry,
  expected: Uint8Array | undefined,
): Response {
  if (expected !== undefined && !bearerMatches(request.headers.get("authorization"), expected)) {
    return new Response("Unauthorized\n", {
      status: 401,
      headers: { "www-authenticate": 'Bearer realm="pubsub metrics"' },
    });
  }
  if (new URL(request.url).pathname !== "/metrics") {
    return new Response("Not found\n", { status: 404 });
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("Method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  return new Response(request.method === "HEAD" ? null : registry.render(), {
    headers: { "content-type": metricsContentType },
  });
}

/** True when `header` is `Bearer <token>` for the token hashing to `expected` (constant time). */
function bearerMatches(header: string | null, expected: Uint8Array): boolean {
  const match = /^Bearer[ ]+(\S.*)$/i.exec(header ?? "");
  return tokenMatches(match === null ? "" : match[1].trim(), expected);
}

function formatLabels(labels: Labels): string {
  const names = Object.keys(labels);
  if (names.length === 0) return "";
  return `{${names.map((name) => `${name}="${escapeLabelValue(labels[name])}"`).join(",")}}`;
}

function formatValue(value: number): string {
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

/** Label values escape backslash, double quote and line feed (format 0.0.4). */
function escapeLabelValue(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** HELP text escapes backslash and line feed only. */
function escapeHelp(help: string): string {
  return help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}
