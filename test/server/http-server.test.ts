import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/grpc-server.js";
import { startHttpServer } from "../../src/server/http-server.js";

/** GET over HTTP/1.1. */
function get1(port: number, path: string) {
  return new Promise<{ status: number; body: string; version: string }>((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
        let body = "";
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, version: res.httpVersion }));
      })
      .on("error", reject);
  });
}

/** GET over cleartext HTTP/2 with prior knowledge. */
function get2(port: number, path: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const req = session.request({ ":path": path });
    let status = 0;
    let body = "";
    req.on("response", (headers) => (status = Number(headers[":status"])));
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      session.close();
      resolve({ status, body });
    });
    req.end();
  });
}

describe("HTTP listener", () => {
  let server: RunningServer;
  afterEach(() => server.close(1000));

  it("serves HTTP/1.1 and cleartext HTTP/2 on the same port", async () => {
    server = await startHttpServer({
      host: "127.0.0.1",
      port: 0,
      handler: (req, res) => res.end(`${req.httpVersion} ${req.url}`),
    });
    expect(await get1(server.port, "/one")).toEqual({ status: 200, body: "1.1 /one", version: "1.1" });
    expect(await get2(server.port, "/two")).toEqual({ status: 200, body: "2.0 /two" });
  });

  it("lets a request in flight finish when closing, and serves nothing new meanwhile", async () => {
    let release: (() => void) | undefined;
    server = await startHttpServer({
      host: "127.0.0.1",
      port: 0,
      handler: (req, res) => {
        if (req.url === "/slow") release = () => res.end("done");
        else res.end("fast");
      },
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const viaAgent = (path: string) =>
      new Promise<string>((resolve, reject) => {
        http
          .get({ host: "127.0.0.1", port: server.port, path, agent }, (res) => {
            let body = "";
            res.on("data", (chunk) => (body += chunk));
            res.on("end", () => resolve(`${res.statusCode} ${body}`));
          })
          .on("error", reject);
      });
    expect(await viaAgent("/warm-up")).toBe("200 fast"); // leaves an idle keep-alive socket
    const pending = get1(server.port, "/slow");
    await expect.poll(() => release).toBeDefined();
    const closing = server.close(5000);
    // During the grace period: the idle keep-alive socket is gone, new connections are refused.
    await expect(viaAgent("/during-close")).rejects.toThrow(/ECONNRESET|ECONNREFUSED|socket hang up/);
    release!();
    expect((await pending).body).toBe("done");
    await closing;
    await expect(get1(server.port, "/late")).rejects.toThrow(/ECONNREFUSED/);
    agent.destroy();
  });

  it("drops an HTTP/1.1 client that never finishes its headers", async () => {
    server = await startHttpServer({
      host: "127.0.0.1",
      port: 0,
      handler: (_req, res) => res.end(),
      headersTimeoutMs: 300,
    });
    const socket = net.connect(server.port, "127.0.0.1");
    let answer = "";
    socket.on("data", (chunk) => (answer += chunk));
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n");
    const started = Date.now();
    await closed;
    expect(answer).toMatch(/^HTTP\/1.1 408/);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
