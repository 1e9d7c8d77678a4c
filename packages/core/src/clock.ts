/**
 * Where in-memory backends read the time and schedule their periodic work. Injected so tests can drive leases and
 * retention windows without sleeping (`ManualClock` from `@arqon/core/testing`).
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `callback` every `ms` milliseconds until cleared; returns an opaque handle for `clearInterval`. */
  setInterval(callback: () => void, ms: number): unknown;
  /** Stops the interval behind a handle that this clock's `setInterval` returned. */
  clearInterval(handle: unknown): void;
}

/** The real clock. Its timers never keep a Node process alive on their own. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setInterval(callback, ms) {
    const handle = setInterval(callback, ms) as unknown as { unref?: () => void };
    if (typeof handle === "object" && handle !== null) handle.unref?.();
    return handle;
  },
  clearInterval(handle) {
    clearInterval(handle as Parameters<typeof clearInterval>[0]);
  },
};

/** Receives an error thrown by a handler that a backend called (bus handler, watcher). */
export type HandlerErrorReporter = (error: unknown) => void;

/**
 * The default reporter: rethrows the error on a fresh microtask so it reaches the host's uncaught-error handling
 * (Node's `uncaughtException`, the browser's `error` event) instead of being swallowed, while the backend goes on
 * delivering to the remaining handlers in order. Pass `onHandlerError` to a backend to handle it yourself.
 */
export const rethrowHandlerError: HandlerErrorReporter = (error) => {
  queueMicrotask(() => {
    throw error;
  });
};
