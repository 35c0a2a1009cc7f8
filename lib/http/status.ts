/**
 * How protocol answers become HTTP responses: the status of every error code
 * (PROTOCOL.md section 5), JSON bodies, and the headers every API answer
 * carries.
 *
 * @module
 */

import { type ErrorCode, errorResponse, isErrorResponse } from "../wire/errors.ts";

/** The HTTP status of each protocol error code. */
export const httpStatusOfCode: Readonly<Record<ErrorCode, number>> = {
  topic_not_found: 404,
  topic_exists: 409,
  bad_request: 400,
  frame_too_large: 413,
  unauthorized: 401,
  unavailable: 503,
  overloaded: 429,
  forbidden: 403,
  out_of_order_sequence: 409,
  storage_full: 507,
};

/** Seconds a client should wait before retrying a retryable answer (`Retry-After`). */
export const retryAfterSeconds = 1;

/** Codes whose answers carry `Retry-After`: nothing happened and a retry may succeed. */
const retryableCodes: ReadonlySet<ErrorCode> = new Set([
  "unavailable",
  "overloaded",
  "storage_full",
]);

/** Content type of every API answer. */
export const jsonContentType = "application/json; charset=utf-8";

/**
 * A JSON response with the headers every API answer carries.
 *
 * @example
 * ```ts
 * const response = jsonResponse({ status: "pong", node: 1 }, 200, { node: 1 });
 * ```
 */
export function jsonResponse(
  body: unknown,
  status: number,
  options: { node?: number; headers?: Record<string, string> } = {},
): Response {
  const headers = new Headers({
    "content-type": jsonContentType,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    ...options.headers,
  });
  if (options.node !== undefined) headers.set("x-pubsub-node", String(options.node));
  return new Response(JSON.stringify(body) + "\n", { status, headers });
}

/**
 * The HTTP response of a protocol answer: an error answer gets the status of
 * its code (and `Retry-After` when retrying may help), any other answer
 * `successStatus`.
 *
 * @example
 * ```ts
 * answerResponse({ status: "topic_not_found", error: "Topic 'x' does not exist." }, 200);
 * // 404
 * ```
 */
export function answerResponse(
  answer: unknown,
  successStatus: number,
  options: { node?: number; headers?: Record<string, string> } = {},
): Response {
  if (!isErrorResponse(answer)) return jsonResponse(answer, successStatus, options);
  const { id: _id, ...body } = answer;
  const headers: Record<string, string> = { ...options.headers };
  if (retryableCodes.has(answer.status)) headers["retry-after"] = String(retryAfterSeconds);
  if (answer.status === "unauthorized") {
    headers["www-authenticate"] = 'Bearer realm="pubsub"';
  }
  return jsonResponse(body, httpStatusOfCode[answer.status], { ...options, headers });
}

/**
 * The HTTP response of an error `code` with a one-sentence `message`.
 *
 * @example
 * ```ts
 * errorJson("bad_request", "Query parameter 'max' must be an integer"); // 400
 * ```
 */
export function errorJson(
  code: ErrorCode,
  message: string,
  options: { node?: number; status?: number; headers?: Record<string, string> } = {},
): Response {
  const response = answerResponse(errorResponse(code, message), 200, options);
  if (options.status === undefined) return response;
  return new Response(response.body, { status: options.status, headers: response.headers });
}
