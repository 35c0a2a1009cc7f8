/**
 * The frame every chart shares: margins sized from the labels, title, axis
 * titles, ticks, a light grid and a legend.
 *
 * @module
 */

import { element, escapeXml, text, textWidth } from "./_svg_markup.ts";

/** Font sizes in pixels. */
const titleFontSize = 16;
const axisFontSize = 13;
const tickFontSize = 11;
const legendFontSize = 12;
const captionFontSize = 12;
/** Smallest font a long y axis title may shrink to. */
const yTitleFontSizeMin = 9;
/** Distance between two caption lines. */
const captionLinePx = 16;
/** Outer padding of the picture. */
const paddingPx = 14;
/** Length of a tick mark. */
const tickLengthPx = 5;
/** Legend swatch length and gaps. */
const swatchPx = 16;
const legendRowPx = 18;

/** Everything that sizes the frame. */
export interface FrameSpec {
  width: number;
  height: number;
  title: string;
  xLabel: string;
  yLabel: string;
  /** Labels of the x ticks, to size the bottom margin. */
  xTickLabels: readonly string[];
  /** Labels of the y ticks, to size the left margin. */
  yTickLabels: readonly string[];
  /** Drawn only when there is more than one entry. */
  legend: readonly { name: string; color: string }[];
  /** Legend swatch: a line for line charts, a box for bar charts, a dot for point charts. Default "line". */
  swatch?: "line" | "box" | "dot";
  /** Slant the x tick labels (long category names). */
  slantXTicks?: boolean;
  /** Sentences under the chart saying what it measures; wrapped to the width. Default none. */
  caption?: string;
}

/** The plot area in pixels: x grows right from `left`, y grows down from `top`. */
export interface PlotArea {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** A tick at pixel position `at` along its axis. */
export interface PixelTick {
  at: number;
  label: string;
}

/** Computes the plot area left once title, labels, ticks and legend have room. */
export function plotArea(spec: FrameSpec): PlotArea {
  const yTickWidth = Math.max(
    0,
    ...spec.yTickLabels.map((label) => textWidth(label, tickFontSize)),
  );
  const xTickHeight = spec.slantXTicks
    ? Math.max(0, ...spec.xTickLabels.map((label) => textWidth(label, tickFontSize))) * 0.42 +
      tickFontSize
    : tickFontSize;
  const axisLeft = paddingPx + axisFontSize + 10 + yTickWidth + tickLengthPx + 4;
  // A slanted first label reaches left of its tick by cos(30°) of its width; the
  // width estimate is generous, so only 0.7 of it is reserved.
  const slantLeft = spec.slantXTicks
    ? paddingPx + textWidth(spec.xTickLabels[0] ?? "", tickFontSize) * 0.7 - 30
    : 0;
  const left = Math.max(axisLeft, slantLeft);
  const top = paddingPx + titleFontSize + 16;
  const bottom = spec.height - paddingPx - captionHeight(spec) - axisFontSize - 10 - xTickHeight -
    tickLengthPx - 4;
  const right = spec.width - paddingPx - legendWidth(spec.legend) -
    // Half the widest x tick label may hang past the last tick.
    Math.min(30, textWidth(spec.xTickLabels.at(-1) ?? "", tickFontSize) / 2);
  return { left, top, right, bottom };
}

/**
 * The caption split into lines that fit the picture's width, by the same
 * generous width estimate as every other label.
 */
export function captionLines(spec: Pick<FrameSpec, "width" | "caption">): string[] {
  if (spec.caption === undefined || spec.caption.trim() === "") return [];
  const widthMax = spec.width - 2 * paddingPx;
  const lines: string[] = [];
  let current = "";
  for (const word of spec.caption.trim().split(/\s+/)) {
    const candidate = current === "" ? word : `${current} ${word}`;
    if (current !== "" && textWidth(candidate, captionFontSize) > widthMax) {
      lines.push(current);
      current = word;
    } else {
      current = candidate;
    }
  }
  lines.push(current);
  return lines;
}

function captionHeight(spec: FrameSpec): number {
  const lines = captionLines(spec).length;
  return lines === 0 ? 0 : 8 + lines * captionLinePx;
}

function caption(spec: FrameSpec): string {
  const lines = captionLines(spec);
  if (lines.length === 0) return "";
  const firstY = spec.height - paddingPx - (lines.length - 1) * captionLinePx;
  const rows = lines.map((line, index) =>
    text(line, { x: paddingPx, y: firstY + index * captionLinePx })
  );
  return element(
    "g",
    { class: "caption", "font-size": captionFontSize, fill: "#444444" },
    rows.join(""),
  );
}

function legendWidth(legend: FrameSpec["legend"]): number {
  if (legend.length < 2) return 0;
  const names = Math.max(...legend.map((entry) => textWidth(entry.name, legendFontSize)));
  return 12 + swatchPx + 6 + names + 8;
}

/** The whole picture: frame parts around `body` (the data marks, drawn over the grid). */
export function renderFrame(
  spec: FrameSpec,
  area: PlotArea,
  ticks: { x: readonly PixelTick[]; y: readonly PixelTick[] },
  body: string,
): string {
  const parts = [
    element("rect", { width: spec.width, height: spec.height, fill: "#ffffff" }),
    text(spec.title, {
      x: spec.width / 2,
      y: paddingPx + titleFontSize,
      "text-anchor": "middle",
      "font-size": titleFontSize,
      "font-weight": "bold",
    }),
    grid(area, ticks),
    body,
    axes(spec, area, ticks),
    legend(spec, area),
    caption(spec),
  ];
  return element(
    "svg",
    {
      xmlns: "http://www.w3.org/2000/svg",
      width: spec.width,
      height: spec.height,
      viewBox: `0 0 ${spec.width} ${spec.height}`,
      "font-family": "sans-serif",
    },
    `<title>${escapeXml(spec.title)}</title>` + parts.join(""),
  ) + "\n";
}

function grid(area: PlotArea, ticks: { x: readonly PixelTick[]; y: readonly PixelTick[] }) {
  const lines = [
    ...ticks.y.map((tick) =>
      element("line", { x1: area.left, x2: area.right, y1: tick.at, y2: tick.at })
    ),
    ...ticks.x.map((tick) =>
      element("line", { x1: tick.at, x2: tick.at, y1: area.top, y2: area.bottom })
    ),
  ];
  return element("g", { stroke: "#e6e6e6", "stroke-width": 1 }, lines.join(""));
}

function axes(
  spec: FrameSpec,
  area: PlotArea,
  ticks: { x: readonly PixelTick[]; y: readonly PixelTick[] },
): string {
  const marks = [
    element("line", { x1: area.left, x2: area.right, y1: area.bottom, y2: area.bottom }),
    element("line", { x1: area.left, x2: area.left, y1: area.top, y2: area.bottom }),
    ...ticks.x.map((tick) =>
      element("line", { x1: tick.at, x2: tick.at, y1: area.bottom, y2: area.bottom + tickLengthPx })
    ),
    ...ticks.y.map((tick) =>
      element("line", { x1: area.left - tickLengthPx, x2: area.left, y1: tick.at, y2: tick.at })
    ),
  ];
  const xLabelY = area.bottom + tickLengthPx + 4 + tickFontSize;
  const xLabels = ticks.x.map((tick) =>
    spec.slantXTicks
      ? text(tick.label, {
        x: tick.at,
        y: xLabelY,
        "text-anchor": "end",
        transform: `rotate(-30 ${tick.at} ${xLabelY})`,
      })
      : text(tick.label, { x: tick.at, y: xLabelY, "text-anchor": "middle" })
  );
  const yLabels = ticks.y.map((tick) =>
    text(tick.label, {
      x: area.left - tickLengthPx - 3,
      y: tick.at + tickFontSize * 0.35,
      "text-anchor": "end",
    })
  );
  const yTitleX = paddingPx + axisFontSize;
  const yTitleY = (area.top + area.bottom) / 2;
  // A long y title shrinks to the plot's height (plus a little overhang) rather than leave the picture.
  const yTitleRoomPx = area.bottom - area.top + 20;
  const yTitleFontSize = Math.max(
    yTitleFontSizeMin,
    Math.min(axisFontSize, axisFontSize * yTitleRoomPx / textWidth(spec.yLabel, axisFontSize)),
  );
  return [
    element("g", { stroke: "#333333", "stroke-width": 1 }, marks.join("")),
    element("g", { "font-size": tickFontSize, fill: "#333333" }, [...xLabels, ...yLabels].join("")),
    text(spec.xLabel, {
      x: (area.left + area.right) / 2,
      y: spec.height - paddingPx - captionHeight(spec),
      "text-anchor": "middle",
      "font-size": axisFontSize,
    }),
    text(spec.yLabel, {
      x: yTitleX,
      y: yTitleY,
      "text-anchor": "middle",
      "font-size": yTitleFontSize,
      transform: `rotate(-90 ${yTitleX} ${yTitleY})`,
    }),
  ].join("");
}

function legend(spec: FrameSpec, area: PlotArea): string {
  if (spec.legend.length < 2) return "";
  const left = area.right + 12 +
    Math.min(30, textWidth(spec.xTickLabels.at(-1) ?? "", tickFontSize) / 2);
  const rows = spec.legend.map((entry, index) => {
    const y = area.top + 8 + index * legendRowPx;
    const swatch = spec.swatch === "box"
      ? element("rect", { x: left, y: y - 5, width: swatchPx, height: 10, fill: entry.color })
      : spec.swatch === "dot"
      ? element("circle", { cx: left + swatchPx / 2, cy: y, r: 4, fill: entry.color })
      : element("line", {
        x1: left,
        x2: left + swatchPx,
        y1: y,
        y2: y,
        stroke: entry.color,
        "stroke-width": 3,
      });
    return swatch + text(entry.name, { x: left + swatchPx + 6, y: y + legendFontSize * 0.35 });
  });
  return element("g", { "font-size": legendFontSize, fill: "#333333" }, rows.join(""));
}

/** Centered "No data" note for an empty chart. */
export function noData(area: PlotArea): string {
  return text("No data", {
    x: (area.left + area.right) / 2,
    y: (area.top + area.bottom) / 2,
    "text-anchor": "middle",
    "font-size": axisFontSize,
    fill: "#888888",
  });
}
