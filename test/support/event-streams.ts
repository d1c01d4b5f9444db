import type { TestClient, TestEvent, TestEventBatch, TestWatchRequest } from "./clients.js";

export interface Collected {
  readonly events: TestEvent[];
  readonly batches: TestEventBatch[];
}

/**
 * Watches until `enough` says so (checked after every batch), then cancels
 * the stream. Rejects with the stream's error, or if `enough` is not reached
 * within `timeoutMs`.
 */
export async function collectEvents(
  client: TestClient,
  request: TestWatchRequest,
  enough: (collected: Collected) => boolean,
  timeoutMs = 5000,
  options: { timeoutMs?: number } = {},
): Promise<Collected> {
  const aborter = new AbortController();
  const collected: Collected = { events: [], batches: [] };
  const timer = setTimeout(() => aborter.abort(), timeoutMs);
  try {
    for await (const batch of client.watch(request, aborter.signal, options)) {
      collected.batches.push(batch);
      collected.events.push(...batch.events);
      if (enough(collected)) return collected;
    }
    if (aborter.signal.aborted) {
      throw new Error(`timed out with ${collected.events.length} events in ${collected.batches.length} batches`);
    }
    throw new Error("the stream ended without an error");
  } finally {
    clearTimeout(timer);
    aborter.abort();
  }
}

/** Collects until `n` events have come (and at least one batch). */
export const collectN = (client: TestClient, request: TestWatchRequest, n: number, timeoutMs?: number) =>
  collectEvents(client, request, ({ events, batches }) => batches.length > 0 && events.length >= n, timeoutMs);

/** The error a stream ends with. */
export async function streamError(client: TestClient, request: TestWatchRequest, timeoutMs = 5000): Promise<unknown> {
  return collectEvents(client, request, () => false, timeoutMs).then(
    () => new Error("no error"),
    (error: unknown) => error,
  );
}

/** The seq inside a cursor, to check order (tests only: cursors are opaque to callers). */
export const seqOf = (cursor: string) => Number(cursor.split("-")[1]);

/** An event as a short string: TYPE:sessionId:version[:REASON]. */
export const brief = (event: TestEvent) =>
  [event.type.replace("SESSION_EVENT_TYPE_", ""), event.sessionId, event.version, ...(event.closeReason ? [event.closeReason.replace("CLOSE_REASON_", "")] : [])].join(":");
