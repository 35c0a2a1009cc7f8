/**
 * The text of `pubsub cluster`'s live view, as a pure function of one
 * snapshot so that it can be tested without processes.
 *
 * @module
 */

/** One peer process as the launcher sees it. */
export interface NodeRow {
  id: number;
  address: string;
  pid: number;
  /** "up", "unreachable", "down" or "exited (code)". */
  state: string;
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
  metaLeader: number | null;
  uptimeMs: number;
  /** How to connect a client, shown under the tables. */
  connectHint?: string;
}

const green = (text: string, color: boolean) => color ? `\x1b[32m${text}\x1b[0m` : text;
const red = (text: string, color: boolean) => color ? `\x1b[31m${text}\x1b[0m` : text;

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
    "",
    "  node  address           pid      state         membership view",
  ];
  for (const node of snapshot.nodes) {
    const state = node.state.padEnd(13);
    const painted = node.state === "up" ? green(state, color) : red(state, color);
    lines.push(
      ` node ${String(node.id).padStart(2)}  ${node.address.padEnd(16)}  ${
        String(node.pid).padEnd(7)
      }  ${painted} ${node.view ?? ""}`,
    );
  }
  lines.push("", "  topic                     leader  replicas  in-sync   messages  next offset");
  if (snapshot.topics.length === 0) lines.push("  (no topics yet)");
  for (const topic of snapshot.topics) {
    lines.push(
      `  ${topic.name.slice(0, 24).padEnd(24)}  ${String(topic.leader ?? "-").padEnd(6)}  ${
        topic.replicas.join(",").padEnd(8)
      }  ${topic.inSync.join(",").padEnd(8)}  ${
        String(topic.nextOffset - topic.firstOffset).padStart(8)
      }  ${String(topic.nextOffset).padStart(11)}`,
    );
  }
  if (snapshot.connectHint) lines.push("", snapshot.connectHint);
  return lines.join("\n");
}
