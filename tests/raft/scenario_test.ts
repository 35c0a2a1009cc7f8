/**
 * Runs the consensus scenarios in `testdata/*.txt` (etcd-io/raft style) and
 * compares each command's output with the golden output below it. Run with
 * `REWRITE=1` to regenerate the expectations for review.
 *
 * File format: `#` header lines stating the goal; then blocks of a command
 * line, a `----` line, the expected output, and a blank line.
 */

import { deepStrictEqual } from "node:assert/strict";
import { Harness } from "./_harness.ts";

const directory = new URL("./testdata/", import.meta.url);
const rewrite = Deno.env.get("REWRITE") === "1";

interface Block {
  command: string;
  expected: string[];
}

function parse(text: string): { header: string[]; blocks: Block[] } {
  const lines = text.split("\n");
  const header: string[] = [];
  const blocks: Block[] = [];
  let at = 0;
  while (at < lines.length && lines[at].startsWith("#")) header.push(lines[at++]);
  while (at < lines.length) {
    if (lines[at].trim() === "") {
      at++;
      continue;
    }
    const command = lines[at++];
    const expected: string[] = [];
    if (lines[at] === "----") {
      at++;
      while (at < lines.length && lines[at] !== "") expected.push(lines[at++]);
    }
    blocks.push({ command, expected });
  }
  return { header, blocks };
}

for (
  const file of [...Deno.readDirSync(directory)].filter((f) => f.name.endsWith(".txt")).sort((
    a,
    b,
  ) => a.name < b.name ? -1 : 1)
) {
  Deno.test(`Raft scenario ${file.name} produces its golden output`, () => {
    const path = new URL(file.name, directory);
    const { header, blocks } = parse(Deno.readTextFileSync(path));
    const harness = new Harness();
    const rewritten: string[] = [...header, ""];
    for (const block of blocks) {
      const actual = harness.run(block.command);
      rewritten.push(block.command, "----", ...actual, "");
      if (!rewrite) deepStrictEqual(actual, block.expected, `${file.name}: ${block.command}`);
    }
    if (rewrite) Deno.writeTextFileSync(path, rewritten.join("\n"));
  });
}
