// Tiny DOM helpers: elements are built from data, never from HTML strings,
// so message text and topic names can never become markup.

const svgNamespace = "http://www.w3.org/2000/svg";

/**
 * Creates an HTML element: h("a", { href: "#/", class: "link" }, "text", child).
 * Attributes starting with "on" are event listeners; `dataset` sets data-* attributes.
 */
export function h(tag, attributes = {}, ...children) {
  return fill(document.createElement(tag), attributes, children);
}

/** Creates an SVG element the same way. */
export function s(tag, attributes = {}, ...children) {
  return fill(document.createElementNS(svgNamespace, tag), attributes, children);
}

function fill(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") {
      for (const [key, item] of Object.entries(value)) element.dataset[key] = String(item);
    } else if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "value" && "value" in element) {
      element.value = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `element`. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** "12:03:04" in local time, with milliseconds when `precise`. */
export function clock(time, precise = false) {
  const date = new Date(time);
  const pad = (value, width = 2) => String(value).padStart(width, "0");
  const text = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  return precise ? `${text}.${pad(date.getMilliseconds(), 3)}` : text;
}

/** "3 s ago", "2 min ago". */
export function ago(milliseconds) {
  if (milliseconds < 1000) return `${Math.max(0, Math.round(milliseconds))} ms ago`;
  if (milliseconds < 60_000) return `${Math.round(milliseconds / 1000)} s ago`;
  if (milliseconds < 3_600_000) return `${Math.round(milliseconds / 60_000)} min ago`;
  return `${Math.round(milliseconds / 3_600_000)} h ago`;
}

/** A rate for humans: "0", "3.2", "1.2k". */
export function rate(value) {
  if (!Number.isFinite(value) || value <= 0) return "0";
  if (value < 10) return value.toFixed(1).replace(/\.0$/, "");
  if (value < 1000) return String(Math.round(value));
  if (value < 1_000_000) return `${(value / 1000).toFixed(1).replace(/\.0$/, "")}k`;
  return `${(value / 1_000_000).toFixed(1).replace(/\.0$/, "")}M`;
}

/** A whole number with thousands separators. */
export function count(value) {
  return Number(value).toLocaleString("en-US");
}

/** A size in bytes for humans: "512 B", "1.5 KiB", "64 MiB"; "–" when unknown. */
export function bytes(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let scaled = value;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit++;
  }
  const digits = unit === 0 || scaled >= 10 ? 0 : 1;
  return `${scaled.toFixed(digits)} ${units[unit]}`;
}

/** A duration in ms for humans: "500 ms", "30 s", "2 h", "7 d". */
export function duration(milliseconds) {
  const steps = [[86_400_000, "d"], [3_600_000, "h"], [60_000, "min"], [1000, "s"]];
  for (const [size, unit] of steps) {
    if (milliseconds >= size && milliseconds % size === 0) return `${milliseconds / size} ${unit}`;
  }
  for (const [size, unit] of steps) {
    if (milliseconds >= size) return `${(milliseconds / size).toFixed(1)} ${unit}`;
  }
  return `${milliseconds} ms`;
}

/** A topic's retention in words: "keep everything", or its limits ("1 d, 100 MiB"). */
export function retention(limits) {
  if (limits === undefined || limits === null) return "–";
  const parts = [];
  if (limits.max_age_ms !== undefined) parts.push(`${duration(limits.max_age_ms)}`);
  if (limits.max_bytes !== undefined) parts.push(bytes(limits.max_bytes));
  if (limits.max_messages !== undefined) parts.push(`${count(limits.max_messages)} messages`);
  const kept = parts.length === 0 ? "keep everything" : parts.join(", ");
  return limits.segment_bytes === undefined
    ? kept
    : `${kept}; ${bytes(limits.segment_bytes)} segments`;
}
