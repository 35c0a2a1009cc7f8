// The topic page: its description and rates, a publish box, a live tail
// over Server-Sent Events, and the stored messages paged by offset.

import { api, topicPath } from "./api.js";
import { replicaChips } from "./cluster_view.js";
import { sparkline } from "./charts.js";
import { bytes, clock, count, h, rate, replace, retention } from "./dom.js";
import { EventStreamReader } from "./sse.js";
import { pollSoon, store } from "./store.js";

const tailMessagesMax = 200;
const pageSizes = [20, 50, 100];
const messageCharactersShown = 600;

export function mountTopic(container, name, navigate) {
  const header = h("section", { class: "card topic-head", id: "topic-head" });
  const publish = publishBox(name);
  const tail = liveTail(name);
  const pages = messagePages(name);
  replace(
    container,
    h(
      "div",
      { class: "crumbs" },
      h("a", { href: "#/" }, "Cluster"),
      " / ",
      h("span", {}, "topic "),
      h("strong", {}, name),
    ),
    header,
    h(
      "div",
      { class: "columns" },
      h("div", { class: "column" }, publish.element, tail.element),
      h("div", { class: "column" }, pages.element),
    ),
  );
  const update = () => {
    renderHeader(header, name, navigate);
    pages.follow(store.topics.get(name));
  };
  update();
  pages.load();
  return {
    update,
    unmount() {
      tail.stop();
    },
  };
}

function renderHeader(element, name, navigate) {
  const topic = store.topics.get(name);
  const known = store.topicNames.includes(name);
  const remove = h("button", {
    class: "danger",
    id: "delete-topic",
    onclick: async () => {
      if (!confirm(`Delete topic ${name} and all its messages?`)) return;
      try {
        await api("DELETE", topicPath(name));
        pollSoon();
        navigate("#/");
      } catch (error) {
        alert(error.message);
      }
    },
  }, "Delete topic");
  if (topic === undefined || topic.error !== undefined) {
    replace(
      element,
      h("div", { class: "card-head" }, h("h2", {}, name), remove),
      h(
        "p",
        { class: topic?.error ? "error" : "empty" },
        topic?.error ??
          (known || !store.cluster ? "Loading…" : "This topic does not exist (any more)."),
      ),
    );
    return;
  }
  const series = store.rates.get(name) ?? { publish: [], delivery: [] };
  replace(
    element,
    h("div", { class: "card-head" }, h("h2", {}, name), remove),
    h(
      "dl",
      { class: "facts", dataset: { leader: topic.leader ?? "none" } },
      fact("Leader", topic.leader == null ? "none" : `peer ${topic.leader}`, "fact-leader"),
      fact("Replicas", replicaChips(topic)),
      fact("In sync", `${topic.in_sync.length} of ${topic.replicas.length}`, "fact-in-sync"),
      fact("First offset", count(topic.first_offset)),
      fact("Next offset", count(topic.next_offset), "fact-next"),
      fact("Messages", count(topic.next_offset - topic.first_offset), "fact-messages"),
      fact("Bytes", bytes(topic.bytes), "fact-bytes", "Size of the leader's log on disk"),
      fact(
        "Retention",
        retention(topic.retention),
        "fact-retention",
        "Whole old segments are deleted once every message in them is expired",
      ),
    ),
    h(
      "div",
      { class: "topic-charts" },
      chart("Published", series.publish, "publish"),
      chart(`Delivered by peer ${store.node ?? "?"}`, series.delivery, "delivery"),
    ),
  );
}

function fact(label, value, id, title) {
  return h("div", { class: "fact", id, title }, h("dt", {}, label), h("dd", {}, value));
}

function chart(label, samples, kind) {
  return h(
    "figure",
    { class: "chart" },
    h("figcaption", {}, label, h("strong", {}, ` ${rate(samples.at(-1)?.v ?? 0)}/s`)),
    sparkline(samples, { width: 320, height: 56, kind, label }),
  );
}

function publishBox(name) {
  const text = h("textarea", { id: "publish-text", rows: 3, placeholder: "message text" });
  const batch = h("input", { type: "checkbox", id: "publish-batch" });
  const result = h("div", { class: "form-message", id: "publish-result", "aria-live": "polite" });
  const send = async (event) => {
    event.preventDefault();
    const value = text.value;
    const lines = value.split("\n").filter((line) => line !== "");
    const body = batch.checked ? lines : value;
    if (batch.checked && lines.length === 0) return;
    result.className = "form-message";
    replace(result, "publishing…");
    try {
      const { body: answer } = await api("POST", topicPath(name, "/messages"), { body });
      result.className = "form-message ok";
      replace(
        result,
        answer.status === "messages_published"
          ? `Published ${answer.count} messages at offsets ${answer.first_offset} – ${
            answer.first_offset + answer.count - 1
          }`
          : `Published at offset ${answer.offset}`,
      );
      text.value = "";
      pollSoon();
    } catch (error) {
      result.className = "form-message error";
      replace(result, `${error.code ?? "error"}: ${error.message}`);
    }
  };
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) send(event);
  });
  const element = h(
    "section",
    { class: "card" },
    h(
      "div",
      { class: "card-head" },
      h("h3", {}, "Publish"),
      h("span", { class: "hint" }, "Ctrl+Enter sends"),
    ),
    h(
      "form",
      { class: "publish", id: "publish-form", onsubmit: send },
      text,
      h(
        "div",
        { class: "publish-row" },
        h("label", { class: "check" }, batch, " one message per line (batch)"),
        h("button", { type: "submit", class: "primary", id: "publish-button" }, "Publish"),
      ),
      result,
    ),
  );
  return { element };
}

function liveTail(name) {
  const list = h("ol", { class: "tail", id: "tail" });
  const status = h("span", {
    class: "pill pill-neutral",
    id: "tail-state",
    dataset: { tailState: "connecting" },
  }, "connecting");
  const info = h("span", { class: "hint", id: "tail-info" });
  let paused = false;
  const pause = h("button", {
    class: "small",
    onclick: () => {
      paused = !paused;
      replace(pause, paused ? "Resume" : "Pause");
    },
  }, "Pause");
  const clear = h("button", { class: "small", onclick: () => list.replaceChildren() }, "Clear");
  const setState = (state, detail) => {
    status.dataset.tailState = state;
    const labels = {
      connecting: "connecting",
      live: "live",
      reconnecting: "reconnecting…",
      closed: "closed",
    };
    const tones = { connecting: "neutral", live: "up", reconnecting: "suspect", closed: "down" };
    status.className = `pill pill-${tones[state]}`;
    replace(status, labels[state] ?? state);
    if (state === "live") {
      replace(info, `from offset ${count(detail.from_offset)} · via peer ${store.node ?? "?"}`);
    } else if (state === "reconnecting") {
      replace(
        info,
        detail?.detail
          ? `${detail.detail}; resuming after offset ${reader.lastEventId ?? "–"}`
          : "",
      );
    } else if (state === "closed") replace(info, String(detail ?? ""));
  };
  const reader = new EventStreamReader(topicPath(name, "/events?from=latest"), {
    onState: setState,
    onMessage: (event) => {
      if (paused) return;
      const shown = event.message.length > messageCharactersShown
        ? `${event.message.slice(0, messageCharactersShown)}…`
        : event.message;
      list.prepend(
        h(
          "li",
          { dataset: { offset: event.offset } },
          h("span", { class: "offset" }, `#${event.offset}`),
          h("time", {}, clock(Date.now(), true)),
          h("span", {
            class: "message",
            title: event.message.length > messageCharactersShown
              ? `${event.message.length} characters`
              : undefined,
          }, shown),
        ),
      );
      while (list.children.length > tailMessagesMax) list.lastElementChild.remove();
    },
  });
  const element = h(
    "section",
    { class: "card" },
    h(
      "div",
      { class: "card-head" },
      h("h3", {}, "Live tail"),
      status,
      info,
      h("span", { class: "spacer" }),
      pause,
      clear,
    ),
    list,
  );
  return { element, stop: () => reader.stop() };
}

function messagePages(name) {
  const fromInput = h("input", { type: "number", min: 0, id: "page-from", class: "narrow" });
  const sizeInput = h(
    "select",
    { id: "page-size", title: "messages per page" },
    pageSizes.map((size) => h("option", { value: size }, `${size} / page`)),
  );
  const body = h("tbody", { id: "page-body" });
  const info = h("span", { class: "hint", id: "page-info" });
  let from;
  let nextOffset = 0;
  let bounds = { first: 0, next: 0 };
  /** Showing the newest page: it follows new messages. */
  let following = true;
  let loading = false;

  const load = async (requested) => {
    const size = Number(sizeInput.value);
    following = requested === undefined;
    loading = true;
    const topic = store.topics.get(name);
    if (topic && topic.error === undefined) {
      bounds = { first: topic.first_offset, next: topic.next_offset };
    }
    if (requested === undefined) {
      // The newest page first.
      try {
        const { body: description } = await api("GET", topicPath(name));
        bounds = { first: description.first_offset, next: description.next_offset };
      } catch { /* keep what the poll knows */ }
      requested = Math.max(bounds.first, bounds.next - size);
    }
    from = Math.max(0, requested);
    fromInput.value = from;
    replace(info, "loading…");
    try {
      const { body: answer } = await api(
        "GET",
        topicPath(name, `/messages?from=${from}&max=${size}`),
      );
      nextOffset = answer.next_offset;
      replace(
        body,
        answer.messages.length === 0
          ? h("tr", {}, h("td", { colspan: 2, class: "empty" }, "No messages at these offsets."))
          : answer.messages.map((item) =>
            h(
              "tr",
              {},
              h("td", { class: "mono offset" }, count(item.offset)),
              h(
                "td",
                { class: "message" },
                item.message.length > messageCharactersShown
                  ? `${item.message.slice(0, messageCharactersShown)}…`
                  : item.message,
              ),
            )
          ),
      );
      const last = answer.messages.at(-1)?.offset;
      replace(
        info,
        last === undefined
          ? `from ${count(from)}`
          : `offsets ${count(answer.messages[0].offset)} – ${count(last)} of ${
            count(bounds.first)
          } – ${count(Math.max(bounds.next, nextOffset) - 1)}`,
      );
    } catch (error) {
      replace(info, "");
      replace(body, h("tr", {}, h("td", { colspan: 2, class: "error" }, error.message)));
    } finally {
      loading = false;
    }
  };
  /** Reloads the newest page when it is shown and the topic grew. */
  const follow = (topic) => {
    if (!following || loading || topic === undefined || topic.error !== undefined) return;
    if (topic.next_offset > nextOffset) load(undefined);
  };
  const button = (label, id, target) =>
    h("button", { class: "small", id, onclick: () => load(target()) }, label);
  const element = h(
    "section",
    { class: "card" },
    h("div", { class: "card-head" }, h("h3", {}, "Messages by offset"), info),
    h(
      "div",
      { class: "pager" },
      h(
        "div",
        { class: "pager-group" },
        button("⇤ first", "page-first", () => bounds.first),
        button(
          "← older",
          "page-older",
          () => Math.max(bounds.first, from - Number(sizeInput.value)),
        ),
        button("newer →", "page-newer", () => nextOffset),
        button("latest ⇥", "page-latest", () => undefined),
      ),
      h(
        "form",
        {
          class: "pager-group jump",
          onsubmit: (event) => {
            event.preventDefault();
            load(Number(fromInput.value) || 0);
          },
        },
        h("label", { for: "page-from" }, "from offset"),
        fromInput,
        sizeInput,
        h("button", { class: "small", id: "page-go", type: "submit" }, "Go"),
      ),
    ),
    h(
      "table",
      { class: "messages" },
      h("thead", {}, h("tr", {}, h("th", {}, "Offset"), h("th", {}, "Message"))),
      body,
    ),
  );
  sizeInput.addEventListener("change", () => load(from));
  return { element, load: () => load(undefined), follow };
}
