/**
 * Human output of `pubsub client`: the cluster status table, a topic
 * description, and a line reader for publishing files.
 *
 * @module
 */

import type { Retention } from "../wire/retention.ts";
import { UsageError } from "./_command.ts";
import { formatTable } from "./_table.ts";

/** Longest line accepted when reading messages, so one line cannot take all memory. */
export const lineBytesMax = 1024 * 1024;

/**
 * Lines of a UTF-8 byte stream, without their `\n` or `\r\n`. A line longer
 * than {@linkcode lineBytesMax} is bad input (`UsageError`, naming the line):
 * no message can be that large.
 *
 * @example
 * ```ts
 * for await (const line of readLines(Deno.stdin.readable)) console.log(line);
 * ```
 */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncIterable<string> {
  let rest = "";
  let lineNumber = 1;
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    rest += text;
    let newline = rest.indexOf("\n");
    while (newline >= 0) {
      yield rest.slice(0, newline).replace(/\r$/, "");
      rest = rest.slice(newline + 1);
      lineNumber++;
      newline = rest.indexOf("\n");
    }
    if (rest.length > lineBytesMax) {
      throw new UsageError(
        `Cannot publish line ${lineNumber} as it is longer than ${lineBytesMax} characters, more than one message can hold`,
      );
    }
  }
  if (rest !== "") yield rest.replace(/\r$/, "");
}

/**
 * The `cluster_status` answer as an aligned table.
 *
 * @example
 * ```ts
 * console.log(formatStatusTable({ status: "cluster", nodes: [], meta_leader: 1, topics: 0 }));
 * ```
 */
export function formatStatusTable(status: Record<string, unknown>): string {
  const nodes = (status.nodes ?? []) as Record<string, unknown>[];
  const rows = [["ID", "ADDRESS", "STATE", "LAST HEARTBEAT"]];
  for (const node of nodes) {
    const marker = node.id === status.meta_leader ? " *" : "";
    rows.push([
      `${node.id}${marker}`,
      String(node.address),
      String(node.state),
      `${node.last_heartbeat_ms_ago} ms ago${
        typeof node.link_error === "string" ? ` (link: ${node.link_error})` : ""
      }`,
    ]);
  }
  const lines = formatTable(rows);
  lines.push(`meta leader: ${status.meta_leader ?? "none"} (*)   topics: ${status.topics}`);
  return lines.join("\n");
}

/**
 * The `describe_topic` answer as `key: value` lines.
 *
 * @example
 * ```ts
 * console.log(formatDescription({ topic: "events", leader: 1, replicas: [1], in_sync: [1] }));
 * ```
 */
export function formatDescription(topic: Record<string, unknown>): string {
  const list = (value: unknown) => Array.isArray(value) ? value.join(", ") : String(value);
  const lines = [
    `topic:        ${topic.topic}`,
    `leader:       ${topic.leader ?? "none"}`,
    `replicas:     ${list(topic.replicas)}`,
    `in sync:      ${list(topic.in_sync)}`,
    `first offset: ${topic.first_offset}`,
    `next offset:  ${topic.next_offset}`,
  ];
  if (typeof topic.messages === "number") lines.push(`messages:     ${topic.messages}`);
  if (typeof topic.bytes === "number") lines.push(`bytes:        ${topic.bytes}`);
  if (typeof topic.retention === "object" && topic.retention !== null) {
    lines.push(`retention:    ${formatRetention(topic.retention as Retention)}`);
  }
  return lines.join("\n");
}

/**
 * A retention policy in words.
 *
 * @example
 * ```ts
 * formatRetention({ max_bytes: 1048576, max_age_ms: 3600000 });
 * // "max age 3600000 ms, max bytes 1048576"
 * ```
 */
export function formatRetention(retention: Retention): string {
  const parts: string[] = [];
  if (retention.max_age_ms !== undefined) parts.push(`max age ${retention.max_age_ms} ms`);
  if (retention.max_bytes !== undefined) parts.push(`max bytes ${retention.max_bytes}`);
  if (retention.max_messages !== undefined) parts.push(`max messages ${retention.max_messages}`);
  const kept = parts.length === 0 ? "keep everything" : parts.join(", ");
  if (retention.segment_bytes === undefined) return kept;
  return `${kept} (segments of ${retention.segment_bytes} bytes)`;
}
