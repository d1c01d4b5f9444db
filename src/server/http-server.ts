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
 * Starts the HTTP listener. Over TLS, one http2 secure server takes HTTP/2 and
 * HTTP/1.1, chosen by ALPN. In cleartext Node offers no such thing, so each
 * connection is routed by whether its first bytes are the HTTP/2 preface.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningServer> {
  const drain = createDrain(options.handler);
  if (options.tls !== undefined) {
    const tls = options.tls;
    const server = http2.createSecureServer(
      {
        cert: tls.cert,
        key: tls.key,
        allowHTTP1: true,
        ...(tls.clientCa !== undefined && { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }),
      },
      drain.handler,
    );
    // Tracked from the TCP connection on, so connections still in (or stuck in)
    // the TLS handshake are closed at the end of the grace period too.
    server.on("connection", drain.track);
    server.on("session", drain.trackSession);
    const port = await listen(server, options);
    return {
      port,
      close: (graceMs) => drain.close(graceMs, () => new Promise<void>((resolve) => server.close(() => resolve()))),
    };
  }

  const headersTimeout = options.headersTimeoutMs ?? 60_000;
  const h1 = http.createServer(
    {
      headersTimeout,
      requestTimeout: Math.max(headersTimeout, 300_000),
      connectionsCheckingInterval: Math.min(5000, Math.max(10, headersTimeout / 10)),
    },
    drain.handler,
  );
  const h2 = http2.createServer(drain.handler);
  h2.on("session", drain.trackSession);
  const tcp = net.createServer((socket) => {
    drain.track(socket);
    routeByPreface(socket, h1, h2);
  });
  const port = await listen(tcp, options);
  // h1 never listens itself, and Node only enforces headersTimeout and
  // requestTimeout (and tracks idle connections) once a server has emitted
  // 'listening'. Without this a client trickling header bytes holds a socket forever.
  h1.emit("listening");
  return {
    port,
    close: (graceMs) =>
      drain.close(
        graceMs,
        () => {
          const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
          h1.close(); // stops its timeout checks and drops idle keep-alive connections
          return closed;
        },
        () => h1.closeIdleConnections(),
      ),
  };
}

async function listen(server: net.Server, options: HttpServerOptions): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/**
 * What both forms of the listener share: the requests in flight, the sockets
 * and HTTP/2 sessions, and a close that stops listening, sends GOAWAY, lets
 * requests finish for the grace period and then drops every connection.
 */
function createDrain(inner: HttpHandler) {
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let closing = false;
  let inFlight = 0;
  let drained: (() => void) | undefined;
  let onResponseWhileClosing: () => void = () => undefined;

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
      if (closing) onResponseWhileClosing();
      if (inFlight === 0) drained?.();
    });
    inner(request, response);
  };

  return {
    handler,
    track(socket: net.Socket) {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    },
    trackSession(session: http2.ServerHttp2Session) {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
    },
    /**
     * `stopListening` stops taking connections and resolves once the server is
     * closed; `onResponse` runs whenever a response finishes meanwhile.
     */
    async close(graceMs: number, stopListening: () => Promise<void>, onResponse?: () => void) {
      closing = true;
      if (onResponse !== undefined) onResponseWhileClosing = onResponse;
      const closed = stopListening();
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
