import { ConfigError, CONFIG_VARIABLES, parseConfig } from "./config.js";
import { startApp } from "./app.js";
import { createJsonLogger, describeError } from "./logger.js";

/**
 * The process entry point: the only code that reads the environment, the
 * command line and signals.
 */
async function main(): Promise<void> {
  if (process.argv.includes("--help")) {
    process.stdout.write(
      "Usage: npm start   (configured by environment variables)\n\n" +
        CONFIG_VARIABLES.map(
          (v) => `  ${v.name.padEnd(28)} ${v.expected} (default ${v.default})`,
        ).join("\n") +
        "\n",
    );
    return;
  }
  const logger = createJsonLogger((line) => process.stdout.write(line));
  let config;
  try {
    config = parseConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }

  const app = await startApp(config, { logger });
  logger.info("listening", {
    host: config.host,
    grpcPort: app.grpcPort,
    httpPort: app.httpPort,
    db: config.dbPath,
  });

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    app.stop().then(
      () => logger.info("stopped"),
      (error: unknown) => {
        logger.error("shutdown failed", describeError(error));
        process.exitCode = 1;
      },
    );
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

main().catch((error: unknown) => {
  process.stderr.write(`failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
