import { SessionError } from "../session/errors.js";
import type { SessionStore } from "../session/session-store.js";

/**
 * A store opened as soon as it can be. While `open` throws an error that
 * time or an operator can fix (`isTransient`: the file is locked by another
 * process, its folder cannot be created, its disk is full...), every method
 * fails with UNAVAILABLE, and `ping()` tries to open it again and rejects
 * with the reason. The health check pings on its interval, so a server
 * started before its database was usable reports NOT_SERVING, and serves by
 * itself once the cause is fixed, with no restart. Any other error at the
 * first try (a schema newer than this server, a file that is no database) is
 * thrown: the server should not start.
 */
export function openWhenPossible(open: () => SessionStore, isTransient: (error: unknown) => boolean): SessionStore {
  let store: SessionStore | undefined;
  let disposed = false;
  /** Listeners added before the store opened, each with what stops it once attached. */
  const waiting = new Set<{ readonly listener: () => void; stop?: () => void }>();

  const tryOpen = () => {
    if (store !== undefined) return;
    if (disposed) throw new Error("the store was disposed before it could be opened");
    store = open();
    for (const entry of waiting) entry.stop = store.onEvents(entry.listener);
  };
  try {
    tryOpen();
  } catch (error) {
    if (!isTransient(error)) throw error;
    // ping() says why, and tries again.
  }
  const notOpen = () =>
    new SessionError("unavailable", "the database is not open yet (the server's log says why); retry");

  const methods: Partial<SessionStore> = {
    async ping() {
      tryOpen();
      await store!.ping();
    },
    onEvents(listener) {
      if (store !== undefined) return store.onEvents(listener);
      const entry: { readonly listener: () => void; stop?: () => void } = { listener };
      waiting.add(entry);
      return () => {
        entry.stop?.();
        waiting.delete(entry);
      };
    },
    async dispose() {
      disposed = true;
      await store?.dispose();
    },
  };
  // Every other method is the open store's, or a rejection; made once per name.
  const delegates = new Map<string, (...args: unknown[]) => unknown>();
  return new Proxy(methods as SessionStore, {
    get(target, name) {
      if (name in methods) return target[name as keyof SessionStore];
      if (typeof name !== "string" || name === "then") return undefined; // not a thenable
      let delegate = delegates.get(name);
      if (delegate === undefined) {
        delegate = (...args) =>
          store === undefined
            ? Promise.reject(notOpen())
            : (store[name as keyof SessionStore] as (...a: unknown[]) => unknown)(...args);
        delegates.set(name, delegate);
      }
      return delegate;
    },
  });
}
