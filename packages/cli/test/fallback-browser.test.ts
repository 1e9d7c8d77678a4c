/// <reference lib="dom" />
// page.evaluate callbacks run in the page and use its DOM types.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import { payloadOf, startGateway, type TestGateway } from "@arqon/server/testing";
import { haveChromium, launchChromium } from "./helpers/browser.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const bundleScript = path.join(here, "..", "..", "sdk-ts", "scripts", "browser-bundle.mjs");

describe.skipIf(!haveChromium("sdk fallback"))("@arqon/sdk in Chromium without WebSocket", () => {
  let gw: TestGateway;
  let page: Server;
  let origin: string;
  let browser: Browser;

  beforeAll(async () => {
    gw = await startGateway();
    // The JSON browser bundle `npm run build` writes to dist/browser/arqon-sdk.min.js, served from another origin
    // than the gateway's (the fallback's requests are cross-origin, with CORS).
    const { bundle, ENTRIES } = (await import(pathToFileURL(bundleScript).href)) as {
      bundle: (entry: string) => Promise<{ code: Uint8Array }>;
      ENTRIES: { json: string };
    };
    const { code } = await bundle(ENTRIES.json);
    page = createServer((req, res) => {
      if (req.url === "/sdk.js") res.writeHead(200, { "content-type": "text/javascript" }).end(code);
      else res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>fallback</title>");
    });
    await new Promise<void>((resolve) => page.listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => page?.close(resolve));
    await gw?.close();
  });

  it("fallback - the page has no WebSocket: the client connects over sse and chats both ways with a WebSocket client", async () => {
    const node = await gw.client({ sub: "bob" });
    await node.subscribe("chat");
    const tab = await browser.newPage();
    const errors: string[] = [];
    tab.on("pageerror", (err) => errors.push(String(err)));
    try {
      await tab.addInitScript(() => {
        delete (window as { WebSocket?: unknown }).WebSocket;
      });
      await tab.goto(origin);
      expect(await tab.evaluate(() => typeof (window as { WebSocket?: unknown }).WebSocket)).toBe("undefined");
      await tab.addScriptTag({ type: "module", content: 'import * as m from "/sdk.js"; window.arqon = m;' });
      await tab.waitForFunction(() => "arqon" in window);
      const token = await gw.token({ sub: "alice" });
      const started = await tab.evaluate(
        async ({ url, token }) => {
          const { ArqonClient } = (window as unknown as { arqon: typeof import("@arqon/sdk") }).arqon;
          const client = new ArqonClient(url, { token });
          const got: unknown[] = [];
          Object.assign(window, { client, got });
          await client.connect();
          await client.room("chat").subscribe((m) => got.push(m.payload));
          const ack = await client.room("chat").publish({ from: "alice", text: "hi bob" });
          return { transport: client.transport, status: client.status.type, offset: ack.offset };
        },
        { url: gw.url, token },
      );
      expect(started).toEqual({ transport: "sse", status: "connected", offset: 1 });
      const fromPage = await node.next("message", "chat");
      expect(payloadOf(fromPage)).toEqual({ from: "alice", text: "hi bob" });
      await node.publish("chat", { from: "bob", text: "hi alice" });
      await tab.waitForFunction(() => (window as unknown as { got: unknown[] }).got.length === 1, undefined, { timeout: 10_000 });
      expect(await tab.evaluate(() => (window as unknown as { got: unknown[] }).got)).toEqual([{ from: "bob", text: "hi alice" }]);
      expect(await tab.evaluate(() => (window as unknown as { client: { transport: string } }).client.transport)).toBe("sse");
      await tab.evaluate(() => (window as unknown as { client: { close(): Promise<void> } }).client.close());
      expect(errors).toEqual([]);
    } finally {
      await tab.close();
    }
  }, 60_000);
});
