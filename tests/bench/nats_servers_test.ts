/**
 * `bench/compare.ts` measures NATS R3 with an fsync on every write only on
 * a nats-server that has `sync_interval: always` (2.10 and later).
 *
 * @module
 */

import assert from "node:assert/strict";
import { natsCanSyncAlways } from "../../bench/_nats_servers.ts";

Deno.test("natsCanSyncAlways is true from nats-server 2.10 on", () => {
  assert.equal(natsCanSyncAlways("nats-server: v2.9.10"), false);
  assert.equal(natsCanSyncAlways("nats-server: v2.10.0"), true);
  assert.equal(natsCanSyncAlways("nats-server: v2.10.27"), true);
  assert.equal(natsCanSyncAlways("nats-server: v2.14.4"), true);
  assert.equal(natsCanSyncAlways("nats-server: v3.0.1"), true);
  assert.equal(natsCanSyncAlways("nats-server: v1.4.1"), false);
});

Deno.test("natsCanSyncAlways is false for a version line it cannot read", () => {
  assert.equal(natsCanSyncAlways("nats-server version unknown"), false);
  assert.equal(natsCanSyncAlways(""), false);
});
