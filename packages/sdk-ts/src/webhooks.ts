/**
 * Verifying (and signing) webhook deliveries the Standard Webhooks way (https://www.standardwebhooks.com/), as
 * ArqonBus's `op.webhook` sends them:
 *
 * - `webhook-id`: a unique message id (stable across retries of one delivery: drop an id you already handled);
 * - `webhook-timestamp`: integer seconds since the epoch, refused when further than the tolerance from the clock;
 * - `webhook-signature`: space-separated `v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>` entries
 *   (two while a secret is rotated); entries of other versions are ignored.
 *
 * Uses Web Crypto (`crypto.subtle`) only, so it runs in Node >= 20 and in browsers (secure contexts) alike; this
 * module imports no Node built-in and is kept out of the main entry: `import { verifyWebhook } from "@arqon/sdk/webhooks"`.
 *
 * @module @arqon/sdk/webhooks
 */
import { ArqonError } from "@arqon/core";

/** The codes of {@link WebhookVerificationError} and {@link WebhookConfigError}; each is listed in docs/errors.md. */
export const WebhookErrorCode = {
  /** `webhook-id`, `webhook-timestamp` or `webhook-signature` is absent or empty (`detail.header` names it). */
  HEADER_MISSING: "ARQ_WEBHOOK_HEADER_MISSING",
  /** `webhook-signature` holds no well-formed `v1,<base64 of 32 bytes>` entry. */
  SIGNATURE_MALFORMED: "ARQ_WEBHOOK_SIGNATURE_MALFORMED",
  /** `webhook-timestamp` is not an integer number of seconds. */
  TIMESTAMP_INVALID: "ARQ_WEBHOOK_TIMESTAMP_INVALID",
  /** `webhook-timestamp` is more than the tolerance in the past: a replay, or a delivery held up too long. */
  TIMESTAMP_TOO_OLD: "ARQ_WEBHOOK_TIMESTAMP_TOO_OLD",
  /** `webhook-timestamp` is more than the tolerance in the future (or this machine's clock is behind). */
  TIMESTAMP_TOO_NEW: "ARQ_WEBHOOK_TIMESTAMP_TOO_NEW",
  /** No `v1` signature matches the body under any of the secrets: tampered, or signed with another secret. */
  SIGNATURE_MISMATCH: "ARQ_WEBHOOK_SIGNATURE_MISMATCH",
  /** A secret is neither `whsec_<base64>` nor key bytes, or is empty (a configuration error, not the delivery's). */
  SECRET_INVALID: "ARQ_WEBHOOK_SECRET_INVALID",
  /** `crypto.subtle` is missing: browsers expose it only in secure contexts (https, localhost). */
  CRYPTO_UNAVAILABLE: "ARQ_WEBHOOK_CRYPTO_UNAVAILABLE",
} as const;

export type WebhookErrorCode = (typeof WebhookErrorCode)[keyof typeof WebhookErrorCode];

type DeliveryCode = Exclude<WebhookErrorCode, "ARQ_WEBHOOK_SECRET_INVALID" | "ARQ_WEBHOOK_CRYPTO_UNAVAILABLE">;

/**
 * The delivery was refused: a header is missing or malformed, its timestamp is outside the tolerance, or no signature
 * matches. Nothing about it can be trusted; answer 401 (or 400) and let the sender retry.
 */
export class WebhookVerificationError extends ArqonError {
  /** Why the delivery was refused: a {@link WebhookErrorCode} other than the two configuration codes. */
  declare readonly code: DeliveryCode;

  constructor(code: DeliveryCode, message: string, options?: ErrorOptions & { detail?: Record<string, unknown> }) {
    super(code, message, options);
    this.name = "WebhookVerificationError";
  }
}

/** The receiver is misconfigured (a bad secret, no Web Crypto): no delivery can be verified until it is fixed. */
export class WebhookConfigError extends ArqonError {
  /** ARQ_WEBHOOK_SECRET_INVALID (a secret that is empty or not `whsec_<base64>`) or ARQ_WEBHOOK_CRYPTO_UNAVAILABLE. */
  declare readonly code: "ARQ_WEBHOOK_SECRET_INVALID" | "ARQ_WEBHOOK_CRYPTO_UNAVAILABLE";

  constructor(code: "ARQ_WEBHOOK_SECRET_INVALID" | "ARQ_WEBHOOK_CRYPTO_UNAVAILABLE", message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = "WebhookConfigError";
  }
}

/**
 * A signing secret: `whsec_<base64 of the key>` as `op.webhook.register` answers it, or the key bytes themselves.
 * Other strings are refused rather than guessed at (use `new TextEncoder().encode(raw)` for a raw-string key).
 */
export type WebhookSecret = string | Uint8Array;

/**
 * Request headers in any of the usual shapes, names in any case: a `Headers` instance (fetch, Deno, Bun, workers),
 * Node's `req.headers` (`IncomingHttpHeaders`, values `string | string[]`) or a plain object. A header given several
 * times is combined as HTTP does (values joined with ", ").
 */
export type WebhookHeadersInit =
  | {
      /** The value of header `name` (asked in lower case), null or undefined when absent. */
      get(name: string): string | null | undefined;
    }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

/** Options of {@link verifyWebhook}. */
export interface VerifyWebhookOptions {
  /**
   * How far, in seconds, `webhook-timestamp` may be from the clock in either direction.
   * @default 300
   */
  toleranceSec?: number;
  /**
   * The clock, in milliseconds since the epoch (tests, or a corrected clock).
   * @default Date.now
   */
  now?: () => number;
}

/** A verified delivery. */
export interface WebhookEvent<T = unknown> {
  /** `webhook-id`: the same for every retry of one delivery, so a receiver can drop repeats. */
  id: string;
  /** `webhook-timestamp`, seconds since the epoch. */
  timestamp: number;
  /** The body parsed as JSON; the body text itself when it is not JSON; `undefined` for an empty body. */
  payload: T;
}

/**
 * The three headers of a signed delivery, as {@link signWebhook} returns them (names in lower case). A type alias, not
 * an interface, so it passes as a {@link WebhookHeadersInit} and spreads into `fetch` headers.
 */
export type WebhookSignatureHeaders = {
  /** The delivery's id, as given to {@link signWebhook}. */
  "webhook-id": string;
  /** The signing time, whole seconds since the epoch, in decimal. */
  "webhook-timestamp": string;
  /** Space-separated `v1,<base64 of HMAC-SHA256>` entries, one per secret, in the order the secrets were given. */
  "webhook-signature": string;
};

const DEFAULT_TOLERANCE_SEC = 300;
const SECRET_PREFIX = "whsec_";
const DIGEST_BYTES = 32;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const encoder = new TextEncoder();

/**
 * Verifies a delivery and returns its id, timestamp and payload; rejects with a {@link WebhookVerificationError}
 * (or a {@link WebhookConfigError} for a bad secret). Pass the body exactly as received (the raw text or bytes, not
 * a re-serialized object). With several secrets (a rotation), a signature matching any of them is accepted.
 * Signatures are compared in constant time.
 */
export async function verifyWebhook<T = unknown>(
  secret: WebhookSecret | readonly WebhookSecret[],
  headers: WebhookHeadersInit,
  body: string | Uint8Array,
  options: VerifyWebhookOptions = {},
): Promise<WebhookEvent<T>> {
  const keys = secretsOf(secret).map(keyOf);
  const id = headerOf(headers, "webhook-id");
  const timestampText = headerOf(headers, "webhook-timestamp");
  const signatures = parseSignatures(headerOf(headers, "webhook-signature"));

  if (!/^[0-9]{1,15}$/.test(timestampText)) {
    throw new WebhookVerificationError(WebhookErrorCode.TIMESTAMP_INVALID, "webhook-timestamp is not an integer number of seconds", {
      detail: { header: "webhook-timestamp" },
    });
  }
  const timestamp = Number(timestampText);
  const tolerance = options.toleranceSec ?? DEFAULT_TOLERANCE_SEC;
  const now = Math.floor((options.now ?? Date.now)() / 1000);
  if (now - timestamp > tolerance) {
    throw new WebhookVerificationError(WebhookErrorCode.TIMESTAMP_TOO_OLD, `webhook-timestamp is ${now - timestamp} s old (tolerance ${tolerance} s)`, {
      detail: { timestamp, now, toleranceSec: tolerance },
    });
  }
  if (timestamp - now > tolerance) {
    throw new WebhookVerificationError(WebhookErrorCode.TIMESTAMP_TOO_NEW, `webhook-timestamp is ${timestamp - now} s ahead (tolerance ${tolerance} s)`, {
      detail: { timestamp, now, toleranceSec: tolerance },
    });
  }

  const content = signedContent(id, timestamp, body);
  for (const key of keys) {
    const expected = await hmacSha256(key, content);
    if (signatures.some((candidate) => constantTimeEqual(candidate, expected))) {
      return { id, timestamp, payload: payloadOf(body) as T };
    }
  }
  throw new WebhookVerificationError(
    WebhookErrorCode.SIGNATURE_MISMATCH,
    `no webhook-signature entry matches the body under ${keys.length === 1 ? "the secret" : `any of the ${keys.length} secrets`}`,
  );
}

/**
 * Signs a delivery: returns its `webhook-id`, `webhook-timestamp` (default: now) and `webhook-signature` headers, one
 * `v1` entry per secret in the order given (current secret first during a rotation). For tests, and for forwarding a
 * delivery to another receiver under your own secret.
 */
export async function signWebhook(
  secret: WebhookSecret | readonly WebhookSecret[],
  delivery: { id: string; timestamp?: number; body: string | Uint8Array },
): Promise<WebhookSignatureHeaders> {
  const keys = secretsOf(secret).map(keyOf);
  const timestamp = delivery.timestamp ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new RangeError(`timestamp must be whole seconds since the epoch, got ${timestamp}`);
  if (!delivery.id || /[\s]/.test(delivery.id)) throw new RangeError("id must be a non-empty string without whitespace");
  const content = signedContent(delivery.id, timestamp, delivery.body);
  const entries: string[] = [];
  for (const key of keys) entries.push(`v1,${toBase64(await hmacSha256(key, content))}`);
  return { "webhook-id": delivery.id, "webhook-timestamp": String(timestamp), "webhook-signature": entries.join(" ") };
}

function secretsOf(secret: WebhookSecret | readonly WebhookSecret[]): readonly WebhookSecret[] {
  const list = typeof secret === "string" || secret instanceof Uint8Array ? [secret] : secret;
  if (list.length === 0) throw new WebhookConfigError(WebhookErrorCode.SECRET_INVALID, "no webhook secret given");
  return list;
}

function keyOf(secret: WebhookSecret): Uint8Array {
  if (secret instanceof Uint8Array) {
    if (secret.length === 0) throw new WebhookConfigError(WebhookErrorCode.SECRET_INVALID, "the webhook secret is empty");
    return secret;
  }
  if (typeof secret !== "string" || !secret.startsWith(SECRET_PREFIX)) {
    throw new WebhookConfigError(WebhookErrorCode.SECRET_INVALID, 'a webhook secret string must be "whsec_" and base64 (or pass the key bytes)');
  }
  const key = fromBase64(secret.slice(SECRET_PREFIX.length));
  if (!key || key.length === 0) throw new WebhookConfigError(WebhookErrorCode.SECRET_INVALID, 'the webhook secret after "whsec_" is not (non-empty) base64');
  return key;
}

function headerOf(headers: WebhookHeadersInit, name: string): string {
  const values: string[] = [];
  if (typeof headers.get === "function") {
    const value = (headers as { get(name: string): string | null | undefined }).get(name);
    if (value != null) values.push(value);
  } else {
    for (const [key, value] of Object.entries(headers as Record<string, string | readonly string[] | undefined>)) {
      if (key.toLowerCase() !== name || value === undefined) continue;
      if (typeof value === "string") values.push(value);
      else values.push(...value);
    }
  }
  const combined = values.map((v) => v.trim()).filter((v) => v !== "").join(", ");
  if (combined === "") throw new WebhookVerificationError(WebhookErrorCode.HEADER_MISSING, `the ${name} header is missing`, { detail: { header: name } });
  return combined;
}

/** The 32-byte digests of the `v1` entries; entries of other versions (e.g. `v1a`) are skipped. */
function parseSignatures(header: string): Uint8Array[] {
  const digests: Uint8Array[] = [];
  // A header sent twice arrives joined with ", "; base64 holds no comma, so a trailing one is that join.
  for (const entry of header.split(/\s+/).map((e) => e.replace(/,$/, ""))) {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1") continue;
    const digest = fromBase64(entry.slice(comma + 1));
    if (digest?.length === DIGEST_BYTES) digests.push(digest);
  }
  if (digests.length === 0) {
    throw new WebhookVerificationError(WebhookErrorCode.SIGNATURE_MALFORMED, 'webhook-signature holds no "v1,<base64 HMAC-SHA256>" entry', {
      detail: { header: "webhook-signature" },
    });
  }
  return digests;
}

function signedContent(id: string, timestamp: number, body: string | Uint8Array): Uint8Array<ArrayBuffer> {
  const prefix = encoder.encode(`${id}.${timestamp}.`);
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const content = new Uint8Array(prefix.length + bytes.length);
  content.set(prefix, 0);
  content.set(bytes, prefix.length);
  return content;
}

function payloadOf(body: string | Uint8Array): unknown {
  const text = typeof body === "string" ? body : new TextDecoder().decode(body);
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function hmacSha256(key: Uint8Array, data: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) {
    throw new WebhookConfigError(WebhookErrorCode.CRYPTO_UNAVAILABLE, "crypto.subtle is unavailable (browsers expose it only in secure contexts: https or localhost)");
  }
  const cryptoKey = await subtle.importKey("raw", new Uint8Array(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", cryptoKey, data));
}

/** Equal lengths are compared without an early exit, so the time taken does not tell how many bytes matched. */
function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function fromBase64(text: string): Uint8Array | undefined {
  if (!BASE64.test(text) || text.length % 4 === 1) return undefined;
  try {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return undefined;
  }
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
