import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = join(import.meta.dirname, "..", "src");

/** Every import specifier of every source file, by path relative to src/. */
function imports(): { file: string; specifier: string }[] {
  const found: { file: string; specifier: string }[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".ts")) {
        const text = readFileSync(path, "utf8");
        const pattern = /\bfrom\s+"([^"]+)"|\bimport\s*\(\s*"([^"]+)"\s*\)|^import\s+"([^"]+)"/gm;
        for (const match of text.matchAll(pattern)) {
          found.push({ file: relative(SRC, path), specifier: (match[1] ?? match[2] ?? match[3])! });
        }
      }
    }
  };
  walk(SRC);
  return found;
}

const layer = (file: string) => (file.includes("/") ? file.split("/")[0]! : file.replace(/\.ts$/, ""));

/** What each layer may import: dependencies point one way, towards session/. */
const ALLOWED: Record<string, RegExp> = {
  session: /^(node:|\.\/)/,
  sqlite: /^(node:|better-sqlite3$|\.\/|\.\.\/session\/)/,
  rpc: /^(node:|@bufbuild\/protobuf|@connectrpc\/|@grpc\/grpc-js$|\.\/|\.\.\/session\/|\.\.\/logger\.js$|\.\.\/health\.js$|\.\.\/metrics\.js$|\.\.\/\.\.\/gen\/)/,
  server: /^(node:|@grpc\/grpc-js$|\.\/)/,
  // The SDK: the generated code and the RPC libraries, never the server.
  client: /^(node:|@bufbuild\/protobuf|@connectrpc\/|@grpc\/grpc-js$|\.\/|\.\.\/\.\.\/gen\/)/,
  logger: /^pino$/,
  health: /^$/,
  metrics: /^prom-client$/,
  config: /^(\.\/session\/session-policy\.js|\.\/config-sources\.js|\.\/logger\.js)$/,
  "config-sources": /^yaml$/,
};

describe("architecture", () => {
  const all = imports();

  it("finds the source files", () => {
    expect(all.length).toBeGreaterThan(20);
  });

  it.each(Object.keys(ALLOWED))("keeps %s/ to its allowed dependencies", (name) => {
    const offending = all
      .filter(({ file }) => layer(file) === name)
      .filter(({ specifier }) => !ALLOWED[name]!.test(specifier));
    expect(offending).toEqual([]);
  });

  it("reads the environment, argv and signals only in main.ts", () => {
    const readers = readdirSync(SRC, { recursive: true, encoding: "utf8" })
      .filter((file) => file.endsWith(".ts") && file !== "main.ts")
      .filter((file) => /process\.(env|argv|on|once)\b/.test(readFileSync(join(SRC, file), "utf8")));
    expect(readers).toEqual([]);
  });
});
