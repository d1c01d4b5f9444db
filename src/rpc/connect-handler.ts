import { createConnectRouter, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type * as http from "node:http";
import * as http2 from "node:http2";
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
    response.once("finish", () => discardUnreadBody(request));
    const handler = byPath.get(request.url?.split("?", 1)[0] ?? "");
    if (handler === undefined) {
      options.fallback(request, response);
      return;
    }
    // connect-node reads the body through the request's async iterator, which
    // destroys the request when the reading stops early (at the size limit,
    // say): on HTTP/1.1 that takes the socket down before the answer is out.
    // Stopping early leaves the rest to discardUnreadBody instead.
    request[Symbol.asyncIterator] = () => request.iterator({ destroyOnReturn: false });
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
 * A request answered before its body was read to the end (refused at the
 * size limit, say) must not leave the rest unread. On HTTP/1.1 the
 * connection's next request would never be read: the rest is read and
 * dropped, as Node does for a body nobody started to read. On HTTP/2 the
 * unread data counts against the connection's memory until every stream on
 * it is refused: the stream is closed with NO_ERROR, which tells the client
 * to stop sending (RFC 9113, section 8.1).
 */
function discardUnreadBody(request: http.IncomingMessage | http2.Http2ServerRequest): void {
  if ("stream" in request) {
    if (!request.readableEnded && !request.stream.closed) request.stream.close(http2.constants.NGHTTP2_NO_ERROR);
    return;
  }
  // Even a body received whole may sit unread in the request's buffer, and
  // while it does, Node reads nothing more from the socket. connect-node's
  // reading may not have stopped yet (its 'readable' listener keeps the
  // stream paused); a 'data' listener makes it flow once that is gone.
  if (!request.readableEnded && !request.destroyed) {
    request.on("data", () => undefined);
    request.resume();
  }
}
