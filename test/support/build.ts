import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

const ROOT = new URL("../..", import.meta.url).pathname;

/**
 * Vitest global setup: builds the server once (`dist/`), for the tests that
 * run it as a real process; done here so that parallel test files never
 * build at the same time.
 */
export default async function buildServer(): Promise<void> {
  await promisify(execFile)(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.build.json")]);
}
