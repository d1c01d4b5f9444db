import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, tempDir, type TestServer } from "../support/test-server.js";

const run = promisify(execFile);
const ROOT = new URL("../..", import.meta.url).pathname;
const BUF = join(ROOT, "node_modules/.bin/buf");
// Debian's grpcio and protobuf are seen by /usr/bin/python3, not by a python3 earlier on PATH.
const PYTHON = "/usr/bin/python3";

/** What each example prints, whatever its language. */
const EXPECTED = (refused: string) =>
  new RegExp(
    `^opened ([0-9a-f]{32}) for 123\nvalidated \\1\nstored \\{"theme":"light"\\}, version 2\nlisted 1 of 1\n` +
      `closed: active=false\ndeleted\nrefused: ${refused}\n$`,
  );

/**
 * The README's generated clients, built the way it says: stubs made at test time from proto/
 * with the buf templates and Debian's plugins, then the example programs run against a fresh
 * server. Needs protobuf-compiler, protobuf-compiler-grpc, python3-grpcio, python3-protobuf,
 * golang-go, golang-google-grpc-dev, golang-github-golang-protobuf-1-5-dev, protoc-gen-go,
 * protoc-gen-go-grpc, protobuf-compiler-grpc-java-plugin, and for Java a JDK with libgrpc-java,
 * libprotobuf-java, libnetty-java, libguava-java, libperfmark-java and libgoogle-gson-java
 * (.ci/run installs them).
 */
describe("the example clients in other languages", () => {
  const dir = tempDir();
  let server: TestServer;
  const generate = (language: string, out: string) =>
    run(BUF, ["generate", "--template", `buf.gen.${language}.yaml`, "-o", out], { cwd: ROOT });
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  it("runs examples/python/client.py (grpcio) against the server", async () => {
    const out = join(dir.path, "python");
    await generate("python", out);
    copyFileSync(join(ROOT, "examples/python/client.py"), join(out, "client.py"));
    const { stdout } = await run(PYTHON, [join(out, "client.py"), `127.0.0.1:${server.app.grpcPort}`]);
    expect(stdout).toMatch(EXPECTED("UNAUTHENTICATED"));
  });

  it("generates the Python stubs with the README's protoc command too", async () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const command = /`(protoc -I proto --python_out=OUT [^`]+)`/.exec(readme)![1]!;
    const out = join(dir.path, "protoc-python");
    mkdirSync(out);
    await run("bash", ["-c", command.replaceAll("OUT", out)], { cwd: ROOT });
    expect(readFileSync(join(out, "sessions/v1/sessions_pb2.py"), "utf8")).toContain("sessions/v1/sessions.proto");
    expect(readFileSync(join(out, "sessions/v1/sessions_pb2_grpc.py"), "utf8")).toContain("class SessionsServiceStub");
  });

  it("builds and runs examples/go (google.golang.org/grpc) against the server", async () => {
    // GOPATH mode with Debian's Go packages: no module proxy is reachable here.
    const gopath = join(dir.path, "go");
    const project = join(gopath, "src/sessionsexample");
    mkdirSync(project, { recursive: true });
    await generate("go", project);
    copyFileSync(join(ROOT, "examples/go/main.go"), join(project, "main.go"));
    const env = {
      PATH: process.env.PATH,
      HOME: dir.path,
      GO111MODULE: "off",
      GOPATH: `${gopath}:/usr/share/gocode`,
      GOCACHE: join(dir.path, "go-cache"),
    };
    await run("go", ["build", "-o", join(gopath, "example"), "."], { cwd: project, env });
    const { stdout } = await run(join(gopath, "example"), [`127.0.0.1:${server.app.grpcPort}`]);
    expect(stdout).toMatch(EXPECTED("Unauthenticated ERROR_REASON_TOKEN_UNKNOWN"));
  }, 180_000);

  it("compiles and runs examples/java (grpc-java) against the server", async () => {
    const out = join(dir.path, "java");
    await generate("java", out);
    const service = join(out, "gen/java/sessions/v1/SessionsServiceGrpc.java");
    expect(readFileSync(service, "utf8")).toContain("watchSessionEvents");
    // Debian's grpc-java, netty, guava, perfmark, gson and protobuf-java jars.
    const classpath = "/usr/share/java/*";
    const sources = [join(ROOT, "examples/java/Example.java"), service, join(out, "gen/java/sessions/v1/Sessions.java")];
    await run("javac", ["-nowarn", "-cp", classpath, "-d", join(out, "classes"), ...sources]);
    const { stdout } = await run("java", ["-cp", `${join(out, "classes")}:${classpath}`, "Example", `127.0.0.1:${server.app.grpcPort}`]);
    expect(stdout).toMatch(EXPECTED("UNAUTHENTICATED"));
  }, 120_000);
});
