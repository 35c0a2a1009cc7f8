/**
 * The text of `pubsub cluster`'s live view, as a pure function of one
 * snapshot so that it can be tested without processes. It tells the truth
 * when things fail: a peer that is down is told apart from one that did not
 * answer in time, topics stay listed with their age when no peer can be
 * asked, and a lost quorum is said in words, naming the missing peers.
 *
 * @module
 */

import { formatTable } from "./_table.ts";

/**
 * `up`: it answered; `no answer`: its process runs (or something listens)
 * but it did not answer in time (stopped, overloaded); `down`: nothing
 * listens at its address.
 */
export type NodeState = "up" | "no answer" | "down";

/** One peer as the launcher sees it. */
export interface NodeRow {
  id: number;
  address: string;
  /** The process serving it (the launcher's child, or one restarted by hand). */
  pid: number | undefined;
  state: NodeState;
  /** Why, or how: "exited 137", "restarted by hand". */
  detail?: string;
  /** The peer's own membership view, e.g. "1:alive 2:suspect". */
  view?: string;
}

/** One topic row. */
export interface TopicRow {
  name: string;
  leader: number | null;
  replicas: number[];
  inSync: number[];
  firstOffset: number;
  nextOffset: number;
}

/** Everything one refresh shows. */
export interface ClusterSnapshot {
  nodes: NodeRow[];
  topics: TopicRow[];
  /** How old the topic rows are when no peer could list them at this refresh. */
  topicsAgeMs?: number;
  /** True once any peer listed the topics (so "no topics" is known, not assumed). */
  topicsKnown?: boolean;
  metaLeader: number | null;
  uptimeMs: number;
  /** How to connect a client, shown under the tables. */
  connectHint?: string;
  /** Keys the view reacts to, shown last. */
  keysHint?: string;
}

const green = (text: string, color: boolean) => color ? `\x1b[32m${text}\x1b[0m` : text;
const red = (text: string, color: boolean) => color ? `\x1b[31m${text}\x1b[0m` : text;
const yellow = (text: string, color: boolean) => color ? `\x1b[33m${text}\x1b[0m` : text;

/**
 * Renders the live view.
 *
 * @example
 * ```ts
 * console.log(renderClusterView({ nodes: [], topics: [], metaLeader: null, uptimeMs: 0 }));
 * ```
 */
export function renderClusterView(
  snapshot: ClusterSnapshot,
  options: { color?: boolean } = {},
): string {
  const color = options.color ?? false;
  const up = snapshot.nodes.filter((node) => node.state === "up").length;
  const lines = [
    `pubsub local cluster: ${up}/${snapshot.nodes.length} peers up, ` +
    `controller ${snapshot.metaLeader ?? "-"}, uptime ${Math.round(snapshot.uptimeMs / 1000)} s`,
  ];
  const quorum = quorumLine(snapshot);
  if (quorum !== undefined) lines.push(red(quorum, color));
  lines.push("");
  const nodeRows = [["node", "address", "pid", "state", "membership view"]];
  for (const node of snapshot.nodes) {
    nodeRows.push([
      String(node.id),
      node.address,
      node.pid === undefined ? "-" : String(node.pid),
      node.detail === undefined ? node.state : `${node.state} (${node.detail})`,
      node.view ?? "",
    ]);
  }
  const paintState = (row: number, column: number, text: string) => {
    if (row === 0 || column !== 3) return text;
    const state = snapshot.nodes[row - 1].state;
    return state === "up"
      ? green(text, color)
      : state === "down"
      ? red(text, color)
      : yellow(text, color);
  };
  lines.push(
    ...formatTable(nodeRows, {
      align: ["right", "left", "right", "left", "left"],
      indent: "  ",
      paint: paintState,
    }),
  );
  lines.push("");
  lines.push(...topicLines(snapshot));
  if (snapshot.connectHint) lines.push("", snapshot.connectHint);
  if (snapshot.keysHint) lines.push(snapshot.keysHint);
  return lines.join("\n");
}

/** Says when the cluster cannot accept writes, and which peers it is missing. */
function quorumLine(snapshot: ClusterSnapshot): string | undefined {
  const total = snapshot.nodes.length;
  if (total === 0) return undefined;
  const majority = Math.floor(total / 2) + 1;
  const up = snapshot.nodes.filter((node) => node.state === "up").length;
  const missing = snapshot.nodes.filter((node) => node.state !== "up").map((node) => node.id);
  if (up >= majority && snapshot.metaLeader !== null) return undefined;
  const who = missing.length === 1 ? `peer ${missing[0]} is` : `peers ${missing.join(", ")} are`;
  if (up < majority) {
    return `No quorum: ${who} not up; writes wait until ${majority} of ${total} peers are up.`;
  }
  return `No controller elected yet${missing.length > 0 ? ` (${who} not up)` : ""}.`;
}

function topicLines(snapshot: ClusterSnapshot): string[] {
  const age = snapshot.topicsAgeMs;
  const title = age === undefined || age < 1000
    ? "topics"
    : `topics (as of ${Math.round(age / 1000)} s ago: no peer could list them now)`;
  if (snapshot.topics.length === 0) {
    return [
      `  ${title}`,
      snapshot.topicsKnown === false ? "  (not known yet)" : "  (no topics yet)",
    ];
  }
  const rows = [["topic", "leader", "replicas", "in-sync", "messages", "next offset"]];
  for (const topic of snapshot.topics) {
    rows.push([
      topic.name.length > 40 ? `${topic.name.slice(0, 39)}~` : topic.name,
      String(topic.leader ?? "-"),
      topic.replicas.join(","),
      topic.inSync.join(","),
      String(topic.nextOffset - topic.firstOffset),
      String(topic.nextOffset),
    ]);
  }
  return [
    `  ${title}`,
    ...formatTable(rows, {
      align: ["left", "right", "left", "left", "right", "right"],
      indent: "  ",
    }),
  ];
}
