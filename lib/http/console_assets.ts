/**
 * The web console's files (`web/` in the repository), read once when the
 * HTTP server starts and served from memory: plain HTML, CSS and JavaScript
 * modules, no build step and nothing fetched from the internet.
 *
 * @module
 */

/** Where the console's files live: `web/` at the repository root. */
export const consoleDirDefault: URL = new URL("../../web/", import.meta.url);
/** Most files served from the console directory. */
export const consoleFilesMax = 64;
/** Largest console file served. */
export const consoleFileBytesMax = 1024 * 1024;

const contentTypes: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  svg: "image/svg+xml",
  json: "application/json; charset=utf-8",
  png: "image/png",
  ico: "image/x-icon",
};

/**
 * The console may load only its own files and talk only to its own peer;
 * inline SVG charts are elements, so no inline script or style is needed.
 */
const contentSecurityPolicy =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

interface Asset {
  bytes: Uint8Array;
  type: string;
  etag: string;
}

/**
 * The console's files by URL path.
 *
 * @example
 * ```ts
 * const assets = await ConsoleAssets.load();
 * const response = assets.respond(new Request("http://127.0.0.1:5101/"));
 * ```
 */
export class ConsoleAssets {
  readonly #files: ReadonlyMap<string, Asset>;
  readonly #problem: string | undefined;

  private constructor(files: Map<string, Asset>, problem: string | undefined) {
    this.#files = files;
    this.#problem = problem;
  }

  /**
   * Reads the files of `dir` (not its subdirectories). A missing or
   * unreadable directory does not fail the peer: the API keeps working and
   * `/` explains what is missing.
   */
  static async load(dir: URL | string = consoleDirDefault): Promise<ConsoleAssets> {
    const files = new Map<string, Asset>();
    try {
      for await (const entry of Deno.readDir(dir)) {
        const extension = entry.name.split(".").at(-1) ?? "";
        if (!entry.isFile || !(extension in contentTypes)) continue;
        if (files.size >= consoleFilesMax) break;
        const bytes = await Deno.readFile(new URL(entry.name, toDirectoryUrl(dir)));
        if (bytes.length > consoleFileBytesMax) continue;
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
        const etag = `"${Array.from(digest.subarray(0, 8), hex).join("")}"`;
        files.set(`/${entry.name}`, { bytes, type: contentTypes[extension], etag });
      }
    } catch (error) {
      return new ConsoleAssets(files, (error as Error).message);
    }
    const problem = files.has("/index.html") ? undefined : "index.html is missing";
    return new ConsoleAssets(files, problem);
  }

  /** URL paths served, sorted. */
  get paths(): string[] {
    return [...this.#files.keys()].sort();
  }

  /** Answers a GET or HEAD of a console file (`/` is `index.html`), or 404/405. */
  respond(request: Request): Response {
    const path = new URL(request.url).pathname;
    const asset = this.#files.get(path === "/" ? "/index.html" : path);
    if (asset === undefined) {
      const text = path === "/" && this.#problem !== undefined
        ? `The web console's files were not found (${this.#problem}); the API at /api/ works.\n`
        : "Not found\n";
      return new Response(text, {
        status: 404,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("Method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    const headers = new Headers({
      "content-type": asset.type,
      "cache-control": "no-cache",
      "etag": asset.etag,
      "x-content-type-options": "nosniff",
    });
    if (asset.type.startsWith("text/html")) {
      headers.set("content-security-policy", contentSecurityPolicy);
      headers.set("referrer-policy", "no-referrer");
    }
    if (request.headers.get("if-none-match") === asset.etag) {
      return new Response(null, { status: 304, headers });
    }
    return new Response(request.method === "HEAD" ? null : asset.bytes.slice(), { headers });
  }
}

function toDirectoryUrl(dir: URL | string): URL {
  if (dir instanceof URL) return dir;
  const absolute = dir.startsWith("/") ? dir : `${Deno.cwd()}/${dir}`;
  return new URL(`file://${absolute.endsWith("/") ? absolute : `${absolute}/`}`);
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}
