/**
 * Shared plumbing of the subcommands: commander set up so that a usage error
 * is one line on stderr and exit code 2, help is exit code 0, and nothing
 * ever prints a stack trace for a user's mistake.
 *
 * @module
 */

import { Command, CommanderError, InvalidArgumentError } from "commander";
import { validateTopicName } from "../wire/requests.ts";

/** Exit codes of every command (PROTOCOL.md section 6). */
export const exitCodes = { ok: 0, failure: 1, usage: 2 } as const;

/** A usage error raised after parsing (a flag combination, a missing value). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A new commander program that throws instead of exiting. */
export function newProgram(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({ writeErr: () => {}, outputError: () => {} })
    // Subcommands list the program's own options (--peers, --json, ...) too.
    .configureHelp({ showGlobalOptions: true })
    .allowExcessArguments(false);
}

/**
 * A commander argument parser for a topic name: a bad one is a usage error
 * that talks about the command's argument, not the protocol's field.
 */
export function topicArgument(value: string): string {
  try {
    return validateTopicName(value);
  } catch {
    throw new InvalidArgumentError(
      `Topic name '${
        value.slice(0, 64)
      }' is not valid: use 1-249 characters of A-Z a-z 0-9 . _ - (not '.' or '..').`,
    );
  }
}

/**
 * Parses `args` with `program` and runs its action; returns the exit code.
 * Usage errors print one line naming the problem and return 2.
 */
export async function runProgram(program: Command, args: string[]): Promise<number> {
  try {
    await program.parseAsync(args, { from: "user" });
    return exitCodes.ok;
  } catch (error) {
    return reportError(error);
  }
}

/** Prints a user-facing error in one line and returns its exit code. */
export function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    if (error.code === "commander.helpDisplayed" || error.code === "commander.version") {
      return exitCodes.ok;
    }
    if (error.code === "commander.executeSubCommandAsync") return exitCodes.ok;
    const message = error.message.replace(/^error: /, "pubsub: ")
      // The argument parser's own sentence already names the value.
      .replace(/command-argument value '.*' is invalid for argument '(\w+)'\. /s, "<$1>: ");
    console.error(oneLine(message));
    return error.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
  }
  if (error instanceof UsageError) {
    console.error(`pubsub: ${oneLine(error.message)}`);
    return exitCodes.usage;
  }
  if (error instanceof ExitCode) return error.code;
  console.error(`pubsub: ${oneLine(error instanceof Error ? error.message : String(error))}`);
  return exitCodes.failure;
}

/** Thrown by an action to end the command with a given exit code. */
export class ExitCode extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.name = "ExitCode";
    this.code = code;
  }
}

function oneLine(text: string): string {
  return text.split("\n").map((line) => line.trim()).filter(Boolean).join(" ");
}

/** A commander argument parser for an integer within bounds. */
export function integerOption(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const number = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || number < min || number > max) {
      throw new InvalidArgumentError(`Expected an integer between ${min} and ${max}.`);
    }
    return number;
  };
}

/** A peer in a `--peers` list: `id@host:port`. */
export interface PeerAddress {
  id: number;
  host: string;
  port: number;
}

/** Parses `1@host:port,2@host:port`; throws InvalidArgumentError naming the bad item. */
export function parsePeerList(value: string): PeerAddress[] {
  const peers: PeerAddress[] = [];
  for (const item of value.split(",").map((part) => part.trim()).filter(Boolean)) {
    const match = /^(\d+)@(.+):(\d+)$/.exec(item);
    const id = Number(match?.[1]);
    const port = Number(match?.[3]);
    if (!match || id < 1 || port < 1 || port > 65535) {
      throw new InvalidArgumentError(`Expected id@host:port items, got '${item}'.`);
    }
    if (peers.some((peer) => peer.id === id)) {
      throw new InvalidArgumentError(`Peer id ${id} appears twice.`);
    }
    peers.push({ id, host: match[2], port });
  }
  if (peers.length === 0) throw new InvalidArgumentError("Expected at least one id@host:port.");
  return peers;
}

/** The prototype's peer list (PROTOCOL.md section 6): ids 1-8 on localhost ports 5001-5008. */
export const defaultPeerList = Array.from(
  { length: 8 },
  (_, index) => `${index + 1}@localhost:${5001 + index}`,
).join(",");

/** A commander parser for `host:port,...` (`--peers` of bench and verify). */
export function addressList(value: string): string[] {
  const items = value.split(",").map((item) => item.trim()).filter(Boolean);
  for (const item of items) {
    if (!/^[^\s:]+:\d{1,5}$/.test(item) || Number(item.slice(item.lastIndexOf(":") + 1)) > 65535) {
      throw new InvalidArgumentError(`Expected host:port items, got '${item}'.`);
    }
  }
  if (items.length === 0) throw new InvalidArgumentError("Expected at least one host:port.");
  return items;
}

/** A commander parser for `pid,...` (`--pids` of bench and verify). */
export function pidList(value: string): number[] {
  return value.split(",").map((item) => {
    if (!/^\d+$/.test(item.trim()) || Number(item) < 1) {
      throw new InvalidArgumentError(`Expected positive integer pids, got '${item}'.`);
    }
    return Number(item);
  });
}
