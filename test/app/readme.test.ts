import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/server-process.js";
import { startTestServer, tempDir, type TestServer } from "../support/test-server.js";

const run = promisify(execFile);
const README = readFileSync(join(ROOT, "README.md"), "utf8");

/** The README's "Calling the service" section. */
const CALLING = README.slice(README.indexOf("## Calling the service"), README.indexOf("\n## ", README.indexOf("## Calling the service") + 5));

/** Its fenced blocks in one language, each with whether the README marks it as not run here. */
function blocks(language: string): { code: string; skipped: boolean }[] {
  const found: { code: string; skipped: boolean }[] = [];
  const fence = new RegExp(`(<!-- readme-test: skip[^\\n]*-->\\n)?\`\`\`${language}\\n([\\s\\S]*?)\`\`\`\\n`, "g");
  for (const match of CALLING.matchAll(fence)) found.push({ code: match[2]!, skipped: match[1] !== undefined });
  return found;
}

describe("the README's 'Calling the service'", () => {
  const dir = tempDir();
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
    dir.remove();
  });

  /** Runs a shell block as written, against the test server's ports. */
  const shell = async (code: string) => {
    const script = code
      .replaceAll("127.0.0.1:8090", `127.0.0.1:${server.app.grpcPort}`)
      .replaceAll("127.0.0.1:8080", `127.0.0.1:${server.app.httpPort}`)
      .replaceAll("/tmp/opened.json", join(dir.path, "opened.json"));
    const { stdout } = await run("bash", ["-euo", "pipefail", "-c", script], { cwd: ROOT, env: { PATH: process.env.PATH } });
    return stdout;
  };

  it("has two shell blocks to run, and marks the others", () => {
    expect(blocks("sh").map((block) => block.skipped)).toEqual([false, false, true, true, true]);
  });

  it("runs the curl block: opens, validates and lists a session, and shows an error with its reason", async () => {
    const out = await shell(blocks("sh")[0]!.code);
    expect(out).toContain('"userId":"123"');
    expect(out).toMatch(/"total":1/);
    expect(out).toContain('"code":"unauthenticated"');
    expect(out).toContain('"reason":"ERROR_REASON_TOKEN_UNKNOWN"');
  });

  it("runs the buf curl block on both ports and every protocol, through reflection", async () => {
    const out = await shell(blocks("sh")[1]!.code);
    expect(out).toContain("sessions.v1.SessionsService/WatchSessionEvents");
    expect(out).toContain('"status": "SERVING"');
    expect(out.match(/"total": \d+/g)).toHaveLength(3);
  });

  it("shows the SDK example exactly as examples/typescript/example.mjs, which the SDK tests run", () => {
    expect(blocks("js").map((block) => block.code)).toEqual([readFileSync(join(ROOT, "examples/typescript/example.mjs"), "utf8")]);
  });

  it("names templates and examples that exist", () => {
    const skipped = blocks("sh").filter((block) => block.skipped).map((block) => block.code).join("\n");
    for (const path of skipped.match(/buf\.gen\.\w+\.yaml|examples\/[\w/.]+\.(?:py|go|java)/g) ?? []) {
      expect(() => readFileSync(join(ROOT, path))).not.toThrow();
    }
    expect(skipped).toContain("buf.gen.java.yaml");
  });
});
