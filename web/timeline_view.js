// The timeline page: peer states as swimlanes over time (the controller
// underlined, leader changes and failures as vertical marks), then every
// event, newest first.

import { swimlanes } from "./charts.js";
import { eventItem } from "./cluster_view.js";
import { h, replace } from "./dom.js";
import { store } from "./store.js";

export function mountTimeline(container) {
  const lanes = h("div", { class: "lanes-box", id: "lanes" });
  const list = h("ol", { class: "events", id: "timeline-events" });
  replace(
    container,
    h(
      "section",
      { class: "card" },
      h(
        "div",
        { class: "card-head" },
        h("h2", {}, "Peers over time"),
        h(
          "span",
          { class: "legend" },
          h("i", { class: "key key-alive" }),
          "up ",
          h("i", { class: "key key-suspect" }),
          "suspect ",
          h("i", { class: "key key-down" }),
          "down ",
          h("i", { class: "key key-unknown" }),
          "no data ",
          h("i", { class: "key key-controller" }),
          "controller ",
          h("i", { class: "key key-event" }),
          "failure, leader or replica change",
        ),
      ),
      lanes,
    ),
    h(
      "section",
      { class: "card" },
      h(
        "div",
        { class: "card-head" },
        h("h2", {}, "Events"),
        h(
          "span",
          { class: "hint" },
          "derived by polling /api/cluster and the topics once a second",
        ),
      ),
      list,
    ),
  );
  const update = () => {
    const history = store.timeline.history;
    if (history.length === 0) {
      replace(lanes, h("p", { class: "empty" }, "Waiting for the first poll…"));
    } else replace(lanes, swimlanes(history, store.timeline.events));
    const events = store.timeline.events.slice().reverse();
    replace(
      list,
      events.length === 0 ? h("li", { class: "empty" }, "Nothing yet.") : events.map(eventItem),
    );
  };
  update();
  return { update, unmount() {} };
}
