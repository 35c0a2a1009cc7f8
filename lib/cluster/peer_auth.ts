/**
 * Mutual authentication of peer connections with a shared cluster secret.
 *
 * Peer actions (`peer_*`) share the client port, so a connection earns peer
 * powers only by proving it knows the cluster secret, and the dialer checks
 * that the listener knows it too (a stranger listening on a member's address
 * must not receive Raft traffic or answer forwarded requests). The exchange
 * is a challenge-response over fresh nonces, so nothing replayable and never
 * the secret itself crosses the wire:
 *
 * ```
 * dialer   -> {"action":"peer_hello","node_id":A,"nonce":Nd}
 * listener -> {"status":"challenge","nonce":Nl,"proof":HMAC(s,"listener"|Nd|Nl)}
 * dialer   -> {"action":"peer_auth","node_id":A,"proof":HMAC(s,"dialer"|A|Nd|Nl)}
 * listener -> {"status":"ok"}
 * ```
 *
 * Without a secret (loopback-only development clusters) `peer_hello` is
 * answered `ok` at once, and both sides log once that any process able to
 * reach the port can act as a peer. A listener with a secret refuses a hello
 * without a nonce; a dialer with a secret refuses a listener that has none.
 *
 * Written by hand rather than with a TLS client-certificate library because
 * Deno's TLS listener cannot require client certificates; HMAC-SHA256 and
 * the constant-time comparison come from `node:crypto`.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { describeValue, ProtocolError } from "../wire/errors.ts";
import { nodeIdField, PeerMessageError } from "./_peer_messages.ts";

/**
 * The version of the peer wire (`peer_*` actions and binary Raft frames)
 * this build speaks. Both sides say it in the handshake (`protocol` in
 * `peer_hello` and in the listener's answer), and peers of different
 * versions refuse each other there, naming both, instead of meeting frames
 * they cannot read. A handshake without the field is version 1: builds
 * from before it speak version 1 and still join. Raise it with any change
 * to the peer wire that an older peer could misread.
 */
export const peerProtocolVersion = 1;

/** Bytes of each side's nonce. */
export const nonceBytes = 32;
/** Shortest secret accepted: anything shorter is guessable. */
export const secretBytesMin = 16;
/** Longest secret file accepted. */
export const secretBytesMax = 4096;

/** A cluster secret, validated. */
export class ClusterSecret {
  readonly #key: Uint8Array;

  private constructor(key: Uint8Array) {
    this.#key = key;
  }

  /**
   * Wraps secret text (a file's contents, trimmed).
   *
   * @example
   * ```ts
   * const secret = ClusterSecret.fromText(await Deno.readTextFile("cluster.secret"));
   * ```
   */
  static fromText(text: string): ClusterSecret {
    const key = new TextEncoder().encode(text.trim());
    if (key.length < secretBytesMin) {
      throw new RangeError(
        `The cluster secret must be at least ${secretBytesMin} bytes long: it has ${key.length}`,
      );
    }
    if (key.length > secretBytesMax) {
      throw new RangeError(
        `The cluster secret must be at most ${secretBytesMax} bytes long: it has ${key.length}`,
      );
    }
    return new ClusterSecret(key);
  }

  /** A new random secret as text (for `pubsub cluster` and tests). */
  static generateText(): string {
    return randomBytes(32).toString("base64url");
  }

  /** HMAC-SHA256 of the parts, joined by newlines, as base64. */
  prove(parts: readonly (string | number)[]): string {
    return createHmac("sha256", this.#key).update(parts.join("\n")).digest("base64");
  }

  /** Checks a proof in constant time. */
  verify(parts: readonly (string | number)[], proof: unknown): boolean {
    if (typeof proof !== "string" || proof.length > 128) return false;
    const expected = Buffer.from(this.prove(parts), "base64");
    const given = Buffer.from(proof, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

function newNonce(): string {
  return randomBytes(nonceBytes).toString("base64");
}

function nonceField(message: Record<string, unknown>, key: string): string {
  const value = message[key];
  if (typeof value !== "string" || value.length === 0 || value.length > 128) {
    throw new PeerMessageError(`Field '${key}' must be a nonce`);
  }
  return value;
}

function nodeIdOf(message: Record<string, unknown>): number {
  return nodeIdField(message, "node_id");
}

/** The peer protocol version a handshake message says (1 when it says none). */
function protocolOf(message: Record<string, unknown>): number {
  const value = message.protocol;
  if (value === undefined) return 1;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new PeerMessageError(
      `Field 'protocol' must be a positive integer: current value is ${describeValue(value)}`,
    );
  }
  return value;
}

/** Why two peer protocol versions cannot talk: `them` names the other side. */
function versionMismatch(them: string, theirs: unknown): string {
  return `${them} speaks peer protocol ${
    describeValue(theirs)
  } and this peer ${peerProtocolVersion}: run one pubsub version across the cluster`;
}

// ---- listener side ---------------------------------------------------------

/** Where a listener's connection is in the handshake. */
export type ListenerHandshake =
  | { state: "none" }
  | { state: "challenged"; nodeId: number; dialerNonce: string; listenerNonce: string }
  | { state: "member"; nodeId: number | undefined };

/** What the listener answers and where the connection goes next. */
export interface HandshakeStep {
  response: Record<string, unknown>;
  next: ListenerHandshake;
  /** Close the connection after the answer (a failed proof). */
  close?: boolean;
}

/**
 * Handles `peer_hello` or `peer_auth` on the listener side.
 *
 * @example
 * ```ts
 * let handshake: ListenerHandshake = { state: "none" };
 * const step = listenerStep(secret, handshake, message);
 * handshake = step.next;
 * ```
 */
export function listenerStep(
  secret: ClusterSecret | undefined,
  current: ListenerHandshake,
  message: Record<string, unknown>,
): HandshakeStep {
  if (message.action === "peer_hello") {
    const theirs = protocolOf(message);
    if (theirs !== peerProtocolVersion) {
      return {
        response: {
          status: "bad_request",
          error: `${versionMismatch("The dialing peer", theirs)}.`,
          protocol: peerProtocolVersion,
        },
        next: { state: "none" },
        close: true,
      };
    }
    if (secret === undefined) {
      const nodeId = typeof message.node_id === "number" ? message.node_id : undefined;
      return {
        response: { status: "ok", secured: false, protocol: peerProtocolVersion },
        next: { state: "member", nodeId },
      };
    }
    const nodeId = nodeIdOf(message);
    const dialerNonce = nonceField(message, "nonce");
    const listenerNonce = newNonce();
    return {
      response: {
        status: "challenge",
        protocol: peerProtocolVersion,
        nonce: listenerNonce,
        proof: secret.prove(["listener", dialerNonce, listenerNonce]),
      },
      next: { state: "challenged", nodeId, dialerNonce, listenerNonce },
    };
  }
  // peer_auth
  if (secret === undefined || current.state !== "challenged") {
    throw new ProtocolError("unauthorized", "Send peer_hello before peer_auth");
  }
  const nodeId = nodeIdOf(message);
  const parts = ["dialer", nodeId, current.dialerNonce, current.listenerNonce];
  if (nodeId !== current.nodeId || !secret.verify(parts, message.proof)) {
    return {
      response: { status: "unauthorized", error: "The cluster secret proof is wrong." },
      next: { state: "none" },
      close: true,
    };
  }
  return { response: { status: "ok", secured: true }, next: { state: "member", nodeId } };
}

// ---- dialer side -------------------------------------------------------------

/** Why a dialer gave up on a handshake (logged and shown in `cluster_status`). */
export class PeerHandshakeError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PeerHandshakeError";
  }
}

/**
 * The dialer's half: `hello()` first, then `answer(reply)` for each reply
 * until it returns `{ done: true }`.
 *
 * @example
 * ```ts
 * const dialer = new DialerHandshake(1, secret);
 * send(dialer.hello());
 * const step = dialer.answer(await nextReply()); // { send: peer_auth } or { done: true }
 * ```
 */
export class DialerHandshake {
  readonly #nodeId: number;
  readonly #secret: ClusterSecret | undefined;
  readonly #nonce = newNonce();
  /** True once the listener proved it knows the secret (its challenge verified). */
  #listenerVerified = false;

  constructor(nodeId: number, secret: ClusterSecret | undefined) {
    this.#nodeId = nodeId;
    this.#secret = secret;
  }

  hello(): Record<string, unknown> {
    return {
      action: "peer_hello",
      node_id: this.#nodeId,
      nonce: this.#nonce,
      protocol: peerProtocolVersion,
    };
  }

  /** Throws PeerHandshakeError when the listener cannot be trusted or refused us. */
  answer(reply: unknown): { send?: Record<string, unknown>; done: boolean } {
    const fields: Record<string, unknown> = typeof reply === "object" && reply !== null
      ? reply as Record<string, unknown>
      : {};
    const status = fields.status;
    const theirs = fields.protocol ?? 1;
    if (theirs !== peerProtocolVersion) throw new PeerHandshakeError(versionMismatch("it", theirs));
    if (status === "ok") {
      if (this.#secret !== undefined && fields.secured !== true) {
        throw new PeerHandshakeError(
          "it runs without a cluster secret while this peer has one",
        );
      }
      // An "ok" proves nothing by itself: a stranger on a member's address
      // could send it straight away. Only a verified challenge does.
      if (this.#secret !== undefined && !this.#listenerVerified) {
        throw new PeerHandshakeError(
          "it answered ok without proving that it knows the cluster secret",
        );
      }
      return { done: true };
    }
    if (status === "challenge") {
      if (this.#secret === undefined) {
        throw new PeerHandshakeError(
          "it requires a cluster secret (start this peer with --cluster-secret-file)",
        );
      }
      const listenerNonce = typeof fields.nonce === "string" ? fields.nonce : "";
      if (!this.#secret.verify(["listener", this.#nonce, listenerNonce], fields.proof)) {
        throw new PeerHandshakeError("it does not know the cluster secret");
      }
      this.#listenerVerified = true;
      return {
        send: {
          action: "peer_auth",
          node_id: this.#nodeId,
          proof: this.#secret.prove(["dialer", this.#nodeId, this.#nonce, listenerNonce]),
        },
        done: false,
      };
    }
    if (status === "unauthorized") {
      throw new PeerHandshakeError("it refused this peer's cluster secret");
    }
    const error = fields.error;
    throw new PeerHandshakeError(
      `it answered the handshake with '${describeValue(status)}'${
        typeof error === "string" ? `: ${error}` : ""
      }`,
    );
  }
}
