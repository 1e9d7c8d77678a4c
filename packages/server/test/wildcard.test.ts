import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, type Frame, type MemoryBus } from "@arqon/core";
import { payloadOf, startGateway, type TestClient, type TestGateway } from "../src/testing.js";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

function messages(client: TestClient): Frame[] {
  return client.frames.filter((f) => f.type === "message");
}

/** Proves nothing more reaches `client`: a marker published into `room` must be the next message it gets. */
async function nothingMore(client: TestClient, sender: TestClient, room: string): Promise<void> {
  const before = messages(client).length;
  const marker = `m-${Math.random()}`;
  await sender.publish(room, { marker });
  const next = await client.waitFor((f) => f.type === "message" && (payloadOf(f) as { marker?: string })?.marker === marker);
  expect(messages(client).indexOf(next)).toBe(before);
}

describe("wildcard subscriptions", () => {
  it("wildcard - orders:* receives every matching room's messages with the concrete room, epoch and offset; not orders:a:b, not other rooms", async () => {
    gw = await startGateway();
    const watcher = await gw.client({ sub: "w" });
    const pub = await gw.client({ sub: "p" });
    const reply = await watcher.subscribe("orders:*");
    expect(reply).toMatchObject({ type: "subscribed", room: "orders:*" });
    const a1 = await pub.publish("orders:1", { n: 1 });
    await pub.publish("orders:2", { n: 2 });
    await pub.publish("orders:1:detail", { n: 3 });
    await pub.publish("invoices:1", { n: 4 });
    await pub.publish("orders:1", { n: 5 });
    await nothingMore(watcher, pub, "orders:zzz");
    const got = messages(watcher).slice(0, 3);
    expect(got.map((f) => [f.room, payloadOf(f)])).toEqual([
      ["orders:1", { n: 1 }],
      ["orders:2", { n: 2 }],
      ["orders:1", { n: 5 }],
    ]);
    expect(got[0]).toMatchObject({ offset: 1, epoch: a1.epoch });
    expect(got[2]).toMatchObject({ offset: 2, epoch: a1.epoch });
    // ** crosses segments.
    const deep = await gw.client({ sub: "d" });
    await deep.subscribe("orders:**");
    await pub.publish("orders:1:detail", { n: 6 });
    const m = await deep.next("message");
    expect(m.room).toBe("orders:1:detail");
  });

  it("wildcard - caps are checked on the pattern (ARQ_FORBIDDEN) and on every concrete room at delivery", async () => {
    gw = await startGateway();
    const pub = await gw.client({ sub: "p" });
    const narrow = await gw.client({ sub: "n", caps: { sub: ["orders:eu-*"] } });
    const refused = await narrow.request({ type: "subscribe", room: "orders:*" });
    expect(refused.error?.code).toBe(ErrorCode.FORBIDDEN);
    // A pattern inside the caps is allowed; a broader pattern that the caps' text happens to match is still filtered per room.
    const sly = await gw.client({ sub: "s", caps: { sub: ["orders:*"] } });
    expect((await sly.subscribe("orders:**")).type).toBe("subscribed");
    await pub.publish("orders:1:secret", { n: 1 });
    await pub.publish("orders:2", { n: 2 });
    const got = await sly.next("message");
    expect(got.room).toBe("orders:2");
    await nothingMore(sly, pub, "orders:3");
    expect(messages(sly).map((f) => f.room)).toEqual(["orders:2", "orders:3"]);
  });

  it("wildcard - tenants stay apart: *, ** and tricks receive nothing of another tenant", async () => {
    gw = await startGateway();
    const other = await gw.client({ sub: "x", tenant: "t-other" });
    const spy = await gw.client({ sub: "spy", tenant: "t-spy" });
    for (const pattern of ["*", "**", "*:**", "t-other*", "**.**"]) expect((await spy.subscribe(pattern)).type).toBe("subscribed");
    for (const bad of [">", "orders.>", "a b*", "***"]) {
      const r = await spy.request({ type: "subscribe", room: bad });
      expect(r.error?.code, bad).toBe(ErrorCode.ROOM_INVALID);
    }
    await other.publish("lobby", { secret: 1 });
    await other.publish("t-spy:lobby", { secret: 2 });
    const own = await gw.client({ sub: "o", tenant: "t-spy" });
    await nothingMore(spy, own, "mine");
    expect(messages(spy).map((f) => payloadOf(f))).not.toContainEqual({ secret: 1 });
    expect(messages(spy).every((f) => f.room === "mine")).toBe(true);
  });

  it("wildcard - one delivery per connection: a room subscription and a matching pattern on one connection get each message once; two patterns too", async () => {
    gw = await startGateway();
    const pub = await gw.client({ sub: "p" });
    const both = await gw.client({ sub: "b" });
    await both.subscribe("chat:*");
    await both.subscribe("chat:**");
    await both.subscribe("chat:general");
    await pub.publish("chat:general", { n: 1 });
    await pub.publish("chat:random", { n: 2 });
    await nothingMore(both, pub, "chat:end");
    expect(messages(both).map((f) => [f.room, payloadOf(f)])).toEqual([
      ["chat:general", { n: 1 }],
      ["chat:random", { n: 2 }],
      ["chat:end", expect.anything()],
    ]);
    // Another connection with one of the patterns still gets its own copy.
    const one = await gw.client({ sub: "o" });
    await one.subscribe("chat:*");
    await pub.publish("chat:random", { n: 3 });
    expect(payloadOf(await one.next("message"))).toEqual({ n: 3 });
  });

  it("wildcard - unsubscribe with the pattern stops it; limits count patterns; since and publish to a pattern are refused", async () => {
    gw = await startGateway({ limits: { maxSubscriptions: 2 } });
    const pub = await gw.client({ sub: "p" });
    const c = await gw.client({ sub: "c" });
    await c.subscribe("a:*");
    await c.subscribe("b:*");
    expect((await c.request({ type: "subscribe", room: "c:*" })).error?.code).toBe(ErrorCode.TOO_MANY_SUBSCRIPTIONS);
    expect((await c.request({ type: "subscribe", room: "room" })).error?.code).toBe(ErrorCode.TOO_MANY_SUBSCRIPTIONS);
    // The same pattern again is idempotent.
    expect((await c.subscribe("a:*")).type).toBe("subscribed");
    expect((await c.request({ type: "unsubscribe", room: "a:*" })).type).toBe("unsubscribed");
    expect((await c.request({ type: "unsubscribe", room: "a:*" })).error?.code).toBe(ErrorCode.NOT_SUBSCRIBED);
    await pub.publish("a:1", { n: 1 });
    await nothingMore(c, pub, "b:1");
    expect(messages(c).map((f) => f.room)).toEqual(["b:1"]);
    expect((await c.request({ type: "subscribe", room: "x:*", since: { offset: 3, epoch: "e" } })).error?.code).toBe(ErrorCode.VALIDATION_ERROR);
    expect((await pub.request({ type: "publish", room: "a:*", payload: new TextEncoder().encode("1") })).error?.code).toBe(ErrorCode.ROOM_INVALID);
    // A closed connection's patterns are gone: the node drops its tenant-wide interest with the last one.
    const bus = gw.server.bus as MemoryBus;
    expect([...bus.tenantSubscriptions]).toEqual(["acme"]);
    await c.close();
    const deadline = Date.now() + 2000;
    while (bus.tenantSubscriptions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(bus.tenantSubscriptions.size).toBe(0);
  });
});
