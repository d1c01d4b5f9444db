/** Whether a service can take calls, as gRPC health checking reports it. */
export type ServingStatus = "serving" | "not_serving";

/** The whole server, in gRPC health checking's terms. */
export const WHOLE_SERVER = "";

export interface HealthState {
  /** The status of a service ("" for the whole server), or undefined if unknown. */
  get(service: string): ServingStatus | undefined;
  /** Every known service ("" included) and its status. */
  all(): ReadonlyMap<string, ServingStatus>;
  /** Sets every known service's status at once. */
  setAll(status: ServingStatus): void;
  /**
   * Calls `listener` with the service's status now and on every change, until
   * the returned function is called or the state is closed; then `onClose`.
   */
  watch(service: string, listener: (status: ServingStatus | undefined) => void, onClose: () => void): () => void;
  /** Ends every watch: the server is going away. */
  close(): void;
}

/**
 * The serving status of the whole server and of each service on it, shared by
 * the gRPC health service and the HTTP readiness probe. Everything starts
 * NOT_SERVING until the app says it is ready.
 */
export function createHealthState(services: readonly string[]): HealthState {
  const statuses = new Map<string, ServingStatus>([[WHOLE_SERVER, "not_serving"]]);
  for (const service of services) statuses.set(service, "not_serving");
  const watchers = new Set<{ service: string; listener: (s: ServingStatus | undefined) => void; onClose: () => void }>();
  let closed = false;

  return {
    get: (service) => statuses.get(service),
    all: () => new Map(statuses),
    setAll(status) {
      for (const service of statuses.keys()) {
        if (statuses.get(service) === status) continue;
        statuses.set(service, status);
        for (const watcher of watchers) {
          if (watcher.service === service) watcher.listener(status);
        }
      }
    },
    watch(service, listener, onClose) {
      listener(statuses.get(service));
      if (closed) {
        // The server is going away: a late watch gets the status, then its end.
        onClose();
        return () => undefined;
      }
      const watcher = { service, listener, onClose };
      watchers.add(watcher);
      return () => watchers.delete(watcher);
    },
    close() {
      closed = true;
      for (const watcher of watchers) watcher.onClose();
      watchers.clear();
    },
  };
}
