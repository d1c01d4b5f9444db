import { readFileSync } from "node:fs";
import { ConfigError, CONFIG_VARIABLES, parseConfig } from "./config.js";
import { startApp } from "./app.js";
import { createBatchedWriter, createJsonLogger, describeError } from "./logger.js";

/**
 * The process entry point: the only code that reads the environment, the
 * command line and signals.
 */
async function main(): Promise<void> {
  if (process.argv.includes("--help")) {
    process.stdout.write(helpText());
    return;
  }
  let config;
  try {
    config = parseConfig({
      env: process.env,
      argv: process.argv.slice(2),
      readFile: (path) => readFileSync(path, "utf8"),
    });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
  const output = createBatchedWriter((chunk) => process.stdout.write(chunk));
  // Writes to a file or a pipe are synchronous on Linux, so what is flushed here is written.
  process.once("exit", output.flush);
  const logger = createJsonLogger(output.write, config.logLevel);

  const app = await startApp(config, { logger });
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    app.stop().then(
      () => {
        logger.info("stopped");
        // Everything is closed and flushed; a socket a client left half-open must
        // not keep the process alive.
        process.exit(process.exitCode ?? 0);
      },
      (error: unknown) => {
        logger.error("shutdown failed", describeError(error));
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
  // Announced only once the signal handlers are in place: whoever waits for this
  // line (an orchestrator, a test) may stop the server at once.
  logger.info("listening", {
    host: config.host,
    grpcPort: app.grpcPort,
    httpPort: app.httpPort,
    db: config.dbPath,
  });
}

function helpText(): string {
  const rows = CONFIG_VARIABLES.map(
    (v) => `  ${v.flag.padEnd(32)} ${v.name.padEnd(34)} ${v.key}\n      ${v.expected}. Default: ${v.default}`,
  );
  return [
    "Usage: node dist/src/main.js [--config FILE] [--name value ...]   (npm start runs it)",
    "",
    "Each setting can be given, from lowest to highest precedence, in a YAML or JSON config file",
    "(--config FILE, or SESSIONS_CONFIG; see config.example.yaml), as an environment variable,",
    "or as a flag. Unknown settings and bad values stop start-up, naming each one.",
    "",
    `  ${"flag".padEnd(32)} ${"environment variable".padEnd(34)} file key`,
    ...rows,
    "",
  ].join("\n");
}

main().catch((error: unknown) => {
  process.stderr.write(`failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
