import assert from "node:assert/strict";
import { configureLogging, getLogger, type LogLevelName, resetLogging } from "../lib/logging.ts";

function capture(): { lines: string[]; write: (text: string) => void } {
  const lines: string[] = [];
  return { lines, write: (text) => lines.push(...text.split("\n").filter((line) => line !== "")) };
}

Deno.test("configureLogging json writes one parsable object per record under the pubsub category", () => {
  const output = capture();
  configureLogging({ level: "info", format: "json", write: output.write });
  try {
    const logger = getLogger("peer", "router");
    logger.debug("Dropped at info level");
    logger.info("Forwarded {action} to {leader}", { action: "publish", leader: 2 });
    logger.error("Failed");
  } finally {
    resetLogging();
  }
  assert.equal(output.lines.length, 2);
  const record = JSON.parse(output.lines[0]);
  assert.equal(record.level, "INFO");
  assert.equal(record.logger, "pubsub.peer.router");
  assert.equal(record.message, 'Forwarded "publish" to 2');
  assert.equal(record.properties.leader, 2);
  assert.equal(JSON.parse(output.lines[1]).level, "ERROR");
});

Deno.test("configureLogging pretty writes text lines with the level and category", () => {
  const output = capture();
  configureLogging({ level: "debug", format: "pretty", color: false, write: output.write });
  try {
    getLogger("bench").debug("Phase {phase} started", { phase: "publish" });
  } finally {
    resetLogging();
  }
  assert.equal(output.lines.length, 1);
  assert.match(output.lines[0], /DBG/);
  assert.match(output.lines[0], /pubsub·bench/);
  assert.match(output.lines[0], /Phase "publish" started/);
});

Deno.test("configureLogging at warning level drops info records", () => {
  const output = capture();
  configureLogging({ level: "warning", format: "json", write: output.write });
  try {
    getLogger("cluster").info("Hidden");
    getLogger("cluster").warn("Shown");
  } finally {
    resetLogging();
  }
  assert.deepEqual(output.lines.map((line) => JSON.parse(line).message), ["Shown"]);
});

Deno.test("configureLogging rejects an unknown level with a specific message", () => {
  assert.throws(
    () => configureLogging({ level: "loud" as LogLevelName }),
    new RangeError(
      "Cannot configure logging as 'level' must be one of debug, info, warning, error: current value is 'loud'",
    ),
  );
});

Deno.test("configureLogging rejects an unknown format with a specific message", () => {
  assert.throws(
    () => configureLogging({ format: "xml" as "json" }),
    new RangeError(
      "Cannot configure logging as 'format' must be one of json, pretty: current value is 'xml'",
    ),
  );
});
