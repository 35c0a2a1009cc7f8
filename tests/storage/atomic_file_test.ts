import assert from "node:assert/strict";
import {
  readFileAtomic,
  syncDirectory,
  temporaryFileSuffix,
  writeFileAtomic,
} from "../../lib/storage/atomic_file.ts";

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "atomic_file_test_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("writeFileAtomic creates a file that readFileAtomic returns", async () => {
  await withTempDir(async (dir) => {
    await writeFileAtomic(`${dir}/state`, new Uint8Array([1, 2, 3]));
    assert.deepEqual(await readFileAtomic(`${dir}/state`), new Uint8Array([1, 2, 3]));
  });
});

Deno.test("writeFileAtomic replaces existing contents and leaves no temporary file", async () => {
  await withTempDir(async (dir) => {
    await writeFileAtomic(`${dir}/state`, new Uint8Array(1000).fill(7));
    await writeFileAtomic(`${dir}/state`, new Uint8Array([9]));
    assert.deepEqual(await readFileAtomic(`${dir}/state`), new Uint8Array([9]));
    const names = [...Deno.readDirSync(dir)].map((entry) => entry.name);
    assert.deepEqual(names, ["state"]);
  });
});

Deno.test("writeFileAtomic ignores a stale temporary file left by a crash", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/state${temporaryFileSuffix}`, new Uint8Array(5000).fill(1));
    await writeFileAtomic(`${dir}/state`, new Uint8Array([4, 5]));
    assert.deepEqual(await readFileAtomic(`${dir}/state`), new Uint8Array([4, 5]));
  });
});

Deno.test("writeFileAtomic reports two fsyncs: the file and its directory", async () => {
  await withTempDir(async (dir) => {
    let fsyncs = 0;
    await writeFileAtomic(`${dir}/state`, new Uint8Array([1]), { onFsync: () => fsyncs++ });
    assert.equal(fsyncs, 2);
  });
});

Deno.test("readFileAtomic returns undefined for a missing file", async () => {
  await withTempDir(async (dir) => {
    assert.equal(await readFileAtomic(`${dir}/missing`), undefined);
  });
});

Deno.test("syncDirectory succeeds on an existing directory and fails on a missing one", async () => {
  await withTempDir(async (dir) => {
    await syncDirectory(dir);
    await assert.rejects(syncDirectory(`${dir}/missing`), Deno.errors.NotFound);
  });
});
