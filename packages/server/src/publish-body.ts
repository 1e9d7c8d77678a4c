import { ArqonError, ErrorCode, fromBase64, jsonBytes, type PayloadFormat } from "@arqon/core";

/** The message fields of an HTTP publish body, checked and ready for `serverPublish`. */
export interface PublishFields {
  /** The payload bytes: the JSON text of `payload`, or the bytes of its base64 with `payloadFormat: "binary"`. */
  payload: Uint8Array;
  /** "binary" when the payload is raw bytes; undefined for JSON. */
  payloadFormat?: "binary";
  headers?: Record<string, string>;
  idempotencyKey?: string;
}

const HEADER_NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;
const MAX_HEADER_VALUE = 4096;

/**
 * Reads `payload`, `payloadFormat`, `headers` and `idempotencyKey` of a JSON publish body (POST /api/publish and the
 * server API's publish and broadcast), the same way for all of them. Refuses with ARQ_FRAME_MISSING_FIELD (no
 * payload), ARQ_FRAME_WRONG_TYPE (a payloadFormat other than "json" or "binary", a binary payload that is not base64,
 * a non-string idempotencyKey) or ARQ_HEADER_INVALID (headers not an object of lower-case names and strings of at
 * most 4096 characters). The room, and what the publish path checks (size, CASIL, reserved headers), are left to the
 * caller.
 */
export function publishFields(input: Record<string, unknown>): PublishFields {
  if (!("payload" in input)) throw new ArqonError(ErrorCode.FRAME_MISSING_FIELD, 'body needs "payload"');
  const format = input.payloadFormat as PayloadFormat | undefined;
  const out: PublishFields = { payload: new Uint8Array() };
  if (format === "binary") {
    const bytes = typeof input.payload === "string" ? fromBase64(input.payload) : undefined;
    if (!bytes) throw new ArqonError(ErrorCode.FRAME_WRONG_TYPE, "binary payload must be base64");
    out.payload = bytes;
    out.payloadFormat = "binary";
  } else if (format === undefined || format === "json") {
    out.payload = jsonBytes(input.payload);
  } else {
    throw new ArqonError(ErrorCode.FRAME_WRONG_TYPE, 'payloadFormat must be "json" or "binary"');
  }
  if (input.headers !== undefined) {
    if (typeof input.headers !== "object" || input.headers === null || Array.isArray(input.headers)) {
      throw new ArqonError(ErrorCode.HEADER_INVALID, "headers must be an object of strings");
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(input.headers)) {
      if (typeof v !== "string" || !HEADER_NAME.test(k) || v.length > MAX_HEADER_VALUE) {
        throw new ArqonError(ErrorCode.HEADER_INVALID, `header "${k.slice(0, 64)}" is invalid`);
      }
      headers[k] = v;
    }
    out.headers = headers;
  }
  if (input.idempotencyKey !== undefined) {
    if (typeof input.idempotencyKey !== "string") throw new ArqonError(ErrorCode.FRAME_WRONG_TYPE, "idempotencyKey must be a string");
    out.idempotencyKey = input.idempotencyKey;
  }
  return out;
}
