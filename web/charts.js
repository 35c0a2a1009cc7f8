// Small inline SVG charts drawn by hand: a rate sparkline (area + line +
// current value) and the timeline's swimlanes. No library, no canvas.

import { clock, rate, s } from "./dom.js";

/**
 * A sparkline of `samples` ([{ t, v }], oldest first) over the last
 * `windowMs`, scaled to its own maximum (at least `minimumMax`).
 */
export function sparkline(samples, options = {}) {
  const width = options.width ?? 140;
  const height = options.height ?? 32;
  const windowMs = options.windowMs ?? 60_000;
  const now = options.now ?? Date.now();
  const kind = options.kind ?? "publish";
  const shown = samples.filter((sample) => sample.t >= now - windowMs);
  const maximum = Math.max(options.minimumMax ?? 1, ...shown.map((sample) => sample.v));
  const x = (t) => ((t - (now - windowMs)) / windowMs) * width;
  const y = (v) => height - 2 - (v / maximum) * (height - 6);
  const svg = s("svg", {
    class: `spark spark-${kind}`,
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `${options.label ?? kind}: ${rate(shown.at(-1)?.v ?? 0)} per second`,
  });
  svg.append(
    s("line", { class: "spark-base", x1: 0, x2: width, y1: height - 1.5, y2: height - 1.5 }),
  );
  if (shown.length < 2 && height >= 40) {
    svg.append(
      s(
        "text",
        { class: "spark-empty", x: width / 2, y: height / 2 + 4, "text-anchor": "middle" },
        "measuring…",
      ),
    );
  }
  if (shown.length >= 2) {
    const points = shown.map((sample) => `${x(sample.t).toFixed(1)},${y(sample.v).toFixed(1)}`);
    const first = x(shown[0].t).toFixed(1);
    const last = x(shown.at(-1).t).toFixed(1);
    svg.append(
      s("path", {
        class: "spark-area",
        d: `M${first},${height - 1.5} L${points.join(" L")} L${last},${height - 1.5} Z`,
      }),
      s("polyline", { class: "spark-line", points: points.join(" ") }),
      s("circle", {
        class: "spark-dot",
        cx: last,
        cy: y(shown.at(-1).v).toFixed(1),
        r: 2.2,
      }),
    );
  }
  svg.append(
    s(
      "title",
      {},
      `${options.label ?? kind}: peak ${rate(maximum)}/s in the last ${
        Math.round(windowMs / 1000)
      } s`,
    ),
  );
  return svg;
}

const stateClass = { alive: "alive", suspect: "suspect", dead: "down", left: "left" };
const stateWords = { unknown: "not known (the console's peer did not answer)" };

/**
 * Swimlanes of peer states over time: one row per peer, a colored bar per
 * stretch of the same state, the controller marked, events as ticks.
 * `history`: [{ t, states: { id: state }, controller }], oldest first.
 */
export function swimlanes(history, events, options = {}) {
  const width = options.width ?? 900;
  const laneHeight = 26;
  const left = 70;
  const top = 8;
  const axis = 22;
  const now = options.now ?? Date.now();
  const span = Math.min(
    Math.max(now - (history[0]?.t ?? now), 10_000),
    options.windowMs ?? 600_000,
  );
  const start = now - span;
  const ids = [...new Set(history.flatMap((sample) => Object.keys(sample.states).map(Number)))]
    .sort((a, b) => a - b);
  const height = top + ids.length * laneHeight + axis;
  const x = (t) => left + ((t - start) / span) * (width - left - 10);
  const svg = s("svg", {
    class: "lanes",
    width: "100%",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": "Peer states over time",
  });
  ids.forEach((id, row) => {
    const y = top + row * laneHeight;
    svg.append(s("text", { class: "lane-label", x: 8, y: y + 16 }, `peer ${id}`));
    svg.append(
      s("rect", {
        class: "lane-bg",
        x: left,
        y: y + 4,
        width: width - left - 10,
        height: laneHeight - 10,
        rx: 3,
      }),
    );
    let runStart;
    let runState;
    let runController = false;
    const flush = (until) => {
      if (runState === undefined) return;
      const from = Math.max(runStart, start);
      if (until <= from) return;
      svg.append(s(
        "rect",
        {
          class: `lane-run lane-${stateClass[runState] ?? "unknown"}`,
          x: x(from),
          y: y + 4,
          width: Math.max(1, x(until) - x(from)),
          height: laneHeight - 10,
          rx: 2,
        },
        s(
          "title",
          {},
          `peer ${id} ${stateWords[runState] ?? runState} from ${clock(from)} to ${clock(until)}${
            runController ? " (controller)" : ""
          }`,
        ),
      ));
      if (runController && runState === "alive") {
        svg.append(
          s("rect", {
            class: "lane-controller",
            x: x(from),
            y: y + laneHeight - 8,
            width: Math.max(1, x(until) - x(from)),
            height: 2.5,
          }),
        );
      }
    };
    for (const sample of history) {
      const state = sample.states[id] ?? "unknown";
      const controller = sample.controller === id;
      if (state !== runState || controller !== runController) {
        flush(sample.t);
        runStart = sample.t;
        runState = state;
        runController = controller;
      }
    }
    flush(now);
  });
  const bottom = top + ids.length * laneHeight;
  for (const event of events) {
    if (event.t < start || !event.major) continue;
    svg.append(
      s("line", {
        class: `lane-event lane-event-${event.kind}`,
        x1: x(event.t),
        x2: x(event.t),
        y1: top,
        y2: bottom,
      }, s("title", {}, `${clock(event.t, true)} ${event.text}`)),
    );
  }
  const ticks = 6;
  for (let index = 0; index <= ticks; index++) {
    const t = start + (span * index) / ticks;
    svg.append(
      s("text", {
        class: "lane-axis",
        x: x(t),
        y: bottom + 15,
        "text-anchor": index === 0 ? "start" : index === ticks ? "end" : "middle",
      }, clock(t)),
    );
  }
  return svg;
}
