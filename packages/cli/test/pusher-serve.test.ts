import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import Pusher from "pusher-js";
import PusherServer from "pusher";
import { serveInProcess, type ServedGateway } from "./helpers/serve.js";

const APP = { tenant: "acme", appId: "1001", key: "acme-key", secret: "acme-secret-0123456789" };
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe("arqon serve - pusher config key", () => {
  it("pusher serve - the config file's pusher apps turn the mode on: pusher-js connects and the pusher SDK publishes to it", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "arqon-pusher-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "arqon.config.json");
    writeFileSync(file, JSON.stringify({ pusher: { apps: [APP], activityTimeoutSec: 30 } }));
    const gw: ServedGateway = await serveInProcess(["--memory", "--config", file], { ARQON_JWT_SECRET: "s".repeat(32), ARQON_LOG_LEVEL: "silent" });
    cleanup.push(() => gw.stop());
    const port = Number(new URL(gw.httpUrl).port);
    const p = new Pusher(APP.key, { cluster: "mt1", wsHost: "127.0.0.1", wsPort: port, forceTLS: false, enabledTransports: ["ws"] });
    cleanup.push(() => p.disconnect());
    const channel = p.subscribe("news");
    const event = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no event")), 5000);
      channel.bind("pusher:subscription_succeeded", () => {
        void new PusherServer({ appId: APP.appId, key: APP.key, secret: APP.secret, host: "127.0.0.1", port: String(port), useTLS: false }).trigger("news", "flash", { n: 1 });
      });
      channel.bind("flash", (d: unknown) => {
        clearTimeout(timer);
        resolve(d);
      });
    });
    expect(await event).toEqual({ n: 1 });
    // The activity timeout from the config file is what the client was told.
    expect((p.connection as unknown as { activityTimeout: number }).activityTimeout).toBe(30_000);
  });
});
