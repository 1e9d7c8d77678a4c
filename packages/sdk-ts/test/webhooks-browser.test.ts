import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser } from "playwright-core";
import { Webhook } from "standardwebhooks";
// @ts-expect-error -- a plain .mjs build script without type declarations
import { ENTRIES, bundle } from "../scripts/browser-bundle.mjs";

const CHROMIUM = process.env.ARQON_CHROMIUM ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);

if (!haveChromium) {
  const message = `@arqon/sdk webhooks: Chromium not found at ${CHROMIUM}; the browser test is SKIPPED (install Debian's chromium, or set ARQON_CHROMIUM)`;
  if (process.env.ARQON_REQUIRE_BROWSER === "1") throw new Error(`${message} — but ARQON_REQUIRE_BROWSER=1`);
  console.warn(`\n*** ${message} ***\n`);
}

const build = bundle as (entry: string) => Promise<{ code: Uint8Array }>;

describe.skipIf(!haveChromium)("webhooks in Chromium", () => {
  let server: Server;
  let origin: string;
  let browser: Browser;

  beforeAll(async () => {
    // The same bundle `npm run build` writes to dist/browser/arqon-webhooks.min.js, served from a loopback origin
    // (a secure context, so crypto.subtle exists).
    const { code } = await build((ENTRIES as { webhooks: string }).webhooks);
    server = createServer((req, res) => {
      if (req.url === "/webhooks.js") res.writeHead(200, { "content-type": "text/javascript" }).end(code);
      else res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>webhooks</title>");
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
  });

  it("webhooks - the browser bundle verifies reference-signed deliveries and signs ones the reference accepts", async () => {
    const secret = `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64")}`;
    const body = JSON.stringify({ room: "lobby", payload: { text: "héllo" } });
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = new Webhook(secret).sign("msg_browser", new Date(timestamp * 1000), body);
    const headers = { "Webhook-Id": "msg_browser", "Webhook-Timestamp": String(timestamp), "Webhook-Signature": signature };

    const page = await browser.newPage();
    try {
      await page.goto(origin);
      // A module script, not import() inside evaluate: vitest rewrites dynamic imports in test files.
      await page.addScriptTag({ type: "module", content: 'import * as m from "/webhooks.js"; window.arqonWebhooks = m;' });
      await page.waitForFunction(() => "arqonWebhooks" in window);
      const result = await page.evaluate(
        async ({ secret, headers, body }) => {
          const m = (window as unknown as { arqonWebhooks: typeof import("../src/webhooks.js") }).arqonWebhooks;
          const codeOf = (p: Promise<unknown>) => p.then(() => "accepted", (e: { name: string; code: string }) => `${e.name}:${e.code}`);
          const event = await m.verifyWebhook(secret, new Headers(headers), new TextEncoder().encode(body));
          const old = await m.signWebhook(secret, { id: "msg_old", timestamp: Math.floor(Date.now() / 1000) - 301, body });
          return {
            event,
            plainObject: (await m.verifyWebhook([secret], headers, body)).id,
            tampered: await codeOf(m.verifyWebhook(secret, headers, `${body} `)),
            replay: await codeOf(m.verifyWebhook(secret, old, body)),
            signed: await m.signWebhook(secret, { id: "msg_from_browser", body }),
          };
        },
        { secret, headers, body },
      );
      expect(result.event).toEqual({ id: "msg_browser", timestamp, payload: JSON.parse(body) });
      expect(result.plainObject).toBe("msg_browser");
      expect(result.tampered).toBe("WebhookVerificationError:ARQ_WEBHOOK_SIGNATURE_MISMATCH");
      expect(result.replay).toBe("WebhookVerificationError:ARQ_WEBHOOK_TIMESTAMP_TOO_OLD");
      expect(new Webhook(secret).verify(body, { ...result.signed })).toEqual(JSON.parse(body));
    } finally {
      await page.close();
    }
  }, 60_000);
});
