import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** What the service measures; the rpc layer and the app report into it. */
export interface Metrics {
  /** One finished call. */
  observeCall(procedure: string, code: string, seconds: number): void;
  /** One sweep: how many sessions it closed and purged, and how many events it purged. */
  observeSweep(closed: number, purged: number, purgedEvents: number): void;
  /** An event committed to the event log, by type. */
  observeEvent(type: string): void;
  /** A session opened. */
  observeOpen(): void;
  /** Sessions closed, by why. */
  observeClose(reason: string, count: number): void;
  /** An error from SQLite, by its code (SQLITE_BUSY, SQLITE_FULL, ...). */
  observeSqliteError(code: string): void;
  /** The Prometheus text exposition, and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

/**
 * Prometheus metrics in a registry of their own: calls by procedure and code
 * (count and latency histogram), sessions opened and closed by reason, active
 * sessions (counted when scraped), events by type and event streams, sweeper
 * runs and what they did, SQLite errors by code, and Node's process metrics,
 * event-loop lag among them. WatchSessionEvents streams count as calls too;
 * their duration is the stream's life, so they fill the top buckets.
 */
export function createMetrics(options: {
  countActiveSessions: () => Promise<number>;
  countEventStreams: () => number;
}): Metrics {
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
    // Up to 10 s: a write waiting on another process's lock can take SESSIONS_DB_LOCK_TIMEOUT (2 s by default).
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 5, 10],
    registers: [registry],
  });
  new Gauge({
    name: "sessions_active_sessions",
    help: "Sessions not closed (including expired ones the sweeper has not closed yet); the last count if the database cannot answer.",
    registers: [registry],
    async collect() {
      // A database that cannot answer must not take /metrics down with it (that is
      // when metrics matter most): the gauge keeps its last value, and the error
      // shows in sessions_sqlite_errors_total.
      await options.countActiveSessions().then(
        (count) => this.set(count),
        () => undefined,
      );
    },
  });
  new Gauge({
    name: "sessions_event_streams",
    help: "WatchSessionEvents streams being served.",
    registers: [registry],
    collect() {
      this.set(options.countEventStreams());
    },
  });
  const events = new Counter({
    name: "sessions_events_total",
    help: "Events this server committed to the event log, by type.",
    labelNames: ["type"],
    registers: [registry],
  });
  const purgedEvents = new Counter({
    name: "sessions_events_purged_total",
    help: "Events the sweeper removed, older than the event retention.",
    registers: [registry],
  });
  const sweeps = new Counter({
    name: "sessions_sweeps_total",
    help: "Sweeper runs.",
    registers: [registry],
  });
  const sweepSizes = new Histogram({
    name: "sessions_sweep_size",
    help: "Sessions one sweeper run closed (action=closed) or purged (action=purged).",
    labelNames: ["action"],
    buckets: [0, 1, 10, 100, 1000, 10_000, 100_000, 1_000_000],
    registers: [registry],
  });
  const swept = new Counter({
    name: "sessions_swept_total",
    help: "Sessions the sweeper closed (expired) or purged (closed longer than the retention).",
    labelNames: ["action"],
    registers: [registry],
  });
  const opened = new Counter({
    name: "sessions_opened_total",
    help: "Sessions opened.",
    registers: [registry],
  });
  const closed = new Counter({
    name: "sessions_closed_total",
    help: "Sessions closed, by reason (logout, expired_idle, expired_absolute, revoked, evicted, token_reuse).",
    labelNames: ["reason"],
    registers: [registry],
  });
  const sqliteErrors = new Counter({
    name: "sessions_sqlite_errors_total",
    help: "Errors from SQLite, by code; SQLITE_BUSY counts each 20 ms try that found another process holding the lock.",
    labelNames: ["code"],
    registers: [registry],
  });
  const callChildren = new Map<string, { count: Counter.Internal; latency: Histogram.Internal<"procedure" | "code"> }>();
  return {
    observeOpen: () => opened.inc(),
    observeClose: (reason, count) => closed.inc({ reason }, count),
    observeSqliteError: (code) => sqliteErrors.inc({ code }),
    observeCall(procedure, code, seconds) {
      // The labelled children, found once per procedure and code rather than
      // hashed from a labels object on every call.
      const key = `${procedure} ${code}`;
      let children = callChildren.get(key);
      if (children === undefined) {
        children = { count: calls.labels({ procedure, code }), latency: latency.labels({ procedure, code }) };
        callChildren.set(key, children);
      }
      children.count.inc();
      children.latency.observe(seconds);
    },
    observeEvent: (type) => events.inc({ type }),
    observeSweep(closed, purged, eventsPurged) {
      sweeps.inc();
      purgedEvents.inc(eventsPurged);
      swept.inc({ action: "closed" }, closed);
      swept.inc({ action: "purged" }, purged);
      sweepSizes.observe({ action: "closed" }, closed);
      sweepSizes.observe({ action: "purged" }, purged);
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
