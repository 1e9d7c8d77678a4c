import { afterEach, describe, expect, it } from "vitest";
import type { Frame } from "@arqon/core";
import { describeWithNats, startNatsServer, type NatsServerHandle } from "@arqon/nats/testing";
import type { TestClient } from "@arqon/server/testing";
import { connectClient } from "./helpers/clients.js";
import { serveInProcess, type ServedGateway } from "./helpers/serve.js";

const SECRET = "tenant-retention-secret-0123456789abcdef";
const KEY = "tenant-retention-operator-key-012345678";

const stops: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

async function serve(argv: string[]): Promise<ServedGateway> {
  const gw = await serveInProcess(argv, { ARQON_JWT_SECRET: SECRET, ARQON_OPERATOR_KEY: KEY, ARQON_LOG_LEVEL: "silent" });
  stops.push(() => gw.stop());
  return gw;
}

async function client(gw: ServedGateway, tenant: string): Promise<TestClient> {
  return connectClient(gw.url, SECRET, { sub: "alice", tenant }, (c) => stops.push(async () => c.ws.terminate()));
}

async function setLimits(gw: ServedGateway, tenant: string, limits: Record<string, number>): Promise<void> {
  const res = await fetch(`${gw.httpUrl}/api/v1/tenants`, {
    method: "POST",
    headers: { "x-api-key": KEY, "content-type": "application/json" },
    body: JSON.stringify({ name: tenant, limits }),
  });
  expect(res.status).toBe(201);
}

/** The retention limits of a tenant, set through the server API, reach the history store `arqon serve` opened. */
async function retentionApplies(gw: ServedGateway): Promise<void> {
  await setLimits(gw, "small", { historyMaxMessages: 3 });
  await setLimits(gw, "bytes", { historyMaxBytes: 250 });
  const small = await client(gw, "small");
  const bytes = await client(gw, "bytes");
  const other = await client(gw, "other");
  for (let i = 1; i <= 6; i++) {
    for (const c of [small, other]) expect((await c.publish("log", { i })).type).toBe("ack");
    // ~100-byte payloads: the byte bound keeps the newest two.
    expect((await bytes.publish("log", { i, pad: "x".repeat(90) })).type).toBe("ack");
  }
  const kept = async (c: TestClient) => ((await c.request({ type: "history", room: "log" })) as Frame).messages!.map((m) => m.offset);
  expect(await kept(small)).toEqual([4, 5, 6]);
  expect(await kept(bytes)).toEqual([5, 6]);
  expect(await kept(other)).toEqual([1, 2, 3, 4, 5, 6]);
  // Recovery from before what was kept says so instead of leaving a gap.
  const sub = await small.request({ type: "subscribe", room: "log", since: { offset: 1, epoch: (await small.request({ type: "history", room: "log" })).epoch! } });
  expect(sub).toMatchObject({ recovered: false, reason: "retention_exceeded" });
}

describe("tenant history limits through arqon serve", () => {
  it("retention - historyMaxMessages and historyMaxBytes of a tenant apply to its rooms in LMDB, other tenants keep the defaults", async () => {
    await retentionApplies(await serve([]));
  });
});

describeWithNats("tenant history limits on JetStream", () => {
  it("retention - the same limits apply to JetStream history", async () => {
    const nats: NatsServerHandle = await startNatsServer();
    stops.push(() => nats.stop());
    await retentionApplies(await serve(["--nats", nats.url]));
  });
});
