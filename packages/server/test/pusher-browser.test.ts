import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser } from "playwright-core";
import { payloadOf, type TestGateway } from "../src/testing.js";
import { APPS, pusherServer, startPusherGateway } from "./pusher-helpers.js";

const CHROMIUM = process.env.ARQON_CHROMIUM ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);

if (!haveChromium) {
  const message = `@arqon/server pusher: Chromium not found at ${CHROMIUM}; the browser test is SKIPPED (install Debian's chromium, or set ARQON_CHROMIUM)`;
  if (process.env.ARQON_REQUIRE_BROWSER === "1") throw new Error(`${message} — but ARQON_REQUIRE_BROWSER=1`);
  console.warn(`\n*** ${message} ***\n`);
}

// The real pusher-js web build, as a page loads it from a <script> tag.
const PUSHER_JS = readFileSync(createRequire(import.meta.url).resolve("pusher-js/dist/web/pusher.min.js"));

describe.skipIf(!haveChromium)("pusher-js in Chromium", () => {
  let gw: TestGateway;
  let server: Server;
  let origin: string;
  let browser: Browser;

  beforeAll(async () => {
    gw = await startPusherGateway();
    const sdk = pusherServer(gw, APPS.acme);
    // The application's origin: the page, pusher-js, and the channel auth endpoint (same origin, form-encoded body).
    server = createServer((req, res) => {
      if (req.url === "/pusher.min.js") return void res.writeHead(200, { "content-type": "text/javascript" }).end(PUSHER_JS);
      if (req.url === "/pusher/auth" && req.method === "POST") {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
          const auth = sdk.authorizeChannel(form.get("socket_id") ?? "", form.get("channel_name") ?? "");
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(auth));
        });
        return;
      }
      res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><title>pusher</title><script src="/pusher.min.js"></script>');
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    await gw?.close();
  });

  it("pusher - the pusher-js web build connects from a page, receives native and HTTP API events, and sends client events a native client gets", async () => {
    const native = await gw.client({ sub: "native", tenant: "acme" });
    await native.subscribe("private-room");
    const page = await browser.newPage();
    try {
      await page.goto(origin);
      await page.waitForFunction(() => "Pusher" in window);
      const socketId = await page.evaluate(
        ({ key, port }) =>
          new Promise<string>((resolve, reject) => {
            type PusherLike = {
              connection: { socket_id: string; bind(e: string, cb: () => void): void };
              subscribe(c: string): { bind(e: string, cb: (d: unknown) => void): void; trigger(e: string, d: unknown): boolean };
            };
            const w = window as unknown as { Pusher: new (key: string, o: unknown) => PusherLike; got: unknown[]; channel: unknown };
            const p = new w.Pusher(key, { cluster: "mt1", wsHost: "127.0.0.1", wsPort: port, forceTLS: false, enabledTransports: ["ws"], channelAuthorization: { endpoint: "/pusher/auth", transport: "ajax" } });
            w.got = [];
            const ch = p.subscribe("private-room");
            w.channel = ch;
            ch.bind("news", (d) => w.got.push(d));
            ch.bind("pusher:subscription_succeeded", () => resolve(p.connection.socket_id));
            ch.bind("pusher:subscription_error", (e) => reject(new Error(JSON.stringify(e))));
            setTimeout(() => reject(new Error("no subscription within 5 s")), 5000);
          }),
        { key: APPS.acme.key, port: gw.port },
      );
      expect(socketId).toMatch(/^\d+\.\d+$/);

      await native.publish("private-room", { from: "native" }, { headers: { event: "news" } });
      await pusherServer(gw, APPS.acme).trigger("private-room", "news", { from: "api" });
      await page.waitForFunction(() => (window as unknown as { got: unknown[] }).got.length >= 2, undefined, { timeout: 5000 });
      expect(await page.evaluate(() => (window as unknown as { got: unknown[] }).got)).toEqual([{ from: "native" }, { from: "api" }]);

      const nativeGot = native.waitFor((f) => f.type === "message" && f.headers?.event === "client-hello");
      const sent = await page.evaluate(() => (window as unknown as { channel: { trigger(e: string, d: unknown): boolean } }).channel.trigger("client-hello", { from: "browser" }));
      expect(sent).toBe(true);
      const frame = await nativeGot;
      expect(payloadOf(frame)).toEqual({ from: "browser" });
      expect(frame.sender).toBe(`pusher:${socketId}`);
    } finally {
      await page.close();
    }
  });
});
