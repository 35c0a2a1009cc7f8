/**
 * Retention keeps disk and memory flat (issue 11, "Done when"): a local
 * 3-peer cluster (replication factor 3, fsync on a majority before ack)
 * takes a continuous pipelined publish load into one topic with a
 * `max_bytes` retention, and every `--sample-seconds` the bench reads each
 * peer's replica directory size and resident memory. Once retention starts
 * deleting (the topic's first offset moved), every replica's files must stay
 * under twice `max_bytes`, and the report shows whether disk and RSS grow.
 *
 * ```sh
 * deno run -A bench/retention_soak.ts --max-bytes 100000000 --seconds 300
 * deno run -A bench/retention_soak.ts --max-bytes 20000000 --seconds 60 --json
 * ```
 *
 * Exits 1 when a replica held more than twice `max_bytes` after retention
 * began, 2 on bad flags.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startLocalCluster } from "../lib/bench/local_cluster.ts";
import type { PubSubClient } from "../lib/client/client.ts";
import { processSample } from "./topics.ts";

const topic = "soak";

/** Settings of one run. */
interface SoakSettings {
  maxBytes: number;
  seconds: number;
  sampleSeconds: number;
  messageBytes: number;
  inFlight: number;
  json: boolean;
}

/** One sample of one peer. */
interface PeerSample {
  node: number;
  replicaBytes: number;
  rssMiB: number;
}

/** One sample of the cluster. */
interface Sample {
  second: number;
  published: number;
  firstOffset: number;
  peers: PeerSample[];
}

const usage = `Usage: deno run -A bench/retention_soak.ts [options]

Publishes to one topic with a byte retention limit on a local 3-peer cluster
and samples each replica's bytes on disk and each peer's RSS: both must stay
flat once the limit is reached.

Options:
  --max-bytes N       the topic's retention in bytes (default 100000000, at least 65536)
  --seconds N         how long to publish (default 120)
  --sample-seconds N  seconds between samples (default 5)
  --message-bytes N   bytes per message (default 1024)
  --in-flight N       publishes in flight (default 256)
  --json              print the samples as JSON
  --help              show this text`;

function parseSettings(args: string[]): SoakSettings {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage);
    Deno.exit(0);
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args,
      options: {
        "max-bytes": { type: "string", default: "100000000" },
        seconds: { type: "string", default: "120" },
        "sample-seconds": { type: "string", default: "5" },
        "message-bytes": { type: "string", default: "1024" },
        "in-flight": { type: "string", default: "256" },
        json: { type: "boolean", default: false },
      },
    }).values;
  } catch (error) {
    console.error(`retention_soak: ${(error as Error).message} (see --help)`);
    Deno.exit(2);
  }
  const number = (flag: string, min: number) => {
    const value = Number(values[flag as keyof typeof values]);
    if (!Number.isInteger(value) || value < min) {
      console.error(`retention_soak: --${flag} must be an integer >= ${min}`);
      Deno.exit(2);
    }
    return value;
  };
  return {
    maxBytes: number("max-bytes", 65_536),
    seconds: number("seconds", 1),
    sampleSeconds: number("sample-seconds", 1),
    messageBytes: number("message-bytes", 1),
    inFlight: number("in-flight", 1),
    json: values.json as boolean,
  };
}

/** Bytes of every file under `path` (0 when it does not exist). */
async function directoryBytes(path: string): Promise<number> {
  let bytes = 0;
  try {
    for await (const entry of Deno.readDir(path)) {
      const child = `${path}/${entry.name}`;
      if (entry.isDirectory) bytes += await directoryBytes(child);
      else if (entry.isFile) bytes += (await Deno.stat(child).catch(() => ({ size: 0 }))).size;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return bytes;
}

/** Publishes until `stop` aborts, `inFlight` at a time; returns a counter of acknowledged publishes. */
function publishContinuously(
  client: PubSubClient,
  settings: SoakSettings,
  stop: AbortSignal,
): { acknowledged: () => number; done: Promise<void> } {
  const message = "m".repeat(settings.messageBytes);
  let acknowledged = 0;
  const lane = async () => {
    while (!stop.aborted) {
      await client.publish(topic, message);
      acknowledged++;
    }
  };
  const done = Promise.all(Array.from({ length: settings.inFlight }, lane)).then(() => {});
  return { acknowledged: () => acknowledged, done };
}

async function run(settings: SoakSettings): Promise<number> {
  const cluster = await startLocalCluster(3);
  const stop = new AbortController();
  try {
    const client = await cluster.client();
    await client.createTopic(topic, { retention: { max_bytes: settings.maxBytes } });
    const load = publishContinuously(client, settings, stop.signal);
    const samples: Sample[] = [];
    const started = Date.now();
    while (Date.now() - started < settings.seconds * 1000) {
      await new Promise((resolve) => setTimeout(resolve, settings.sampleSeconds * 1000));
      const described = await client.describeTopic(topic);
      const peers = await Promise.all(cluster.nodes.map(async (node) => ({
        node: node.id,
        replicaBytes: await directoryBytes(`${cluster.dataDir(node.id)}/topics`),
        rssMiB: node.pid === undefined ? 0 : (await processSample(node.pid)).rssKiB / 1024,
      })));
      const sample = {
        second: Math.round((Date.now() - started) / 1000),
        published: load.acknowledged(),
        firstOffset: described.firstOffset,
        peers,
      };
      samples.push(sample);
      if (!settings.json) printSample(sample);
    }
    stop.abort();
    await load.done.catch(() => {});
    await client.close();
    return report(settings, samples);
  } finally {
    stop.abort();
    await cluster.stop();
  }
}

function printSample(sample: Sample): void {
  const peers = sample.peers.map((peer) =>
    `n${peer.node} ${(peer.replicaBytes / 1e6).toFixed(1)} MB ${peer.rssMiB.toFixed(0)} MiB`
  ).join(" | ");
  console.log(
    `${
      String(sample.second).padStart(5)
    } s  published ${sample.published}  first_offset ${sample.firstOffset}  ${peers}`,
  );
}

/** Prints the verdict; returns the exit code. */
function report(settings: SoakSettings, samples: Sample[]): number {
  const retaining = samples.filter((sample) => sample.firstOffset > 0);
  const largest = Math.max(
    0,
    ...retaining.flatMap((sample) => sample.peers.map((peer) => peer.replicaBytes)),
  );
  const rss = (sample: Sample | undefined) =>
    sample === undefined ? 0 : Math.max(...sample.peers.map((peer) => peer.rssMiB));
  const summary = {
    max_bytes: settings.maxBytes,
    seconds: settings.seconds,
    published: samples.at(-1)?.published ?? 0,
    retention_began_at_s: retaining[0]?.second ?? null,
    largest_replica_bytes_after_retention_began: largest,
    within_twice_max_bytes: largest < 2 * settings.maxBytes,
    rss_mib_when_retention_began: rss(retaining[0]),
    rss_mib_at_end: rss(samples.at(-1)),
    samples,
  };
  if (settings.json) console.log(JSON.stringify(summary));
  else {
    console.log(
      retaining.length === 0
        ? "Retention never began: publish longer or lower --max-bytes."
        : `Largest replica after retention began: ${(largest / 1e6).toFixed(1)} MB (limit ${
          (2 * settings.maxBytes / 1e6).toFixed(1)
        } MB); RSS ${summary.rss_mib_when_retention_began.toFixed(0)} -> ${
          summary.rss_mib_at_end.toFixed(0)
        } MiB`,
    );
  }
  return summary.within_twice_max_bytes ? 0 : 1;
}

if (import.meta.main) Deno.exit(await run(parseSettings(Deno.args)));
