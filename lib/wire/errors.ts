/**
 * Protocol error codes (PROTOCOL.md section 5) and the error class that
 * carries one through the peer until it becomes a response.
 *
 * @module
 */

/** Every error status a peer may answer with. */
export const errorCodes = [
  "topic_not_found",
  "topic_exists",
  "bad_request",
  "frame_too_large",
  "unauthorized",
  "unavailable",
  "overloaded",
  "forbidden",
  "out_of_order_sequence",
  "storage_full",
] as const;

/** One error status. */
export type ErrorCode = typeof errorCodes[number];

/** The shape of every error response. */
export interface ErrorResponse {
  status: ErrorCode;
  error: string;
  id?: string | number;
}

/**
 * An error that maps to one protocol error code. Anything else thrown while
 * serving a request is a bug and is answered as `unavailable`.
 *
 * @example
 * ```ts
 * throw new ProtocolError("topic_not_found", "Topic 'events' does not exist");
 * ```
 */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
    this.code = code;
  }
}

/**
 * A short rendering of an untrusted value for an error message. `String()`
 * cannot be used on decoded JSON: it throws a TypeError on `{"toString":1}`
 * and a RangeError on deeply nested arrays, and a frame can hold both.
 *
 * @example
 * ```ts
 * describeValue("explode"); // "explode"
 * describeValue([[1]]); // "[array]"
 * ```
 */
export function describeValue(value: unknown, lengthMax = 64): string {
  if (Array.isArray(value)) return "[array]";
  if (typeof value === "object" && value !== null) return "[object]";
  return String(value).slice(0, lengthMax);
}

/** Builds an error response; the message becomes one sentence ending in a period. */
export function errorResponse(
  code: ErrorCode,
  message: string,
  id?: string | number,
): ErrorResponse {
  const sentence = /[.!?]$/.test(message) ? message : `${message}.`;
  const response: ErrorResponse = { status: code, error: sentence };
  if (id !== undefined) response.id = id;
  return response;
}

/** True for an object response whose status is an error code. */
export function isErrorResponse(value: unknown): value is ErrorResponse {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    (errorCodes as readonly string[]).includes((value as { status?: string }).status ?? "");
}
