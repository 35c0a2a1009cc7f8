/**
 * Renders SVG charts to PNG with `rsvg-convert` (Debian package
 * librsvg2-bin), so tests check that a real renderer accepts them. The PNGs
 * go to a temporary directory that is removed, or are kept in
 * `$PUBSUB_CHART_PNG_DIR` when it is set, for a person to look at.
 */

import assert from "node:assert/strict";

/** Why charts cannot be rendered here, or undefined when they can. */
export const renderSkipReason: string | undefined = (() => {
  try {
    const probe = new Deno.Command("rsvg-convert", { args: ["--version"] }).outputSync();
    return probe.success ? undefined : "rsvg-convert --version failed";
  } catch {
    return "rsvg-convert is not installed (apt-get install librsvg2-bin)";
  }
})();

if (renderSkipReason !== undefined) {
  console.warn(`Skipping the PNG rendering of charts: ${renderSkipReason}`);
}

const pngSignature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** A rendered chart: where it is (when kept) and its size in pixels. */
export interface RenderedPng {
  path: string | undefined;
  width: number;
  height: number;
  bytes: number;
}

/**
 * Renders `svg` to `<name>.png` and checks it is a PNG of more than a blank
 * page's size; returns its pixel size.
 */
export async function renderPng(name: string, svg: string): Promise<RenderedPng> {
  const keepDirectory = Deno.env.get("PUBSUB_CHART_PNG_DIR");
  const directory = keepDirectory ?? await Deno.makeTempDir({ prefix: "pubsub_png_" });
  await Deno.mkdir(directory, { recursive: true });
  const source = `${directory}/${name}.svg`;
  const target = `${directory}/${name}.png`;
  try {
    await Deno.writeTextFile(source, svg);
    const result = await new Deno.Command("rsvg-convert", { args: ["-o", target, source] })
      .output();
    assert.ok(result.success, new TextDecoder().decode(result.stderr));
    const png = await Deno.readFile(target);
    assert.deepEqual([...png.subarray(0, 8)], pngSignature);
    // A white page of 800x420 compresses to well under 2 KB; a chart does not.
    assert.ok(png.length > 4000, `${name}.png of ${png.length} bytes is too small to hold a chart`);
    const header = new DataView(png.buffer, png.byteOffset + 16, 8);
    return {
      path: keepDirectory === undefined ? undefined : target,
      width: header.getUint32(0),
      height: header.getUint32(4),
      bytes: png.length,
    };
  } finally {
    if (keepDirectory === undefined) await Deno.remove(directory, { recursive: true });
  }
}
