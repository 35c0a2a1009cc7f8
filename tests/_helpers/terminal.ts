/**
 * A real terminal for tests: tmux runs a command in a detached session on
 * its own socket (never the user's sessions), `send-keys` types and
 * `capture-pane` reads the screen.
 *
 * @module
 */

/** Why terminal tests cannot run here, or undefined when tmux works. */
export function tmuxUnavailable(): string | undefined {
  try {
    const ok = new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync().success;
    return ok ? undefined : "tmux -V failed";
  } catch {
    return "tmux is not installed (apt-get install -y tmux)";
  }
}

/** One tmux server with one session. */
export class Terminal {
  readonly socket = `pubsub-test-${crypto.randomUUID().slice(0, 8)}`;
  readonly #timeoutMs: number;

  /** `timeoutMs`: how long `waitFor` waits for the screen to show what it expects. */
  constructor(options: { timeoutMs?: number } = {}) {
    this.#timeoutMs = options.timeoutMs ?? 20_000;
  }

  async run(...args: string[]): Promise<string> {
    const output = await new Deno.Command("tmux", { args: ["-L", this.socket, ...args] }).output();
    if (!output.success) {
      throw new Error(`tmux ${args[0]} failed: ${new TextDecoder().decode(output.stderr)}`);
    }
    return new TextDecoder().decode(output.stdout);
  }

  start(command: string, size = { columns: 120, rows: 50 }): Promise<string> {
    const { columns, rows } = size;
    return this.run(
      "new-session",
      "-d",
      "-s",
      "main",
      "-x",
      `${columns}`,
      "-y",
      `${rows}`,
      command,
    );
  }

  keys(...keys: string[]): Promise<string> {
    return this.run("send-keys", "-t", "main", ...keys);
  }

  /** Types text literally (no key-name lookup), then Enter. */
  async type(text: string): Promise<void> {
    await this.run("send-keys", "-t", "main", "-l", text);
    await this.keys("Enter");
  }

  /** The screen and its scrollback, blank lines dropped. */
  async screen(): Promise<string> {
    const text = await this.run("capture-pane", "-p", "-J", "-t", "main", "-S", "-500");
    return text.split("\n").filter((line) => line.trim() !== "").join("\n");
  }

  /** Polls the screen until `predicate` holds; fails with the screen after the timeout. */
  async waitFor(description: string, predicate: (screen: string) => boolean): Promise<string> {
    const deadline = Date.now() + this.#timeoutMs;
    let screen = "";
    while (Date.now() < deadline) {
      screen = await this.screen();
      if (predicate(screen)) return screen;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`Timed out waiting for ${description}. Screen:\n${screen}`);
  }

  async kill(): Promise<void> {
    try {
      await this.run("kill-server");
    } catch {
      // The server already exited with its last session.
    }
  }
}

/** How often `part` occurs in `text`. */
export function countOf(text: string, part: string): number {
  return text.split(part).length - 1;
}
