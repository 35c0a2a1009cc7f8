import assert from "node:assert/strict";
import { FrameWriter } from "../../lib/peer/frame_writer.ts";
import { ManualScheduler } from "../../lib/cluster/manual_scheduler.ts";
import { readFailureMsMax, SubscriptionPump } from "../../lib/peer/subscription.ts";
import type { MessageSource, ReadResult } from "../../lib/peer/topic.ts";
import { ProtocolError } from "../../lib/wire/errors.ts";
import { FrameDecoder } from "../../lib/wire/frame.ts";

/** A source of three messages whose first reads fail as scripted. */
function scriptedSource(failures: ProtocolError[]): MessageSource & { reads: number } {
  const messages = ["a", "b", "c"];
  return {
    name: "t",
    reads: 0,
    readCommitted(fromOffset: number, max: number): Promise<ReadResult> {
      this.reads++;
      const failure = failures.shift();
      if (failure) return Promise.reject(failure);
      const slice = messages.slice(fromOffset, fromOffset + max);
      return Promise.resolve({
        messages: slice.map((message, index) => ({ offset: fromOffset + index, message })),
        nextOffset: fromOffset + slice.length,
      });
    },
    waitForOffset(offset: number, signal: AbortSignal): Promise<void> {
      if (offset < messages.length || signal.aborted) return Promise.resolve();
      return new Promise((resolve) =>
        signal.addEventListener("abort", () => resolve(), { once: true })
      );
    },
  };
}

function collectingWriter() {
  const decoder = new FrameDecoder();
  const frames: { offset: number; message: string }[] = [];
  const writer = new FrameWriter({
    write(bytes: Uint8Array) {
      for (const event of decoder.push(bytes)) {
        if (event.kind === "frame") {
          frames.push(JSON.parse(new TextDecoder().decode(event.payload)));
        }
      }
      return Promise.resolve(bytes.length);
    },
  });
  return { writer, frames };
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("a subscription retries reads that fail for a moment and delivers everything in order", async () => {
  const unavailable = () => new ProtocolError("unavailable", "Leader moving");
  const source = scriptedSource([unavailable(), unavailable()]);
  const { writer, frames } = collectingWriter();
  const pump = new SubscriptionPump(source, "u1", 0, 100, writer);
  let failed = false;
  pump.start(() => failed = true);
  await until(() => frames.length === 3);
  pump.stop();
  assert.deepEqual(frames.map((frame) => frame.offset), [0, 1, 2]);
  assert.equal(failed, false);
  assert.ok(source.reads >= 3);
});

Deno.test("a subscription whose source is gone ends and asks for the connection to close", async () => {
  const source = scriptedSource([new ProtocolError("topic_not_found", "Replica closed")]);
  const { writer, frames } = collectingWriter();
  const pump = new SubscriptionPump(source, "u1", 0, 100, writer);
  let failed = false;
  pump.start(() => failed = true);
  await until(() => failed);
  assert.equal(failed, true);
  assert.equal(pump.stopped, true);
  assert.equal(frames.length, 0);
});

Deno.test("a subscription times its read retries on the scheduler it is given", async () => {
  const scheduler = new ManualScheduler(1_000);
  const unavailable = () => new ProtocolError("unavailable", "No leader yet");
  const source = scriptedSource(Array.from({ length: 1000 }, unavailable));
  const { writer, frames } = collectingWriter();
  const pump = new SubscriptionPump(source, "u1", 0, 100, writer, { scheduler });
  let failed = false;
  pump.start(() => failed = true);
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
  // Virtual time stands still: the pump waits for its retry timer, however long the test runs.
  await settle();
  assert.equal(source.reads, 1);
  for (let step = 0; step < 5; step++) {
    scheduler.advance(100);
    await settle();
  }
  assert.equal(source.reads, 6, "one read per 100 ms retry");
  assert.equal(failed, false);
  for (let step = 0; step < 110 && !failed; step++) {
    scheduler.advance(100);
    await settle();
  }
  assert.equal(failed, true, "gave up after readFailureMsMax of virtual time");
  assert.ok(scheduler.now() - 1_000 > readFailureMsMax);
  assert.equal(frames.length, 0);
});
