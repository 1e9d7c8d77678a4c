/**
 * Probable-secret detection: precompiled regexes over the payload text (first `maxInspectBytes` only), a Luhn check
 * for card numbers. "Probable" because a regex cannot know; the detectors aim at tokens with recognisable shapes
 * (provider prefixes, PEM armour, JWT structure) and fields whose name says they hold a secret.
 */

export type SecretKind =
  | "aws_access_key"
  | "aws_secret_key"
  | "github_token"
  | "slack_token"
  | "stripe_key"
  | "google_api_key"
  | "jwt"
  | "private_key"
  | "password_field"
  | "card_number";

export interface SecretHit {
  kind: SecretKind;
  index: number;
  length: number;
}

// Token shapes, case-sensitive. Group order must match TOKEN_KINDS.
const TOKEN_KINDS: SecretKind[] = ["aws_access_key", "github_token", "slack_token", "stripe_key", "google_api_key", "jwt", "private_key", "card_number"];
const TOKEN_RE = new RegExp(
  [
    /\b((?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16})\b/.source,
    /\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})/.source,
    /\b(xox[abposr]-[A-Za-z0-9-]{10,}|https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9/]{20,})/.source,
    /\b((?:sk|rk)_live_[0-9A-Za-z]{20,})/.source,
    /\b(AIza[0-9A-Za-z_-]{35})/.source,
    /\b(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})/.source,
    /(-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----)/.source,
    /(?<![\w.+-])((?:4\d{3}|5[1-5]\d{2}|2[2-7]\d{2}|3[47]\d{2}|6(?:011|5\d{2}))(?:[ -]?\d){9,15})(?![\w])/.source,
  ].join("|"),
  "g",
);

// Field names that announce a secret (JSON `"password": "..."`, form/query `password=...`), case-insensitive.
const FIELD_NAMES = "password|passwd|pwd|passphrase|secret|client_secret|api_?key|apikey|access_?token|auth_?token|refresh_?token|private_?key";
const FIELD_RE = new RegExp(
  [
    `"(?:${FIELD_NAMES})"\\s*:\\s*"(?!\\[REDACTED\\]")(?:[^"\\\\]|\\\\.)+"`,
    `\\b(?:${FIELD_NAMES})=[^&\\s"]+`,
    /aws_?secret_?access_?key"?\s*[:=]\s*"?[A-Za-z0-9/+=]{40}/.source,
  ].join("|"),
  "gi",
);

/** Field names whose value the redactor masks in JSON trees when secrets are redacted rather than blocked. */
export const SECRET_FIELD_RE = new RegExp(`^(?:${FIELD_NAMES}|aws_?secret_?access_?key)$`, "i");

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

function cardOk(match: string): boolean {
  const digits = match.replace(/[ -]/g, "");
  return digits.length >= 13 && digits.length <= 19 && luhnValid(digits);
}

/**
 * Finds probable secrets in `text`. With `all` false it stops at the first hit (the blocking hot path); with `all`
 * true it returns every hit (for masking).
 */
export function findSecrets(text: string, all = false): SecretHit[] {
  const hits: SecretHit[] = [];
  TOKEN_RE.lastIndex = 0;
  for (let m = TOKEN_RE.exec(text); m; m = TOKEN_RE.exec(text)) {
    let g = 1;
    while (m[g] === undefined) g++;
    const kind = TOKEN_KINDS[g - 1]!;
    if (kind === "card_number" && !cardOk(m[g]!)) continue;
    hits.push({ kind, index: m.index, length: m[0].length });
    if (!all) return hits;
  }
  FIELD_RE.lastIndex = 0;
  for (let m = FIELD_RE.exec(text); m; m = FIELD_RE.exec(text)) {
    const kind: SecretKind = /^"?aws/i.test(m[0]) ? "aws_secret_key" : "password_field";
    hits.push({ kind, index: m.index, length: m[0].length });
    if (!all) return hits;
  }
  return hits;
}

/** Replaces every probable secret in a plain string with `mask` (value detectors only; field names need a tree). */
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
