import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** What the service measures; the rpc layer and the app report into it. */
export interface Metrics {
  /** One finished call. */
  observeCall(procedure: string, code: string, seconds: number): void;
  /** One sweep: how many sessions it closed and purged. */
  observeSweep(closed: number, purged: number): void;
  /** The Prometheus text exposition, and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

/**
 * Prometheus metrics in a registry of their own: calls by procedure and code
 * (count and latency histogram), active sessions (counted when scraped),
 * sweeper runs and batch sizes, and Node's process metrics, event-loop lag
 * among them.
 */
export function createMetrics(options: { countActiveSessions: () => Promise<number> }): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "sessions_" });
  const calls = new Counter({
    name: "sessions_rpc_requests_total",
    help: "Finished calls to SessionsService, by procedure and gRPC status code.",
    labelNames: ["procedure", "code"],
    registers: [registry],
  });
  const latency = new Histogram({
    name: "sessions_rpc_duration_seconds",
    help: "Time from a call reaching the service to its response, by procedure and code.",
    labelNames: ["procedure", "code"],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  new Gauge({
    name: "sessions_active_sessions",
    help: "Sessions not closed (including expired ones the sweeper has not closed yet).",
    registers: [registry],
    async collect() {
      this.set(await options.countActiveSessions());
    },
  });
  const sweeps = new Counter({
    name: "sessions_sweeps_total",
    help: "Sweeper runs.",
    registers: [registry],
  });
  const swept = new Counter({
    name: "sessions_swept_total",
    help: "Sessions the sweeper closed (expired) or purged (closed longer than the retention).",
    labelNames: ["action"],
    registers: [registry],
  });
  return {
    observeCall(procedure, code, seconds) {
      calls.inc({ procedure, code });
      latency.observe({ procedure, code }, seconds);
    },
    observeSweep(closed, purged) {
      sweeps.inc();
      swept.inc({ action: "closed" }, closed);
      swept.inc({ action: "purged" }, purged);
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
