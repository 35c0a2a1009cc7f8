/**
 * Client authorization: which tokens a peer accepts and what each may do.
 *
 * A token carries permissions per topic pattern (an exact topic name or a
 * `*`-glob). `publish` covers publish and publish_batch; `subscribe` covers
 * subscribe, fetch, fetch_messages, ack and unsubscribe; `admin` covers
 * create_topic, delete_topic and alter_topic, and on the pattern `*` also the
 * cluster-wide remove_node. fetch_topics, describe_topic, cluster_status and
 * ping need only a valid token; fetch_topics lists only the topics the token
 * has some permission on.
 *
 * The `--auth-file` document:
 *
 * ```json
 * {
 *   "tokens": [
 *     {
 *       "name": "orders-writer",
 *       "token": "a-long-random-secret",
 *       "permissions": [
 *         { "topics": "orders.*", "allow": ["publish"] },
 *         { "topics": ["audit", "audit.*"], "allow": ["subscribe"] }
 *       ]
 *     },
 *     { "name": "ops", "token_sha256": "<64 hex digits>", "permissions": [
 *       { "topics": "*", "allow": ["publish", "subscribe", "admin"] }
 *     ] }
 *   ]
 * }
 * ```
 *
 * Tokens are compared as SHA-256 digests in constant time, so neither their
 * content nor their length leaks through timing, and no token is ever part
 * of an error message or a log record.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import type { Request } from "../wire/requests.ts";
import { tokenLengthMax, topicNameLengthMax } from "../wire/requests.ts";

/** What a token may do on a topic. */
export const permissionNames = ["publish", "subscribe", "admin"] as const;
/** One permission. */
export type Permission = typeof permissionNames[number];

/** Most tokens one policy holds (each authentication compares against all of them). */
export const tokensMax = 10_000;
/** Most topic patterns one token's permissions name, summed over its entries. */
export const patternsPerTokenMax = 1000;
/** Largest auth file read. */
export const authFileBytesMax = 4 * 1024 * 1024;
/** Longest token name. */
export const tokenNameLengthMax = 128;
/** Name of the full-access token that `--auth-token-file` gives. */
export const authTokenFileName = "auth-token-file";

const tokenNamePattern = /^[A-Za-z0-9._@-]+$/;
const topicPatternPattern = /^[A-Za-z0-9._*-]+$/;
const sha256HexPattern = /^[0-9a-fA-F]{64}$/;

/** A problem in an auth file or policy; the message never contains a token. */
export class AuthFileError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AuthFileError";
  }
}

/** Permissions on the topics matching any of `patterns`. */
export interface Grant {
  readonly patterns: readonly string[];
  readonly allow: ReadonlySet<Permission>;
}

/** One accepted token: its name, the SHA-256 of its value, and its grants. */
export interface TokenEntry {
  readonly name: string;
  readonly digest: Uint8Array;
  readonly grants: readonly Grant[];
}

/** The SHA-256 of a token, the only form in which tokens are kept and compared. */
export function digestToken(token: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(token, "utf8").digest());
}

/**
 * True when `token` hashes to `digest`, compared in constant time.
 *
 * @example
 * ```ts
 * const digest = digestToken("s3cret");
 * console.log(tokenMatches("s3cret", digest)); // true
 * ```
 */
export function tokenMatches(token: string, digest: Uint8Array): boolean {
  return timingSafeEqual(digestToken(token), digest);
}

/**
 * The token of `--auth-token-file`: every permission on every topic.
 *
 * @example
 * ```ts
 * const policy = new AccessPolicy([fullAccessToken("s3cret")]);
 * ```
 */
export function fullAccessToken(token: string, name = authTokenFileName): TokenEntry {
  return {
    name,
    digest: digestToken(token),
    grants: [{ patterns: ["*"], allow: new Set(permissionNames) }],
  };
}

/** An authenticated token as a session sees it: its name and what it may do. */
export class Principal {
  readonly name: string;
  readonly #grants: readonly Grant[];

  constructor(name: string, grants: readonly Grant[]) {
    this.name = name;
    this.#grants = grants;
  }

  /** True when some grant gives `permission` on a pattern matching `topic`. */
  allows(permission: Permission, topic: string): boolean {
    return this.#grants.some((grant) =>
      grant.allow.has(permission) && grant.patterns.some((pattern) => globMatches(pattern, topic))
    );
  }

  /** True when a grant gives `permission` on the pattern `*` (cluster-wide actions). */
  allowsEverywhere(permission: Permission): boolean {
    return this.#grants.some((grant) =>
      grant.allow.has(permission) && grant.patterns.includes("*")
    );
  }

  /** True when the token has any permission on `topic` (fetch_topics lists it). */
  sees(topic: string): boolean {
    return this.#grants.some((grant) =>
      grant.allow.size > 0 && grant.patterns.some((pattern) => globMatches(pattern, topic))
    );
  }
}

/**
 * The tokens a peer accepts.
 *
 * @example
 * ```ts
 * const policy = new AccessPolicy(parseAuthFile(await Deno.readTextFile("auth.json")));
 * const principal = policy.authenticate("a-long-random-secret");
 * console.log(principal?.allows("publish", "orders.eu"));
 * ```
 */
export class AccessPolicy {
  readonly #entries: readonly TokenEntry[];

  /** Throws AuthFileError when two entries share a name or a token, or there are too many. */
  constructor(entries: readonly TokenEntry[]) {
    if (entries.length === 0) throw new AuthFileError("At least one token is required");
    if (entries.length > tokensMax) {
      throw new AuthFileError(`At most ${tokensMax} tokens are allowed, found ${entries.length}`);
    }
    const names = new Set<string>();
    const digests = new Map<string, string>();
    for (const entry of entries) {
      if (names.has(entry.name)) throw new AuthFileError(`Two tokens are named '${entry.name}'`);
      names.add(entry.name);
      const key = hex(entry.digest);
      const other = digests.get(key);
      if (other !== undefined) {
        throw new AuthFileError(`Tokens '${other}' and '${entry.name}' are the same token`);
      }
      digests.set(key, entry.name);
    }
    this.#entries = entries;
  }

  /**
   * The principal of `token`, or undefined when no entry has it. Every entry
   * is compared, so the time taken does not depend on which one matches.
   */
  authenticate(token: string): Principal | undefined {
    const digest = digestToken(token);
    let found: TokenEntry | undefined;
    for (const entry of this.#entries) {
      if (timingSafeEqual(digest, entry.digest)) found = entry;
    }
    return found === undefined ? undefined : new Principal(found.name, found.grants);
  }
}

/** What a request needs: a permission on its topic, or on every topic (`topic` undefined). */
export interface RequiredAccess {
  permission: Permission;
  topic: string | undefined;
}

/**
 * The permission `request` needs, or undefined when any authenticated token
 * may make it. An action this function does not know needs cluster-wide
 * admin, so that a new action is closed until someone classifies it.
 *
 * @example
 * ```ts
 * requiredAccess({ action: "publish", topic_name: "orders", message: "x" });
 * // { permission: "publish", topic: "orders" }
 * ```
 */
export function requiredAccess(request: Request): RequiredAccess | undefined {
  const topic = (request as { topic_name?: string }).topic_name;
  switch (request.action as string) {
    case "publish":
    case "publish_batch":
      return { permission: "publish", topic };
    case "subscribe":
    case "fetch":
    case "fetch_messages":
    case "ack":
    case "unsubscribe":
      return { permission: "subscribe", topic };
    case "create_topic":
    case "delete_topic":
    case "alter_topic":
      return { permission: "admin", topic };
    case "auth":
    case "ping":
    case "fetch_topics":
    case "describe_topic":
    case "cluster_status":
      return undefined;
    default:
      return { permission: "admin", topic: undefined };
  }
}

/**
 * Why `principal` may not make `request` (one sentence), or undefined when it may.
 *
 * @example
 * ```ts
 * const refusal = refusalOf(principal, { action: "remove_node", node_id: 3 });
 * if (refusal !== undefined) throw new ProtocolError("forbidden", refusal);
 * ```
 */
export function refusalOf(principal: Principal, request: Request): string | undefined {
  const access = requiredAccess(request);
  if (access === undefined) return undefined;
  if (access.topic === undefined) {
    if (principal.allowsEverywhere(access.permission)) return undefined;
    return `Token '${principal.name}' lacks the '${access.permission}' permission on topics '*' that '${request.action}' needs`;
  }
  if (principal.allows(access.permission, access.topic)) return undefined;
  return `Token '${principal.name}' lacks the '${access.permission}' permission on topic '${access.topic}'`;
}

/**
 * True when `name` matches `pattern`, where `*` stands for any run of
 * characters (dots included). Linear backtracking: no pattern can make a
 * match slow.
 *
 * @example
 * ```ts
 * globMatches("orders.*", "orders.eu"); // true
 * globMatches("orders.*", "orders"); // false
 * ```
 */
export function globMatches(pattern: string, name: string): boolean {
  let patternIndex = 0;
  let nameIndex = 0;
  let starIndex = -1;
  let starNameIndex = 0;
  while (nameIndex < name.length) {
    const symbol = pattern[patternIndex];
    if (symbol === "*") {
      starIndex = patternIndex++;
      starNameIndex = nameIndex;
    } else if (symbol !== undefined && symbol === name[nameIndex]) {
      patternIndex++;
      nameIndex++;
    } else if (starIndex >= 0) {
      patternIndex = starIndex + 1;
      nameIndex = ++starNameIndex;
    } else {
      return false;
    }
  }
  while (pattern[patternIndex] === "*") patternIndex++;
  return patternIndex === pattern.length;
}

/**
 * Reads and validates an auth file (format in the module documentation).
 * Throws AuthFileError with one line naming the first problem.
 *
 * @example
 * ```ts
 * const policy = new AccessPolicy(await loadAuthFile("/etc/pubsub/auth.json"));
 * ```
 */
export async function loadAuthFile(path: string): Promise<TokenEntry[]> {
  let bytes: Uint8Array;
  try {
    const size = (await Deno.stat(path)).size;
    if (size > authFileBytesMax) {
      throw new AuthFileError(
        `The file has ${size} bytes, more than the ${authFileBytesMax} allowed`,
      );
    }
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof AuthFileError) throw error;
    throw new AuthFileError(`Cannot read the file: ${(error as Error).message}`, { cause: error });
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new AuthFileError("The file is not UTF-8 text", { cause: error });
  }
  return parseAuthFile(text);
}

/**
 * Validates the text of an auth file into token entries. Throws
 * AuthFileError naming the first problem and where it is.
 *
 * @example
 * ```ts
 * const entries = parseAuthFile('{"tokens":[{"name":"ops","token":"s3cret","permissions":[]}]}');
 * ```
 */
export function parseAuthFile(text: string): TokenEntry[] {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    // The parser's own message quotes the text around the error, which may be a token.
    throw new AuthFileError(`The file is not valid JSON${whereInText(text, error as Error)}`);
  }
  if (!isObject(document)) throw new AuthFileError("The file must hold a JSON object");
  checkKeys(document, ["tokens"], "The document");
  const tokens = document.tokens;
  if (!Array.isArray(tokens) || tokens.length === 0) {
    throw new AuthFileError("Field 'tokens' must be a non-empty array");
  }
  if (tokens.length > tokensMax) {
    throw new AuthFileError(`Field 'tokens' may list at most ${tokensMax} tokens`);
  }
  const entries = tokens.map((value, index) => parseToken(value, `tokens[${index}]`));
  const names = new Map<string, number>();
  const digests = new Map<string, number>();
  entries.forEach((entry, index) => {
    const sameName = names.get(entry.name);
    if (sameName !== undefined) {
      throw new AuthFileError(
        `tokens[${index}] has the name '${entry.name}' of tokens[${sameName}]`,
      );
    }
    names.set(entry.name, index);
    const key = hex(entry.digest);
    const sameToken = digests.get(key);
    if (sameToken !== undefined) {
      throw new AuthFileError(
        `tokens[${index}] ('${entry.name}') has the same token as tokens[${sameToken}] ('${
          entries[sameToken].name
        }')`,
      );
    }
    digests.set(key, index);
  });
  return entries;
}

function parseToken(value: unknown, where: string): TokenEntry {
  if (!isObject(value)) throw new AuthFileError(`${where} must be an object`);
  checkKeys(value, ["name", "token", "token_sha256", "permissions"], where);
  const name = value.name;
  if (
    typeof name !== "string" || name.length === 0 || name.length > tokenNameLengthMax ||
    !tokenNamePattern.test(name)
  ) {
    throw new AuthFileError(
      `${where}: 'name' must be 1-${tokenNameLengthMax} characters of A-Z a-z 0-9 . _ @ -`,
    );
  }
  const at = `${where} ('${name}')`;
  const digest = parseSecret(value, at);
  if (!Array.isArray(value.permissions)) {
    throw new AuthFileError(`${at}: 'permissions' must be an array (it may be empty)`);
  }
  const grants = value.permissions.map((grant, index) =>
    parseGrant(grant, `${at}: permissions[${index}]`)
  );
  const patterns = grants.reduce((sum, grant) => sum + grant.patterns.length, 0);
  if (patterns > patternsPerTokenMax) {
    throw new AuthFileError(`${at}: at most ${patternsPerTokenMax} topic patterns are allowed`);
  }
  return { name, digest, grants };
}

/** The token's digest from exactly one of 'token' and 'token_sha256'; never echoes either. */
function parseSecret(value: Record<string, unknown>, at: string): Uint8Array {
  const { token, token_sha256: sha256 } = value;
  if ((token === undefined) === (sha256 === undefined)) {
    throw new AuthFileError(`${at}: give exactly one of 'token' and 'token_sha256'`);
  }
  if (sha256 !== undefined) {
    if (typeof sha256 !== "string" || !sha256HexPattern.test(sha256)) {
      throw new AuthFileError(`${at}: 'token_sha256' must be 64 hexadecimal digits`);
    }
    return new Uint8Array(sha256.match(/../g)!.map((pair) => parseInt(pair, 16)));
  }
  if (typeof token !== "string" || token.length === 0) {
    throw new AuthFileError(`${at}: 'token' must be a non-empty string`);
  }
  if (token.length > tokenLengthMax) {
    throw new AuthFileError(`${at}: 'token' must be at most ${tokenLengthMax} characters`);
  }
  // Clients read their token from a file and trim it, so such a token could never match.
  if (token.trim() !== token || /\p{Cc}/u.test(token)) {
    throw new AuthFileError(
      `${at}: 'token' must not contain control characters or surrounding whitespace`,
    );
  }
  return digestToken(token);
}

function parseGrant(value: unknown, where: string): Grant {
  if (!isObject(value)) throw new AuthFileError(`${where} must be an object`);
  checkKeys(value, ["topics", "allow"], where);
  const topics = typeof value.topics === "string" ? [value.topics] : value.topics;
  if (!Array.isArray(topics) || topics.length === 0) {
    throw new AuthFileError(
      `${where}: 'topics' must be a topic pattern or a non-empty array of them`,
    );
  }
  for (const pattern of topics) {
    if (!isTopicPattern(pattern)) {
      throw new AuthFileError(
        `${where}: ${
          quote(pattern)
        } is not a topic name or *-glob (1-${topicNameLengthMax} characters of A-Z a-z 0-9 . _ - *)`,
      );
    }
  }
  const allow = value.allow;
  if (!Array.isArray(allow) || allow.length === 0) {
    throw new AuthFileError(`${where}: 'allow' must be a non-empty array of permissions`);
  }
  for (const permission of allow) {
    if (!(permissionNames as readonly unknown[]).includes(permission)) {
      throw new AuthFileError(
        `${where}: unknown permission ${quote(permission)} (expected ${
          permissionNames.join(", ")
        })`,
      );
    }
  }
  return { patterns: topics as string[], allow: new Set(allow as Permission[]) };
}

/** " (line L, column C)" of a JSON syntax error when the parser reports a position. */
function whereInText(text: string, error: Error): string {
  const lineColumn = /line (\d+) column (\d+)/.exec(error.message);
  if (lineColumn !== null) return ` (line ${lineColumn[1]}, column ${lineColumn[2]})`;
  const position = /position (\d+)/.exec(error.message);
  if (position === null) return "";
  const before = text.slice(0, Number(position[1])).split("\n");
  return ` (line ${before.length}, column ${before.at(-1)!.length + 1})`;
}

function isTopicPattern(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= topicNameLengthMax &&
    topicPatternPattern.test(value) && value !== "." && value !== "..";
}

function checkKeys(value: Record<string, unknown>, known: string[], where: string): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new AuthFileError(
        `${where} has the unknown field ${quote(key)} (expected ${known.join(", ")})`,
      );
    }
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A short one-line rendering of a value from the file (never used for tokens). */
function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 64 ? `${text.slice(0, 61)}...` : text;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
