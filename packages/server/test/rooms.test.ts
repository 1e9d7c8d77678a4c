import { afterEach, describe, expect, it } from "vitest";
import { CloseCode, ErrorCode, HEADER_TIMESTAMP, HEADER_TWIST_ID, PROTOCOL_VERSION } from "@arqon/core";
import { payloadOf, startGateway, type TestGateway } from "../src/testing.js";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

describe("gateway rooms", () => {
  it("welcome - first frame carries client id, server version, protocol and limits", async () => {
    gw = await startGateway({ limits: { publishRatePerSecond: 7 } });
    const alice = await gw.client();
    expect(alice.frames[0]?.type).toBe("welcome");
    expect(alice.welcome.clientId).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(alice.welcome.version).toBe(gw.server.status().version);
    expect(alice.welcome.protocol).toBe(PROTOCOL_VERSION);
    expect(alice.welcome.tenant).toBe("acme");
    expect(alice.welcome.limits).toMatchObject({ maxPayloadBytes: 1048576, publishRatePerSecond: 7, maxPendingBytes: 4194304 });
    expect(alice.welcome.expiresAt).toBeGreaterThan(Date.now());
  });

  it("publish - reaches another subscriber with offset, epoch, timestamp and headers; the publisher gets an ack", async () => {
    gw = await startGateway();
    const alice = await gw.client({ sub: "alice" });
    const bob = await gw.client({ sub: "bob" });
    const sub = await bob.subscribe("lobby");
    expect(sub.type).toBe("subscribed");
    expect(sub.room).toBe("lobby");
    expect(sub.epoch).toBeTruthy();
    const ack = await alice.publish("lobby", { text: "hi" }, { headers: { [HEADER_TWIST_ID]: "t-1" } });
    expect(ack).toMatchObject({ type: "ack", room: "lobby", offset: 1, epoch: sub.epoch });
    expect(ack.id).toBeTruthy();
    const msg = await bob.next("message", "lobby");
    expect(payloadOf(msg)).toEqual({ text: "hi" });
    expect(msg).toMatchObject({ id: ack.id, offset: 1, epoch: sub.epoch, sender: "alice" });
    expect(msg.timestamp).toBeGreaterThan(Date.now() - 5000);
    expect(msg.headers?.[HEADER_TIMESTAMP]).toBe(String(msg.timestamp));
    expect(msg.headers?.[HEADER_TWIST_ID]).toBe("t-1");
  });

  it("publish - the publisher is excluded by default and can opt in with echo", async () => {
    gw = await startGateway();
    const alice = await gw.client();
    await alice.subscribe("lobby");
    await alice.publish("lobby", 1);
    await alice.publish("lobby", 2, { echo: true });
    const msg = await alice.next("message");
    expect(payloadOf(msg)).toBe(2);
    expect(alice.frames.filter((f) => f.type === "message")).toHaveLength(1);
  });

  it("publish - order is kept per room and offsets have no gap", async () => {
    gw = await startGateway();
    const alice = await gw.client();
    const bob = await gw.client({ sub: "bob" });
    await bob.subscribe("lobby");
    for (let i = 0; i < 50; i++) alice.send({ type: "publish", room: "lobby", payload: new TextEncoder().encode(String(i)) });
    const msgs = await bob.collect(50, (f) => f.type === "message");
    expect(msgs.map((m) => payloadOf(m))).toEqual([...Array(50).keys()]);
    expect(msgs.map((m) => m.offset)).toEqual([...Array(50).keys()].map((i) => i + 1));
  });

  it("publish - without permission answers ARQ_FORBIDDEN and keeps the connection", async () => {
    gw = await startGateway();
    const alice = await gw.client({ caps: { sub: ["*"], pub: ["chat:*"] } });
    const denied = await alice.publish("lobby", "x");
    expect(denied).toMatchObject({ type: "error", error: { code: ErrorCode.FORBIDDEN } });
    expect(denied.error?.message).toContain("lobby");
    const ok = await alice.publish("chat:general", "x");
    expect(ok.type).toBe("ack");
    const subDenied = await (await gw.client({ caps: { sub: ["chat:*"] } })).subscribe("lobby");
    expect(subDenied.error?.code).toBe(ErrorCode.FORBIDDEN);
  });

  it("unsubscribe - stops delivery; unsubscribing twice answers ARQ_NOT_SUBSCRIBED", async () => {
    gw = await startGateway();
    const alice = await gw.client();
    const bob = await gw.client({ sub: "bob" });
    await bob.subscribe("lobby");
    expect((await bob.request({ type: "unsubscribe", room: "lobby" })).type).toBe("unsubscribed");
    expect((await bob.request({ type: "unsubscribe", room: "lobby" })).error?.code).toBe(ErrorCode.NOT_SUBSCRIBED);
    await alice.publish("lobby", "gone");
    await bob.subscribe("other");
    await alice.publish("other", "here");
    expect(payloadOf(await bob.next("message"))).toBe("here");
    expect(bob.frames.filter((f) => f.type === "message")).toHaveLength(1);
  });

  it("subscribe - since recovers missed messages before live ones, without duplicates", async () => {
    gw = await startGateway();
    const alice = await gw.client();
    const first = await alice.publish("lobby", "m1");
    await alice.publish("lobby", "m2");
    await alice.publish("lobby", "m3");
    const bob = await gw.client({ sub: "bob" });
    const sub = await bob.subscribe("lobby", { since: { offset: 1, epoch: first.epoch! } });
    expect(sub).toMatchObject({ recovered: true, offset: 3, epoch: first.epoch });
    await alice.publish("lobby", "m4");
    const msgs = await bob.collect(3, (f) => f.type === "message");
    expect(msgs.map((m) => payloadOf(m))).toEqual(["m2", "m3", "m4"]);
    const stale = await (await gw.client({ sub: "carol" })).subscribe("lobby", { since: { offset: 1, epoch: "other-epoch" } });
    expect(stale.recovered).toBe(false);
    expect(stale.reason).toBe("epoch_mismatch");
  });

  it("publish - an idempotency key delivers once and acks the original offset", async () => {
    gw = await startGateway();
    const alice = await gw.client();
    const bob = await gw.client({ sub: "bob" });
    await bob.subscribe("lobby");
    const a = await alice.publish("lobby", "once", { idempotencyKey: "k1" });
    const b = await alice.publish("lobby", "once", { idempotencyKey: "k1" });
    expect(b).toMatchObject({ type: "ack", id: a.id, offset: a.offset });
    await alice.publish("lobby", "after");
    const msgs = await bob.collect(2, (f) => f.type === "message");
    expect(msgs.map((m) => payloadOf(m))).toEqual(["once", "after"]);
  });

  it("codec - a protobuf client and a JSON client see the same message", async () => {
    gw = await startGateway();
    const proto = await gw.client({ sub: "p", codec: "protobuf" });
    const json = await gw.client({ sub: "j" });
    await proto.subscribe("lobby");
    await json.subscribe("lobby");
    const alice = await gw.client();
    const ack = await alice.publish("lobby", { n: 1 });
    const [a, b] = await Promise.all([proto.next("message"), json.next("message")]);
    expect(payloadOf(a)).toEqual({ n: 1 });
    expect(payloadOf(b)).toEqual({ n: 1 });
    expect(a.id).toBe(ack.id);
    expect(b.id).toBe(ack.id);
    expect(proto.ws.protocol).toBe("");
  });

  it("codec - subprotocols choose the codec and are answered without the bearer token", async () => {
    gw = await startGateway();
    const token = await gw.token();
    const c = await gw.client({ token, tokenIn: "protocol", protocols: ["arqon.v1.proto"] });
    expect(c.ws.protocol).toBe("arqon.v1.proto");
    expect(c.frames[0]?.type).toBe("welcome");
    const j = await gw.client({ token, tokenIn: "protocol", protocols: ["arqon.v1.json"] });
    expect(j.ws.protocol).toBe("arqon.v1.json");
  });

  it("shutdown - close sends 1001 going away to every client and refuses new upgrades", async () => {
    gw = await startGateway();
    const alice = await gw.client();
    const bob = await gw.client({ sub: "bob" });
    const closing = gw.server.close();
    const [a, b] = await Promise.all([alice.closed, bob.closed]);
    expect(a.code).toBe(CloseCode.GOING_AWAY);
    expect(b.code).toBe(CloseCode.GOING_AWAY);
    await closing;
    await expect(gw.client()).rejects.toThrow();
  });

  it("codec - a client sending protobuf binary frames gets the same replies", async () => {
    gw = await startGateway();
    const bin = await gw.client({ sub: "bin", codec: "protobuf" });
    const sub = await bin.subscribe("lobby", { requestId: "p1" });
    expect(sub).toMatchObject({ type: "subscribed", requestId: "p1", room: "lobby" });
    const ack = await bin.publish("lobby", { via: "proto" }, { echo: true });
    expect(ack.offset).toBe(1);
    expect(payloadOf(await bin.next("message"))).toEqual({ via: "proto" });
    bin.sendRaw(new Uint8Array([0x0a, 0xff, 0xff, 0xff]));
    expect((await bin.next("error")).error?.code).toBe(ErrorCode.FRAME_MALFORMED);
  });

  it("requests - hello answers welcome, ping answers pong, history answers a page", async () => {
    gw = await startGateway();
    const alice = await gw.client();
    const hello = await alice.request({ type: "hello", version: "test/1" });
    expect(hello).toMatchObject({ type: "welcome", clientId: alice.clientId });
    expect((await alice.request({ type: "ping" })).type).toBe("pong");
    for (let i = 1; i <= 5; i++) await alice.publish("log", i);
    const page = await alice.request({ type: "history", room: "log", history: { fromOffset: 2, limit: 2 } });
    expect(page.type).toBe("history_page");
    expect(page.messages?.map((m) => [m.offset, payloadOf(m)])).toEqual([
      [2, 2],
      [3, 3],
    ]);
    expect(page.offset).toBe(5);
  });

  it("limits - subscriptions past maxSubscriptions answer ARQ_TOO_MANY_SUBSCRIPTIONS", async () => {
    gw = await startGateway({ limits: { maxSubscriptions: 2 } });
    const alice = await gw.client();
    await alice.subscribe("a");
    await alice.subscribe("b");
    expect((await alice.subscribe("a")).type).toBe("subscribed");
    expect((await alice.subscribe("c")).error?.code).toBe(ErrorCode.TOO_MANY_SUBSCRIPTIONS);
  });

  it("limits - a tenant-wide publish rate applies across its connections", async () => {
    gw = await startGateway({ tenantLimits: { tiny: { publishRatePerSecond: 1, publishBurst: 2 } } });
    const a = await gw.client({ tenant: "tiny" });
    const b = await gw.client({ tenant: "tiny", sub: "b" });
    expect((await a.publish("x", 1)).type).toBe("ack");
    expect((await b.publish("x", 2)).type).toBe("ack");
    expect((await a.publish("x", 3)).error?.code).toBe(ErrorCode.RATE_LIMITED);
    const other = await gw.client({ tenant: "roomy" });
    expect((await other.publish("x", 1)).type).toBe("ack");
  });

  it("deflate - with permessage-deflate enabled, frames still arrive whole and in order", async () => {
    gw = await startGateway({ perMessageDeflate: { threshold: 64 } });
    const alice = await gw.client();
    const bob = await gw.client({ sub: "bob" });
    expect(bob.ws.extensions).toContain("permessage-deflate");
    await bob.subscribe("z");
    const big = "abc".repeat(10_000);
    for (let i = 0; i < 20; i++) alice.send({ type: "publish", room: "z", payload: new TextEncoder().encode(JSON.stringify({ i, big })) });
    const got = await bob.collect(20, (f) => f.type === "message");
    expect(got.map((m) => (payloadOf(m) as { i: number }).i)).toEqual([...Array(20).keys()]);
    expect((payloadOf(got[19]!) as { big: string }).big).toBe(big);
  });
});
