/**
 * `FilePool`: a bounded set of open segment handles that closes the least
 * recently used idle one, never a pinned one, and tells a kept handle that
 * it was closed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { FilePool } from "../../lib/storage/_file_pool.ts";
import { withTempDir } from "./_helpers.ts";

function makeFiles(dir: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => {
    const path = `${dir}/f${index}`;
    Deno.writeFileSync(path, new Uint8Array([index]));
    return path;
  });
}

Deno.test("FilePool closes the least recently used idle handle, counting touches of kept handles", async () => {
  await withTempDir((dir) => {
    const [a, b, c] = makeFiles(dir, 3);
    const pool = new FilePool(2);
    const first = pool.acquire(a, "write");
    const second = pool.acquire(b, "write");
    // A kept handle marks its use without a lookup: `a` is now the most recent.
    pool.touch(first);
    pool.acquire(c, "write");
    assert.equal(pool.size, 2);
    assert.equal(second.closed, true, "b was the coldest");
    assert.equal(first.closed, false);
    assert.throws(() => second.file.writeSync(new Uint8Array(1)), "the pool closed it");
    pool.closePath(a);
    pool.closePath(c);
    assert.equal(first.closed, true);
    assert.equal(pool.size, 0);
    return Promise.resolve();
  });
});

Deno.test("FilePool never closes a pinned handle and evicts once it is released", async () => {
  await withTempDir((dir) => {
    const [a, b, c] = makeFiles(dir, 3);
    const pool = new FilePool(2);
    const older = pool.acquire(a, "write");
    const newer = pool.acquire(b, "write");
    pool.pin(older);
    pool.pin(newer);
    const third = pool.acquire(c, "write");
    assert.equal(pool.size, 3, "pinned handles and the one just asked for: over the limit");
    assert.equal(older.closed, false);
    pool.release(older);
    assert.equal(older.closed, true, "released as the coldest idle handle, it is closed");
    assert.equal(pool.size, 2);
    assert.equal(third.closed, false);
    assert.throws(() => pool.pin(older), /closed/);
    pool.release(newer);
    assert.equal(pool.size, 2);
    for (const path of [a, b, c]) pool.closePath(path);
    return Promise.resolve();
  });
});
