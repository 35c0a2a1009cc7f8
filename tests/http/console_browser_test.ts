/**
 * The web console in a real browser (headless Chromium driven by
 * puppeteer-core) against a local 3-peer cluster: it shows 3 peers up,
 * creates a topic and publishes through the page, sees the message in the
 * live tail, marks a killed leader down while the topic's leadership moves,
 * shows the restarted peer back in sync, and rides out a restart of the very
 * peer it was loaded from ("reconnecting"). Screenshots (PNG) are saved under
 * bench/out/console/ (or $PUBSUB_SCREENSHOT_DIR) and their paths printed.
 *
 * Without Chromium (`apt-get install chromium`) the test is skipped and says so.
 */
import assert from "node:assert/strict";
import type { Browser, Page } from "puppeteer-core";
import { waitFor } from "../_helpers/cluster_process.ts";
import { type HttpCluster, request, startHttpCluster } from "./_http_cluster.ts";

const chromiumPath = Deno.env.get("PUBSUB_CHROMIUM") ?? "/usr/bin/chromium";
const chromiumFlags = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];
/** From a leader's SIGKILL to the console showing it down and the leader moved. */
const failoverShownMsMax = 20_000;
const screenshotDir = Deno.env.get("PUBSUB_SCREENSHOT_DIR") ??
  new URL("../../bench/out/console", import.meta.url).pathname;

const skipReason = await chromiumMissing();
if (skipReason !== undefined) {
  console.warn(`SKIPPED web console browser test: ${skipReason}`);
}

async function chromiumMissing(): Promise<string | undefined> {
  try {
    const info = await Deno.stat(chromiumPath);
    if (!info.isFile) return `${chromiumPath} is not a file`;
  } catch {
    return `Chromium is not installed at ${chromiumPath} (apt-get install chromium)`;
  }
  return undefined;
}

Deno.test({
  name: "the web console shows the cluster, publishes through the page and follows a failover",
  ignore: skipReason !== undefined,
  // Chromium's pipes and the cluster's processes outlive single steps on purpose.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await Deno.mkdir(screenshotDir, { recursive: true });
    const cluster = await startHttpCluster(3);
    const { default: puppeteer } = await import("puppeteer-core");
    const profile = await Deno.makeTempDir({ prefix: "pubsub-chromium-" });
    let browser: Browser | undefined;
    const shots: string[] = [];
    try {
      browser = await puppeteer.launch({
        executablePath: chromiumPath,
        headless: true,
        userDataDir: profile,
        args: chromiumFlags,
        timeout: 60_000,
      });
      const page = await browser.newPage();
      await page.setViewport({ width: 1360, height: 900 });
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(String(error)));
      const shoot = async (name: string) => {
        const path = `${screenshotDir}/${name}.png`;
        await page.screenshot({ path: path as `${string}.png`, fullPage: true });
        shots.push(path);
      };
      await scenario(cluster, page, shoot);
      assert.deepEqual(errors, [], "the page threw");
    } finally {
      await browser?.close().catch(() => {});
      await cluster.dispose();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      for (const path of shots) console.log(`screenshot: ${path}`);
    }
  },
});

async function scenario(
  cluster: HttpCluster,
  page: Page,
  shoot: (name: string) => Promise<void>,
): Promise<void> {
  await page.goto(`${cluster.url(1)}/`, { waitUntil: "load" });
  await page.waitForFunction(
    `document.querySelectorAll('[data-peer][data-state="up"]').length === 3`,
    { timeout: 20_000 },
  );
  await shoot("1-cluster");

  // Create a topic through the page; the page then opens it with its live tail.
  await page.type("#create-name", "orders");
  await page.click("#create-topic button[type=submit]");
  await page.waitForFunction(
    `location.hash === "#/topics/orders" &&
      document.querySelector("#tail-state")?.dataset.tailState === "live"`,
    { timeout: 20_000 },
  );
  await page.type("#publish-text", "hello from the browser");
  await page.click("#publish-button");
  await page.waitForFunction(
    `[...document.querySelectorAll("#tail .message")]
      .some((item) => item.textContent === "hello from the browser")`,
    { timeout: 15_000 },
  );
  // The newest page of stored messages follows the topic too.
  await page.waitForFunction(
    `[...document.querySelectorAll("#page-body td.message")]
      .some((cell) => cell.textContent === "hello from the browser")`,
    { timeout: 15_000 },
  );
  const published = await request(`${cluster.url(1)}/api/topics/orders/messages?from=0`);
  assert.deepEqual(published.body.messages, [{ offset: 0, message: "hello from the browser" }]);
  await shoot("2-topic-live-tail");

  // Kill the topic's leader, watched from a peer that survives.
  const described = await waitFor("orders to have 3 replicas in sync", async () => {
    const answer = await request(`${cluster.url(1)}/api/topics/orders`);
    return answer.body.in_sync?.length === 3 && answer.body.leader !== null && answer.body;
  });
  const leader: number = described.leader;
  const watcher = leader === 1 ? 2 : 1;
  await page.goto(`${cluster.url(watcher)}/#/`, { waitUntil: "load" });
  await page.waitForSelector(`[data-topic="orders"][data-leader="${leader}"]`, { timeout: 15_000 });
  const killedAt = Date.now();
  Deno.kill(cluster.peer(leader).pid, "SIGKILL");
  await cluster.peer(leader).status;
  await page.waitForFunction(
    `document.querySelector('[data-peer="${leader}"]')?.dataset.state === "down" &&
      !["${leader}", "none", undefined].includes(
        document.querySelector('[data-topic="orders"]')?.dataset.leader)`,
    { timeout: failoverShownMsMax, polling: 100 },
  );
  const shownAfterMs = Date.now() - killedAt;
  const newLeader = await page.evaluate(
    `document.querySelector('[data-topic="orders"]').dataset.leader`,
  );
  console.log(
    `console: peer ${leader} (leader of orders) marked down and leadership moved to peer ${newLeader} ${shownAfterMs} ms after SIGKILL`,
  );
  assert.ok(shownAfterMs < failoverShownMsMax);
  await shoot("3-failover");

  // Restart it: up again, and back in sync.
  await cluster.start(leader);
  await page.waitForFunction(
    `document.querySelector('[data-peer="${leader}"]')?.dataset.state === "up" &&
      document.querySelector('[data-topic="orders"]')?.dataset.inSync === "3"`,
    { timeout: 30_000, polling: 200 },
  );
  await shoot("4-recovered");

  // The peer serving the page restarts: the page says it reconnects, then recovers.
  Deno.kill(cluster.peer(watcher).pid, "SIGKILL");
  await cluster.peer(watcher).status;
  await page.waitForFunction(
    `document.querySelector("#connection").dataset.connection === "reconnecting" &&
      !document.querySelector("#banner").hidden`,
    { timeout: 15_000 },
  );
  await shoot("5-reconnecting");
  await cluster.start(watcher);
  await page.waitForFunction(
    `document.querySelector("#connection").dataset.connection === "connected" &&
      document.querySelectorAll('[data-peer][data-state="up"]').length === 3`,
    { timeout: 30_000, polling: 200 },
  );
  await page.goto(`${cluster.url(watcher)}/#/timeline`, { waitUntil: "load" });
  await page.waitForSelector("#lanes svg", { timeout: 10_000 });
  const timeline = String(
    await page.evaluate(`document.querySelector("#timeline-events").textContent`),
  );
  assert.match(timeline, new RegExp(`Peer ${leader} is down`));
  assert.match(timeline, new RegExp(`orders: leader moved from peer ${leader}`));
  assert.match(timeline, /Reconnected to peer/);
  await shoot("6-timeline");
}
