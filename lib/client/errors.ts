/**
 * Errors the client raises. Every one is a `PubSubError` with a `code`: the
 * protocol status for error responses, or a client-side code for failures
 * that never produced a response.
 *
 * @module
 */

import type { ErrorCode } from "../wire/errors.ts";

/**
 * Client-side failure codes: `timeout` (no answer in time), `disconnected`
 * (no peer reachable, or the connection died under a request that may not be
 * retried), `closed` (the client was closed), `protocol` (the peer sent
 * something that is not the protocol).
 */
export type ClientErrorCode = "timeout" | "disconnected" | "closed" | "protocol";

/**
 * An error response of the cluster, or a client-side failure.
 *
 * @example
 * ```ts
 * try {
 *   await client.publish("missing", "hi");
 * } catch (error) {
 *   if (error instanceof PubSubError && error.code === "topic_not_found") console.log("create it first");
 * }
 * ```
 */
export class PubSubError extends Error {
  readonly code: ErrorCode | ClientErrorCode;
  constructor(code: ErrorCode | ClientErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PubSubError";
    this.code = code;
  }
}

/**
 * No answer arrived within the request's time budget.
 *
 * @example
 * ```ts
 * const error = new RequestTimeoutError("No answer to 'publish' within 5000 ms");
 * ```
 */
export class RequestTimeoutError extends PubSubError {
  constructor(message: string, options?: ErrorOptions) {
    super("timeout", message, options);
    this.name = "RequestTimeoutError";
  }
}

/**
 * The connection failed and the request could not be (re)sent.
 *
 * @example
 * ```ts
 * const error = new ConnectionError("Cannot reach any peer of localhost:5001");
 * ```
 */
export class ConnectionError extends PubSubError {
  constructor(message: string, options?: ErrorOptions) {
    super("disconnected", message, options);
    this.name = "ConnectionError";
  }
}

/**
 * The client was closed while the request was pending.
 *
 * @example
 * ```ts
 * const error = new ClientClosedError("The client is closed");
 * ```
 */
export class ClientClosedError extends PubSubError {
  constructor(message = "The client is closed", options?: ErrorOptions) {
    super("closed", message, options);
    this.name = "ClientClosedError";
  }
}

/**
 * The topic refused an idempotent publish as out of order
 * (`out_of_order_sequence`): an earlier publish of the same producer stream
 * failed, or the topic no longer knows the producer. Nothing of this
 * publish was stored, and it is not retried as it is; the client's next
 * publishes to the topic use a new producer stream, so publishing the
 * message again stores it.
 *
 * @example
 * ```ts
 * const error = new OutOfOrderSequenceError("Sequence 7 of producer 'p' skips ahead of its last stored sequence 5, so it was not stored.");
 * error.code; // "out_of_order_sequence"
 * ```
 */
export class OutOfOrderSequenceError extends PubSubError {
  constructor(serverMessage: string, options?: ErrorOptions) {
    const sentence = serverMessage.replace(/[.!?]*$/, "");
    super(
      "out_of_order_sequence",
      `${sentence}; publish the message again to store it under a new producer sequence`,
      options,
    );
    this.name = "OutOfOrderSequenceError";
  }
}
