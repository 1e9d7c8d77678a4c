/**
 * Error codes and close codes. Every code here is listed once in docs/errors.md; codes are stable within protocol
 * major version 1 (a code may be added, never renamed or reused).
 */

export const ErrorCode = {
  // Frames and codecs
  FRAME_MALFORMED: "ARQ_FRAME_MALFORMED",
  FRAME_UNKNOWN_TYPE: "ARQ_FRAME_UNKNOWN_TYPE",
  FRAME_MISSING_FIELD: "ARQ_FRAME_MISSING_FIELD",
  FRAME_WRONG_TYPE: "ARQ_FRAME_WRONG_TYPE",
  FRAME_TOO_LARGE: "ARQ_FRAME_TOO_LARGE",
  FRAME_TOO_DEEP: "ARQ_FRAME_TOO_DEEP",
  FRAME_UNEXPECTED: "ARQ_FRAME_UNEXPECTED",
  ROOM_INVALID: "ARQ_ROOM_INVALID",
  TENANT_INVALID: "ARQ_TENANT_INVALID",
  HEADER_INVALID: "ARQ_HEADER_INVALID",
  PAYLOAD_TOO_LARGE: "ARQ_PAYLOAD_TOO_LARGE",
  // Authentication and authorization
  AUTH_MISSING: "ARQ_AUTH_MISSING",
  AUTH_INVALID: "ARQ_AUTH_INVALID",
  AUTH_EXPIRED: "ARQ_AUTH_EXPIRED",
  AUTH_MISMATCH: "ARQ_AUTH_MISMATCH",
  AUTH_REVOKED: "ARQ_AUTH_REVOKED",
  FORBIDDEN: "ARQ_FORBIDDEN",
  ORIGIN_FORBIDDEN: "ARQ_ORIGIN_FORBIDDEN",
  // Tenants
  TENANT_DISABLED: "ARQ_TENANT_DISABLED",
  TENANT_UNKNOWN: "ARQ_TENANT_UNKNOWN",
  QUOTA_EXCEEDED: "ARQ_QUOTA_EXCEEDED",
  CONFIRMATION_REQUIRED: "ARQ_CONFIRMATION_REQUIRED",
  // Server-side requests (webhooks, proxy hooks)
  OUTBOUND_FORBIDDEN: "ARQ_OUTBOUND_FORBIDDEN",
  OUTBOUND_FAILED: "ARQ_OUTBOUND_FAILED",
  // Limits
  RATE_LIMITED: "ARQ_RATE_LIMITED",
  TOO_MANY_CONNECTIONS: "ARQ_TOO_MANY_CONNECTIONS",
  TOO_MANY_SUBSCRIPTIONS: "ARQ_TOO_MANY_SUBSCRIPTIONS",
  PRESENCE_INFO_TOO_LARGE: "ARQ_PRESENCE_INFO_TOO_LARGE",
  // Rooms, state, history
  NOT_SUBSCRIBED: "ARQ_NOT_SUBSCRIBED",
  STATE_CONFLICT: "ARQ_STATE_CONFLICT",
  STATE_KEY_INVALID: "ARQ_STATE_KEY_INVALID",
  HISTORY_UNAVAILABLE: "ARQ_HISTORY_UNAVAILABLE",
  POSITION_INVALID: "ARQ_POSITION_INVALID",
  HISTORY_GAP: "ARQ_HISTORY_GAP",
  PRESENCE_DISABLED: "ARQ_PRESENCE_DISABLED",
  // Server
  BACKEND_UNAVAILABLE: "ARQ_BACKEND_UNAVAILABLE",
  SHUTTING_DOWN: "ARQ_SHUTTING_DOWN",
  INTERNAL: "ARQ_INTERNAL",
  // Command responses (names kept from the earlier system)
  AUTHORIZATION_ERROR: "AUTHORIZATION_ERROR",
  VALIDATION_ERROR: "VALIDATION_ERROR",
  NOT_FOUND: "NOT_FOUND",
  FEATURE_DISABLED: "FEATURE_DISABLED",
  CONFLICT: "CONFLICT",
  INTERNAL_ERROR: "INTERNAL_ERROR",
  // CASIL decisions
  CASIL_POLICY_OVERSIZE: "CASIL_POLICY_OVERSIZE",
  CASIL_POLICY_BLOCKED_SECRET: "CASIL_POLICY_BLOCKED_SECRET",
  CASIL_POLICY_BLOCKED_PATTERN: "CASIL_POLICY_BLOCKED_PATTERN",
  CASIL_POLICY_REDACTED: "CASIL_POLICY_REDACTED",
  CASIL_POLICY_SCHEMA: "CASIL_POLICY_SCHEMA",
  CASIL_POLICY_DEFAULT_BLOCK: "CASIL_POLICY_DEFAULT_BLOCK",
  CASIL_WASM_DENY: "CASIL_WASM_DENY",
  CASIL_INTERNAL_ERROR: "CASIL_INTERNAL_ERROR",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes after which the same request may succeed if retried later. */
const RETRYABLE: ReadonlySet<string> = new Set<string>([
  ErrorCode.RATE_LIMITED,
  ErrorCode.BACKEND_UNAVAILABLE,
  ErrorCode.SHUTTING_DOWN,
  ErrorCode.INTERNAL,
]);

export function isRetryable(code: string): boolean {
  return RETRYABLE.has(code);
}

/** Base class of every error ArqonBus raises on purpose: a stable `code`, a human message, an optional cause. */
export class ArqonError extends Error {
  readonly code: string;
  /** Extra machine-readable detail (the offending field, the limit, ...). */
  readonly detail?: Record<string, unknown>;

  constructor(code: string, message: string, options?: ErrorOptions & { detail?: Record<string, unknown> }) {
    super(message, options);
    this.name = "ArqonError";
    this.code = code;
    if (options?.detail) this.detail = options.detail;
  }

  get retryable(): boolean {
    return isRetryable(this.code);
  }

  toInfo(): { code: string; message: string; retryable?: boolean } {
    return this.retryable ? { code: this.code, message: this.message, retryable: true } : { code: this.code, message: this.message };
  }
}

export class FrameError extends ArqonError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions & { detail?: Record<string, unknown> }) {
    super(code, message, options);
    this.name = "FrameError";
  }
}

export class RoomNameError extends ArqonError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.ROOM_INVALID, message, options);
    this.name = "RoomNameError";
  }
}

export class PayloadTooLargeError extends ArqonError {
  constructor(limit: number, options?: ErrorOptions) {
    super(ErrorCode.PAYLOAD_TOO_LARGE, `payload exceeds ${limit} bytes`, { ...options, detail: { limit } });
    this.name = "PayloadTooLargeError";
  }
}

export class StateConflictError extends ArqonError {
  constructor(key: string, expected: number, actual: number, options?: ErrorOptions) {
    super(ErrorCode.STATE_CONFLICT, `state key "${key}" is at version ${actual}, not ${expected}`, {
      ...options,
      detail: { key, expected, actual },
    });
    this.name = "StateConflictError";
  }
}

export class BackendUnavailableError extends ArqonError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.BACKEND_UNAVAILABLE, message, options);
    this.name = "BackendUnavailableError";
  }
}

/**
 * WebSocket close codes. 1000-1015 are RFC 6455's; 4000-4499 are ArqonBus codes after which a client reconnects
 * (with backoff); 4500-4999 are terminal: reconnecting with the same credentials would fail the same way.
 */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  ABNORMAL: 1006,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  // reconnect range
  SLOW_CONSUMER: 4000,
  PING_TIMEOUT: 4001,
  RATE_LIMIT_ABUSE: 4002,
  BACKEND_UNAVAILABLE: 4003,
  TOKEN_EXPIRED: 4004,
  // terminal range
  AUTH_INVALID: 4500,
  FORBIDDEN: 4501,
  PROTOCOL_VIOLATION: 4502,
  TENANT_DISABLED: 4503,
  KICKED: 4504,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * Whether a client should reconnect after the server closed with `code`. 1000 (a deliberate close) and the
 * 4500-4999 range are terminal; RFC codes that signal a transient condition and 4000-4499 reconnect.
 */
export function shouldReconnect(code: number): boolean {
  if (code >= 4500 && code <= 4999) return false;
  if (code >= 4000 && code <= 4499) return true;
  switch (code) {
    case CloseCode.NORMAL:
    case CloseCode.PROTOCOL_ERROR:
    case CloseCode.UNSUPPORTED_DATA:
    case CloseCode.POLICY_VIOLATION:
      return false;
    default:
      return true;
  }
}
