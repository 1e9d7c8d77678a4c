/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// page.evaluate callbacks run in the page and use its DOM types.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { jsonBytes } from "@arqon/core";
import { mintToken, payloadOf, startGateway, type TestClient } from "@arqon/server/testing";
import { registerStandardOperators } from "@arqon/operators";
import { haveChromium, launchChromium } from "./helpers/browser.js";
import { connectClient } from "./helpers/clients.js";
import { serveInProcess, type ServedGateway } from "./helpers/serve.js";

const SECRET = "console-browser-secret-0123456789abcdef";
const KEY = "console-browser-operator-key-0123456789";
const here = path.dirname(fileURLToPath(import.meta.url));
/** Screenshots of every page (not committed: test-results/ is ignored); ARQON_SCREENSHOT_DIR overrides. */
const SHOTS = process.env.ARQON_SCREENSHOT_DIR ?? path.join(here, "..", "test-results", "console");
const VIEWPORTS = [
  { name: "desktop", width: 1280, height: 800 },
  { name: "phone", width: 390, height: 844 },
] as const;
const PAGES = ["overview", "tenants", "rooms", "casil", "operators"] as const;

/** Rebuilds the server package's console (dist/console) when a source file is newer than the build. */
function ensureConsoleBuilt(): void {
  const serverRoot = path.dirname(createRequire(import.meta.url).resolve("@arqon/server/package.json"));
  const built = path.join(serverRoot, "dist", "console", "index.html");
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(path.join(dir, e.name)) : statSync(path.join(dir, e.name)).mtimeMs)));
  let builtAt = 0;
  try {
    builtAt = statSync(built).mtimeMs;
  } catch {
    // not built yet
  }
  if (builtAt < newest(path.join(serverRoot, "console"))) execFileSync(process.execPath, [path.join(serverRoot, "scripts", "build-console.mjs")], { stdio: "pipe", timeout: 60_000 });
}

/**
 * Layout problems of the page as it is drawn: anything wider than the viewport (a sideways scroll of the whole page)
 * and sibling boxes (cards of a grid, the header's parts, a form's fields) that overlap.
 */
async function layoutProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const problems: string[] = [];
    const doc = document.documentElement;
    if (doc.scrollWidth > window.innerWidth + 1) problems.push(`page is ${doc.scrollWidth}px wide in a ${window.innerWidth}px viewport`);
    const name = (el: Element): string => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${el.className && typeof el.className === "string" ? `.${el.className.split(" ").join(".")}` : ""}`;
    const groups = document.querySelectorAll(".grid, .top, .who, .actions, .row-form, .stats, .sparks, nav");
    for (const group of groups) {
      const kids = [...group.children].filter((k) => {
        const r = k.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && getComputedStyle(k).position !== "absolute";
      });
      for (let i = 0; i < kids.length; i++) {
        for (let j = i + 1; j < kids.length; j++) {
          const a = kids[i]!.getBoundingClientRect();
          const b = kids[j]!.getBoundingClientRect();
          const overlapX = Math.min(a.right, b.right) - Math.max(a.left, b.left);
          const overlapY = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
          if (overlapX > 1 && overlapY > 1) problems.push(`${name(kids[i]!)} overlaps ${name(kids[j]!)} in ${name(group)}`);
        }
      }
    }
    for (const el of document.querySelectorAll(".card, .top, .signin form")) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && (r.left < -1 || r.right > window.innerWidth + 1)) problems.push(`${name(el)} runs out of the viewport (${Math.round(r.left)}..${Math.round(r.right)})`);
    }
    return problems;
  });
}

describe.skipIf(!haveChromium("console"))("web console in Chromium against arqon serve", () => {
  let gw: ServedGateway;
  let browser: Browser;
  const clients: TestClient[] = [];
  const track = (c: TestClient): void => void clients.push(c);
  const pageErrors: string[] = [];
  let sink: Server;
  const received: string[] = [];

  beforeAll(async () => {
    ensureConsoleBuilt();
    mkdirSync(SHOTS, { recursive: true });
    // A loopback receiver for the webhook test: server-side requests may reach it only because it is allowed here.
    sink = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push(Buffer.concat(chunks).toString("utf8"));
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
    gw = await serveInProcess(["--memory", "--console", "--outbound-allow", "127.0.0.1", "--outbound-allow-http"], {
      ARQON_JWT_SECRET: SECRET,
      ARQON_OPERATOR_KEY: KEY,
      ARQON_LOG_LEVEL: "silent",
      // These tests are about the console, not about blocking: in monitor mode a CASIL inspection that overruns its
      // time budget on a loaded CI machine records a block instead of refusing the test's own setup frames.
      ARQON_CASIL_MODE: "monitor",
    });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) await c[Symbol.asyncDispose]();
    await browser?.close();
    await gw?.stop();
    sink?.closeAllConnections();
    await new Promise<void>((resolve) => (sink ? sink.close(() => resolve()) : resolve()));
  });

  async function open(viewport: { width: number; height: number } = VIEWPORTS[0]): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    page.on("console", (msg) => {
      if (msg.type() === "error") pageErrors.push(msg.text());
    });
    await page.goto(`${gw.httpUrl}/console`);
    await page.waitForSelector("body[data-ready=true]", { timeout: 10_000 });
    return { context, page };
  }

  async function signIn(page: Page, credential: string, tenant = ""): Promise<void> {
    await page.fill("input[name=credential]", credential);
    await page.fill("input[name=tenant]", tenant);
    await page.click("#signin-submit");
    await page.waitForSelector("body[data-page=overview]", { timeout: 10_000 });
  }

  async function go(page: Page, id: (typeof PAGES)[number]): Promise<void> {
    await page.click(`#nav-${id}`);
    await page.waitForSelector(`#page-${id}`, { timeout: 10_000 });
  }

  it("console - an operator signs in, opens every page at 1280x800 and 390x844 without overlap, and the screenshots are written", async () => {
    const admin = await connectClient(gw.url, SECRET, { sub: "ada", tenant: "acme", role: "admin" }, track);
    expect((await admin.request({ type: "command", command: "op.store.put", args: jsonBytes({ key: "greeting", value: { text: "hi" } }) })).status).toBe("ok");
    const alice = await connectClient(gw.url, SECRET, { sub: "alice", tenant: "acme" }, track);
    await alice.subscribe("lobby");
    await alice.subscribe("traffic");
    await alice.publish("lobby", { text: "stored before" });
    for (const viewport of VIEWPORTS) {
      const { context, page } = await open(viewport);
      expect(await layoutProblems(page), `sign-in at ${viewport.name}`).toEqual([]);
      await page.screenshot({ path: path.join(SHOTS, `signin-${viewport.name}.png`), fullPage: true });
      await signIn(page, KEY, "acme");
      // Figures from /status and /metrics: alice and ada are connected, and two samples make a rate.
      await expect.poll(() => page.textContent("#ov-connections"), { timeout: 10_000 }).toBe("2");
      await expect.poll(() => page.$$eval("#spark-in polyline", (l) => l[0]?.getAttribute("points")?.split(" ").length ?? 0), { timeout: 10_000 }).toBeGreaterThan(1);
      expect(await page.textContent("#ov-nodes")).toContain("(this)");
      // Traffic shows in the live rates: frames in (alice's publishes) and out (their deliveries to her).
      for (let i = 0; i < 10; i++) await alice.publish("traffic", { n: i }, { echo: true });
      await expect.poll(async () => Number(await page.textContent("#spark-in .spark-value")), { timeout: 10_000 }).toBeGreaterThan(0);
      await expect.poll(async () => Number(await page.textContent("#spark-out .spark-value")), { timeout: 10_000 }).toBeGreaterThan(0);
      for (const id of PAGES) {
        await go(page, id);
        if (id === "tenants") await page.waitForSelector("#tenant-list button[data-tenant=acme]", { timeout: 10_000 });
        if (id === "rooms") {
          await page.waitForSelector("#rooms-table button[data-room=lobby]", { timeout: 10_000 });
          await page.click("#rooms-table button[data-room=lobby]");
          await expect.poll(() => page.textContent("#members-table"), { timeout: 10_000 }).toContain("alice");
          await expect.poll(() => page.textContent("#history-table"), { timeout: 10_000 }).toContain("stored before");
        }
        if (id === "casil") await page.waitForSelector("#baseline-editor textarea", { timeout: 10_000 });
        if (id === "operators") await expect.poll(() => page.textContent("#store-table"), { timeout: 10_000 }).toContain("greeting");
        expect(await layoutProblems(page), `${id} at ${viewport.name}`).toEqual([]);
        await page.screenshot({ path: path.join(SHOTS, `${id}-${viewport.name}.png`), fullPage: true });
      }
      await context.close();
    }
    for (const id of ["signin", ...PAGES]) for (const v of VIEWPORTS) expect(statSync(path.join(SHOTS, `${id}-${v.name}.png`)).size).toBeGreaterThan(1000);
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it("console - the live tail follows a room while a client publishes, and the publish form reaches a ws client", async () => {
    const bob = await connectClient(gw.url, SECRET, { sub: "bob", tenant: "acme" }, track);
    await bob.subscribe("news");
    const { context, page } = await open();
    await signIn(page, KEY, "acme");
    await go(page, "rooms");
    await page.fill("input[name=room]", "news");
    await page.click("#room-open");
    await page.click("#tail-toggle");
    await page.waitForSelector("#tail-status[data-status=following]", { timeout: 10_000 });
    await bob.publish("news", { text: "live from bob" });
    await expect.poll(() => page.textContent("#tail"), { timeout: 10_000 }).toContain("live from bob");

    await page.fill("#room-publish textarea[name=payload]", '{"text":"from the console form"}');
    await page.click("#publish-send");
    const msg = await bob.waitFor((f) => f.type === "message" && f.room === "news" && f.sender === "operator", { timeoutMs: 10_000 });
    expect(payloadOf(msg)).toEqual({ text: "from the console form" });
    await expect.poll(() => page.textContent("#room-publish"), { timeout: 10_000 }).toMatch(/published at offset \d+/);
    // The console's own message comes through its tail too.
    await expect.poll(() => page.textContent("#tail"), { timeout: 10_000 }).toContain("from the console form");
    await page.screenshot({ path: path.join(SHOTS, "rooms-live-tail-desktop.png"), fullPage: true });
    await context.close();
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it("console - disabling a tenant from the tenants page closes its client with 4503", async () => {
    const victim = await connectClient(gw.url, SECRET, { sub: "vic", tenant: "doomed" }, track);
    const { context, page } = await open();
    await signIn(page, KEY);
    await go(page, "tenants");
    await page.waitForSelector("#tenant-list button[data-tenant=doomed]", { timeout: 10_000 });
    await page.click("#tenant-list button[data-tenant=doomed]");
    // Limits set from the form land in the tenant's record (and show among the limits in force).
    await page.fill("#tenant-detail textarea[name=limits]", '{"maxRooms": 50}');
    await page.click("#tenant-detail form:has(textarea[name=limits]) button[type=submit]");
    await expect.poll(() => page.textContent("#tenant-detail"), { timeout: 10_000 }).toContain("limits saved");
    const shown = await fetch(`${gw.httpUrl}/api/v1/tenants/doomed`, { headers: { "x-api-key": KEY } });
    expect(((await shown.json()) as { record: { limits: Record<string, number> } }).record.limits).toEqual({ maxRooms: 50 });
    await expect.poll(() => page.textContent("#tenant-limits"), { timeout: 10_000 }).toContain('"maxRooms": 50');
    await page.click("#tenant-disable");
    const closed = await Promise.race([victim.closed, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("not closed within 10 s")), 10_000))]);
    expect(closed.code).toBe(4503);
    await expect.poll(() => page.textContent("#tenant-status"), { timeout: 10_000 }).toBe("disabled");
    await page.click("#tenant-enable");
    await expect.poll(() => page.textContent("#tenant-status"), { timeout: 10_000 }).toBe("active");
    await context.close();
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it("console - a tenant admin signs in and sees only its own tenant", async () => {
    const ada = await connectClient(gw.url, SECRET, { sub: "ada", tenant: "acme", role: "admin" }, track);
    expect((await ada.request({ type: "command", command: "op.store.put", args: jsonBytes({ key: "greeting", value: { text: "hi" } }) })).status).toBe("ok");
    const token = await mintToken(SECRET, { sub: "ada", tenant: "acme", role: "admin" });
    const { context, page } = await open();
    await signIn(page, token);
    expect(await page.textContent(".who")).toContain("admin of acme");
    await expect.poll(() => page.textContent("#ov-node"), { timeout: 10_000 }).toContain("Tenant acme");
    await go(page, "tenants");
    await page.waitForSelector("#tenant-status", { timeout: 10_000 });
    expect(await page.$("#tenant-disable")).toBeNull();
    await go(page, "casil");
    await page.waitForSelector("#layer-editor", { timeout: 10_000 });
    expect(await page.$("#baseline-editor")).toBeNull();
    await go(page, "operators");
    await expect.poll(() => page.textContent("#store-table"), { timeout: 10_000 }).toContain("greeting");
    await context.close();
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it("console - the CASIL editor validates with a dry run, applies a tenant layer, and shows a refusal's code", async () => {
    const { context, page } = await open();
    await signIn(page, KEY, "casiltest");
    await go(page, "casil");
    await page.waitForSelector("#layer-version", { timeout: 10_000 });
    expect(await page.textContent("#layer-version")).toBe("none");
    await page.fill("#layer-editor textarea[name=policy]", '{"mode": "monitor"}');
    await page.click("#layer-editor button.validate");
    await expect.poll(() => page.textContent("#layer-editor"), { timeout: 10_000 }).toContain("valid: version 1 would replace 0");
    // A dry run changes nothing.
    const before = await fetch(`${gw.httpUrl}/api/v1/tenants/casiltest/casil`, { headers: { "x-api-key": KEY } });
    expect(((await before.json()) as { layer: unknown }).layer).toBeNull();
    await page.click("#layer-editor button.apply");
    await expect.poll(() => page.textContent("#layer-version"), { timeout: 10_000 }).toBe("1");
    const after = await fetch(`${gw.httpUrl}/api/v1/tenants/casiltest/casil`, { headers: { "x-api-key": KEY } });
    expect(((await after.json()) as { layer: { version: number; mode: string } }).layer).toMatchObject({ version: 1, mode: "monitor" });
    await page.fill("#layer-editor textarea[name=policy]", '{"mode": "loud"}');
    await page.click("#layer-editor button.validate");
    await expect.poll(() => page.textContent("#layer-editor .error"), { timeout: 10_000 }).toMatch(/^[A-Z_]+: /);
    await page.screenshot({ path: path.join(SHOTS, "casil-editor-desktop.png"), fullPage: true });
    await context.close();
    // The refused dry run is an answer the page shows, not a page error; the browser logs the 4xx resource load.
    expect(pageErrors.filter((e) => !e.startsWith("Failed to load resource"))).toEqual([]);
    pageErrors.length = 0;
  }, 60_000);

  it("console - the operators page lists a webhook with what it delivered to a loopback receiver", async () => {
    const ada = await connectClient(gw.url, SECRET, { sub: "ada", tenant: "acme", role: "admin" }, track);
    const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/hook`;
    const reg = await ada.request({ type: "command", command: "op.webhook.register", args: jsonBytes({ name: "sink", room: "events", url: sinkUrl }) });
    expect(reg.status, JSON.stringify(reg)).toBe("ok");
    await ada.publish("events", { text: "to the hook" });
    await expect.poll(() => received.some((b) => b.includes("to the hook")), { timeout: 15_000 }).toBe(true);
    const { context, page } = await open();
    await signIn(page, KEY, "acme");
    await go(page, "operators");
    await expect.poll(() => page.textContent("#webhooks-table"), { timeout: 10_000 }).toContain(sinkUrl);
    await expect.poll(() => page.$$eval("#webhooks-table tbody tr td:nth-child(6)", (tds) => tds.map((td) => td.textContent)), { timeout: 10_000 }).toEqual(["1"]);
    await page.click("#webhooks-table button[data-hook=sink]");
    await expect.poll(() => page.textContent("#ops-webhooks .dead"), { timeout: 10_000 }).toContain("none");
    await page.screenshot({ path: path.join(SHOTS, "operators-webhook-desktop.png"), fullPage: true });
    await context.close();
    expect(pageErrors).toEqual([]);
  }, 60_000);
});

describe.skipIf(!haveChromium("console dead letters"))("web console: webhook dead letters and replay, on an embedded server", () => {
  it("console - a delivery that failed for good shows as a dead letter, and Replay all delivers it", async () => {
    let accept = false;
    const bodies: string[] = [];
    const sink = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (accept) bodies.push(Buffer.concat(chunks).toString("utf8"));
        res.writeHead(accept ? 200 : 500).end();
      });
    });
    await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
    // One attempt per delivery, so the first failure is final; the console on, as an embedder turns it on.
    const gw = await startGateway({ operatorKeys: [KEY], console: true, outbound: { allow: ["127.0.0.1"], allowHttp: true } });
    const operators = await registerStandardOperators(gw.server, { webhook: { attempts: 1, retryBaseMs: 10, retryCapMs: 20 } });
    const browser = await launchChromium();
    try {
      const admin = await gw.client({ sub: "ada", tenant: "acme", role: "admin" });
      const url = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/hook`;
      const reg = await admin.request({ type: "command", command: "op.webhook.register", args: jsonBytes({ name: "flaky", room: "orders", url }) });
      expect(reg.status, JSON.stringify(reg)).toBe("ok");
      await admin.publish("orders", { order: 42 });
      const list = async (): Promise<number> => {
        const r = await admin.request({ type: "command", command: "op.webhook.list" });
        return (payloadOf(r) as { webhooks: Array<{ deadLetters: number }> }).webhooks[0]?.deadLetters ?? 0;
      };
      await expect.poll(list, { timeout: 15_000 }).toBe(1);

      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (err) => errors.push(String(err)));
      await page.goto(`${gw.httpUrl}/console/`);
      await page.waitForSelector("body[data-ready=true]", { timeout: 10_000 });
      await page.fill("input[name=credential]", KEY);
      await page.fill("input[name=tenant]", "acme");
      await page.click("#signin-submit");
      await page.waitForSelector("body[data-page=overview]", { timeout: 10_000 });
      await page.click("#nav-operators");
      await page.waitForSelector("#webhooks-table button[data-hook=flaky]", { timeout: 10_000 });
      await page.click("#webhooks-table button[data-hook=flaky]");
      await expect.poll(() => page.textContent("#ops-webhooks .dead"), { timeout: 10_000 }).toContain("http_status");
      await page.screenshot({ path: path.join(SHOTS, "operators-dead-letters-desktop.png"), fullPage: true });
      accept = true;
      await page.click("#ops-webhooks .dead button");
      await expect.poll(() => page.textContent("#ops-webhooks .dead"), { timeout: 10_000 }).toContain("replayed 1, failed again 0");
      expect(bodies.some((b) => b.includes('"order":42'))).toBe(true);
      await expect.poll(list, { timeout: 10_000 }).toBe(0);
      await context.close();
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await operators.close();
      await gw.close();
      sink.closeAllConnections();
      await new Promise<void>((resolve) => sink.close(() => resolve()));
    }
  }, 60_000);
});
