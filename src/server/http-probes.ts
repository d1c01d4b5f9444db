/** What the probes use of a request and a response, on HTTP/1.1 or HTTP/2 alike. */
interface ProbeRequest {
  readonly url?: string | undefined;
  readonly method?: string | undefined;
}
interface ProbeResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body?: string): unknown;
}

/**
 * The HTTP port's answers outside the RPC routes: `/healthz` (liveness: the
 * process answers), `/readyz` (readiness: 200 only while the server is
 * serving), as orchestrators probe them, and `/metrics` for Prometheus; 404
 * for anything else.
 */
export function createProbeHandler(
  isReady: () => boolean,
  /** The Prometheus exposition served at /metrics. */
  metrics: () => Promise<{ contentType: string; body: string }>,
): (request: ProbeRequest, response: ProbeResponse) => void {
  return (request, response) => {
    const path = (request.url ?? "").split("?")[0];
    const readable = request.method === "GET" || request.method === "HEAD";
    if (readable && path === "/metrics") {
      metrics().then(
        ({ contentType, body }) => {
          response.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
          response.end(request.method === "HEAD" ? undefined : body);
        },
        () => {
          response.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
          response.end("metrics unavailable\n");
        },
      );
      return;
    }
    let status = 404;
    let body = "not found\n";
    if (readable && path === "/healthz") {
      status = 200;
      body = "ok\n";
    } else if (readable && path === "/readyz") {
      [status, body] = isReady() ? [200, "ready\n"] : [503, "not ready\n"];
    }
    response.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
    response.end(request.method === "HEAD" ? undefined : body);
  };
}
