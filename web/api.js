// The console's access to its peer's HTTP API: JSON requests with the
// Bearer token (kept in sessionStorage), and the connection state the page
// shows ("connected", "reconnecting", "token needed").

const tokenKey = "pubsub.token";
const requestTimeoutMs = 8000;

/** An answer the API gave with an error status. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** The peer did not answer at all (down, restarting, network). */
export class ConnectionError extends Error {
  constructor(message) {
    super(message);
    this.name = "ConnectionError";
  }
}

export function token() {
  return sessionStorage.getItem(tokenKey) ?? undefined;
}

export function setToken(value) {
  if (value) sessionStorage.setItem(tokenKey, value);
  else sessionStorage.removeItem(tokenKey);
}

/** Headers of every request: the token, when there is one. */
export function authHeaders(extra = {}) {
  const value = token();
  return value === undefined ? { ...extra } : { ...extra, authorization: `Bearer ${value}` };
}

/**
 * Sends a request and resolves with { body, node } (node: the peer that
 * answered, from X-Pubsub-Node). Rejects with ApiError for an error answer
 * and ConnectionError when the peer cannot be reached.
 */
export async function api(method, path, options = {}) {
  const headers = authHeaders(options.headers);
  let body = options.body;
  if (body !== undefined && typeof body !== "string") {
    body = JSON.stringify(body);
    headers["content-type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body,
      cache: "no-store",
      signal: AbortSignal.timeout(options.timeoutMs ?? requestTimeoutMs),
    });
  } catch (error) {
    throw new ConnectionError(
      error?.name === "TimeoutError"
        ? "The peer did not answer in time"
        : "The peer cannot be reached",
    );
  }
  const node = Number(response.headers.get("x-pubsub-node")) || undefined;
  let answer;
  try {
    answer = await response.json();
  } catch {
    throw new ConnectionError(`The peer answered ${response.status} without JSON`);
  }
  if (!response.ok) {
    throw new ApiError(
      response.status,
      answer?.status ?? "error",
      answer?.error ?? response.statusText,
    );
  }
  return { body: answer, node };
}

/** Path of a topic's resource. */
export function topicPath(name, suffix = "") {
  return `/api/topics/${encodeURIComponent(name)}${suffix}`;
}
