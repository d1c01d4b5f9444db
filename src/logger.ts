/** Structured fields attached to a log line. Never put a secret here. */
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export type LogLevel = "info" | "warn" | "error" | "silent";

const RANK: Record<LogLevel, number> = { info: 0, warn: 1, error: 2, silent: 3 };

/** Writes one JSON object per line: time, level, msg, then the fields. */
export function createJsonLogger(
  write: (line: string) => void,
  level: LogLevel = "info",
): Logger {
  const log = (at: Exclude<LogLevel, "silent">) => (message: string, fields?: LogFields) => {
    if (RANK[at] < RANK[level]) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level: at, msg: message, ...fields })}\n`);
  };
  return { info: log("info"), warn: log("warn"), error: log("error") };
}

/** The error's message and stack, for a log line. */
export function describeError(error: unknown): LogFields {
  return error instanceof Error
    ? { err: { name: error.name, message: error.message, stack: error.stack } }
    : { err: String(error) };
}
