/**
 * How a segment's data is made durable: `fdatasync` on the calling thread
 * or on Deno's blocking-thread pool.
 *
 * On the pool, every fsync costs a thread hop each way (a futex wake of a
 * pool thread, then an eventfd wake of the event loop): on a 2-core
 * virtual machine those context switches cost more CPU than the fsync's own
 * kernel work (perf: `finish_task_switch` 19% of a standalone peer's time
 * with one publish at a time, 1-2 ms of CPU per publish across a 3-peer
 * cluster). So the first fsync of an event-loop turn, when no other runs on
 * the pool, runs on the calling thread: one publish at a time (and the one
 * batch per round of a single busy topic) waits for its fsync without a
 * hop. Further fsyncs of the same turn, or while one runs on the pool
 * (many topics flushing at once), go to the pool and run in parallel, so at
 * most one fsync per turn blocks the event loop.
 *
 * @module
 */

let pooled = 0;
let inlineThisTurn = false;

function endTurn(): void {
  inlineThisTurn = false;
}

/**
 * `fdatasync` of `file`: on this thread when it is the turn's first and no
 * other runs on the pool, else on the pool.
 *
 * @example
 * ```ts
 * import { syncFileData } from "./_fsync.ts";
 * const dir = await Deno.makeTempDir();
 * using file = await Deno.open(`${dir}/f`, { write: true, create: true });
 * await syncFileData(file);
 * ```
 */
export function syncFileData(file: Deno.FsFile): Promise<void> {
  if (!inlineThisTurn && pooled === 0) {
    inlineThisTurn = true;
    // After this turn's I/O callbacks: a timer would wait at least 1 ms.
    setImmediate(endTurn);
    try {
      file.syncDataSync();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }
  pooled++;
  return file.syncData().finally(() => pooled--);
}

/** Fsyncs running on the pool now (for tests and metrics). */
export function pooledFsyncs(): number {
  return pooled;
}
