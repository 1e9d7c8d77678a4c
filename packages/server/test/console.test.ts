import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "@arqon/core";
import { CONSOLE_CSP, CONSOLE_READ_CAPS } from "../src/index.js";
import { startGateway, type TestGateway } from "../src/testing.js";
import { callApi, codeOf } from "./api-client.js";

const KEY = "operator-key-of-the-console-tests-0123";
const here = path.dirname(fileURLToPath(import.meta.url));
let dir: string;
let gw: TestGateway | undefined;

beforeAll(() => {
  // The real build script, into a directory of this test's own (the package's dist/console is left alone).
  dir = mkdtempSync(path.join(tmpdir(), "arqon-console-"));
  execFileSync(process.execPath, [path.join(here, "..", "scripts", "build-console.mjs"), dir], { stdio: "pipe", timeout: 60_000 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

async function get(target: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${gw!.httpUrl}${target}`, init);
}

/** A GET with the request target sent exactly as written (fetch would resolve `..` before sending). */
function rawGet(target: string): Promise<{ status: number; csp?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: gw!.port, path: target, method: "GET", timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, csp: res.headers["content-security-policy"] as string | undefined, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

describe("console - serving the static build", () => {
  it("console - off by default: /console is 404 and nothing of the build is served", async () => {
    gw = await startGateway({ operatorKeys: [KEY] });
    const res = await get("/console");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-security-policy")).toBeNull();
  });

  it("console - the page, its script and stylesheet with content types, cache headers and a strict CSP", async () => {
    gw = await startGateway({ operatorKeys: [KEY], console: { dir }, path: "/bus" });
    for (const target of ["/console", "/console/"]) {
      const res = await get(target);
      expect(res.status, target).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(res.headers.get("cache-control")).toBe("no-cache");
      expect(res.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      const page = await res.text();
      // The WebSocket path is filled in; the page carries no inline script.
      expect(page).toContain('<meta name="arqon-ws-path" content="/bus" />');
      expect(page).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(page).not.toMatch(/\sstyle=/);
    }
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).not.toContain("unsafe-inline");
    const files = readdirSync(dir);
    const js = files.find((f) => f.endsWith(".js"))!;
    const css = files.find((f) => f.endsWith(".css"))!;
    const script = await get(`/console/${js}`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(script.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect((await script.text()).length).toBeGreaterThan(1000);
    const style = await get(`/console/${css}`);
    expect(style.headers.get("content-type")).toBe("text/css; charset=utf-8");
    const head = await get(`/console/${js}`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("console - unknown names, traversal attempts and other methods are refused, and the gateway stays up", async () => {
    gw = await startGateway({ operatorKeys: [KEY], console: { dir } });
    for (const target of ["/console/nope.js", "/console/../package.json", "/console/..%2F..%2Fpackage.json", "/console/%2e%2e/index.html", "/console/sub/index.html", "/console//etc/passwd", "/console/index.html%00.js"]) {
      const res = await rawGet(target);
      expect(res.status, target).toBe(404);
      // Answered by the console handler itself (its CSP is on the answer), never from the file system.
      expect(res.csp, target).toBe(CONSOLE_CSP);
      expect((JSON.parse(res.body) as { error: { code: string } }).error.code).toBe(ErrorCode.NOT_FOUND);
    }
    const post = await get("/console/", { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect((await get("/health")).status).toBe(200);
  });

  it("console - a missing build answers 404 with a message instead of failing", async () => {
    gw = await startGateway({ operatorKeys: [KEY], console: { dir: path.join(dir, "absent") } });
    const res = await get("/console");
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/console build is missing/);
  });
});

describe("console - POST /api/v1/tenants/:t/console-token", () => {
  it("console-token - the operator and the tenant's admin get a short-lived token; others are refused", async () => {
    gw = await startGateway({ operatorKeys: [KEY] });
    const url = gw.httpUrl;
    const op = await callApi(url, "POST", "/api/v1/tenants/acme/console-token", {}, KEY);
    expect(op.status).toBe(201);
    expect(op.json).toMatchObject({ tenant: "acme", sub: "operator", access: "read" });
    expect(Date.parse(op.json.expiresAt) - Date.now()).toBeLessThanOrEqual(900_000);
    const admin = await gw.token({ sub: "ada", tenant: "acme", role: "admin", ttlSec: 120 });
    const mine = await callApi(url, "POST", "/api/v1/tenants/acme/console-token", { access: "admin" }, admin);
    expect(mine.status).toBe(201);
    expect(mine.json).toMatchObject({ sub: "ada", access: "admin" });
    // Never longer than the admin's own token.
    expect(Date.parse(mine.json.expiresAt) - Date.now()).toBeLessThanOrEqual(121_000);
    expect(codeOf(await callApi(url, "POST", "/api/v1/tenants/other/console-token", {}, admin))).toEqual([403, ErrorCode.FORBIDDEN]);
    // Revoking the admin's token by its jti refuses the console tokens it minted too.
    const withJti = await gw.token({ sub: "ada", tenant: "acme", role: "admin", claims: { jti: "admin-token-7" } });
    const minted = (await callApi(url, "POST", "/api/v1/tenants/acme/console-token", {}, withJti)).json.token as string;
    expect((await gw.upgrade({ headers: { authorization: `Bearer ${minted}` } })).status).toBe(101);
    expect((await callApi(url, "POST", "/api/v1/tenants/acme/revocations", { jti: "admin-token-7" }, KEY)).status).toBe(201);
    const refused = await gw.upgrade({ headers: { authorization: `Bearer ${minted}` } });
    expect([refused.status, refused.json?.error?.code]).toEqual([401, ErrorCode.AUTH_REVOKED]);
    expect(codeOf(await callApi(url, "POST", "/api/v1/tenants/acme/console-token", {}, await gw.token({ sub: "u", tenant: "acme" })))).toEqual([403, ErrorCode.FORBIDDEN]);
    expect(codeOf(await callApi(url, "POST", "/api/v1/tenants/acme/console-token", {}, await gw.token({ sub: "s", tenant: "acme", role: "server" })))).toEqual([403, ErrorCode.FORBIDDEN]);
    expect(codeOf(await callApi(url, "POST", "/api/v1/tenants/acme/console-token", {}, null))).toEqual([401, ErrorCode.AUTH_MISSING]);
    expect(codeOf(await callApi(url, "POST", "/api/v1/tenants/acme/console-token", { access: "root" }, KEY))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await callApi(url, "POST", "/api/v1/tenants/acme/console-token", { ttl: 5 }, KEY))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    const audit = await callApi(url, "GET", "/api/v1/tenants/acme/audit?limit=10", undefined, KEY);
    expect(audit.json.records.filter((r: { action: string }) => r.action === "console.token").length).toBe(3);
  });

  it("console-token - a read token follows rooms and sees presence but cannot publish or use the store; an admin token can", async () => {
    gw = await startGateway({ operatorKeys: [KEY] });
    const read = (await callApi(gw.httpUrl, "POST", "/api/v1/tenants/acme/console-token", {}, KEY)).json.token as string;
    const viewer = await gw.client({ token: read });
    expect(viewer.welcome.type).toBe("welcome");
    expect((await viewer.subscribe("lobby")).type).toBe("subscribed");
    // Every room of the tenant, whatever its segments.
    expect((await viewer.subscribe("chat/eu:general.1")).type).toBe("subscribed");
    expect((await viewer.request({ type: "presence_list", room: "lobby" })).type).toBe("presence");
    const refused = await viewer.publish("lobby", { text: "no" });
    expect(refused.type).toBe("error");
    expect(refused.error?.code).toBe(ErrorCode.FORBIDDEN);
    expect(CONSOLE_READ_CAPS.pub).toEqual([]);
    const admin = (await callApi(gw.httpUrl, "POST", "/api/v1/tenants/acme/console-token", { access: "admin" }, KEY)).json.token as string;
    const boss = await gw.client({ token: admin });
    expect((await boss.publish("lobby", { text: "yes" })).type).toBe("ack");
  });

  it("console-token - a server that verifies public-key tokens only cannot sign one: 501 FEATURE_DISABLED", async () => {
    const { generateKeyPairSync } = await import("node:crypto");
    const { publicKey } = generateKeyPairSync("ed25519");
    gw = await startGateway({ operatorKeys: [KEY], auth: { publicKeys: [publicKey.export({ type: "spki", format: "pem" }).toString()] } });
    expect(codeOf(await callApi(gw.httpUrl, "POST", "/api/v1/tenants/acme/console-token", {}, KEY))).toEqual([501, "FEATURE_DISABLED"]);
  });
});
