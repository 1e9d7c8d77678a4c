import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startGateway, type TestClient, type TestGateway } from "@arqon/server/testing";
import type { Frame } from "@arqon/core";
import { webhookOperator, type Operator } from "../src/index.js";

interface Received {
  body: { room: string; offset: number; payload: unknown; sender: string };
  signature?: string;
  raw: string;
}

let gw: TestGateway | undefined;
let op: Operator | undefined;
let target: Server | undefined;
afterEach(async () => {
  await op?.close();
  await gw?.close();
  await new Promise<void>((r) => (target ? target.close(() => r()) : r()));
  op = gw = target = undefined;
});

/** A real HTTP endpoint on loopback recording each POST; `failFirst` answers 500 that many times first. */
async function startTarget(failFirst = 0): Promise<{ url: string; received: Received[]; waitFor(n: number): Promise<void> }> {
  const received: Received[] = [];
  let failures = failFirst;
  target = createServer((req: IncomingMessage, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString("utf8")));
    req.on("end", () => {
      if (failures > 0) {
        failures--;
        res.writeHead(500).end();
        return;
      }
      received.push({ body: JSON.parse(raw), signature: req.headers["x-arqon-signature"] as string | undefined, raw });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => target!.listen(0, "127.0.0.1", () => r()));
  const { port } = target.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    async waitFor(n) {
      const deadline = Date.now() + 5000;
      while (received.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(received.length).toBeGreaterThanOrEqual(n);
    },
  };
}

async function command(client: TestClient, command: string, args?: unknown): Promise<Frame> {
  const frame: Frame = { type: "command", command };
  if (args !== undefined) frame.args = new TextEncoder().encode(JSON.stringify(args));
  return client.request(frame);
}

describe("operators - op.webhook", () => {
  it("webhook - room messages become signed POSTs, in order, even with no client in the room", async () => {
    const hook = await startTarget();
    gw = await startGateway();
    op = await webhookOperator(gw.server, { retryBaseMs: 10 });
    const admin = await gw.client({ sub: "root", role: "admin" });
    const reg = await command(admin, "op.webhook.register", { name: "audit", room: "orders", url: hook.url, secret: "s3cret" });
    expect(reg.status).toBe("ok");

    for (let i = 1; i <= 5; i++) await admin.publish("orders", { n: i });
    await hook.waitFor(5);
    expect(hook.received.map((r) => r.body.payload)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }]);
    expect(hook.received.map((r) => r.body.offset)).toEqual([1, 2, 3, 4, 5]);
    for (const r of hook.received) {
      expect(r.signature).toBe("sha256=" + createHmac("sha256", "s3cret").update(r.raw).digest("hex"));
      expect(r.body).toMatchObject({ room: "orders", sender: "root" });
    }
    // Another tenant's room of the same name is not delivered.
    const other = await gw.client({ sub: "x", tenant: "other" });
    await other.publish("orders", { n: 99 });
    await admin.publish("orders", { n: 6 });
    await hook.waitFor(6);
    expect(hook.received.map((r) => (r.body.payload as { n: number }).n)).not.toContain(99);
  });

  it("webhook - failed deliveries are retried, counted, and non-admins can neither register nor list", async () => {
    const hook = await startTarget(2);
    gw = await startGateway();
    op = await webhookOperator(gw.server, { retryBaseMs: 5, attempts: 3 });
    const admin = await gw.client({ role: "admin" });
    const user = await gw.client({ sub: "u" });
    expect((await command(user, "op.webhook.register", { name: "h", room: "r", url: hook.url })).error?.code).toBe("AUTHORIZATION_ERROR");
    expect((await command(admin, "op.webhook.register", { name: "h", room: "r", url: "file:///etc/passwd" })).error?.code).toBe("VALIDATION_ERROR");
    expect((await command(admin, "op.webhook.register", { name: "h", room: "r", url: hook.url })).status).toBe("ok");
    await admin.publish("r", "once");
    await hook.waitFor(1);
    expect((await command(user, "op.webhook.list")).error?.code).toBe("AUTHORIZATION_ERROR");
    const list = await command(admin, "op.webhook.list");
    const text = new TextDecoder().decode(list.payload);
    expect(JSON.parse(text).webhooks[0]).toMatchObject({ name: "h", delivered: 1, failed: 0 });
    expect((await command(admin, "op.webhook.remove", { name: "h" })).status).toBe("ok");
    expect((await command(admin, "op.webhook.remove", { name: "h" })).error?.code).toBe("NOT_FOUND");
  });
});
