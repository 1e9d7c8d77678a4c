import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, expect, it } from "vitest";
import { jsonBytes, type Frame } from "@arqon/core";
import { connectNatsBackends, type NatsBackends } from "@arqon/nats";
import { describeWithNats, startNatsServer, type NatsServerHandle } from "@arqon/nats/testing";
import { cronOperator, webhookOperator, type Operator } from "@arqon/operators";
import { startGateway, type TestClient, type TestGateway } from "@arqon/server/testing";

const SECRET = "cluster-operators-secret-0123456789abcdef";

interface Node {
  gw: TestGateway;
  backends: NatsBackends;
  cron: Operator & { running(): number };
  webhook: Operator;
  dead: boolean;
}

/** Two (or more) gateways on one real nats-server, each with op.cron and op.webhook: one runner, one deliverer. */
describeWithNats("operators across gateways on NATS", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function nats(): Promise<NatsServerHandle> {
    const n = await startNatsServer();
    cleanups.push(() => n.stop());
    return n;
  }

  async function node(server: NatsServerHandle, name: string): Promise<Node> {
    const backends = await connectNatsBackends({ servers: server.url, name });
    const gw = await startGateway({ secret: SECRET, outbound: { allow: ["127.0.0.1"], allowHttp: true }, ...backends });
    const cron = await cronOperator(gw.server, { minIntervalMs: 100, syncIntervalMs: 200, leaseTtlMs: 1500 });
    const webhook = await webhookOperator(gw.server, { syncIntervalMs: 200, leaseTtlMs: 1500, retryBaseMs: 20, retryCapMs: 100 });
    const n: Node = { gw, backends, cron, webhook, dead: false };
    cleanups.push(async () => {
      if (!n.dead) {
        await cron.close();
        await webhook.close();
      }
      await gw.close();
      await backends.close().catch(() => undefined);
    });
    return n;
  }

  /** A node dies: it stops renewing its leases (its NATS connection goes), without giving anything back. */
  async function kill(n: Node): Promise<void> {
    n.dead = true;
    await n.backends.link.nc.close();
  }

  async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("cron - on two gateways each job fires once per tick; after the runner dies the other takes over and no tick fires twice", async () => {
    const server = await nats();
    const a = await node(server, "cron-a");
    const b = await node(server, "cron-b");
    const admin = await a.gw.client({ sub: "root", role: "admin" });
    const schedule = await admin.request({ type: "command", command: "op.cron.schedule", args: jsonBytes({ name: "tick", room: "ticks", payload: "t", everyMs: 300 }) });
    expect(schedule.status).toBe("ok");
    await until(() => a.cron.running() + b.cron.running() === 1, 3000, "one runner");
    const runner = a.cron.running() === 1 ? a : b;
    const survivor = runner === a ? b : a;
    const watcher: TestClient = await survivor.gw.client({ sub: "w" });
    await watcher.subscribe("ticks");
    const times: number[] = [];
    const onFrame = (f: Frame) => f.type === "message" && f.room === "ticks";
    const collect = async (ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const f = await watcher.waitFor(onFrame, { timeoutMs: Math.max(50, end - Date.now() + 1000) }).catch(() => undefined);
        if (f) times.push(Date.now());
      }
    };
    await collect(3000);
    const beforeKill = times.length;
    await kill(runner);
    const killedAt = Date.now();
    await collect(4500);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    const firstAfter = times.find((t) => t > killedAt);
    console.log(
      `cron on two gateways (every 300 ms, lease 1.5 s): ${beforeKill} firings in 3 s before the runner died, ${times.length - beforeKill} in 4.5 s after; ` +
        `shortest gap ${Math.min(...gaps)} ms; first firing after the kill ${firstAfter === undefined ? "none" : `${firstAfter - killedAt} ms`} later`,
    );
    // Once per tick: two runners would put two firings within a few ms of each other.
    expect(Math.min(...gaps)).toBeGreaterThan(150);
    expect(beforeKill).toBeGreaterThanOrEqual(7);
    // 3 s at one firing every 300 ms: about 10, never the ~20 that two runners would make.
    expect(beforeKill).toBeLessThanOrEqual(12);
    expect(firstAfter).toBeDefined();
    expect(firstAfter! - killedAt).toBeLessThan(4000);
    expect(survivor.cron.running()).toBe(1);
  });

  it("webhook - on two gateways each message is delivered once by one node; when it dies the other delivers the rest, none lost", async () => {
    const server = await nats();
    const received: Array<{ id: string; offset: number }> = [];
    const receiver: Server = createServer((req, res) => {
      let raw = "";
      req.on("data", (c: Buffer) => (raw += c.toString()));
      req.on("end", () => {
        received.push({ id: String(req.headers["webhook-id"]), offset: (JSON.parse(raw) as { offset: number }).offset });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()));
    cleanups.push(() => new Promise((r) => receiver.close(r)));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const a = await node(server, "hook-a");
    const b = await node(server, "hook-b");
    const adminA = await a.gw.client({ sub: "root", role: "admin" });
    const adminB = await b.gw.client({ sub: "root", role: "admin" });
    expect((await adminA.request({ type: "command", command: "op.webhook.register", args: jsonBytes({ name: "h", room: "orders", url }) })).status).toBe("ok");
    // Let node B pick the hook up too.
    await new Promise((r) => setTimeout(r, 600));
    for (let i = 1; i <= 10; i++) await (i % 2 ? adminA : adminB).publish("orders", { i });
    await until(() => received.length >= 10, 5000, "10 deliveries");
    await new Promise((r) => setTimeout(r, 300));
    expect(received.map((r) => r.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // Whoever delivers dies; the rest is published on the other node and delivered by it after the lease expires.
    const list = async (c: TestClient) => JSON.parse(new TextDecoder().decode((await c.request({ type: "command", command: "op.webhook.list" })).payload)) as { webhooks: Array<{ delivering: boolean }> };
    const deliverer = (await list(adminA)).webhooks[0]!.delivering ? a : b;
    const other = deliverer === a ? b : a;
    const otherAdmin = other === a ? adminA : adminB;
    await kill(deliverer);
    const killedAt = Date.now();
    for (let i = 11; i <= 20; i++) await otherAdmin.publish("orders", { i });
    await until(() => new Set(received.map((r) => r.offset)).size >= 20, 10_000, "20 distinct deliveries");
    const offsets = [...new Set(received.map((r) => r.offset))].sort((x, y) => x - y);
    const repeats = received.length - new Set(received.map((r) => r.id)).size;
    console.log(`webhook on two gateways: 20 messages, ${received.length} POSTs (${repeats} repeated webhook-ids), deliveries resumed ${Date.now() - killedAt} ms after the deliverer died`);
    expect(offsets).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});
