import { existsSync } from "node:fs";
import type { Socket } from "node:net";
import type { IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { startChat, type ChatServer } from "../src/chat-server.js";

const CHROMIUM = process.env.ARQON_CHROMIUM ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
const required = process.env.ARQON_REQUIRE_BROWSER === "1";

if (!haveChromium) {
  const message = `browser-chat: Chromium not found at ${CHROMIUM}; the browser test is SKIPPED (install Debian's chromium, or set ARQON_CHROMIUM)`;
  if (required) throw new Error(`${message} — but ARQON_REQUIRE_BROWSER=1`);
  console.warn(`\n*** ${message} ***\n`);
}

/** The user name a WebSocket upgrade authenticates as (the `sub` of its bearer token). */
function userOf(req: IncomingMessage): string | undefined {
  const offered = String(req.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim());
  const bearer = offered.find((p) => p.startsWith("bearer."));
  if (!bearer) return undefined;
  const payload = bearer.slice("bearer.".length).split(".")[1] ?? "";
  return (JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { sub?: string }).sub;
}

describe.skipIf(!haveChromium)("browser chat in Chromium", () => {
  let chat: ChatServer;
  let browser: Browser;
  const sockets = new Map<string, Socket[]>();

  beforeAll(async () => {
    chat = await startChat({ port: 0, arqon: { limits: { pingIntervalMs: 2000, pongTimeoutMs: 2000 } } });
    chat.http.on("upgrade", (req: IncomingMessage, socket: Socket) => {
      const user = userOf(req);
      if (user) sockets.set(user, [...(sockets.get(user) ?? []), socket]);
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await chat?.close();
  });

  async function open(user: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("pageerror", (err) => console.error(`[${user}] page error:`, err));
    await page.goto(`${chat.url}?user=${user}&room=lobby`);
    await page.waitForSelector("body[data-ready=true]", { timeout: 10_000 });
    return { context, page };
  }

  const members = (page: Page): Promise<string[]> => page.$$eval("#members li", (els) => els.map((e) => e.textContent ?? ""));
  const lines = (page: Page): Promise<string[]> => page.$$eval("#messages li", (els) => els.map((e) => e.textContent ?? ""));

  async function send(page: Page, text: string): Promise<void> {
    await page.fill("#text", text);
    await page.press("#text", "Enter");
  }

  it("chat - two browsers see each other, exchange messages, and one comes back after going offline", async () => {
    const alice = await open("alice");
    const bob = await open("bob");

    await expect.poll(() => members(alice.page), { timeout: 5000 }).toEqual(["alice", "bob"]);
    await expect.poll(() => members(bob.page), { timeout: 5000 }).toEqual(["alice", "bob"]);
    expect(await alice.page.textContent("#status")).toBe("connected");

    await send(alice.page, "hello bob");
    await expect.poll(() => lines(bob.page), { timeout: 5000 }).toContain("alice: hello bob");
    await send(bob.page, "hi alice");
    await expect.poll(() => lines(alice.page), { timeout: 5000 }).toContain("bob: hi alice");

    // Bob's network goes away: offline, and his live socket is cut on the server side.
    await bob.context.setOffline(true);
    for (const socket of sockets.get("bob") ?? []) socket.destroy();
    await expect.poll(() => bob.page.getAttribute("#status", "data-status"), { timeout: 10_000 }).not.toBe("connected");
    await expect.poll(() => members(alice.page), { timeout: 10_000 }).toEqual(["alice"]);
    await send(alice.page, "are you there?");

    await bob.context.setOffline(false);
    await expect.poll(() => bob.page.textContent("#status"), { timeout: 15_000 }).toBe("connected (reconnected)");
    await expect.poll(() => members(alice.page), { timeout: 5000 }).toEqual(["alice", "bob"]);
    // What bob missed while away is recovered on resubscribe.
    await expect.poll(() => lines(bob.page), { timeout: 5000 }).toContain("alice: are you there?");
    await send(bob.page, "back");
    await expect.poll(() => lines(alice.page), { timeout: 5000 }).toContain("bob: back");
    const log = await bob.page.evaluate(() => (window as unknown as { arqonStatusLog: string[] }).arqonStatusLog);
    expect(log[0]).toBe("connecting");
    expect(log).toContain("connected");
    expect(log.some((s) => s.startsWith("disconnected") || s.startsWith("reconnecting"))).toBe(true);
    expect(log.at(-1)).toBe("connected (reconnected)");

    await alice.context.close();
    await bob.context.close();
  }, 60_000);
});
