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
