// The cluster page: summary, peers, topics with their replicas and live
// rates, a form to create a topic, and the latest timeline events.

import { api } from "./api.js";
import { sparkline } from "./charts.js";
import { ago, bytes, clock, count, h, rate, replace, retention } from "./dom.js";
import { pollSoon, store, topicsDescribedMax } from "./store.js";

const stateLabels = { alive: "up", suspect: "suspect", dead: "down", left: "left" };

export function mountCluster(container, navigate) {
  const summary = h("section", { class: "summary", id: "summary" });
  const peers = h("div", { class: "peers", id: "peers" });
  const topicsBody = h("div", { id: "topics" });
  const recent = h("ol", { class: "events compact", id: "recent-events" });
  const message = h("span", { class: "form-message", id: "create-message" });
  const nameInput = h("input", {
    id: "create-name",
    name: "name",
    placeholder: "new topic name",
    autocomplete: "off",
    pattern: "[A-Za-z0-9._\\-]{1,249}",
    required: true,
  });
  const factorInput = h(
    "select",
    { id: "create-replication", name: "replication_factor" },
    h("option", { value: "" }, "default replicas"),
    [1, 2, 3, 4, 5].map((factor) =>
      h("option", { value: factor }, `${factor} replica${factor > 1 ? "s" : ""}`)
    ),
  );
  const form = h(
    "form",
    {
      class: "create",
      id: "create-topic",
      onsubmit: async (event) => {
        event.preventDefault();
        const name = nameInput.value.trim();
        const body = { name };
        if (factorInput.value !== "") body.replication_factor = Number(factorInput.value);
        replace(message, "creating…");
        message.className = "form-message";
        try {
          await api("POST", "/api/topics", { body });
          nameInput.value = "";
          pollSoon();
          navigate(`#/topics/${encodeURIComponent(name)}`);
        } catch (error) {
          message.className = "form-message error";
          replace(message, error.message);
        }
      },
    },
    nameInput,
    factorInput,
    h("button", { type: "submit", class: "primary" }, "Create topic"),
    message,
  );

  replace(
    container,
    summary,
    h(
      "section",
      { class: "card" },
      h(
        "div",
        { class: "card-head" },
        h("h2", {}, "Peers"),
        h("span", { class: "hint" }, "as seen by the peer serving this page (cluster_status)"),
      ),
      peers,
    ),
    h(
      "section",
      { class: "card" },
      h("div", { class: "card-head" }, h("h2", {}, "Topics"), form),
      topicsBody,
    ),
    h(
      "section",
      { class: "card" },
      h(
        "div",
        { class: "card-head" },
        h("h2", {}, "Recent events"),
        h("a", { href: "#/timeline" }, "full timeline →"),
      ),
      recent,
    ),
  );

  const update = () => {
    renderSummary(summary);
    renderPeers(peers);
    renderTopics(topicsBody);
    renderRecent(recent);
  };
  update();
  return { update, unmount() {} };
}

function renderSummary(element) {
  const cluster = store.cluster;
  const nodes = cluster?.nodes ?? [];
  const alive = nodes.filter((node) => node.state === "alive").length;
  const totals = store.totals;
  replace(
    element,
    tile(
      "Peers up",
      cluster ? `${alive} / ${nodes.length}` : "–",
      alive === nodes.length && nodes.length > 0 ? "good" : "warn",
      "peers-up",
    ),
    tile(
      "Controller",
      cluster?.meta_leader ? `peer ${cluster.meta_leader}` : "none",
      cluster?.meta_leader ? "neutral" : "bad",
      "controller",
    ),
    tile("Topics", cluster ? count(cluster.topics) : "–", "neutral", "topic-count"),
    h(
      "div",
      { class: "tile wide" },
      h("div", { class: "tile-label" }, "Published, all topics"),
      h(
        "div",
        { class: "tile-chart" },
        h("span", { class: "tile-value" }, `${rate(totals.publish.at(-1)?.v ?? 0)}/s`),
        sparkline(totals.publish, { width: 180, height: 36, kind: "publish", label: "published" }),
      ),
    ),
    h(
      "div",
      { class: "tile wide" },
      h("div", { class: "tile-label" }, `Delivered by peer ${store.node ?? "?"}`),
      h(
        "div",
        { class: "tile-chart" },
        h("span", { class: "tile-value" }, `${rate(totals.delivery.at(-1)?.v ?? 0)}/s`),
        sparkline(totals.delivery, {
          width: 180,
          height: 36,
          kind: "delivery",
          label: "delivered",
        }),
      ),
    ),
  );
}

function tile(label, value, tone, id) {
  return h(
    "div",
    { class: `tile tone-${tone}`, id: `tile-${id}` },
    h("div", { class: "tile-label" }, label),
    h("div", { class: "tile-value" }, value),
  );
}

function renderPeers(element) {
  const cluster = store.cluster;
  if (!cluster) {
    replace(element, h("p", { class: "empty" }, "Waiting for the peer…"));
    return;
  }
  const leads = new Map();
  for (const topic of store.topics.values()) {
    if (topic.leader != null) leads.set(topic.leader, (leads.get(topic.leader) ?? 0) + 1);
  }
  replace(
    element,
    cluster.nodes.map((node) => {
      const label = stateLabels[node.state] ?? node.state;
      const controller = node.id === cluster.meta_leader;
      const led = leads.get(node.id) ?? 0;
      return h(
        "article",
        {
          class: `peer state-${label}`,
          dataset: { peer: node.id, state: label, controller: controller ? "yes" : "no" },
        },
        h(
          "header",
          {},
          h("span", { class: "peer-name" }, `Peer ${node.id}`),
          h("span", { class: `pill pill-${label}` }, label),
        ),
        h("div", { class: "peer-address" }, node.address),
        h(
          "div",
          { class: "peer-facts" },
          controller ? h("span", { class: "badge controller" }, "controller") : null,
          node.id === store.node ? h("span", { class: "badge self" }, "serving this page") : null,
          h("span", { class: "badge" }, `leads ${led} topic${led === 1 ? "" : "s"}`),
        ),
        h(
          "div",
          { class: "peer-heartbeat" },
          node.id === store.node ? "this peer" : `heartbeat ${ago(node.last_heartbeat_ms_ago)}`,
        ),
        node.link_error ? h("div", { class: "peer-error" }, `link: ${node.link_error}`) : null,
      );
    }),
  );
}

function renderTopics(element) {
  if (store.topicNames.length === 0) {
    replace(
      element,
      h(
        "p",
        { class: "empty" },
        store.cluster ? "No topics yet: create one above." : "Waiting for the peer…",
      ),
    );
    return;
  }
  const rows = store.topicNames.slice(0, topicsDescribedMax).map((name) =>
    topicRow(name, store.topics.get(name))
  );
  const more = store.topicNames.length - topicsDescribedMax;
  replace(
    element,
    h(
      "table",
      { class: "topics" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          [
            "Topic",
            "Leader",
            "Replicas",
            "In sync",
            "First – next offset",
            "Messages",
            "Bytes",
            "Retention",
            "Published /s",
            "Delivered /s",
          ]
            .map((title) => h("th", {}, title)),
        ),
      ),
      h("tbody", {}, rows),
    ),
    more > 0
      ? h(
        "p",
        { class: "hint" },
        `… and ${count(more)} more topics (the first ${topicsDescribedMax} are shown)`,
      )
      : null,
  );
}

function topicRow(name, topic) {
  const link = h("a", { href: `#/topics/${encodeURIComponent(name)}`, class: "topic-link" }, name);
  if (topic === undefined || topic.error !== undefined) {
    return h(
      "tr",
      { dataset: { topic: name, leader: "none" } },
      h("td", {}, link),
      h("td", { colspan: 9, class: "error-cell" }, topic?.error ?? "not described yet"),
    );
  }
  const series = store.rates.get(name) ?? { publish: [], delivery: [] };
  const messages = topic.next_offset - topic.first_offset;
  return h(
    "tr",
    { dataset: { topic: name, leader: topic.leader ?? "none", inSync: topic.in_sync.length } },
    h("td", {}, link),
    h(
      "td",
      { class: "leader-cell" },
      topic.leader == null
        ? h("span", { class: "pill pill-down" }, "none")
        : `peer ${topic.leader}`,
    ),
    h("td", {}, replicaChips(topic)),
    h(
      "td",
      {},
      h("span", {
        class: `pill ${
          topic.in_sync.length === topic.replicas.length ? "pill-up" : "pill-suspect"
        }`,
      }, `${topic.in_sync.length}/${topic.replicas.length}`),
    ),
    h("td", { class: "mono" }, `${count(topic.first_offset)} – ${count(topic.next_offset)}`),
    h("td", { class: "mono" }, count(messages)),
    h("td", { class: "mono topic-bytes" }, bytes(topic.bytes)),
    h("td", { class: "topic-retention" }, retention(topic.retention)),
    h(
      "td",
      {},
      h(
        "div",
        { class: "rate-cell" },
        sparkline(series.publish, { kind: "publish", label: `${name} published` }),
        h("span", { class: "rate-value" }, rate(series.publish.at(-1)?.v ?? 0)),
      ),
    ),
    h(
      "td",
      {},
      h(
        "div",
        { class: "rate-cell" },
        sparkline(series.delivery, { kind: "delivery", label: `${name} delivered` }),
        h("span", { class: "rate-value" }, rate(series.delivery.at(-1)?.v ?? 0)),
      ),
    ),
  );
}

/** One chip per replica: the leader marked, out-of-sync replicas dimmed. */
export function replicaChips(topic) {
  return h(
    "span",
    { class: "chips" },
    topic.replicas.map((id) => {
      const classes = ["chip"];
      if (topic.in_sync.includes(id)) classes.push("in-sync");
      else classes.push("behind");
      if (id === topic.leader) classes.push("leader");
      const title = `peer ${id}: ${id === topic.leader ? "leader, " : ""}${
        topic.in_sync.includes(id) ? "in sync" : "not in sync"
      }`;
      return h("span", { class: classes.join(" "), title }, String(id));
    }),
  );
}

function renderRecent(element) {
  const events = store.timeline.events.slice(-6).reverse();
  if (events.length === 0) {
    replace(element, h("li", { class: "empty" }, "Nothing yet."));
    return;
  }
  replace(element, events.map((event) => eventItem(event)));
}

export function eventItem(event) {
  return h(
    "li",
    { class: `event level-${event.level} kind-${event.kind}`, dataset: { kind: event.kind } },
    h("time", { datetime: new Date(event.t).toISOString() }, clock(event.t, true)),
    h("span", { class: "event-kind" }, event.kind),
    h("span", { class: "event-text" }, event.text),
  );
}
