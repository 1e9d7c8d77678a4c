import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

/** The local development signing key: an HS256 secret kept in `<dataDir>/dev-key.json`. */
export interface DevKey {
  alg: "HS256";
  /** Used as its UTF-8 bytes, like `--jwt-secret`. */
  secret: string;
  createdAt: string;
}

export const DEV_KEY_FILE = "dev-key.json";

/** Reads the dev key under `dataDir`, creating it (mode 0600, directory 0700) on first use. */
export function loadOrCreateDevKey(dataDir: string): { key: DevKey; file: string; created: boolean } {
  const file = path.join(dataDir, DEV_KEY_FILE);
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<DevKey>;
    if (parsed.alg !== "HS256" || typeof parsed.secret !== "string" || parsed.secret.length < 32) {
      throw new Error(`${file} is not a valid dev key (delete it to create a new one)`);
    }
    return { key: parsed as DevKey, file, created: false };
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key: DevKey = { alg: "HS256", secret: randomBytes(32).toString("base64url"), createdAt: new Date().toISOString() };
  writeFileSync(file, `${JSON.stringify(key, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(file, 0o600);
  return { key, file, created: true };
}

export const DEV_OPERATOR_KEY_FILE = "operator-key";

/**
 * The local development operator key in `<dataDir>/operator-key` (mode 0600), created on first use: dev mode's
 * credential for the server API, /status and /metrics. The CLI's operator commands read it when ARQON_OPERATOR_KEY
 * is not set.
 */
export function loadOrCreateDevOperatorKey(dataDir: string): { key: string; file: string; created: boolean } {
  const file = path.join(dataDir, DEV_OPERATOR_KEY_FILE);
  if (existsSync(file)) {
    const key = readFileSync(file, "utf8").trim();
    if (key.length < 24) throw new Error(`${file} is not a valid operator key (delete it to create a new one)`);
    return { key, file, created: false };
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = `arqon-op-${randomBytes(24).toString("base64url")}`;
  writeFileSync(file, `${key}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(file, 0o600);
  return { key, file, created: true };
}

/** The dev operator key under `dataDir`, if one was created (the CLI's fallback for ARQON_OPERATOR_KEY). */
export function readDevOperatorKey(dataDir: string): string | undefined {
  const file = path.join(dataDir, DEV_OPERATOR_KEY_FILE);
  return existsSync(file) ? readFileSync(file, "utf8").trim() || undefined : undefined;
}
