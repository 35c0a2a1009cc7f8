/**
 * The pubsub client library.
 *
 * @example
 * ```ts
 * import { PubSubClient } from "./lib/client/mod.ts";
 * const client = await PubSubClient.connect({ peers: ["localhost:5001"] });
 * await client.publish("events", "hello");
 * await client.close();
 * ```
 *
 * @module
 */
export * from "./client.ts";
export * from "./errors.ts";
export * from "./subscription.ts";
