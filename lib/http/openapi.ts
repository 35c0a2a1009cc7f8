/**
 * The OpenAPI 3.1 document of the HTTP API, served at `/api/openapi.json`
 * and kept in `docs/openapi.json` (a test checks that they are identical and
 * that every route is described). Regenerate the file with
 * `deno run lib/http/openapi.ts > docs/openapi.json`.
 *
 * @module
 */

import { errorCodes } from "../wire/errors.ts";
import { batchMessagesMax, fetchMessagesMax, inFlightMessagesMax } from "../wire/requests.ts";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ "application/json": { schema } });
const error = (description: string) => ({ description, content: json(ref("Error")) });

/** Error answers every authenticated route may give. */
const commonErrors = {
  "400": error("bad_request: a malformed body, parameter or topic name"),
  "401": error(
    "unauthorized: the peer requires a token and the request has none or a wrong one",
  ),
  "429": {
    ...error("overloaded: a limit (requests in progress, topics, streams) is reached"),
    headers: { "Retry-After": { $ref: "#/components/headers/RetryAfter" } },
  },
  "503": {
    ...error(
      "unavailable: no quorum or no leader within the request timeout; nothing was done, retry",
    ),
    headers: { "Retry-After": { $ref: "#/components/headers/RetryAfter" } },
  },
};

const topicErrors = {
  ...commonErrors,
  "403": error("forbidden: the token lacks the permission on this topic"),
  "404": error("topic_not_found: the topic does not exist"),
};

const topicParameter = {
  name: "topic",
  in: "path",
  required: true,
  description: "Topic name: 1-249 characters of A-Z a-z 0-9 . _ -, not '.' or '..'",
  schema: ref("TopicName"),
};

/** The document (OpenAPI 3.1). */
export const openApiDocument: Record<string, unknown> = {
  openapi: "3.1.0",
  info: {
    title: "pubsub HTTP API",
    version: "1",
    description:
      "The HTTP face of the pubsub wire protocol (docs/PROTOCOL.md): the same requests, " +
      "answers, limits, error codes and tokens, served by every peer on --http-port. Any peer " +
      "answers any request and forwards it to the topic's leader. Errors are " +
      '{"status":"<code>","error":"<sentence>"} with the HTTP status of the code. ' +
      "See docs/HTTP.md.",
  },
  servers: [{ url: "http://127.0.0.1:5101", description: "peer 1 of `pubsub cluster`" }],
  security: [{}, { bearer: [] }],
  paths: {
    "/api/cluster": {
      get: {
        operationId: "getCluster",
        summary: "Cluster status (cluster_status): members, their state and the controller",
        responses: {
          "200": { description: "The cluster as this peer sees it", content: json(ref("Cluster")) },
          ...commonErrors,
        },
      },
    },
    "/api/topics": {
      get: {
        operationId: "listTopics",
        summary: "Topic names, sorted (fetch_topics); only those the token has a permission on",
        responses: {
          "200": {
            description: "Topic names",
            content: json({ type: "array", items: ref("TopicName") }),
          },
          ...commonErrors,
        },
      },
      post: {
        operationId: "createTopic",
        summary: "Create a topic (create_topic); needs the admin permission on it",
        requestBody: { required: true, content: json(ref("CreateTopic")) },
        responses: {
          "201": { description: "Created", content: json(ref("TopicCreated")) },
          "403": error("forbidden: the token lacks the admin permission on this topic"),
          "409": error("topic_exists: a topic of that name exists"),
          "413": error("frame_too_large: the body is larger than --max-frame"),
          "507": error("storage_full: the disk is full; nothing was created"),
          ...commonErrors,
        },
      },
    },
    "/api/topics/{topic}": {
      parameters: [topicParameter],
      get: {
        operationId: "describeTopic",
        summary:
          "Describe a topic (describe_topic): replicas, leader, in-sync replicas, offsets, size, retention",
        responses: {
          "200": { description: "The topic", content: json(ref("Topic")) },
          ...topicErrors,
        },
      },
      patch: {
        operationId: "alterTopic",
        summary: "Change a topic's retention (alter_topic); needs admin on it",
        description:
          "A number sets a limit, null removes it (unlimited), a limit left out stays. The " +
          "answer carries the retention now in force.",
        requestBody: { required: true, content: json(ref("AlterTopic")) },
        responses: {
          "200": { description: "Altered", content: json(ref("TopicAltered")) },
          ...topicErrors,
        },
      },
      delete: {
        operationId: "deleteTopic",
        summary: "Delete a topic and its messages (delete_topic); needs admin on it",
        responses: {
          "200": { description: "Deleted", content: json(ref("TopicDeleted")) },
          ...topicErrors,
        },
      },
    },
    "/api/topics/{topic}/messages": {
      parameters: [topicParameter],
      post: {
        operationId: "publish",
        summary: "Publish one message, or a batch as a JSON array (publish, publish_batch)",
        description:
          "Answers once the messages are durable on a majority of the topic's replicas. With " +
          "Content-Type application/json the body is a JSON string (one message) or an array " +
          `of 1-${batchMessagesMax} strings (one batch, consecutive offsets); with any other ` +
          "content type the body, as UTF-8 text, is the message. Producer-Id and Sequence " +
          "make the publish idempotent: the cluster stores each sequence of a producer once.",
        parameters: [
          {
            name: "Producer-Id",
            in: "header",
            required: false,
            description: "Idempotent producer id (1-256 characters); needs Sequence",
            schema: { type: "string", minLength: 1, maxLength: 256 },
          },
          {
            name: "Sequence",
            in: "header",
            required: false,
            description: "This publish's sequence number, +1 per publish; needs Producer-Id",
            schema: { type: "integer", minimum: 0 },
          },
        ],
        requestBody: {
          required: true,
          content: {
            "text/plain": { schema: { type: "string" } },
            "application/json": {
              schema: {
                oneOf: [
                  { type: "string" },
                  {
                    type: "array",
                    items: { type: "string" },
                    minItems: 1,
                    maxItems: batchMessagesMax,
                  },
                ],
              },
            },
          },
        },
        responses: {
          "200": {
            description: "Published: one message (offset) or a batch (first_offset, count)",
            content: json({ oneOf: [ref("MessagePublished"), ref("MessagesPublished")] }),
          },
          "409": error(
            "out_of_order_sequence: the sequence is after a gap or older than the producer " +
              "window; nothing was stored",
          ),
          "413": error("frame_too_large: the body is larger than --max-frame"),
          "507": {
            ...error("storage_full: the disk is full; nothing was acknowledged"),
            headers: { "Retry-After": { $ref: "#/components/headers/RetryAfter" } },
          },
          ...topicErrors,
        },
      },
      get: {
        operationId: "fetchMessages",
        summary: "Read messages from an offset (fetch), linearizable",
        parameters: [
          {
            name: "from",
            in: "query",
            required: false,
            description:
              "First offset to read (default 0; below the first retained it starts there)",
            schema: { type: "integer", minimum: 0, default: 0 },
          },
          {
            name: "max",
            in: "query",
            required: false,
            description: "Most messages to return",
            schema: { type: "integer", minimum: 1, maximum: fetchMessagesMax, default: 1000 },
          },
        ],
        responses: {
          "200": {
            description: "Messages and the offset to read next",
            content: json(ref("Messages")),
          },
          ...topicErrors,
        },
      },
    },
    "/api/topics/{topic}/events": {
      parameters: [topicParameter],
      get: {
        operationId: "subscribeEvents",
        summary: "Subscribe as Server-Sent Events (subscribe)",
        description: "A text/event-stream: first an event named 'subscribed' whose data is " +
          '{"status":"subscribed","topic":..,"subscriber_id":..,"from_offset":n}, then one ' +
          "unnamed event per committed message, its id the message's offset and its data " +
          '{"topic":..,"offset":n,"subscriber_id":..,"message":..} (subscriber_id only on a ' +
          "durable stream). A reconnecting EventSource sends Last-Event-ID and resumes right " +
          "after it. With subscriber_id the subscription is durable: with ack=auto (default) " +
          "every message written to the stream is acknowledged; with ack=manual the client " +
          "acknowledges with POST /api/topics/{topic}/ack and at most max_in_flight messages " +
          "are unacknowledged. Comment lines keep an idle stream alive.",
        parameters: [
          {
            name: "from",
            in: "query",
            required: false,
            description:
              "'earliest', 'latest' (default for a new subscriber) or an offset; a known " +
              "subscriber resumes after its last ack unless an offset is given",
            schema: {
              oneOf: [{ type: "string", enum: ["earliest", "latest"] }, {
                type: "integer",
                minimum: 0,
              }],
            },
          },
          {
            name: "subscriber_id",
            in: "query",
            required: false,
            description: "Durable subscriber id (1-256 characters)",
            schema: { type: "string", minLength: 1, maxLength: 256 },
          },
          {
            name: "ack",
            in: "query",
            required: false,
            description: "Who acknowledges a durable stream's messages",
            schema: { type: "string", enum: ["auto", "manual"], default: "auto" },
          },
          {
            name: "max_in_flight",
            in: "query",
            required: false,
            description: "Most unacknowledged messages (ack=manual)",
            schema: { type: "integer", minimum: 1, maximum: inFlightMessagesMax, default: 1000 },
          },
          {
            name: "Last-Event-ID",
            in: "header",
            required: false,
            description: "Offset of the last event received; the stream resumes right after it",
            schema: { type: "integer", minimum: 0 },
          },
        ],
        responses: {
          "200": {
            description: "The event stream",
            content: { "text/event-stream": { schema: { type: "string" } } },
          },
          ...topicErrors,
        },
      },
    },
    "/api/topics/{topic}/ack": {
      parameters: [topicParameter],
      post: {
        operationId: "acknowledge",
        summary: "Acknowledge a durable subscriber's messages up to an offset (ack, cumulative)",
        description:
          "Stores the subscriber's position in the cluster; an ack=manual stream of this " +
          "subscriber on the same peer may then send more messages.",
        requestBody: { required: true, content: json(ref("Ack")) },
        responses: {
          "200": { description: "Acknowledged", content: json(ref("Acked")) },
          ...topicErrors,
        },
      },
    },
    "/api/stats": {
      get: {
        operationId: "getStats",
        summary: "Messages this peer delivered to subscribers (TCP and HTTP), per topic",
        responses: {
          "200": { description: "This peer's counters", content: json(ref("Stats")) },
          ...commonErrors,
        },
      },
    },
    "/api/openapi.json": {
      get: {
        operationId: "getOpenApi",
        summary: "This document",
        security: [{}],
        responses: { "200": { description: "The OpenAPI document", content: json({}) } },
      },
    },
  },
  components: {
    securitySchemes: {
      bearer: {
        type: "http",
        scheme: "bearer",
        description:
          "A client token of --auth-token-file or --auth-file, needed when the peer runs with " +
          "either; the same permissions as on the TCP port",
      },
    },
    headers: {
      RetryAfter: {
        description: "Seconds to wait before retrying",
        schema: { type: "integer", minimum: 1 },
      },
    },
    schemas: {
      TopicName: { type: "string", pattern: "^[A-Za-z0-9._-]{1,249}$" },
      Error: {
        type: "object",
        required: ["status", "error"],
        properties: {
          status: { type: "string", enum: [...errorCodes] },
          error: { type: "string", description: "One human-readable sentence" },
        },
      },
      Node: {
        type: "object",
        required: ["id", "address", "state", "last_heartbeat_ms_ago"],
        properties: {
          id: { type: "integer" },
          address: { type: "string", description: "host:port of its TCP port" },
          state: { type: "string", enum: ["alive", "suspect", "dead", "left"] },
          last_heartbeat_ms_ago: { type: "integer" },
          link_error: { type: "string", description: "Why this peer cannot link to that one" },
        },
      },
      Cluster: {
        type: "object",
        required: ["status", "nodes", "meta_leader", "topics"],
        properties: {
          status: { const: "cluster" },
          nodes: { type: "array", items: ref("Node") },
          meta_leader: { type: ["integer", "null"], description: "The controller" },
          meta_voters: {
            type: "array",
            items: { type: "integer" },
            description: "Voters of the metadata group (the rest are learners)",
          },
          topics: { type: "integer" },
        },
      },
      CreateTopic: {
        type: "object",
        required: ["name"],
        additionalProperties: false,
        properties: {
          name: ref("TopicName"),
          replication_factor: { type: "integer", minimum: 1, maximum: 7 },
          retention: {
            ...ref("Retention"),
            description: "Limits left out come from the peer's --retention-* flags",
          },
        },
      },
      Retention: {
        type: "object",
        additionalProperties: false,
        description:
          "A topic's retention; a limit left out is unlimited. Whole old segments are deleted " +
          "on every replica once every message in them is expired.",
        properties: {
          max_age_ms: {
            type: "integer",
            minimum: 1,
            description: "Delete segments last written longer ago than this",
          },
          max_bytes: {
            type: "integer",
            minimum: 1,
            description: "Delete old segments while the rest still holds this many bytes",
          },
          max_messages: {
            type: "integer",
            minimum: 1,
            description: "Delete old segments while the rest still holds this many messages",
          },
          segment_bytes: {
            type: "integer",
            minimum: 4096,
            maximum: 64 * 1024 * 1024,
            description:
              "Size of the topic's segment files (default: a quarter of max_bytes within " +
              "64 KiB - 64 MiB, else 64 MiB); applies to logs opened after it is set",
          },
        },
      },
      AlterTopic: {
        type: "object",
        required: ["retention"],
        additionalProperties: false,
        properties: {
          retention: {
            type: "object",
            additionalProperties: false,
            minProperties: 1,
            properties: {
              max_age_ms: { type: ["integer", "null"], minimum: 1 },
              max_bytes: { type: ["integer", "null"], minimum: 1 },
              max_messages: { type: ["integer", "null"], minimum: 1 },
              segment_bytes: { type: ["integer", "null"], minimum: 4096 },
            },
          },
        },
      },
      TopicAltered: {
        type: "object",
        required: ["status", "topic", "retention"],
        properties: {
          status: { const: "topic_altered" },
          topic: ref("TopicName"),
          retention: ref("Retention"),
        },
      },
      TopicCreated: {
        type: "object",
        required: ["status", "topic"],
        properties: { status: { const: "topic_created" }, topic: ref("TopicName") },
      },
      TopicDeleted: {
        type: "object",
        required: ["status", "topic"],
        properties: { status: { const: "topic_deleted" }, topic: ref("TopicName") },
      },
      Topic: {
        type: "object",
        required: [
          "status",
          "topic",
          "replicas",
          "leader",
          "in_sync",
          "first_offset",
          "next_offset",
        ],
        properties: {
          status: { const: "topic" },
          topic: ref("TopicName"),
          replicas: { type: "array", items: { type: "integer" } },
          leader: { type: ["integer", "null"] },
          in_sync: { type: "array", items: { type: "integer" } },
          first_offset: { type: "integer", description: "The earliest retained offset" },
          next_offset: { type: "integer" },
          bytes: { type: "integer", description: "Bytes of the leader's replica log on disk" },
          messages: { type: "integer", description: "Messages retained: next - first offset" },
          retention: ref("Retention"),
        },
      },
      MessagePublished: {
        type: "object",
        required: ["status", "topic", "offset"],
        properties: {
          status: { const: "message_published" },
          topic: ref("TopicName"),
          offset: { type: "integer" },
        },
      },
      MessagesPublished: {
        type: "object",
        required: ["status", "topic", "first_offset", "count"],
        properties: {
          status: { const: "messages_published" },
          topic: ref("TopicName"),
          first_offset: { type: "integer" },
          count: { type: "integer" },
        },
      },
      Messages: {
        type: "object",
        required: ["status", "topic", "messages", "next_offset"],
        properties: {
          status: { const: "messages" },
          topic: ref("TopicName"),
          messages: {
            type: "array",
            items: {
              type: "object",
              required: ["offset", "message"],
              properties: { offset: { type: "integer" }, message: { type: "string" } },
            },
          },
          next_offset: { type: "integer" },
          first_offset: {
            type: "integer",
            description:
              "Only when `from` was below the earliest retained offset: the messages start here",
          },
        },
      },
      Ack: {
        type: "object",
        required: ["subscriber_id", "offset"],
        additionalProperties: false,
        properties: {
          subscriber_id: { type: "string", minLength: 1, maxLength: 256 },
          offset: { type: "integer", minimum: 0 },
        },
      },
      Acked: {
        type: "object",
        required: ["status", "topic", "subscriber_id", "offset"],
        properties: {
          status: { const: "acked" },
          topic: ref("TopicName"),
          subscriber_id: { type: "string" },
          offset: { type: "integer" },
        },
      },
      Stats: {
        type: "object",
        required: ["status", "node", "delivered"],
        properties: {
          status: { const: "stats" },
          node: { type: "integer", description: "The peer that answered" },
          delivered: {
            type: "object",
            additionalProperties: { type: "integer" },
            description: "Messages delivered to subscribers by this peer since it started",
          },
        },
      },
    },
  },
};

if (import.meta.main) {
  console.log(JSON.stringify(openApiDocument, null, 2));
}
