import {
  cursorExpired,
  cursorUnknown,
  invalidArgument,
  shuttingDown,
  tooManyEventStreams,
} from "./errors.js";
import {
  eventTag,
  eventWireSize,
  formatCursor,
  NO_EVENT_TAG,
  parseCursor,
  SESSION_EVENT_TYPES,
  type EventCursor,
  type SessionEvent,
  type SessionEventFilter,
  type SessionEventType,
} from "./session-events.js";
import type { SessionStore } from "./session-store.js";
import { checkText } from "./validate.js";

export interface EventFeedOptions {
  readonly store: SessionStore;
  /** Most events one read (and one batch sent) holds. */
  readonly batchSize: number;
  /**
   * Most bytes one batch sent holds, about: a read's events are split into
   * batches under it, so no message nears a client's receive limit
   * (commonly 4 MiB).
   */
  readonly maxBatchBytes: number;
  /** A stream that sent nothing for this long sends an empty batch with its cursor (ms). */
  readonly heartbeatMs: number;
  /** Most streams served at once; more are refused with RESOURCE_EXHAUSTED. */
  readonly maxStreams: number;
  /**
   * Least time between two reads of a live stream (ms): the first commit
   * after a quiet spell is read at once, and the commits of a burst in one
   * read, so a busy server does not read the log once per commit per stream.
   */
  readonly minReadIntervalMs: number;
}

/** A watch request as the caller sent it. */
export interface WatchEventsInput {
  /** Resume after this cursor; "" to start at the live tail (or the oldest event). */
  readonly afterCursor: string;
  readonly fromOldest: boolean;
  /** "" for every user. */
  readonly userId: string;
  /** Empty for every type. */
  readonly types: readonly SessionEventType[];
}

/** What a stream sends: events with their cursors, and how far it has read. */
export interface EventBatch {
  readonly events: readonly { readonly event: SessionEvent; readonly cursor: string }[];
  /** Resume after this, even if the filter skipped every event up to it. */
  readonly cursor: string;
}

export interface EventFeed {
  /**
   * The events after the input's starting point, then each new one as it
   * commits, until `signal` aborts or the feed closes (UNAVAILABLE). The
   * first batch comes at once, even if empty, so the caller holds a cursor
   * to resume from before any event arrives. It reads from the store only as
   * fast as the caller consumes, so a slow caller costs one batch of memory.
   */
  watch(input: WatchEventsInput, signal: AbortSignal): AsyncGenerator<EventBatch>;
  /** How many streams are being served. */
  readonly streams: number;
  /** Ends every stream with UNAVAILABLE and refuses new ones. */
  close(): void;
}

interface Waiter {
  readonly wake: () => void;
  readonly fail: (error: unknown) => void;
}

/**
 * Serves the event log to watchers. Every stream reads the store from its own
 * position, so what it sends is exactly the committed log in order, whichever
 * process wrote it; the store tells the feed when there may be more to read.
 */
export function createEventFeed(options: EventFeedOptions): EventFeed {
  const { store, batchSize, maxBatchBytes, heartbeatMs, maxStreams, minReadIntervalMs } = options;
  let streams = 0;
  let closed = false;
  /** Grows with every commit notice; a stream sleeps until it changes. */
  let generation = 0;
  const waiters = new Set<Waiter>();
  let unsubscribe: (() => void) | undefined;
  const onCommit = () => {
    generation++;
    for (const waiter of waiters) waiter.wake();
  };

  /** Resolves once a commit has been noticed after `seen`, or false after `timeoutMs`. */
  const nextCommit = (seen: number, signal: AbortSignal, timeoutMs: number) =>
    new Promise<boolean>((resolve, reject) => {
      if (generation !== seen) return resolve(true);
      if (closed) return reject(shuttingDown());
      if (signal.aborted) return reject(signal.reason);
      const finish = () => {
        waiters.delete(waiter);
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      };
      const waiter: Waiter = {
        wake: () => {
          finish();
          resolve(true);
        },
        fail: (error) => {
          finish();
          reject(error);
        },
      };
      const onAbort = () => waiter.fail(signal.reason);
      const timer = setTimeout(() => {
        finish();
        resolve(false);
      }, timeoutMs);
      waiters.add(waiter);
      signal.addEventListener("abort", onAbort);
    });

  async function* watch(input: WatchEventsInput, signal: AbortSignal): AsyncGenerator<EventBatch> {
    const filter = toFilter(input);
    const after = input.afterCursor === "" ? undefined : parseCursor(input.afterCursor);
    if (input.afterCursor !== "" && after === undefined) {
      throw invalidArgument("after_cursor", "is not a cursor from this service's events");
    }
    if (after !== undefined && input.fromOldest) {
      throw invalidArgument("from_oldest", "must not be set with after_cursor");
    }
    if (closed) throw shuttingDown();
    if (streams >= maxStreams) throw tooManyEventStreams(maxStreams);
    streams++;
    try {
      // Subscribe before reading the log, so no commit falls between the two.
      if (unsubscribe === undefined) unsubscribe = store.onEvents(onCommit);
      let log = await store.eventLog();
      if (after !== undefined) await checkCursor(after, log.logId);
      let position = after?.seq ?? (input.fromOldest ? log.purgedThrough : log.head);
      const cursorOf = (event: SessionEvent) => formatCursor({ logId: log.logId, seq: event.seq, tag: eventTag(event) });
      /** The cursor of the position a read reached: of its event, if the log still has it. */
      const positionCursor = (seq: number, at: SessionEvent | undefined) =>
        at === undefined ? formatCursor({ logId: log.logId, seq, tag: after?.seq === seq ? after.tag : NO_EVENT_TAG }) : cursorOf(at);
      let lastSent: number | undefined;
      let lastRead = -Infinity;
      for (;;) {
        const sinceRead = performance.now() - lastRead;
        if (sinceRead < minReadIntervalMs) await sleep(minReadIntervalMs - sinceRead);
        if (closed) throw shuttingDown();
        signal.throwIfAborted();
        const seen = generation;
        lastRead = performance.now();
        const read = await store.readEvents(position, filter, batchSize);
        if (read.status === "expired" && input.fromOldest && lastSent === undefined) {
          // Retention moved the oldest event since the log was looked at: start there.
          log = await store.eventLog();
          position = log.purgedThrough;
          continue;
        }
        if (read.status === "expired") throw cursorExpired();
        if (read.status === "ahead") throw cursorUnknown();
        position = read.through;
        // Sent: events, the first answer, and, while a filter skips a long
        // stretch of the log, the cursor once per heartbeat interval.
        if (read.events.length > 0 || lastSent === undefined || performance.now() - lastSent >= heartbeatMs) {
          const chunks = splitBySize(read.events, maxBatchBytes);
          for (let i = 0; i < chunks.length; i++) {
            const events = chunks[i]!.map((event) => ({ event, cursor: cursorOf(event) }));
            const last = i === chunks.length - 1;
            yield { events, cursor: last ? positionCursor(position, read.atThrough) : events.at(-1)!.cursor };
          }
          lastSent = performance.now();
        }
        if (read.more) {
          // Each read is synchronous work: let other calls run between them.
          await new Promise<void>((resolve) => setImmediate(resolve));
          lastRead = -Infinity;
          continue;
        }
        const quiet = performance.now() - lastSent;
        if (!(await nextCommit(seen, signal, Math.max(0, heartbeatMs - quiet)))) {
          yield { events: [], cursor: positionCursor(position, read.atThrough) };
          lastSent = performance.now();
        }
      }
    } finally {
      streams--;
      if (streams === 0) {
        unsubscribe?.();
        unsubscribe = undefined;
      }
    }
  }

  /**
   * Refuses a cursor of another log, or one whose event is not the event now
   * at its seq (the database was replaced by an older copy since).
   */
  async function checkCursor(cursor: EventCursor, logId: string): Promise<void> {
    if (cursor.logId !== logId) throw cursorUnknown();
    if (cursor.seq === 0) return;
    const at = await store.eventAt(cursor.seq);
    // Gone: retention removed it; the read tells whether events after it went too.
    if (at !== undefined && eventTag(at) !== cursor.tag) throw cursorUnknown();
  }

  return {
    watch,
    get streams() {
      return streams;
    },
    close() {
      closed = true;
      for (const waiter of waiters) waiter.fail(shuttingDown());
    },
  };
}

/** The events in runs of at most `maxBytes` (about), each of at least one event; [[]] for none. */
function splitBySize(events: readonly SessionEvent[], maxBytes: number): SessionEvent[][] {
  const chunks: SessionEvent[][] = [[]];
  let bytes = 0;
  for (const event of events) {
    const size = eventWireSize(event);
    if (bytes + size > maxBytes && chunks.at(-1)!.length > 0) {
      chunks.push([]);
      bytes = 0;
    }
    chunks.at(-1)!.push(event);
    bytes += size;
  }
  return chunks;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function toFilter(input: WatchEventsInput): SessionEventFilter {
  checkText("user_id", input.userId);
  for (const type of input.types) {
    if (!SESSION_EVENT_TYPES.includes(type)) throw invalidArgument("types", `has no event type ${JSON.stringify(type)}`);
  }
  return {
    ...(input.userId !== "" && { userId: input.userId }),
    ...(input.types.length > 0 && { types: [...new Set(input.types)] }),
  };
}
