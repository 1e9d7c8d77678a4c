import { ArqonError } from "@arqon/core";

/**
 * Codes the client raises on its own (no server involved). Server codes (ARQ_*, command codes) are in
 * docs/errors.md; these are listed in docs/sdk-ts.md.
 */
export const ClientErrorCode = {
  /** The connection dropped while the request was in flight; whether the server acted on it is unknown. */
  CONNECTION_CLOSED: "ARQ_CONNECTION_CLOSED",
  /** No reply arrived within `requestTimeoutMs`. */
  REQUEST_TIMEOUT: "ARQ_REQUEST_TIMEOUT",
  /** The client was closed (by `close()`, a terminal close code, or exhausted reconnect attempts). */
  CLIENT_CLOSED: "ARQ_CLIENT_CLOSED",
  /** A codec was requested (or a binary frame arrived) without `@arqon/sdk/protobuf` being imported. */
  CODEC_UNAVAILABLE: "ARQ_CODEC_UNAVAILABLE",
  /** No WebSocket implementation: no `WebSocket` option and none found in the environment. Pass `options.WebSocket`. */
  WEBSOCKET_UNAVAILABLE: "ARQ_WEBSOCKET_UNAVAILABLE",
  /** A delta message arrived but its base (the previous payload) is unknown or the delta does not apply. */
  DELTA_INVALID: "ARQ_DELTA_INVALID",
} as const;

export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/**
 * A request failed: the server answered with an `error` frame (or a command `response` with status "error"), or
 * the client could not get an answer. `code` is the server's code (docs/errors.md) or a ClientErrorCode.
 */
export class ArqonRequestError extends ArqonError {
  /** The request id the failure answered, when there was one. */
  readonly requestId?: string;
  /** The server said the same request may succeed later (or the client knows it may, e.g. after a disconnect). */
  readonly serverRetryable: boolean | undefined;

  constructor(code: string, message: string, options?: ErrorOptions & { requestId?: string; retryable?: boolean; detail?: Record<string, unknown> }) {
    super(code, message, options);
    this.name = "ArqonRequestError";
    if (options?.requestId !== undefined) this.requestId = options.requestId;
    this.serverRetryable = options?.retryable;
  }

  /** `serverRetryable` when known, else `isRetryable(code)` (true only for a few codes, e.g. ARQ_RATE_LIMITED). */
  override get retryable(): boolean {
    return this.serverRetryable ?? super.retryable;
  }
}
