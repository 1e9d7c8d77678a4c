import { beforeAll, expect, it } from "vitest";
import type { Frame } from "@arqon/core";
import { describeWithNats } from "@arqon/nats/testing";
import { payloadOf, type TestClient, type TestGateway } from "@arqon/server/testing";
import { gatewayPair } from "./helpers/gateway-pair.js";

const SECRET = "cluster-wildcard-secret-0123456789abcdef";

function messages(client: TestClient): Frame[] {
  return client.frames.filter((f) => f.type === "message");
}

/** Wildcard subscriptions on two gateways sharing a real nats-server: the pattern is matched on the subscriber's node. */
describeWithNats("wildcard subscriptions across two gateways on NATS", () => {
  const pair = gatewayPair({ secret: SECRET });
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(() => {
    ({ a, b } = pair);
  });

  /** Publishes `marker` messages on A until one reaches `client` on B (the subscription's interest is registered). */
  async function settled(client: TestClient, pub: TestClient, room: string): Promise<void> {
    const deadline = Date.now() + 5000;
    for (let i = 0; ; i++) {
      await pub.publish(room, { settle: i });
      try {
        await client.waitFor((f) => f.type === "message" && f.room === room, { timeoutMs: 100 });
        return;
      } catch {
        if (Date.now() > deadline) throw new Error("the subscription did not settle within 5 s");
      }
    }
  }

  it("wildcard - a pattern on B gets the matching rooms published on A, in order per room, with their offsets; others' tenants and rooms stay out", async () => {
    const pub = await a.client({ tenant: "t-w", sub: "pub" });
    const watcher = await b.client({ tenant: "t-w", sub: "watch" });
    const spy = await b.client({ tenant: "t-w-spy", sub: "spy" });
    expect((await watcher.subscribe("orders:*")).room).toBe("orders:*");
    for (const p of ["*", "**", "t-w*"]) await spy.subscribe(p);
    await settled(watcher, pub, "orders:settle");
    const before = messages(watcher).length;
    for (let i = 1; i <= 50; i++) {
      await pub.publish(`orders:${i % 3}`, { i });
      if (i % 10 === 0) await pub.publish("invoices:1", { i });
    }
    await pub.publish("orders:end", { end: true });
    await watcher.waitFor((f) => f.type === "message" && f.room === "orders:end");
    const got = messages(watcher).slice(before);
    expect(got.every((f) => f.room!.startsWith("orders:"))).toBe(true);
    for (const room of ["orders:0", "orders:1", "orders:2"]) {
      const inRoom = got.filter((f) => f.room === room);
      const is = inRoom.map((f) => (payloadOf(f) as { i: number }).i);
      expect(is).toEqual(Array.from({ length: 50 }, (_, k) => k + 1).filter((i) => `orders:${i % 3}` === room));
      const offsets = inRoom.map((f) => f.offset!);
      expect(offsets).toEqual([...offsets].sort((x, y) => x - y));
      expect(inRoom.every((f) => typeof f.epoch === "string" && f.epoch.length > 0)).toBe(true);
    }
    expect(messages(spy)).toEqual([]);
    for (const c of [pub, watcher, spy]) await c.close();
  });

  it("wildcard - recovery per room: after a reconnect, history since each room's last offset fills the gap exactly", async () => {
    const pub = await a.client({ tenant: "t-r", sub: "pub" });
    let watcher = await b.client({ tenant: "t-r", sub: "watch" });
    await watcher.subscribe("feed:*");
    await settled(watcher, pub, "feed:settle");
    for (let i = 1; i <= 10; i++) await pub.publish(`feed:${i % 2}`, { i });
    await watcher.waitFor((f) => f.type === "message" && (payloadOf(f) as { i?: number }).i === 10);
    const last = new Map<string, { offset: number; epoch: string }>();
    for (const f of messages(watcher)) last.set(f.room!, { offset: f.offset!, epoch: f.epoch! });
    await watcher.close();
    // Missed while away.
    for (let i = 11; i <= 20; i++) await pub.publish(`feed:${i % 2}`, { i });
    watcher = await b.client({ tenant: "t-r", sub: "watch" });
    await watcher.subscribe("feed:*");
    const recovered: number[] = [];
    for (const room of ["feed:0", "feed:1"]) {
      const page = await watcher.request({ type: "history", room, history: { fromOffset: last.get(room)!.offset + 1 } });
      expect(page.type).toBe("history_page");
      expect(page.epoch).toBe(last.get(room)!.epoch);
      for (const m of page.messages ?? []) recovered.push((payloadOf(m) as { i: number }).i);
    }
    expect(recovered.sort((x, y) => x - y)).toEqual(Array.from({ length: 10 }, (_, k) => k + 11));
    for (const c of [pub, watcher]) await c.close();
  });
});
