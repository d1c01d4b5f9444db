import { createConnectRouter, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type * as http from "node:http";
import type * as http2 from "node:http2";
import { SessionsService } from "../../gen/sessions/v1/sessions_pb.js";

/** A request handler for HTTP/1.1 and HTTP/2 alike, as node's servers call it. */
export type NodeHandler = (
  request: http.IncomingMessage | http2.Http2ServerRequest,
  response: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface ConnectHandlerOptions {
  /** Registers every service the port serves. */
  readonly routes: (router: ConnectRouter) => void;
  /** Answers requests that are no RPC. */
  readonly fallback: NodeHandler;
  /** Largest request accepted, in bytes. */
  readonly maxReceiveMessageBytes: number;
  /**
   * Told when a response could not be written: `clientGone` when the client
   * had already disconnected (a stream cancelled mid-way), which is routine.
   */
  readonly onResponseFailed: (procedure: string, error: unknown, clientGone: boolean) => void;
}

/** The Connect routes of the HTTP port; tests mount the same ones in memory. */
export function sessionsRoutes(service: ServiceImpl<typeof SessionsService>) {
  return (router: ConnectRouter) => router.service(SessionsService, service);
}

/**
 * The HTTP port's request handler: the Connect protocol (JSON and binary),
 * gRPC-Web and gRPC, for the same service implementation as the gRPC port.
 * It does what connect-node's connectNodeAdapter does, except that a failed
 * response goes to `onResponseFailed` (our log) instead of console.error.
 */
export function createConnectHandler(options: ConnectHandlerOptions): NodeHandler {
  const router = createConnectRouter({
    readMaxBytes: options.maxReceiveMessageBytes,
    acceptCompression: [compressionGzip, compressionBrotli],
  });
  options.routes(router);
  const byPath = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));
  return (request, response) => {
    const handler = byPath.get(request.url?.split("?", 1)[0] ?? "");
    if (handler === undefined) {
      options.fallback(request, response);
      return;
    }
    request[Symbol.asyncIterator] = () => bodyReader(request);
    // connect-node does not always close its reader when it refuses a body
    // (an extra message, say): once the answer is written, the rest goes too.
    ("stream" in response ? response.stream : response).once("finish", () => discardUnread(request));
    handler(universalRequestFromNodeRequest(request, response, undefined, undefined))
      .then((answer) => universalResponseToNodeResponse(answer, response))
      .catch((error: unknown) => {
        const procedure = `/${handler.service.typeName}/${handler.method.name}`;
        // On HTTP/2 the compatibility objects outlive the stream the client reset.
        const stream = "stream" in response ? response.stream : undefined;
        const clientGone = response.destroyed || request.destroyed || stream?.destroyed === true || stream?.closed === true;
        options.onResponseFailed(procedure, error, clientGone);
      });
  };
}

/**
 * The iterator connect-node reads a request body with. Node's own destroys
 * the request when the reading stops early (at the size limit, say), which
 * on HTTP/1.1 takes the socket down before the answer is out. This one
 * leaves the rest to discardUnread.
 */
function bodyReader(request: http.IncomingMessage | http2.Http2ServerRequest): AsyncIterableIterator<unknown> {
  const chunks = request.iterator({ destroyOnReturn: false });
  const stop = chunks.return?.bind(chunks);
  chunks.return = async (value?: unknown) => {
    const result = await (stop?.(value) ?? { done: true as const, value });
    discardUnread(request);
    return result;
  };
  return chunks;
}

/**
 * Reads the rest of a body nobody will read, and drops it: on HTTP/1.1 the
 * connection's next request would otherwise never be read, and on HTTP/2 the
 * unread data would count against the connection's memory until every
 * stream on it is refused. Pulled with read() on 'readable': a reader
 * connect-node abandoned without closing it leaves its own 'readable'
 * listener behind, which keeps the stream out of flowing mode for good.
 */
function discardUnread(request: http.IncomingMessage | http2.Http2ServerRequest): void {
  if (request.readableEnded || request.destroyed || discarding.has(request)) return;
  discarding.add(request);
  const drop = () => {
    while (request.read() !== null);
  };
  request.on("readable", drop);
  drop();
}
const discarding = new WeakSet<object>();
