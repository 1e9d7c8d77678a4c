import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type TestClient, type TestGateway } from "../src/testing.js";
import type { Json } from "./api-client.js";

// docs/gateway.md's "Server API by example": each ```sh block runs as written (bash -c, real curl) against a real
// gateway, and what it prints must match the ```json block after it, where "…" stands for any value.

const DOC = new URL("../../../docs/gateway.md", import.meta.url);
const SECTION = "## Server API by example";
const ANY = "…";
const KEY = "operator-key-of-the-docs-curl-test-01234";
const run = promisify(execFile);

/** The section's ```sh blocks, each with the ```json block that follows it. */
function examples(): Array<{ sh: string; json: string }> {
  const text = readFileSync(DOC, "utf8");
  const at = text.indexOf(SECTION);
  if (at < 0) throw new Error(`docs/gateway.md has no "${SECTION}" section`);
  const end = text.indexOf("\n## ", at + SECTION.length);
  const section = text.slice(at, end < 0 ? undefined : end);
  const blocks = [...section.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, body: m[2]! }));
  const out: Array<{ sh: string; json: string }> = [];
  for (let i = 0; i < blocks.length; i++) {
    if (blocks[i]!.lang !== "sh") continue;
    const next = blocks[i + 1];
    if (next?.lang !== "json") throw new Error(`the sh block ${blocks[i]!.body.trim().slice(0, 80)} has no json block after it`);
    out.push({ sh: blocks[i]!.body, json: next.body });
  }
  return out;
}

/** Where `actual` differs from `expected` (objects: the same keys; "…" matches anything), or undefined. */
function mismatch(expected: unknown, actual: unknown, at = "$"): string | undefined {
  if (expected === ANY) return actual === undefined ? `${at} is missing` : undefined;
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return `${at}: expected ${expected.length} items, got ${JSON.stringify(actual)}`;
    for (let i = 0; i < expected.length; i++) {
      const m = mismatch(expected[i], actual[i], `${at}[${i}]`);
      if (m) return m;
    }
    return undefined;
  }
  if (typeof expected === "object" && expected !== null) {
    if (typeof actual !== "object" || actual === null || Array.isArray(actual)) return `${at}: expected an object, got ${JSON.stringify(actual)}`;
    const keys = Object.keys(expected).sort();
    const got = Object.keys(actual).sort();
    if (keys.join() !== got.join()) return `${at}: expected keys ${keys.join(", ")}, got ${got.join(", ")}`;
    for (const k of keys) {
      const m = mismatch((expected as Record<string, unknown>)[k], (actual as Record<string, unknown>)[k], `${at}.${k}`);
      if (m) return m;
    }
    return undefined;
  }
  return Object.is(expected, actual) ? undefined : `${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
}

describe("docs - the server API curl examples of docs/gateway.md", () => {
  let gw: TestGateway;
  let alice: TestClient;
  beforeAll(async () => {
    const which = await run("bash", ["-c", "command -v curl"]).catch(() => undefined);
    if (!which) throw new Error("curl is not installed (CI installs it: .ci/run)");
    gw = await startGateway({ operatorKeys: [KEY] });
    alice = await gw.client({ sub: "alice" });
    expect((await alice.subscribe("lobby")).type).toBe("subscribed");
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("docs - the section has the examples it promises", () => {
    const all = examples();
    expect(all.length).toBeGreaterThanOrEqual(9);
    const text = all.map((e) => e.sh).join("\n");
    for (const path of ["/api/v1/tenants\"", "/publish", "/broadcast", "/history", "/presence", "/state/", "/rooms?", "/disconnect", "/api/v1/openapi.json"]) expect(text).toContain(path);
    for (const e of all) {
      expect(e.sh).toMatch(/^curl -sS /);
      expect(e.sh).toContain("$ARQON_URL");
    }
  });

  it("docs - each example runs as written and prints the answer shown after it", async () => {
    const env = { ...process.env, ARQON_URL: gw.httpUrl, ARQON_OPERATOR_KEY: KEY };
    for (const { sh, json } of examples()) {
      const { stdout, stderr } = await run("bash", ["-c", sh], { env, timeout: 15_000 });
      expect(stderr, sh).toBe("");
      let got: Json;
      try {
        got = JSON.parse(stdout);
      } catch {
        throw new Error(`not JSON from:\n${sh}\n${stdout}`);
      }
      const problem = mismatch(JSON.parse(json), got);
      expect(problem, `${sh}\nprinted ${stdout.slice(0, 400)}`).toBeUndefined();
    }
    // The disconnect example closed alice's socket, as it says.
    expect((await alice.closed).code).toBe(4504);
  });
});
