import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { RunningServer, TlsFiles } from "./grpc-server.js";

/** Serves both HTTP/1.1 and HTTP/2 requests. */
export type HttpHandler = (
  request: http.IncomingMessage | http2.Http2ServerRequest,
  response: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface HttpServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly handler: HttpHandler;
  /**
   * How long an HTTP/1.1 client may take to send a request's headers (ms).
   * Default 60 s, as Node's; checked every tenth of it, at most every 5 s.
   */
  readonly headersTimeoutMs?: number;
  /** TLS (and mTLS): HTTP/1.1 and HTTP/2 are then negotiated by ALPN. */
  readonly tls?: TlsFiles | undefined;
}

/** Every HTTP/2 connection starts with these bytes (RFC 9113, section 3.4). */
const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** A connection that has not sent its first bytes by then is dropped. */
const FIRST_BYTES_TIMEOUT_MS = 10_000;

/**
 * Starts the HTTP listener: HTTP/1.1 and cleartext HTTP/2 on the same port.
 * Node only offers both on one port over TLS (ALPN), so each connection is
 * routed by whether its first bytes are the HTTP/2 connection preface.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningServer> {
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let closing = false;
  let inFlight = 0;
  let drained: (() => void) | undefined;
  /** Run whenever a response finishes during close (plaintext: drop idle keep-alive connections). */
  let whileClosing: () => void = () => undefined;

  const handler: HttpHandler = (request, response) => {
    if (closing) {
      // A keep-alive HTTP/1.1 connection can still bring a request after close
      // began: refuse it (Connect clients read 503 as UNAVAILABLE) and hang up.
      if (response instanceof http.ServerResponse) response.shouldKeepAlive = false;
      response.writeHead(503, { "content-type": "text/plain" });
      response.end("the server is shutting down");
      return;
    }
    inFlight++;
    response.once("close", () => {
      inFlight--;
      if (closing) whileClosing();
      if (inFlight === 0) drained?.();
    });
    options.handler(request, response);
  };
  const headersTimeout = options.headersTimeoutMs ?? 60_000;
  if (options.tls !== undefined) {
    return startTlsServer(options, options.tls, handler, sessions, () => inFlight, (resolve) => (drained = resolve), () => {
      closing = true;
    });
  }
  const h1 = http.createServer(
    {
      headersTimeout,
      requestTimeout: Math.max(headersTimeout, 300_000),
      connectionsCheckingInterval: Math.min(5000, Math.max(10, headersTimeout / 10)),
    },
    handler,
  );
  const h2 = http2.createServer(handler);
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });

  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    routeByPreface(socket, h1, h2);
  });
  const port = await new Promise<number>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(options.port, options.host, () => {
      tcp.off("error", reject);
      resolve((tcp.address() as net.AddressInfo).port);
    });
  });
  // h1 never listens itself, and Node only enforces headersTimeout and
  // requestTimeout (and tracks idle connections) once a server has emitted
  // 'listening'. Without this a client trickling header bytes holds a socket forever.
  h1.emit("listening");
  whileClosing = () => h1.closeIdleConnections();

  return {
    port,
    async close(graceMs) {
      closing = true;
      const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      h1.close(); // stops its timeout checks and drops idle keep-alive connections
      for (const session of sessions) session.close(); // GOAWAY: streams in flight finish
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

function routeByPreface(socket: net.Socket, h1: http.Server, h2: http2.Http2Server): void {
  let received = Buffer.alloc(0);
  socket.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => socket.destroy());
  const onError = () => socket.destroy();
  socket.on("error", onError);
  const onReadable = () => {
    const chunk = socket.read() as Buffer | null;
    if (chunk === null) return;
    received = Buffer.concat([received, chunk]);
    const length = Math.min(received.length, HTTP2_PREFACE.length);
    const looksLikeHttp2 = received.subarray(0, length).equals(HTTP2_PREFACE.subarray(0, length));
    if (looksLikeHttp2 && received.length < HTTP2_PREFACE.length) return;
    socket.off("readable", onReadable);
    socket.off("error", onError);
    socket.setTimeout(0);
    // Put the bytes back; both servers read what is buffered on the socket.
    socket.unshift(received);
    (looksLikeHttp2 ? h2 : h1).emit("connection", socket);
  };
  socket.on("readable", onReadable);
}

/**
 * The TLS form of the HTTP listener: one http2 secure server that also takes
 * HTTP/1.1 (allowHTTP1), the protocol chosen by ALPN, so no sniffing is needed.
 */
async function startTlsServer(
  options: HttpServerOptions,
  tls: TlsFiles,
  handler: HttpHandler,
  sessions: Set<http2.ServerHttp2Session>,
  inFlight: () => number,
  onDrained: (resolve: () => void) => void,
  beginClosing: () => void,
): Promise<RunningServer> {
  const server = http2.createSecureServer(
    {
      cert: tls.cert,
      key: tls.key,
      allowHTTP1: true,
      ...(tls.clientCa !== undefined && { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }),
    },
    handler,
  );
  // Tracked from the TCP connection on, so connections still in (or stuck in)
  // the TLS handshake are closed at the end of the grace period too.
  const sockets = new Set<net.Socket>();
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
  return {
    port,
    async close(graceMs) {
      beginClosing();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close();
      if (inFlight() > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          onDrained(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
