/**
 * A report as neutral blocks (headings, paragraphs, tables, images) rendered
 * to HTML and to Markdown from the same value, so the two never disagree.
 *
 * @module
 */

import { escapeXml } from "./_svg_markup.ts";

/** One block of a report. */
export type Block =
  | { kind: "heading"; text: string }
  | { kind: "paragraph"; text: string }
  | { kind: "table"; headers: readonly string[]; rows: readonly (readonly string[])[] }
  | { kind: "image"; file: string; alt: string };

/** A whole report. */
export interface ReportDocument {
  title: string;
  blocks: readonly Block[];
}

const style = [
  "body{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}",
  "table{border-collapse:collapse;margin:0.5em 0 1.5em}",
  "th,td{border:1px solid #ddd;padding:4px 10px;text-align:left}",
  "td.number{text-align:right;font-variant-numeric:tabular-nums}",
  "th{background:#f4f4f4}",
  "img{max-width:100%;border:1px solid #eee;margin:0.5em 0 1.5em}",
].join("");

/** The document as a standalone HTML page. */
export function renderHtml(document: ReportDocument): string {
  const body = document.blocks.map(htmlBlock).join("\n");
  return [
    "<!DOCTYPE html>",
    '<html lang="en">',
    '<head><meta charset="utf-8">',
    `<title>${escapeXml(document.title)}</title>`,
    `<style>${style}</style></head>`,
    `<body>\n<h1>${escapeXml(document.title)}</h1>`,
    body,
    "</body>",
    "</html>",
    "",
  ].join("\n");
}

function htmlBlock(block: Block): string {
  switch (block.kind) {
    case "heading":
      return `<h2>${escapeXml(block.text)}</h2>`;
    case "paragraph":
      return `<p>${escapeXml(block.text)}</p>`;
    case "image":
      return `<img src="${escapeXml(block.file)}" alt="${escapeXml(block.alt)}">`;
    case "table": {
      const head = block.headers.map((header) => `<th>${escapeXml(header)}</th>`).join("");
      const rows = block.rows.map((row) =>
        "<tr>" + row.map((cell) =>
          looksNumeric(cell)
            ? `<td class="number">${escapeXml(cell)}</td>`
            : `<td>${escapeXml(cell)}</td>`
        ).join("") + "</tr>"
      );
      return `<table>\n<tr>${head}</tr>\n${rows.join("\n")}\n</table>`;
    }
  }
}

/** The document as GitHub-flavoured Markdown. */
export function renderMarkdown(document: ReportDocument): string {
  return [`# ${markdownText(document.title)}`, ...document.blocks.map(markdownBlock)].join("\n\n") +
    "\n";
}

function markdownBlock(block: Block): string {
  switch (block.kind) {
    case "heading":
      return `## ${markdownText(block.text)}`;
    case "paragraph":
      return markdownText(block.text);
    case "image":
      return `![${markdownText(block.alt)}](${encodeURI(block.file)})`;
    case "table": {
      const line = (cells: readonly string[]) => `| ${cells.map(markdownText).join(" | ")} |`;
      const rule = `|${block.headers.map(() => " --- ").join("|")}|`;
      return [line(block.headers), rule, ...block.rows.map(line)].join("\n");
    }
  }
}

/** Escapes characters Markdown would read as markup. */
function markdownText(text: string): string {
  return text.replace(/([\\`*_[\]<>#|])/g, "\\$1").replaceAll("\n", " ");
}

function looksNumeric(cell: string): boolean {
  return /^-?[\d,]+(\.\d+)?( ?[a-zA-Z/%×]+)?$/.test(cell);
}
