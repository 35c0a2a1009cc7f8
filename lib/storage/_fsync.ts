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
 * A request marked `soon` (an idle replica driving in a microtask of the
 * turn that brought its work) starts the batch in a microtask instead: after
 * those already queued, which hold the other replicas' drives for the same
 * reads, so their requests still join it. That saves the hop to the turn's
 * end (about 15 µs on a follower's path, one publish at a time). It must not
 * come from a deferred task: Deno drains microtasks between `setImmediate`
 * callbacks, so each deferred replica would then sync alone, one after
 * another.
 *
 * A request marked `onPool` (a leader's own write, whose appends have left
 * already) runs on the pool, so that the event loop goes on meanwhile: the
 * followers' acknowledgements can commit without it, and a slow disk does
 * not stop the loop. Marked `soon` too, and alone, it runs inline while
 * fsyncs take under {@linkcode inlineFsyncMsMax} on average (the last few,
 * weighted): then it is done before an acknowledgement could come back, and
 * the pool's two thread hops, and the wakeup of the event loop when it is
 * done, would cost more than the blocked thread. Measured with interleaved
 * A/Bs, one publish at a time on 2 cores, on two machine images:
 *
 * - three fsyncs at once taking 0.17-0.2 ms: inline p99 1.24 -> 1.06-1.10
 *   ms, p99.9 5.5 -> 4.2-4.3 ms, p50 +4-13 µs (inline while under 2 ms);
 * - three at once taking about 0.45-0.6 ms (a paravirtualized guest): on
 *   the pool p50 -10% to -13% in four 60 s runs (for example 1.069 ->
 *   0.935 ms), p99 -2% to -10%, the peers' CPU per publish -3% to -6%.
 *
 * @module
 */

/**
 * A request for an `fdatasync` of `file`: `fsynced` is called once it is
 * done, with the error when it failed. A caller that syncs the same file
 * over and over can hand in one long-lived request object (no promise, no
 * closure per fsync: garbage per publish is what drives the scavenges), but
 * must not hand it in again before its `fsynced` ran.
 */
export interface FsyncRequest {
  readonly file: Deno.FsFile;
  /**
   * Run on the pool even alone: the event loop must stay free meanwhile (a
   * leader's own fsync); with `soon`, only once an fsync was slow (see the
   * module documentation).
   */
  readonly onPool?: boolean;
  /** Start after the microtasks queued so far (`SyncOptions.soon`), not at the turn's end. */
  readonly soon?: boolean;
  fsynced(error?: unknown): void;
}

/**
 * A lone request marked both `onPool` and `soon` runs on the event loop's
 * thread while fsyncs take less than this on average (see
 * {@linkcode nextFsyncAverageMs}); slower, it goes to the pool (see
 * `FsyncRequest.onPool`). An fsync of 2.4 ms or more moves an average from
 * 0 past it at once, so a disk that turns slow sends the next ones to the
 * pool.
 */
export const inlineFsyncMsMax = 0.3;

/** The weight of the latest fsync in the running average (the last 8 or so count). */
export const fsyncAverageWeight = 1 / 8;

/** Slots a turn's list keeps once drained (a bound on memory kept after a burst). */
const waitingKeepMax = 1024;

// Two lists swapped at each turn's end, their slots cleared but kept (not
// `length = 0`, which frees an array's store): a turn costs no new array.
let waiting: (FsyncRequest | undefined)[] = [];
let waitingCount = 0;
let draining: (FsyncRequest | undefined)[] = [];
let pooled = 0;
/** How long fsyncs took lately, in ms (on the pool: until the callback ran); see `nextFsyncAverageMs`. */
let fsyncAverageMs = 0;
/** Turns whose fsyncs have started (see `fsyncTurnsStarted`). */
let turnsStarted = 0;

/**
 * Asks for an `fdatasync` of `request.file` at the end of this event-loop
 * turn (see the module doc): `request.fsynced` is called once it is done.
 *
 * @example
 * ```ts
 * import { requestFileSync } from "./_fsync.ts";
 * const dir = await Deno.makeTempDir();
 * const file = await Deno.open(`${dir}/f`, { write: true, create: true });
 * requestFileSync({ file, fsynced: (error) => { file.close(); if (error) throw error; } });
 * ```
 */
export function requestFileSync(request: FsyncRequest): void {
  if (waitingCount === 0) {
    if (request.soon === true) queueMicrotask(runWaiting);
    else setImmediate(runWaiting);
  }
  waiting[waitingCount++] = request;
}

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
    requestFileSync({ file, fsynced: (error) => error === undefined ? resolve() : reject(error) });
  });
}

function runWaiting(): void {
  turnsStarted++;
  const batch = waiting;
  const count = waitingCount;
  waiting = draining;
  waitingCount = 0;
  draining = batch;
  if (count === 1 && pooled === 0 && runsLoneInline(batch[0]!, fsyncAverageMs)) {
    const request = batch[0]!;
    batch[0] = undefined;
    runInline(request);
    return;
  }
  for (let slot = 0; slot < count; slot++) {
    runPooled(batch[slot]!);
    batch[slot] = undefined;
  }
  if (batch.length > waitingKeepMax) draining = [];
}

/**
 * Whether a turn's lone request runs on the event loop's thread, with
 * nothing on the pool and fsyncs taking `averageMs` lately (see the module
 * documentation).
 *
 * @example
 * ```ts
 * import { runsLoneInline } from "./_fsync.ts";
 * const file = Deno.stdout as unknown as Deno.FsFile;
 * console.log(runsLoneInline({ file, onPool: true, soon: true, fsynced() {} }, 0.3)); // true
 * ```
 */
export function runsLoneInline(request: FsyncRequest, averageMs: number): boolean {
  if (request.onPool !== true) return true;
  return request.soon === true && averageMs < inlineFsyncMsMax;
}

/**
 * The running average of fsync times once one more took `ms`: weighted by
 * {@linkcode fsyncAverageWeight}, so that one slow fsync among fast ones
 * moves it only a little, unless it was very slow.
 *
 * @example
 * ```ts
 * import { nextFsyncAverageMs } from "./_fsync.ts";
 * console.log(nextFsyncAverageMs(0.2, 1)); // 0.3
 * ```
 */
export function nextFsyncAverageMs(averageMs: number, ms: number): number {
  return averageMs + (ms - averageMs) * fsyncAverageWeight;
}

function runInline(request: FsyncRequest): void {
  let failure: unknown;
  const startedMs = performance.now();
  try {
    request.file.syncDataSync();
  } catch (error) {
    failure = error ?? new Error("fdatasync failed");
  }
  fsyncAverageMs = nextFsyncAverageMs(fsyncAverageMs, performance.now() - startedMs);
  request.fsynced(failure);
}

function runPooled(request: FsyncRequest): void {
  pooled++;
  const startedMs = performance.now();
  request.file.syncData().then(() => {
    fsyncAverageMs = nextFsyncAverageMs(fsyncAverageMs, performance.now() - startedMs);
    pooled--;
    request.fsynced();
  }, (error) => {
    pooled--;
    request.fsynced(error ?? new Error("fdatasync failed"));
  });
}
/**
 * How many turn ends have started their fsyncs: a request made when this was
 * `n` has not started its fsync while it is still `n`, so data written to
 * the file meanwhile is covered by it.
 *
 * @example
 * ```ts
 * import { fsyncTurnsStarted } from "./_fsync.ts";
 * const turn = fsyncTurnsStarted();
 * ```
 */
export function fsyncTurnsStarted(): number {
  return turnsStarted;
}

/** Fsyncs running on the pool now (for tests). */
export function pooledFsyncs(): number {
  return pooled;
}
