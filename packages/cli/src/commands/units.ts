import { CliError } from "../config.js";

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A whole number from `amount × unit`, or undefined when the product is not one (1.5KiB is 1536; 0.5B is not). */
function wholeProduct(amount: string, unit: number): number | undefined {
  const n = Number(amount) * unit;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A count: digits only (`100`). Throws CliError naming `flag` otherwise. */
export function parseCount(value: string, flag: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(n)) throw new CliError(`${flag}: "${value}" is not a whole number`);
  return n;
}

/** A size in bytes: `1024`, `64KiB`, `16MiB`, `1GiB` (powers of 1024) or `64KB`, `16MB`, `1GB` (powers of 1000). */
export function parseSize(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  const n = m && unit !== undefined ? wholeProduct(m[1]!, unit) : undefined;
  if (n === undefined) throw new CliError(`${flag}: "${value}" is not a size in bytes (e.g. 1024, 64KiB, 16MiB, 1GiB, 500KB)`);
  return n;
}

/** A duration in ms: `500ms`, `30s`, `5m`, `1h`, `7d` (a unit is required, except for `0`). */
export function parseDuration(value: string, flag: string): number {
  const text = value.trim();
  if (text === "0") return 0;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/i.exec(text);
  const n = m ? wholeProduct(m[1]!, DURATION_UNITS[m[2]!.toLowerCase()]!) : undefined;
  if (n === undefined) throw new CliError(`${flag}: "${value}" is not a duration (e.g. 500ms, 30s, 5m, 1h, 7d)`);
  return n;
}

/** A rate per second: `50/s` or `50`. */
export function parseRate(value: string, flag: string): number {
  const m = /^(\d+)\s*(?:\/\s*s)?$/i.exec(value.trim());
  const n = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(n)) throw new CliError(`${flag}: "${value}" is not a rate per second (e.g. 50/s or 50)`);
  return n;
}

/** A point in time as epoch ms: digits (`1735689600000`) or ISO 8601 (`2025-01-01T00:00:00Z`). */
export function parseTime(value: string, flag: string): number {
  const text = value.trim();
  const ms = /^\d+$/.test(text) ? Number(text) : /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
  if (!Number.isSafeInteger(ms)) throw new CliError(`${flag}: "${value}" is not a time (ISO 8601 such as 2025-01-01T12:00:00Z, or epoch ms)`);
  return ms;
}

/** `n` bytes in the largest binary unit that divides it exactly (65536 → "64KiB"). */
export function formatSize(n: number): string {
  for (const [unit, size] of [["TiB", 1024 ** 4], ["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (n >= size && n % size === 0) return `${n / size}${unit}`;
  }
  return `${n}B`;
}

/** `ms` in the largest unit that divides it exactly (3600000 → "1h"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
