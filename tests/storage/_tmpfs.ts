/**
 * Small tmpfs mounts for tests of a full disk: a real filesystem that
 * answers ENOSPC. Mounting needs root (or CAP_SYS_ADMIN); without it the
 * tests that need one are ignored with the reason printed, never faked.
 *
 * @module
 */

/** A mounted tmpfs. */
export interface Tmpfs {
  path: string;
  /** Writes a filler file until the filesystem is full; returns its path. */
  fill(name?: string): Promise<string>;
  /** Unmounts and removes the mount point. */
  unmount(): Promise<void>;
}

/** Mounts a tmpfs of `bytes` on a new temporary directory. */
export async function mountTmpfs(bytes: number): Promise<Tmpfs> {
  const path = await Deno.makeTempDir({ prefix: "pubsub-tmpfs-" });
  try {
    await run("mount", ["-t", "tmpfs", "-o", `size=${bytes}`, "tmpfs", path]);
  } catch (error) {
    await Deno.remove(path, { recursive: true }).catch(() => {});
    throw error;
  }
  return {
    path,
    fill: (name = "filler") => fill(`${path}/${name}`),
    async unmount() {
      // A peer that was just killed may hold the mount a moment longer.
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          await run("umount", [path]);
          break;
        } catch (error) {
          if (attempt === 49) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Why tmpfs tests cannot run here, or undefined when they can. Tries one
 * tiny mount, so the answer is what `mount` itself says.
 */
export async function tmpfsUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return `tmpfs mounts need Linux, this is ${Deno.build.os}`;
  try {
    const tmpfs = await mountTmpfs(64 * 1024);
    await tmpfs.unmount();
    return undefined;
  } catch (error) {
    return `mount -t tmpfs is not permitted here (${(error as Error).message})`;
  }
}

async function fill(path: string): Promise<string> {
  const file = await Deno.open(path, { write: true, create: true, append: true });
  const chunk = new Uint8Array(16 * 1024);
  try {
    // Bounded: a tmpfs of a few MiB fills after a few hundred chunks.
    for (let written = 0; written < 100_000; written++) {
      try {
        await file.write(chunk);
      } catch (error) {
        if ((error as { code?: string }).code === "ENOSPC") return path;
        throw error;
      }
    }
    throw new Error(`Filling ${path} did not run out of space`);
  } finally {
    file.close();
  }
}

async function run(command: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(command, {
    args,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} failed: ${new TextDecoder().decode(stderr).trim()}`,
    );
  }
}
