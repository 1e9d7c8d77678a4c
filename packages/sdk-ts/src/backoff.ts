/** Reconnect timing: exponential backoff with full jitter, bounded by `maxDelayMs` and optionally `maxAttempts`. */
export interface ReconnectOptions {
  /** Reconnect automatically after a connection is lost for a reason that allows it. @default true */
  enabled?: boolean;
  /** The ceiling of the first delay; it doubles per attempt. @default 500 */
  initialDelayMs?: number;
  /** No delay is ever longer than this. @default 10000 */
  maxDelayMs?: number;
  /** Give up (status `closed`) after this many failed attempts in a row. @default Infinity */
  maxAttempts?: number;
  /** Source of randomness in [0, 1), for reproducible tests. @default Math.random */
  random?: () => number;
}

export interface ResolvedReconnect {
  enabled: boolean;
  initialDelayMs: number;
  maxDelayMs: number;
  maxAttempts: number;
  random: () => number;
}

export function resolveReconnect(options: ReconnectOptions | boolean | undefined): ResolvedReconnect {
  const o = typeof options === "boolean" ? { enabled: options } : (options ?? {});
  const initialDelayMs = Math.max(0, o.initialDelayMs ?? 500);
  return {
    enabled: o.enabled ?? true,
    initialDelayMs,
    maxDelayMs: Math.max(initialDelayMs, o.maxDelayMs ?? 10_000),
    maxAttempts: o.maxAttempts ?? Number.POSITIVE_INFINITY,
    random: o.random ?? Math.random,
  };
}

/**
 * The delay before reconnect attempt `attempt` (1-based): uniformly random in [0, cap) where
 * cap = min(maxDelayMs, initialDelayMs * 2^(attempt-1)) ("full jitter"), so that clients dropped together by one
 * server restart spread their reconnects out instead of arriving in waves.
 */
export function backoffDelay(attempt: number, options: ResolvedReconnect): number {
  const exp = Math.min(30, Math.max(0, attempt - 1));
  const cap = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** exp);
  return Math.floor(options.random() * cap);
}
