/**
 * Building blocks of SVG markup as strings: escaping, elements and
 * coordinates rounded so that equal input gives byte-equal output.
 *
 * @module
 */

/** Attribute values of an element; undefined attributes are left out. */
export type Attributes = Readonly<Record<string, string | number | undefined>>;

/** Escapes text for use in XML text and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}

/** A coordinate with at most 2 decimals: sub-pixel detail only bloats the file. */
export function coordinate(value: number): string {
  const rounded = Math.round(value * 100) / 100;
  // Avoids "-0", which is valid but differs from "0" for the same picture.
  return String(rounded === 0 ? 0 : rounded);
}

/** One element; `children` is markup already built (escape text with {@linkcode text}). */
export function element(name: string, attributes: Attributes, children = ""): string {
  const rendered = Object.entries(attributes)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) =>
      ` ${key}="${typeof value === "number" ? coordinate(value) : escapeXml(String(value))}"`
    )
    .join("");
  return children === "" ? `<${name}${rendered}/>` : `<${name}${rendered}>${children}</${name}>`;
}

/** A `<text>` element holding escaped `content`. */
export function text(content: string, attributes: Attributes): string {
  return element("text", attributes, escapeXml(content));
}

/**
 * Approximate width in pixels of `content` in a sans-serif font, used to lay
 * out margins and legends before any renderer measures anything. The factor
 * is on the wide side (DejaVu Sans) so that text is never clipped.
 */
export function textWidth(content: string, fontSize: number): number {
  return content.length * fontSize * 0.62;
}

/** Tableau 10: distinct, colour-blind tolerant series colours. */
export const palette: readonly string[] = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

/** The colour of series number `index`. */
export function seriesColor(index: number): string {
  return palette[index % palette.length];
}
