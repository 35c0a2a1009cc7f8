import assert from "node:assert/strict";
import { DataDirLockedError, lockDataDir } from "../../lib/peer/data_dir_lock.ts";
import { freePort, type PeerProcess, runPeerToExit, startPeer } from "../_helpers/peer_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";

Deno.test("lockDataDir refuses a second holder with the directory and pid, and allows one after release", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pubsub-lock-" });
  const dataDir = `${dir}/data`;
  try {
    const first = await lockDataDir(dataDir);
    assert.equal((await Deno.readTextFile(`${dataDir}/LOCK`)).trim(), String(Deno.pid));
    await assert.rejects(lockDataDir(dataDir), (error: unknown) => {
      assert.ok(error instanceof DataDirLockedError, String(error));
      assert.equal(error.holderPid, Deno.pid);
      assert.equal(
        error.message,
        `Data directory ${dataDir} is already in use by another peer (pid ${Deno.pid})`,
      );
      return true;
    });
    first.release();
    first.release();
    const second = await lockDataDir(dataDir);
    second.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lockDataDir takes over a LOCK file left behind by a process that died", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pubsub-lock-" });
  try {
    await Deno.writeTextFile(`${dir}/LOCK`, "999999999\n");
    const lock = await lockDataDir(dir);
    assert.equal((await Deno.readTextFile(`${dir}/LOCK`)).trim(), String(Deno.pid));
    lock.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Runs a `pubsub peer` on `dataDir` that is expected to exit by itself within `timeoutMs`. */
function runRefusedPeer(
  dataDir: string,
  extra: string[],
  timeoutMs = 30_000,
): Promise<{ code: number; stderr: string }> {
  const port = freePort();
  return runPeerToExit([
    ...["--id", "2", "--port", String(port), "--host", "127.0.0.1"],
    ...["--peers", `2@127.0.0.1:${port}`, "--data-dir", dataDir, ...extra],
  ], timeoutMs);
}

for (const mode of ["replicated", "standalone"]) {
  Deno.test(`a second ${mode} peer on the same data directory exits with one line naming it and the holder's pid`, async () => {
    const extra = mode === "standalone" ? ["--standalone"] : [];
    const dir = await Deno.makeTempDir({ prefix: "pubsub-lock-" });
    const dataDir = `${dir}/data`;
    let first: PeerProcess | undefined;
    let restarted: PeerProcess | undefined;
    try {
      first = await startPeer({ dataDir, args: extra });
      const client = await RawClient.connect(first.port);
      assert.equal(
        (await client.request({ action: "create_topic", topic_name: "kept" }) as {
          status: string;
        }).status,
        "topic_created",
      );
      await client.request({ action: "publish", topic_name: "kept", message: "before" });
      const files = [...Deno.readDirSync(dataDir)].map((entry) => entry.name).sort();

      const refused = await runRefusedPeer(dataDir, extra);
      assert.equal(refused.code, 1, refused.stderr);
      assert.deepEqual(refused.stderr.trimEnd().split("\n"), [
        `pubsub: Data directory ${dataDir} is already in use by another peer (pid ${first.pid})`,
      ]);
      // The refused peer touched nothing, and the holder keeps serving.
      assert.deepEqual([...Deno.readDirSync(dataDir)].map((entry) => entry.name).sort(), files);
      assert.deepEqual(await client.request({ action: "fetch_messages", topic_name: "kept" }), [
        "before",
      ]);
      await client.close();

      const stopped = await first.stop();
      assert.equal(stopped.code, 0, first.output());
      restarted = await startPeer({ dataDir, port: first.port, args: extra });
      const again = await RawClient.connect(restarted.port);
      assert.deepEqual(await again.request({ action: "fetch_messages", topic_name: "kept" }), [
        "before",
      ]);
      await again.close();
    } finally {
      await first?.stop();
      await restarted?.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("a peer killed with SIGKILL leaves no lock behind: the next peer on its directory starts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pubsub-lock-" });
  let restarted: PeerProcess | undefined;
  try {
    const first = await startPeer({ dataDir: dir });
    await first.kill("SIGKILL");
    restarted = await startPeer({ dataDir: dir, port: first.port });
    const client = await RawClient.connect(restarted.port);
    assert.equal((await client.request({ action: "ping" }) as { status: string }).status, "pong");
    await client.close();
  } finally {
    await restarted?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
