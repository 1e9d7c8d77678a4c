import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CloseCode, ErrorCode, shouldReconnect } from "../src/errors.js";

const doc = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");

function occurrences(code: string): number {
  return doc.match(new RegExp(`(?<![A-Za-z0-9_])${code}(?![A-Za-z0-9_])`, "g"))?.length ?? 0;
}

describe("docs/errors.md", () => {
  it("errors doc - lists every ErrorCode exactly once", () => {
    const missing = Object.values(ErrorCode).filter((code) => occurrences(code) !== 1);
    expect(missing.map((code) => `${code}: ${occurrences(code)}`)).toEqual([]);
  });

  it("errors doc - lists every close code in exactly one table row, in the section its range belongs to", () => {
    const reconnectAt = doc.indexOf("**Reconnect range");
    const terminalAt = doc.indexOf("**Terminal range");
    const rfcAt = doc.indexOf("**WebSocket codes");
    expect(reconnectAt).toBeGreaterThan(0);
    expect(terminalAt).toBeGreaterThan(reconnectAt);
    expect(rfcAt).toBeGreaterThan(terminalAt);
    for (const code of Object.values(CloseCode)) {
      const rows = doc.match(new RegExp(`^\\| ${code} \\|`, "gm")) ?? [];
      expect(rows, `close code ${code}`).toHaveLength(1);
      const at = doc.search(new RegExp(`^\\| ${code} \\|`, "m"));
      if (code >= 4000 && code <= 4499) expect(at > reconnectAt && at < terminalAt, `${code} in reconnect range`).toBe(true);
      else if (code >= 4500) expect(at > terminalAt && at < rfcAt, `${code} in terminal range`).toBe(true);
      else {
        expect(at, `${code} among WebSocket codes`).toBeGreaterThan(rfcAt);
        const row = doc.slice(at, doc.indexOf("\n", at));
        expect(row.split("|")[3]!.trim().startsWith(shouldReconnect(code) ? "yes" : "no"), row).toBe(true);
      }
    }
  });
});
