import { pino } from "pino";

/** Structured fields attached to a log line. Never put a secret here. */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/**
 * A pino logger writing one JSON object per line: time (ISO 8601), level (by
 * name), msg, then the fields. `write` receives each line; pino serialises,
 * so a logged Error keeps its message and stack.
 */
export function createJsonLogger(write: (line: string) => void, level: LogLevel = "info"): Logger {
  const log = pino(
    {
      level,
      base: null,
      messageKey: "msg",
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    { write },
  );
  return {
    debug: (message, fields) => log.debug(fields ?? {}, message),
    info: (message, fields) => log.info(fields ?? {}, message),
    warn: (message, fields) => log.warn(fields ?? {}, message),
    error: (message, fields) => log.error(fields ?? {}, message),
  };
}

/**
 * Batches log lines into one write per turn of the event loop: under load a
 * turn serves many calls, and one write(2) per line cost more than the rest
 * of the logging. A line is written at the end of the turn that logged it, so
 * a quiet server's lines go out at once; `flush` writes what is pending now
 * (at exit).
 */
export function createBatchedWriter(write: (chunk: string) => void): { write: (line: string) => void; flush: () => void } {
  let pending: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const chunk = pending.join("");
    pending = [];
    write(chunk);
  };
  return {
    write(line) {
      pending.push(line);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

/** The error's name, message, code (if it has one) and stack, for a log line. */
export function describeError(error: unknown): LogFields {
  if (!(error instanceof Error)) return { err: String(error) };
  // SQLite's and the system's codes (SQLITE_FULL, ENOSPC...) say more than their messages.
  const { code } = error as { code?: unknown };
  return {
    err: { name: error.name, message: error.message, ...(typeof code === "string" && { code }), stack: error.stack },
  };
}
