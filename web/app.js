// The console's entry point: the hash router (#/, #/topics/<name>,
// #/timeline), the connection indicator and banner, and the poll loop that
// refreshes whichever page is shown.

import { setToken } from "./api.js";
import { mountCluster } from "./cluster_view.js";
import { ago, h, replace } from "./dom.js";
import { pollSoon, startPolling, store, subscribe } from "./store.js";
import { mountTimeline } from "./timeline_view.js";
import { mountTopic } from "./topic_view.js";

const page = document.getElementById("page");
const connection = document.getElementById("connection");
const banner = document.getElementById("banner");
let current;
let currentRoute;
/** The connection state the banner was drawn for (its token form must survive polls). */
let bannerState;

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function route() {
  const hash = location.hash || "#/";
  if (hash === currentRoute) return;
  currentRoute = hash;
  current?.unmount();
  const topic = /^#\/topics\/([^/]+)$/.exec(hash);
  let tab = "cluster";
  if (topic) {
    let name;
    try {
      name = decodeURIComponent(topic[1]);
    } catch {
      name = topic[1];
    }
    document.title = `${name} · pubsub console`;
    current = mountTopic(page, name, navigate);
  } else if (hash === "#/timeline") {
    tab = "timeline";
    document.title = "Timeline · pubsub console";
    current = mountTimeline(page);
  } else {
    document.title = "Cluster · pubsub console";
    current = mountCluster(page, navigate);
  }
  for (const link of document.querySelectorAll("[data-tab]")) {
    link.classList.toggle("active", link.dataset.tab === tab);
  }
}

function renderConnection() {
  const state = store.connection.state;
  const keepForm = state === "unauthorized" && bannerState === "unauthorized";
  bannerState = state;
  if (keepForm) return;
  connection.dataset.connection = state;
  const text = connection.querySelector(".connection-text");
  const since = Date.now() - store.connection.since;
  if (state === "connected") {
    replace(text, `peer ${store.node ?? "?"} · ${location.host}`);
  } else if (state === "reconnecting") {
    replace(text, `reconnecting to ${location.host}…`);
  } else if (state === "unauthorized") {
    replace(text, "token needed");
  } else {
    replace(text, "connecting…");
  }
  document.body.classList.toggle("stale", state === "reconnecting");
  if (state === "reconnecting") {
    banner.hidden = false;
    banner.className = "banner warn";
    const seconds = Math.max(1, Math.round(since / 1000));
    replace(
      banner,
      h("strong", {}, "Reconnecting… "),
      `Peer ${store.node ?? "?"} at ${location.host} has not answered for ${seconds} s `,
      `(${
        (store.connection.detail ?? "no answer").replace(/\.$/, "").toLowerCase()
      }; attempt ${store.connection.attempts}). `,
      store.connection.lastOkAt
        ? `The page shows what it said ${
          ago(Date.now() - store.connection.lastOkAt)
        } and resumes by itself.`
        : "",
    );
  } else if (state === "unauthorized") {
    banner.hidden = false;
    banner.className = "banner bad";
    const input = h("input", {
      type: "password",
      placeholder: "token",
      id: "token-input",
      autocomplete: "off",
    });
    replace(
      banner,
      h(
        "form",
        {
          class: "token-form",
          onsubmit: (event) => {
            event.preventDefault();
            setToken(input.value.trim());
            store.connection = { state: "connecting", since: Date.now(), attempts: 0 };
            pollSoon();
          },
        },
        h("strong", {}, "This peer requires a token. "),
        store.connection.detail ?? "",
        " ",
        input,
        h("button", { type: "submit", class: "primary" }, "Use token"),
      ),
    );
    if (document.activeElement?.id !== "token-input") input.focus();
  } else {
    banner.hidden = true;
  }
}

globalThis.addEventListener("hashchange", route);
subscribe(() => {
  renderConnection();
  current?.update();
});
store.timeline.onChange(() => {
  if (currentRoute === "#/timeline") current?.update();
});
route();
renderConnection();
startPolling();
