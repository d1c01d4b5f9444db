import type { HandlerContext } from "@connectrpc/connect";

/**
 * What a transport's HandlerContext may offer besides `requestHeader` and
 * `responseHeader`: reading and setting one header without building a
 * `Headers` object. The grpc-js adapter offers it, since its calls carry
 * grpc-js Metadata and a Headers copy cost more than the rest of the call's
 * bookkeeping.
 */
export interface HeaderShortcuts {
  /** A request header's value (values joined by ", ", as Headers.get does), or null. */
  requestHeaderValue(name: string): string | null;
  /** Sets a response header, sent with those set on `responseHeader`. */
  setResponseHeaderValue(name: string, value: string): void;
}

const hasShortcuts = (context: HandlerContext): context is HandlerContext & HeaderShortcuts =>
  "requestHeaderValue" in context;

/** A request header's value, or null. */
export function requestHeaderValue(context: HandlerContext, name: string): string | null {
  return hasShortcuts(context) ? context.requestHeaderValue(name) : context.requestHeader.get(name);
}

/** Sets a response header. */
export function setResponseHeaderValue(context: HandlerContext, name: string, value: string): void {
  if (hasShortcuts(context)) context.setResponseHeaderValue(name, value);
  else context.responseHeader.set(name, value);
}
