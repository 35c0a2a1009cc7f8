/**
 * Logging for every pubsub command, on top of `@logtape/logtape`.
 *
 * Library modules only call {@linkcode getLogger}; records go nowhere until a
 * command calls {@linkcode configureLogging} once, which sends them to stderr
 * as JSON lines (for machines) or pretty text (for people). stdout stays free
 * for command output such as the client's results or the bench report path.
 *
 * @module
 */

import {
  configureSync,
  getAnsiColorFormatter,
  getJsonLinesFormatter,
  getLogger as getLogtapeLogger,
  getTextFormatter,
  type Logger,
  type LogRecord,
  resetSync,
  type TextFormatter,
} from "@logtape/logtape";

export type { Logger } from "@logtape/logtape";

/** Root category of every pubsub logger. */
export const rootCategory = "pubsub";

/** Levels a user can choose, lowest first. */
export const logLevels = ["debug", "info", "warning", "error"] as const;
/** A level a user can choose. */
export type LogLevelName = typeof logLevels[number];

/** Output formats. */
export const logFormats = ["json", "pretty"] as const;
/** An output format: `json` lines or `pretty` text. */
export type LogFormat = typeof logFormats[number];

/** Options of {@linkcode configureLogging}. */
export interface LoggingOptions {
  /** Lowest level written. Default "info". */
  level?: LogLevelName;
  /** "json" (one JSON object a line) or "pretty". Default "pretty". */
  format?: LogFormat;
  /**
   * Where formatted lines go. Default: written synchronously to stderr, so
   * that a record logged just before a crash is not lost in a buffer.
   */
  write?: (text: string) => void;
  /** Colour the pretty format. Default: whether stderr is a terminal. */
  color?: boolean;
}

/**
 * Configures logging for the whole process, replacing any earlier
 * configuration.
 *
 * @example Log JSON lines at debug level
 * ```ts
 * import { configureLogging, getLogger } from "./logging.ts";
 *
 * configureLogging({ level: "debug", format: "json" });
 * getLogger("peer").info("Peer {id} listening", { id: 1 });
 * ```
 */
export function configureLogging(options: LoggingOptions = {}): void {
  const level = options.level ?? "info";
  const format = options.format ?? "pretty";
  if (!(logLevels as readonly string[]).includes(level)) {
    throw new RangeError(
      `Cannot configure logging as 'level' must be one of ${
        logLevels.join(", ")
      }: current value is '${level}'`,
    );
  }
  if (!(logFormats as readonly string[]).includes(format)) {
    throw new RangeError(
      `Cannot configure logging as 'format' must be one of ${
        logFormats.join(", ")
      }: current value is '${format}'`,
    );
  }
  const write = options.write ?? writeStderr;
  const formatter = chooseFormatter(format, options.color ?? Deno.stderr.isTerminal());
  const sink = (record: LogRecord) => write(formatter(record));
  configureSync({
    reset: true,
    sinks: { stderr: sink },
    loggers: [
      { category: [rootCategory], lowestLevel: level, sinks: ["stderr"] },
      // LogTape reports its own problems here; its info notice is noise.
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** Removes the configuration: records are dropped again. Mainly for tests. */
export function resetLogging(): void {
  resetSync();
}

/**
 * The logger of one module, under `["pubsub", ...category]`.
 *
 * @example
 * ```ts
 * import { getLogger } from "./logging.ts";
 *
 * const logger = getLogger("raft", "group");
 * logger.warn("Lost leadership of {group} at term {term}", { group: "orders", term: 7 });
 * ```
 */
export function getLogger(...category: string[]): Logger {
  return getLogtapeLogger([rootCategory, ...category]);
}

function chooseFormatter(format: LogFormat, color: boolean): TextFormatter {
  if (format === "json") return getJsonLinesFormatter();
  return color
    ? getAnsiColorFormatter({ timestamp: "date-time-tz" })
    : getTextFormatter({ timestamp: "date-time-tz" });
}

const encoder = new TextEncoder();

function writeStderr(text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
}
