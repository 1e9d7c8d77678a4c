/**
 * Error codes and close codes. Every code here is listed once in docs/errors.md; codes are stable within protocol
 * major version 1 (a code may be added, never renamed or reused).
 */

/**
 * Every error code ArqonBus raises on purpose, by name. The values are the wire codes carried in `error.code` of
 * `error` and `response` frames and in {@link ArqonError.code}; docs/errors.md lists when each is sent and what a
 * client should do. Only `RATE_LIMITED`, `BACKEND_UNAVAILABLE`, `SHUTTING_DOWN`, `INTERNAL` and `PROXY_UNAVAILABLE` are retryable.
 */
export const ErrorCode = {
  // Frames and codecs
  /** The bytes are not a frame: not a JSON object, not a protobuf `Frame`, or the wrong WebSocket opcode. */
  FRAME_MALFORMED: "ARQ_FRAME_MALFORMED",
  /** `type` is not a known frame type (or is the protobuf `UNSPECIFIED` value). */
  FRAME_UNKNOWN_TYPE: "ARQ_FRAME_UNKNOWN_TYPE",
  /** A field the frame type requires is absent, e.g. `room` on `subscribe`. */
  FRAME_MISSING_FIELD: "ARQ_FRAME_MISSING_FIELD",
  /** A field has the wrong type, a number is out of range, an enum is unknown, or non-binary bytes are not JSON. */
  FRAME_WRONG_TYPE: "ARQ_FRAME_WRONG_TYPE",
  /** The frame is larger than the connection's `maxFrameBytes`; the server closes with 1009. */
  FRAME_TOO_LARGE: "ARQ_FRAME_TOO_LARGE",
  /** JSON nesting goes deeper than the decoder's limit (32 levels by default). */
  FRAME_TOO_DEEP: "ARQ_FRAME_TOO_DEEP",
  /** A client sent a frame type only the server sends (`message`, `welcome`, `ack`, ...). */
  FRAME_UNEXPECTED: "ARQ_FRAME_UNEXPECTED",
  /** A room name is empty, over 200 characters, or has a character outside letters, digits and `_-.:@/=+!`. */
  ROOM_INVALID: "ARQ_ROOM_INVALID",
  /** A tenant id is empty, longer than 64 characters, or uses a character outside letters, digits, `_` and `-`. */
  TENANT_INVALID: "ARQ_TENANT_INVALID",
  /** A header breaks the rules: too many headers, a name or value too long, or an invalid `x-twist-id`. */
  HEADER_INVALID: "ARQ_HEADER_INVALID",
  /** The frame fits, but its payload (or a state value) is larger than `maxPayloadBytes`. */
  PAYLOAD_TOO_LARGE: "ARQ_PAYLOAD_TOO_LARGE",
  /** A client asked for a protocol version the server does not speak (`?protocol=` at the upgrade, or `hello`). */
  PROTOCOL_UNSUPPORTED: "ARQ_PROTOCOL_UNSUPPORTED",
  // Authentication and authorization
  /** The upgrade carried no token and the server requires one. */
  AUTH_MISSING: "ARQ_AUTH_MISSING",
  /** The token's signature, algorithm, issuer, audience or claims do not verify. */
  AUTH_INVALID: "ARQ_AUTH_INVALID",
  /** The token's `exp` has passed (at connect, or on an `auth` refresh). */
  AUTH_EXPIRED: "ARQ_AUTH_EXPIRED",
  /** An `auth` refresh carried a token for another subject or tenant than the connection's. */
  AUTH_MISMATCH: "ARQ_AUTH_MISMATCH",
  /** The token matches a revocation rule of its tenant (at the upgrade, on `auth`, or on the server API). */
  AUTH_REVOKED: "ARQ_AUTH_REVOKED",
  /** The token is valid but its role or capabilities do not allow this action on this room. */
  FORBIDDEN: "ARQ_FORBIDDEN",
  /** A browser connected from an `Origin` that is not on the server's allowlist (answered at the upgrade). */
  ORIGIN_FORBIDDEN: "ARQ_ORIGIN_FORBIDDEN",
  // Tenants
  /** The operator disabled the tenant: upgrades get HTTP 403, its publishes and server API calls are refused. */
  TENANT_DISABLED: "ARQ_TENANT_DISABLED",
  /** The server runs with registered tenants and the token's tenant was never created (HTTP 403 at the upgrade). */
  TENANT_UNKNOWN: "ARQ_TENANT_UNKNOWN",
  /** A tenant limit refused the action (rooms, state, presence, schedules, ...); `detail.quota` names it. */
  QUOTA_EXCEEDED: "ARQ_QUOTA_EXCEEDED",
  /** A destructive server API call (deleting a tenant) came without its confirmation; nothing was changed. */
  CONFIRMATION_REQUIRED: "ARQ_CONFIRMATION_REQUIRED",
  // Server-side requests (webhooks, proxy hooks)
  /** The outbound guard refused a server-side request target (webhook URL): not https, or not public. */
  OUTBOUND_FORBIDDEN: "ARQ_OUTBOUND_FORBIDDEN",
  /** A guarded server-side request got no answer (connection failed, timeout). */
  OUTBOUND_FAILED: "ARQ_OUTBOUND_FAILED",
  /** A proxy hook (the application backend) denied the connection, subscription, publish, rpc or refresh. */
  PROXY_DENIED: "ARQ_PROXY_DENIED",
  /** A proxy hook failed (timeout, connection, HTTP error, bad answer, at its concurrency cap) and fails closed. Retryable. */
  PROXY_UNAVAILABLE: "ARQ_PROXY_UNAVAILABLE",
  /** A frame asked for a feature this server does not run: an `rpc` frame without an rpc proxy hook. */
  FRAME_FEATURE_DISABLED: "ARQ_FEATURE_DISABLED",
  // Limits
  /** The connection published faster than `publishRatePerSecond` allows (plus `publishBurst`). Retryable. */
  RATE_LIMITED: "ARQ_RATE_LIMITED",
  /** The server, the tenant or the client's IP address has reached its connection limit. */
  TOO_MANY_CONNECTIONS: "ARQ_TOO_MANY_CONNECTIONS",
  /** The connection already holds `maxSubscriptions` rooms. */
  TOO_MANY_SUBSCRIPTIONS: "ARQ_TOO_MANY_SUBSCRIPTIONS",
  /** Presence `info` is larger than `maxPresenceInfoBytes`. */
  PRESENCE_INFO_TOO_LARGE: "ARQ_PRESENCE_INFO_TOO_LARGE",
  // Rooms, state, history
  /** The request needs a subscription to the room that the connection does not hold. */
  NOT_SUBSCRIBED: "ARQ_NOT_SUBSCRIBED",
  /** A `state_set` with `ifVersion` found the key at another version; nothing was written. */
  STATE_CONFLICT: "ARQ_STATE_CONFLICT",
  /** A state key is empty, too long, or uses characters outside letters, digits and `_ - . : / @`. */
  STATE_KEY_INVALID: "ARQ_STATE_KEY_INVALID",
  /** History (or state at a point in time) cannot be served: disabled for the room, or trimmed by retention. */
  HISTORY_UNAVAILABLE: "ARQ_HISTORY_UNAVAILABLE",
  /** A recovery position, history offset, state revision or timestamp is not a usable number. */
  POSITION_INVALID: "ARQ_POSITION_INVALID",
  /** A strict `op.history.replay` cannot vouch its window is complete; `detail` has the missing offsets. */
  HISTORY_GAP: "ARQ_HISTORY_GAP",
  /** Presence was asked for (`presence_list`, `presence_set`) in a room where the server keeps none. */
  PRESENCE_DISABLED: "ARQ_PRESENCE_DISABLED",
  // Server
  /** A backend the request needs (NATS, the database, a closed store) is unreachable. Retryable. */
  BACKEND_UNAVAILABLE: "ARQ_BACKEND_UNAVAILABLE",
  /** The node is draining before exit and accepts no new work. Retryable. */
  SHUTTING_DOWN: "ARQ_SHUTTING_DOWN",
  /** A fallback transport's `send` named a session that does not exist or has ended. */
  SESSION_UNKNOWN: "ARQ_SESSION_UNKNOWN",
  /** An unexpected server fault while handling the request; the connection stays up. Retryable. */
  INTERNAL: "ARQ_INTERNAL",
  // Command responses (names kept from the earlier system)
  /** Command response: the caller's capabilities do not allow this command or the room it touches. */
  AUTHORIZATION_ERROR: "AUTHORIZATION_ERROR",
  /** Command response: the command's `args` are missing, of the wrong shape, or out of range. */
  VALIDATION_ERROR: "VALIDATION_ERROR",
  /** Command response: the command, or the thing it names (a key, a room, a policy), does not exist. */
  NOT_FOUND: "NOT_FOUND",
  /** Command response: the command belongs to a feature switched off on this server. */
  FEATURE_DISABLED: "FEATURE_DISABLED",
  /** Command response: a compare-and-set (e.g. `op.store` `ifRevision`) found another revision; nothing written. */
  CONFLICT: "CONFLICT",
  /** Command response: the command failed inside the operator or the server. */
  INTERNAL_ERROR: "INTERNAL_ERROR",
  // CASIL decisions
  /** CASIL blocked the message: its payload is larger than the policy's size bound for the room. */
  CASIL_POLICY_OVERSIZE: "CASIL_POLICY_OVERSIZE",
  /** CASIL blocked the message: its payload looks like it carries a secret (API key, private key, token, ...). */
  CASIL_POLICY_BLOCKED_SECRET: "CASIL_POLICY_BLOCKED_SECRET",
  /** CASIL blocked the message: its payload matches a pattern the tenant's policy forbids. */
  CASIL_POLICY_BLOCKED_PATTERN: "CASIL_POLICY_BLOCKED_PATTERN",
  /** Not a refusal: CASIL replaced parts of the payload; reported in the delivered frame's `inspection.reasonCode`. */
  CASIL_POLICY_REDACTED: "CASIL_POLICY_REDACTED",
  /** CASIL blocked the message: its payload does not match the JSON schema the policy requires for the room. */
  CASIL_POLICY_SCHEMA: "CASIL_POLICY_SCHEMA",
  /** CASIL blocked the message: it was larger than the inspection window and the policy's default is block. */
  CASIL_POLICY_DEFAULT_BLOCK: "CASIL_POLICY_DEFAULT_BLOCK",
  /** A custom (WebAssembly) CASIL inspector denied the message. */
  CASIL_WASM_DENY: "CASIL_WASM_DENY",
  /** The CASIL inspector failed or timed out; CASIL fails closed and blocks the message. */
  CASIL_INTERNAL_ERROR: "CASIL_INTERNAL_ERROR",
} as const;

/** One of the {@link ErrorCode} values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes after which the same request may succeed if retried later. */
const RETRYABLE: ReadonlySet<string> = new Set<string>([
  ErrorCode.RATE_LIMITED,
  ErrorCode.BACKEND_UNAVAILABLE,
  ErrorCode.SHUTTING_DOWN,
  ErrorCode.INTERNAL,
  ErrorCode.PROXY_UNAVAILABLE,
]);

/**
 * Whether the same request may succeed if sent again later (with backoff): true only for `ARQ_RATE_LIMITED`,
 * `ARQ_BACKEND_UNAVAILABLE`, `ARQ_SHUTTING_DOWN`, `ARQ_INTERNAL` and `ARQ_PROXY_UNAVAILABLE`. Every other code, known or not, gives false.
 */
export function isRetryable(code: string): boolean {
  return RETRYABLE.has(code);
}

/** Base class of every error ArqonBus raises on purpose: a stable `code`, a human message, an optional cause. */
export class ArqonError extends Error {
  /** The stable error code, usually an {@link ErrorCode} value; match on this, not on the message. */
  readonly code: string;
  /** Extra machine-readable detail (the offending field, the limit, ...). */
  readonly detail?: Record<string, unknown>;

  constructor(code: string, message: string, options?: ErrorOptions & { detail?: Record<string, unknown> }) {
    super(message, options);
    this.name = "ArqonError";
    this.code = code;
    if (options?.detail) this.detail = options.detail;
  }

  /** Whether the same request may succeed if retried later; derived from `code` by {@link isRetryable}. */
  get retryable(): boolean {
    return isRetryable(this.code);
  }

  /**
   * The error as the wire's `ErrorInfo` (the `error` of an `error` or `response` frame). `detail` and `cause` are not
   * included; `retryable` is present only when true.
   */
  toInfo(): {
    /** The error's `code`. */
    code: string;
    /** The error's human-readable message. */
    message: string;
    /** `true` when the error is retryable; absent otherwise. */
    retryable?: boolean;
  } {
    return this.retryable ? { code: this.code, message: this.message, retryable: true } : { code: this.code, message: this.message };
  }
}

/**
 * A frame that could not be decoded or validated (usually an `ARQ_FRAME_*`, room, header or state key code). The
 * codecs return it in a failed `DecodeResult` rather than throwing it; `detail.field` names the offending field
 * when known.
 */
export class FrameError extends ArqonError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions & { detail?: Record<string, unknown> }) {
    super(code, message, options);
    this.name = "FrameError";
  }
}

/** An invalid room name (`ARQ_ROOM_INVALID`), thrown by {@link assertRoomName}; the message says what is wrong. */
export class RoomNameError extends ArqonError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.ROOM_INVALID, message, options);
    this.name = "RoomNameError";
  }
}

/** A payload larger than allowed (`ARQ_PAYLOAD_TOO_LARGE`); `detail.limit` is the limit in bytes. */
export class PayloadTooLargeError extends ArqonError {
  constructor(limit: number, options?: ErrorOptions) {
    super(ErrorCode.PAYLOAD_TOO_LARGE, `payload exceeds ${limit} bytes`, { ...options, detail: { limit } });
    this.name = "PayloadTooLargeError";
  }
}

/**
 * A compare-and-set state write that found the key at another version (`ARQ_STATE_CONFLICT`). Nothing was written;
 * `detail` carries `key`, the `expected` version and the `actual` one (0 when the key does not exist).
 */
export class StateConflictError extends ArqonError {
  constructor(key: string, expected: number, actual: number, options?: ErrorOptions) {
    super(ErrorCode.STATE_CONFLICT, `state key "${key}" is at version ${actual}, not ${expected}`, {
      ...options,
      detail: { key, expected, actual },
    });
    this.name = "StateConflictError";
  }
}

/** A backend (NATS, the database, a closed store) could not serve the call (`ARQ_BACKEND_UNAVAILABLE`); retryable. */
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
  /** RFC 6455 normal closure: a deliberate close by either side. Terminal. */
  NORMAL: 1000,
  /** RFC 6455 going away: the server is shutting down or restarting (graceful shutdown sends it). Reconnect. */
  GOING_AWAY: 1001,
  /** RFC 6455 protocol error. Terminal. */
  PROTOCOL_ERROR: 1002,
  /** RFC 6455 unsupported data. Terminal. */
  UNSUPPORTED_DATA: 1003,
  /** RFC 6455 abnormal closure: the connection dropped without a close frame; never sent on the wire. Reconnect. */
  ABNORMAL: 1006,
  /** RFC 6455 policy violation. Terminal. */
  POLICY_VIOLATION: 1008,
  /** RFC 6455 message too big: a frame passed `maxFrameBytes`. Reconnect, but do not resend that frame. */
  MESSAGE_TOO_BIG: 1009,
  /** RFC 6455 internal error: the server failed to set up or serve the connection. Reconnect with backoff. */
  INTERNAL_ERROR: 1011,
  /** RFC 6455 service restart. Reconnect. */
  SERVICE_RESTART: 1012,
  /** RFC 6455 try again later. Reconnect with backoff. */
  TRY_AGAIN_LATER: 1013,
  // reconnect range
  /** The client read too slowly: bytes queued for its socket passed `maxPendingBytes`. Reconnect and recover. */
  SLOW_CONSUMER: 4000,
  /** No answer to a ping within `pongTimeoutMs`; the SDK closes with it when the server stops answering. Reconnect. */
  PING_TIMEOUT: 4001,
  /** The client kept publishing while rate-limited, or flooded the server with frames. Reconnect later. */
  RATE_LIMIT_ABUSE: 4002,
  /** The node lost a backend it needs for this connection. Reconnect, possibly to another node. */
  BACKEND_UNAVAILABLE: 4003,
  /** The token expired and no `auth` refresh arrived in time. Reconnect with a fresh token. */
  TOKEN_EXPIRED: 4004,
  // terminal range
  /** The credentials were revoked or became invalid during the connection. Terminal: get new credentials. */
  AUTH_INVALID: 4500,
  /** The connection lost the right to be connected (role or capability withdrawn). Terminal. */
  FORBIDDEN: 4501,
  /** The client kept breaking the protocol (e.g. repeated unexpected frames). Terminal: fix the client. */
  PROTOCOL_VIOLATION: 4502,
  /** The operator disabled or deleted the tenant. Terminal. */
  TENANT_DISABLED: 4503,
  /** The operator or a tenant admin removed this connection (`arqon kick`). Terminal. */
  KICKED: 4504,
} as const;

/** One of the {@link CloseCode} values. */
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
