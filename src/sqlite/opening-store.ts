import { SessionError } from "../session/errors.js";
import type { SessionStore } from "../session/session-store.js";

/**
 * A store opened as soon as it can be. While `open` throws (the file is locked
 * by another process, unwritable, on a full disk...), every method fails with
 * UNAVAILABLE, and `ping()` tries to open it again and rejects with the
 * reason. The health check pings on its interval, so a server started before
 * its database was usable reports NOT_SERVING, and serves by itself once the
 * cause is fixed, with no restart.
 */
export function openWhenPossible(open: () => SessionStore): SessionStore {
  let store: SessionStore | undefined;
  let disposed = false;
  /** Listeners added before the store opened, with what stops each once attached. */
  const waiting = new Map<() => void, (() => void) | undefined>();

  const tryOpen = () => {
    if (store !== undefined || disposed) return;
    store = open();
    for (const listener of waiting.keys()) waiting.set(listener, store.onEvents(listener));
  };
  try {
    tryOpen();
  } catch {
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
      waiting.set(listener, undefined);
      return () => {
        waiting.get(listener)?.();
        waiting.delete(listener);
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
