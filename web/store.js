// What the console knows, refreshed by polling its peer once a second:
// the cluster_status answer, every topic's description, this peer's
// delivery counters, the rates derived from them, the timeline, and the
// state of the connection to the peer.

import { api, ApiError, ConnectionError, topicPath } from "./api.js";
import { Timeline } from "./timeline.js";

const pollIntervalMs = 1000;
/** Most topics described per poll; the rest are listed by name only. */
export const topicsDescribedMax = 50;
const rateWindowMs = 120_000;

export const store = {
  /** The peer that answers (X-Pubsub-Node). */
  node: undefined,
  /** The last cluster_status answer. */
  cluster: undefined,
  /** Every topic name, sorted. */
  topicNames: [],
  /** name -> describe_topic answer, or { topic, error, code }. */
  topics: new Map(),
  /** name -> { publish: [{t, v}], delivery: [{t, v}] } in messages per second. */
  rates: new Map(),
  /** Sums over every topic. */
  totals: { publish: [], delivery: [] },
  /** { state: connecting|connected|reconnecting|unauthorized, since, attempts, detail, lastOkAt } */
  connection: { state: "connecting", since: Date.now(), attempts: 0 },
  timeline: new Timeline(),
  /** When the last successful poll finished. */
  updatedAt: 0,
};

const listeners = new Set();
/** name -> { t, next, delivered } of the previous poll. */
const previousCounts = new Map();
let timer;
let polling = false;

/** Calls `listener` after every poll; returns the unsubscribe function. */
export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function notify() {
  for (const listener of listeners) listener();
}

/** Starts polling (once). */
export function startPolling() {
  if (timer === undefined) poll();
}

/** Polls again now (after the page changed something). */
export function pollSoon() {
  clearTimeout(timer);
  timer = setTimeout(poll, 50);
}

async function poll() {
  if (polling) return;
  polling = true;
  try {
    await pollOnce();
  } finally {
    polling = false;
    clearTimeout(timer);
    timer = setTimeout(poll, pollIntervalMs);
    notify();
  }
}

async function pollOnce() {
  let cluster;
  let names;
  let node;
  try {
    ({ body: cluster, node } = await api("GET", "/api/cluster"));
    ({ body: names } = await api("GET", "/api/topics"));
  } catch (error) {
    connectionFailed(error);
    return;
  }
  const shown = names.slice(0, topicsDescribedMax);
  const described = await Promise.all(shown.map((name) =>
    api("GET", topicPath(name)).then(
      ({ body }) => body,
      (error) => ({ topic: name, error: error.message, code: error.code ?? "unreachable" }),
    )
  ));
  const delivered = await api("GET", "/api/stats").then(({ body }) => body.delivered, () => ({}));
  const t = Date.now();
  connectionOk(node, t);
  store.node = node;
  store.cluster = cluster;
  store.topicNames = names;
  store.topics = new Map(described.map((topic) => [topic.topic, topic]));
  updateRates(t, delivered);
  store.updatedAt = t;
  store.timeline.observe({ t, node, cluster, topics: store.topics });
}

function connectionOk(node, t) {
  const connection = store.connection;
  if (connection.state === "reconnecting") {
    const seconds = ((t - connection.since) / 1000).toFixed(1);
    store.timeline.note(
      "console",
      `Reconnected to peer ${node ?? "?"} after ${seconds} s`,
      "good",
      true,
      t,
    );
  }
  if (connection.state !== "connected") {
    store.connection = { state: "connected", since: t, attempts: 0, lastOkAt: t };
  } else {
    connection.lastOkAt = t;
  }
}

function connectionFailed(error) {
  const now = Date.now();
  const connection = store.connection;
  if (error instanceof ApiError && error.status === 401) {
    store.connection = { state: "unauthorized", since: now, attempts: 0, detail: error.message };
    return;
  }
  const detail = error instanceof ConnectionError || error instanceof ApiError
    ? error.message
    : String(error);
  if (connection.state === "reconnecting") {
    connection.attempts++;
    connection.detail = detail;
    return;
  }
  if (connection.state === "connected") {
    store.timeline.gap(now);
    store.timeline.note(
      "console",
      `Lost the connection to peer ${store.node ?? "?"}: ${detail}`,
      "bad",
      true,
      now,
    );
  }
  store.connection = {
    state: "reconnecting",
    since: now,
    attempts: 1,
    detail,
    lastOkAt: connection.lastOkAt,
  };
}

function updateRates(t, delivered) {
  let publishTotal = 0;
  let deliveryTotal = 0;
  for (const [name, topic] of store.topics) {
    if (topic.error !== undefined) continue;
    const counts = { t, next: topic.next_offset, delivered: delivered[name] ?? 0 };
    const previous = previousCounts.get(name);
    previousCounts.set(name, counts);
    if (previous === undefined) continue;
    const seconds = (t - previous.t) / 1000;
    if (seconds <= 0) continue;
    const series = store.rates.get(name) ?? { publish: [], delivery: [] };
    store.rates.set(name, series);
    // Counters restart with a peer: a drop is no negative rate.
    const publish = Math.max(0, counts.next - previous.next) / seconds;
    const delivery = Math.max(0, counts.delivered - previous.delivered) / seconds;
    series.publish.push({ t, v: publish });
    series.delivery.push({ t, v: delivery });
    trim(series.publish, t);
    trim(series.delivery, t);
    publishTotal += publish;
    deliveryTotal += delivery;
  }
  for (const name of store.rates.keys()) {
    if (!store.topics.has(name) && !store.topicNames.includes(name)) store.rates.delete(name);
  }
  store.totals.publish.push({ t, v: publishTotal });
  store.totals.delivery.push({ t, v: deliveryTotal });
  trim(store.totals.publish, t);
  trim(store.totals.delivery, t);
}

function trim(samples, now) {
  while (samples.length > 0 && samples[0].t < now - rateWindowMs) samples.shift();
}
