import { RE2JS } from "re2js";
import { utf8Decode } from "../codec/bytes.js";

/**
 * Probable-secret detection over a text (the first `maxInspectBytes` of a payload, a header value, a room name, a
 * state key). "Probable" because a pattern cannot know; the detectors aim at tokens with recognisable shapes
 * (provider prefixes, PEM armour, JWT structure, credentials in URLs), fields whose name says they hold a secret
 * (string values and arrays of strings), card numbers with a valid Luhn checksum, and the same inside long base64 /
 * base64url tokens, which are decoded (bounded, see MAX_ENCODED_TOKENS) and scanned when they decode to text.
 *
 * Cost: linear in the text. Token and field shapes run on RE2JS (linear-time); the only V8 regexes are a
 * quantifier-free name hint and a single-class run scanner, both O(text × pattern length); cards are a hand-written
 * single pass.
 */

/**
 * What a probable secret looks like: a provider's token shape (AWS access key ids, GitHub, GitLab, Slack, Stripe,
 * Google, npm, SendGrid, AI-provider and other service tokens), a JWT, PEM private-key armour, credentials in a URL, a
 * value next to a field name that announces a secret (`aws_secret_key`, `password_field`), or a Luhn-valid card number.
 */
export type SecretKind =
  | "aws_access_key"
  | "aws_secret_key"
  | "github_token"
  | "gitlab_token"
  | "slack_token"
  | "stripe_key"
  | "google_api_key"
  | "npm_token"
  | "sendgrid_key"
  | "ai_api_key"
  | "service_token"
  | "jwt"
  | "private_key"
  | "url_credentials"
  | "password_field"
  | "card_number";

/** One probable secret found in a text. */
export interface SecretHit {
  /** What was found. */
  kind: SecretKind;
  /** Where the match starts in the scanned text (UTF-16 code units). */
  index: number;
  /** Length of the match in UTF-16 code units (for a field-name match, name and value together). */
  length: number;
  /** The secret was found inside a base64 / base64url token; index and length are the token's. */
  encoded?: true;
}

// Token shapes, case-sensitive, one capture group per kind in TOKEN_KINDS order.
const TOKEN_KINDS: SecretKind[] = [
  "aws_access_key",
  "github_token",
  "gitlab_token",
  "slack_token",
  "stripe_key",
  "google_api_key",
  "npm_token",
  "sendgrid_key",
  "ai_api_key",
  "service_token",
  "jwt",
  "private_key",
  "url_credentials",
];
const TOKEN_RE = RE2JS.compile(
  [
    String.raw`\b((?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16})\b`,
    String.raw`\b(gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})`,
    String.raw`\b(glpat-[A-Za-z0-9_-]{20,})`,
    String.raw`\b(xox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,})`,
    String.raw`\b([sr]k_live_[0-9A-Za-z]{20,})`,
    String.raw`\b(AIza[0-9A-Za-z_-]{35})`,
    String.raw`\b(npm_[A-Za-z0-9]{36})\b`,
    String.raw`\b(SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})`,
    String.raw`\b(sk-ant-[a-z0-9]{2,10}-[A-Za-z0-9_-]{40,}|sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|sk-[A-Za-z0-9]{48})`,
    // Shopify access tokens and shared secrets, Linear API keys.
    String.raw`\b(shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}|lin_api_[A-Za-z0-9]{40})\b`,
    String.raw`\b(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})`,
    String.raw`(-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----)`,
    // scheme://user:password@host — a credential in a URL (the password part must be non-empty).
    String.raw`\b([A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s/:@"'<>]{1,128}:[^\s/@"'<>]{1,256}@[A-Za-z0-9.-]+)`,
  ].join("|"),
);

// Field names that announce a secret (JSON `"password": "..."` or `["..."]`, form/query `password=...`).
const FIELD_NAMES = "password|passwd|pwd|passphrase|secret|client_secret|api_?key|apikey|access_?token|auth_?token|refresh_?token|private_?key";
/**
 * Quantifier-free literal hint (V8, linear): every token shape above starts with or contains one of these, so the
 * RE2 scan runs only on texts that could hold a token (most messages hold none).
 */
const TOKEN_HINT = /AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|gh[pousr]_|github_pat_|glpat-|xox[abposr]-|hooks\.slack\.com|[sr]k_live_|AIza|npm_|SG\.|sk-|shp|lin_api_|eyJ|-----BEGIN|:\/\//;
/** Quantifier-free hint (V8, linear): the field detectors run only when a name could be present. */
const FIELD_HINT = /pass|pwd|secret|api_?key|apikey|access_?token|auth_?token|refresh_?token|private_?key/i;
// A cheap V8 prefilter (linear: each step has one way to match) that skips the card scan on ordinary text.
/** Thirteen digits with at most one space or dash between two: no card number without it. */
const CARD_HINT = /\d(?:[ -]?\d){12}/;
const FIELD_RE = RE2JS.compile(
  [
    `"(?:${FIELD_NAMES})"\\s*:\\s*"((?:[^"\\\\]|\\\\.)*)"`,
    `"(?:${FIELD_NAMES})"\\s*:\\s*\\[((?:\\s*"(?:[^"\\\\]|\\\\.)*"\\s*,?)+)`,
    `\\b(?:${FIELD_NAMES})=([^&\\s"]+)`,
    String.raw`(aws_?secret_?access_?key"?\s*[:=]\s*"?[A-Za-z0-9/+=]{40})`,
  ].join("|"),
  RE2JS.CASE_INSENSITIVE,
);
const REDACTED_VALUE = "[REDACTED]";

/** Field names whose value the redactor masks in JSON trees when secrets are redacted rather than blocked. */
export const SECRET_FIELD_RE = new RegExp(`^(?:${FIELD_NAMES}|aws_?secret_?access_?key)$`, "i");

/** Whether a header or field name says its value is a secret (`x-api-key` and `api_key` alike). */
export function isSecretFieldName(name: string): boolean {
  if (name.length > 64) return false;
  const normal = name.toLowerCase().replace(/-/g, "_");
  return SECRET_FIELD_RE.test(normal) || SECRET_FIELD_RE.test(normal.replace(/^x_/, ""));
}

/** Shortest base64 / base64url run that is decoded and scanned. */
const MIN_ENCODED_RUN = 20;
/** At most this many base64 tokens of one text are decoded and scanned. */
export const MAX_ENCODED_TOKENS = 32;
/** Of each token, at most this many characters (3 KiB decoded) are decoded and scanned. */
export const MAX_ENCODED_CHARS = 4096;

/** The Luhn checksum over the digits of `text` (separators ignored); true when valid. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isWord = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
/** Characters that may not precede a card number (a word character, `.`, `+`, `-`). */
const blocksCardStart = (c: number): boolean => isWord(c) || c === 46 || c === 43 || c === 45;

function issuerPrefix(d: string): boolean {
  const two = Number(d.slice(0, 2));
  if (d[0] === "4") return true;
  if (two >= 51 && two <= 55) return true;
  if (two >= 22 && two <= 27) return true;
  if (two === 34 || two === 37) return true;
  return d.startsWith("6011") || d.startsWith("65");
}

/**
 * Card numbers: 13-19 digits with single spaces or dashes between digits, a known issuer prefix, not preceded by a
 * word character, `.`, `+` or `-`, not followed by a word character, with a valid Luhn checksum. One pass: after a
 * candidate the scan resumes at its end.
 */
function findCards(text: string, hits: SecretHit[], all: boolean): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (!isDigit(c) || (i > 0 && blocksCardStart(text.charCodeAt(i - 1)))) {
      i++;
      continue;
    }
    // Collect up to 19 digits, remembering where each digit ends.
    let digits = "";
    const ends: number[] = [];
    let j = i;
    while (j < n && digits.length < 19) {
      const d = text.charCodeAt(j);
      if (isDigit(d)) {
        digits += text[j];
        ends.push(j + 1);
        j++;
        continue;
      }
      if ((d === 32 || d === 45) && j + 1 < n && isDigit(text.charCodeAt(j + 1)) && digits.length > 0) {
        j++;
        continue;
      }
      break;
    }
    if (digits.length >= 13 && issuerPrefix(digits)) {
      // The longest length whose next character is not a word character (as a greedy regex with a lookahead);
      // after it, Luhn-valid or not, the scan resumes at its end.
      let next = ends[ends.length - 1]!;
      for (let len = digits.length; len >= 13; len--) {
        const end = ends[len - 1]!;
        if (end < n && isWord(text.charCodeAt(end))) continue;
        if (luhnValid(digits.slice(0, len))) {
          hits.push({ kind: "card_number", index: i, length: end - i });
          if (!all) return;
        }
        next = end;
        break;
      }
      i = next;
      continue;
    }
    // Not a candidate: skip the rest of this run of digits (no card starts after a digit).
    i = ends[ends.length - 1]!;
  }
}

function fieldValueHit(value: string): boolean {
  return value.length > 0 && value !== REDACTED_VALUE;
}

/** Whether the string elements of a matched array run hold a real value (non-empty, not "[REDACTED]"). */
function arrayHasValue(run: string): boolean {
  let i = 0;
  while (i < run.length) {
    const open = run.indexOf('"', i);
    if (open < 0) return false;
    let j = open + 1;
    let value = "";
    while (j < run.length && run[j] !== '"') {
      if (run[j] === "\\") {
        value += run.slice(j, j + 2);
        j += 2;
      } else value += run[j++];
    }
    if (fieldValueHit(value)) return true;
    i = j + 1;
  }
  return false;
}

const B64_VALUES = new Int16Array(128).fill(-1);
for (const [i, ch] of [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"].entries()) B64_VALUES[ch.charCodeAt(0)] = i;
B64_VALUES[43] = B64_VALUES[45] = 62; // + -
B64_VALUES[47] = B64_VALUES[95] = 63; // / _

/** Decodes base64 or base64url (either alphabet, padding ignored); stops at the first character of neither. */
function decodeBase64Loose(token: string): Uint8Array {
  const out = new Uint8Array(Math.floor((token.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const v = c < 128 ? B64_VALUES[c]! : -1;
    if (v < 0) break;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, o);
}

/** Mostly printable ASCII (at least 90%): text worth scanning, as opposed to images and other binary data. */
function looksLikeText(bytes: Uint8Array): boolean {
  let printable = 0;
  for (const b of bytes) if ((b >= 0x20 && b <= 0x7e) || b === 9 || b === 10 || b === 13) printable++;
  return printable >= bytes.length * 0.9;
}

const isB64 = (c: number): boolean => c < 128 && B64_VALUES[c]! >= 0;

function findEncoded(text: string, hits: SecretHit[], all: boolean): void {
  // Runs of at least MIN_ENCODED_RUN base64 / base64url characters, found by probing the last character of each
  // candidate window and scanning back to the last separator: ordinary text is read about one character in three.
  const n = text.length;
  const last = MIN_ENCODED_RUN - 1;
  let tokens = 0;
  let start = 0;
  while (start + last < n && tokens < MAX_ENCODED_TOKENS) {
    let k = start + last;
    if (!isB64(text.charCodeAt(k))) {
      start = k + 1;
      continue;
    }
    while (k > start && isB64(text.charCodeAt(k - 1))) k--;
    if (k > start) {
      // A separator at k - 1 inside the window: the next candidate starts after it.
      start = k;
      continue;
    }
    let j = start + MIN_ENCODED_RUN;
    while (j < n && isB64(text.charCodeAt(j))) j++;
    const runStart = start;
    start = j;
    tokens++;
    const bytes = decodeBase64Loose(text.slice(runStart, Math.min(j, runStart + MAX_ENCODED_CHARS)));
    if (bytes.length < 12 || !looksLikeText(bytes)) continue;
    const inner: SecretHit[] = [];
    scan(utf8Decode(bytes), inner, false, false);
    if (inner.length > 0) {
      let end = j;
      while (end < n && end < j + 2 && text.charCodeAt(end) === 61) end++; // "=" padding
      hits.push({ kind: inner[0]!.kind, index: runStart, length: end - runStart, encoded: true });
      if (!all) return;
    }
  }
}

function scan(text: string, hits: SecretHit[], all: boolean, decode: boolean): void {
  if (TOKEN_HINT.test(text) && TOKEN_RE.test(text)) {
    for (const m of TOKEN_RE.matchAll(text)) {
      let g = 1;
      while (m[g] === undefined) g++;
      hits.push({ kind: TOKEN_KINDS[g - 1]!, index: m.index ?? 0, length: m[0].length });
      if (!all) return;
    }
  }
  if (FIELD_HINT.test(text) && FIELD_RE.test(text)) {
    for (const m of FIELD_RE.matchAll(text)) {
      const aws = m[4] !== undefined;
      const real = aws || (m[1] !== undefined ? fieldValueHit(m[1]) : m[2] !== undefined ? arrayHasValue(m[2]) : m[3] !== undefined);
      if (!real) continue;
      hits.push({ kind: aws ? "aws_secret_key" : "password_field", index: m.index ?? 0, length: m[0].length });
      if (!all) return;
    }
  }
  if (CARD_HINT.test(text)) findCards(text, hits, all);
  if (!all && hits.length > 0) return;
  if (decode) findEncoded(text, hits, all);
}

/**
 * Finds probable secrets in `text`. With `all` false it stops at the first hit (the blocking hot path); with `all`
 * true it returns every hit (for masking). Linear in `text`; base64 tokens are decoded at most MAX_ENCODED_TOKENS
 * times, MAX_ENCODED_CHARS each, one level deep.
 */
export function findSecrets(text: string, all = false): SecretHit[] {
  const hits: SecretHit[] = [];
  scan(text, hits, all, true);
  return hits;
}

/** Replaces every probable secret in a plain string with `mask` (a base64 token holding one is masked whole). */
export function maskSecretsInText(text: string, mask: string): string {
  const hits = findSecrets(text, true);
  if (hits.length === 0) return text;
  hits.sort((a, b) => a.index - b.index);
  let out = "";
  let at = 0;
  for (const h of hits) {
    if (h.index < at) continue;
    out += text.slice(at, h.index) + mask;
    at = h.index + h.length;
  }
  return out + text.slice(at);
}
