/**
 * Text tables of the command line: columns padded to their widest cell, so
 * every cell starts (or, right-aligned, ends) under its header.
 *
 * @module
 */

/** How to lay a table out. */
export interface TableOptions {
  /** Per column; missing columns are left-aligned. */
  align?: ("left" | "right")[];
  /** Put before every line (default none). */
  indent?: string;
  /** Colours a padded cell; applied after padding, so colour never shifts a column. */
  paint?: (row: number, column: number, text: string) => string;
}

/**
 * The lines of a table whose first row is its header.
 *
 * @example
 * ```ts
 * formatTable([["ID", "STATE"], ["1", "alive"]]); // ["ID  STATE", "1   alive"]
 * ```
 */
export function formatTable(rows: string[][], options: TableOptions = {}): string[] {
  const { align = [], indent = "", paint = (_row, _column, text) => text } = options;
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row, rowIndex) =>
    indent + row.map((cell, column) => {
      const padded = align[column] === "right"
        ? cell.padStart(widths[column])
        : cell.padEnd(widths[column]);
      return paint(rowIndex, column, padded);
    }).join("  ").trimEnd()
  );
}
