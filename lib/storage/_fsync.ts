/**
 * How a segment's data is made durable: `fdatasync` on the event loop's
 * thread or on Deno's blocking-thread pool.
 *
 * On the pool, every fsync costs a thread hop each way (a futex wake of a
 * pool thread, then an eventfd wake of the event loop): on a 2-core
 * virtual machine those context switches cost more CPU than the fsync's own
 * kernel work (perf: `finish_task_switch` 19% of a standalone peer's time
 * with one publish at a time, where 1-2 ms of CPU went into every publish
 * across a 3-peer cluster). So the fsyncs asked for during one event-loop
 * turn wait for the end of that turn (`setImmediate`: after its microtasks,
 * so the answers and appends it queued are written first) and then:
 *
 * - a lone one, with none running on the pool, runs on the event loop's
 *   thread: one publish at a time, and the one batch per round of a single
 *   busy topic, wait for their fsync without a thread hop;
 * - several (many topics flushing at once) run on the pool in parallel, so
 *   the event loop never blocks for more than one fsync per turn.
 *
 * @module
 */

interface Waiting {
  file: Deno.FsFile;
  resolve: () => void;
  reject: (error: unknown) => void;
}

let waiting: Waiting[] = [];
let pooled = 0;

/**
 * `fdatasync` of `file` at the end of this event-loop turn: on this thread
 * when it is the turn's only one and none runs on the pool, else on the pool.
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
  return new Promise((resolve, reject) => {
    if (waiting.length === 0) setImmediate(runWaiting);
    waiting.push({ file, resolve, reject });
  });
}

function runWaiting(): void {
  const batch = waiting;
  waiting = [];
  if (batch.length === 1 && pooled === 0) {
    const [{ file, resolve, reject }] = batch;
    try {
      file.syncDataSync();
      resolve();
    } catch (error) {
      reject(error);
    }
    return;
  }
  for (const { file, resolve, reject } of batch) {
    pooled++;
    file.syncData().then(resolve, reject).finally(() => pooled--);
  }
}

/** Fsyncs running on the pool now (for tests). */
export function pooledFsyncs(): number {
  return pooled;
}
