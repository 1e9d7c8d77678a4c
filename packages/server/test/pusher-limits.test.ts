import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "@arqon/core";
import type { TestGateway } from "../src/testing.js";
import { callApi } from "./api-client.js";
import { APPS, RawPusher, hmac, pusherServer, sleep, startPusherGateway } from "./pusher-helpers.js";

let gw: TestGateway | undefined;
const sockets: RawPusher[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.ws.terminate();
  await gw?.close();
  gw = undefined;
});

async function open(key = APPS.acme.key): Promise<RawPusher> {
  const s = await RawPusher.open(gw!, key);
  sockets.push(s);
  return s;
}

describe("Pusher mode: keepalive, limits and bad input", () => {
  it("pusher - the server pings a silent client after activity_timeout and closes with 4201 when no pong comes; a client that answers stays", async () => {
    gw = await startPusherGateway({ pusher: { apps: [APPS.acme], activityTimeoutSec: 1, pongTimeoutMs: 300 } });
    const silent = await open();
    const polite = await open();
    await polite.next("pusher:ping", undefined, 2500);
    polite.send({ event: "pusher:pong", data: {} });
    await silent.next("pusher:ping", undefined, 2500);
    const closed = await Promise.race([silent.closed, sleep(2000).then(() => ({ code: 0, reason: "still open" }))]);
    expect(closed.code).toBe(4201);
    expect(polite.ws.readyState).toBe(polite.ws.OPEN);
  });

  it("pusher - the tenant's connection quota is 4004, a disabled tenant is 4003 (at connect and for open sockets), HTTP API 403", async () => {
    const KEY = "operator-key-of-the-pusher-tests-0123456";
    gw = await startPusherGateway({ operatorKeys: [KEY], tenantLimits: { beta: { maxConnections: 1 } } });
    const first = await open(APPS.beta.key);
    const { WebSocket } = await import("ws");
    const closeCode = (key: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${gw!.port}/app/${key}?protocol=7`);
        ws.on("close", (code) => resolve(code));
      });
    expect(await closeCode(APPS.beta.key)).toBe(4004);
    first.close();
    await first.closed;
    await sleep(50);
    const again = await open(APPS.beta.key);
    expect(again.socketId).toMatch(/^\d+\.\d+$/);

    const live = await open(APPS.acme.key);
    expect((await callApi(gw.httpUrl, "POST", "/api/v1/tenants", { name: "acme" }, KEY)).status).toBe(201);
    expect((await callApi(gw.httpUrl, "POST", "/api/v1/tenants/acme/disable", undefined, KEY)).status).toBe(200);
    expect((await Promise.race([live.closed, sleep(3000).then(() => ({ code: 0, reason: "" }))])).code).toBe(4003);
    expect(await closeCode(APPS.acme.key)).toBe(4003);
    await expect(pusherServer(gw, APPS.acme).trigger("c", "e", {})).rejects.toMatchObject({ status: 403 });
  });

  it("pusher - a refused quota upgrade reports 4004 in pusher:error before the close", async () => {
    gw = await startPusherGateway({ tenantLimits: { beta: { maxConnections: 1 } } });
    await open(APPS.beta.key);
    const { WebSocket } = await import("ws");
    const result = await new Promise<{ code: number; error: unknown }>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${gw!.port}/app/${APPS.beta.key}?protocol=7`);
      let error: unknown;
      ws.on("message", (d: Buffer) => (error = JSON.parse(d.toString())));
      ws.on("close", (code) => resolve({ code, error }));
    });
    expect(result).toEqual({ code: 4004, error: { event: "pusher:error", data: { code: 4004, message: "over connection quota" } } });
  });

  it("pusher - maxSubscriptions bounds a socket's channels; unsubscribe stops delivery", async () => {
    gw = await startPusherGateway({ limits: { maxSubscriptions: 2 } });
    const s = await open();
    for (const c of ["a", "b"]) {
      s.send({ event: "pusher:subscribe", data: { channel: c } });
      await s.next("pusher_internal:subscription_succeeded", c);
    }
    s.send({ event: "pusher:subscribe", data: { channel: "c" } });
    const refused = await s.next("pusher:subscription_error", "c");
    expect(JSON.parse(refused.data as string)).toMatchObject({ status: 429, arqon_code: ErrorCode.TOO_MANY_SUBSCRIPTIONS });
    // Subscribing again to a channel it has answers succeeded again and costs nothing.
    s.send({ event: "pusher:subscribe", data: { channel: "a" } });
    await s.next("pusher_internal:subscription_succeeded", "a");

    const sdk = pusherServer(gw, APPS.acme);
    await sdk.trigger("a", "one", "1");
    expect((await s.next("one", "a")).data).toBe("1");
    s.send({ event: "pusher:unsubscribe", data: { channel: "a" } });
    s.send({ event: "pusher:ping", data: {} });
    await s.next("pusher:pong");
    await sdk.trigger("a", "two", "2");
    await sdk.trigger("b", "three", "3");
    await s.next("three", "b");
    expect(s.frames.filter((f) => f.event === "two")).toEqual([]);
    // With a free slot again, a new channel is accepted.
    s.send({ event: "pusher:subscribe", data: { channel: "c" } });
    await s.next("pusher_internal:subscription_succeeded", "c");
  });

  it("pusher - garbage frames get pusher:error and never disturb the socket or others; an oversized frame closes only its own socket (1009)", async () => {
    gw = await startPusherGateway({ limits: { maxFrameBytes: 4096 } });
    const bad = await open();
    const other = await open();
    other.send({ event: "pusher:subscribe", data: { channel: "calm" } });
    await other.next("pusher_internal:subscription_succeeded", "calm");
    const garbage: unknown[] = [
      "[]",
      "null",
      "42",
      '"str"',
      "{",
      { event: 5 },
      { event: "pusher:subscribe" },
      { event: "pusher:subscribe", data: "not json" },
      { event: "pusher:subscribe", data: { channel: 7 } },
      { event: "pusher:subscribe", data: { channel: "" } },
      { event: "pusher:subscribe", data: { channel: "x".repeat(165) } },
      { event: "pusher:subscribe", data: { channel: "private-p", auth: 12 } },
      { event: "pusher:subscribe", data: { channel: "private-p", auth: "acme-key:" + "0".repeat(64) } },
      { event: "pusher:subscribe", data: { channel: "presence-p", auth: "x" } },
      { event: "pusher:subscribe", data: { channel: "presence-p", auth: "x", channel_data: { user_id: 1 } } },
      { event: "pusher:unsubscribe", data: { channel: "never" } },
      { event: "client-x" },
      { event: "client-x", channel: "calm", data: {} },
      { event: "unknown:event" },
      { event: "pusher_internal:member_added", channel: "calm", data: "{}" },
      JSON.stringify({ event: "pusher:subscribe", data: { channel: "deep" }, junk: JSON.parse("[".repeat(200) + "]".repeat(200)) as unknown }),
    ];
    for (const g of garbage) bad.send(g);
    bad.send({ event: "pusher:ping", data: {} });
    await bad.next("pusher:pong");
    expect(bad.frames.filter((f) => f.event === "pusher:error").length).toBeGreaterThanOrEqual(12);
    // A well-formed subscription still works on the same socket.
    bad.send({ event: "pusher:subscribe", data: { channel: "calm" } });
    await bad.next("pusher_internal:subscription_succeeded", "calm");

    bad.send(JSON.stringify({ event: "client-big", channel: "calm", data: "x".repeat(5000) }));
    expect((await bad.closed).code).toBe(1009);
    await pusherServer(gw, APPS.acme).trigger("calm", "still", "here");
    expect((await other.next("still", "calm")).data).toBe("here");
  });

  it("pusher - presence channel_data is bound by maxPresenceInfoBytes and must carry a user_id; the signature covers channel_data", async () => {
    gw = await startPusherGateway({ limits: { maxPresenceInfoBytes: 64 }, presenceOptions: { disabledRooms: ["presence-off*"] } });
    const s = await open();
    const sign = (channel: string, data: string) => `${APPS.acme.key}:${hmac(APPS.acme.secret, `${s.socketId}:${channel}:${data}`)}`;
    const big = JSON.stringify({ user_id: "u", user_info: { bio: "x".repeat(100) } });
    s.send({ event: "pusher:subscribe", data: { channel: "presence-a", auth: sign("presence-a", big), channel_data: big } });
    expect(JSON.parse((await s.next("pusher:subscription_error", "presence-a")).data as string)).toMatchObject({ arqon_code: ErrorCode.PRESENCE_INFO_TOO_LARGE });
    const noUser = JSON.stringify({ user_info: {} });
    s.send({ event: "pusher:subscribe", data: { channel: "presence-b", auth: sign("presence-b", noUser), channel_data: noUser } });
    expect(JSON.parse((await s.next("pusher:subscription_error", "presence-b")).data as string)).toMatchObject({ status: 400 });
    // Signed for one channel_data, sent with another: refused.
    const mine = JSON.stringify({ user_id: "me" });
    s.send({ event: "pusher:subscribe", data: { channel: "presence-c", auth: sign("presence-c", mine), channel_data: JSON.stringify({ user_id: "admin" }) } });
    expect(JSON.parse((await s.next("pusher:subscription_error", "presence-c")).data as string)).toMatchObject({ status: 401, arqon_code: ErrorCode.AUTH_INVALID });
    // A room without presence (server configuration) takes no presence subscription.
    s.send({ event: "pusher:subscribe", data: { channel: "presence-off1", auth: sign("presence-off1", mine), channel_data: mine } });
    expect(JSON.parse((await s.next("pusher:subscription_error", "presence-off1")).data as string)).toMatchObject({ arqon_code: ErrorCode.PRESENCE_DISABLED });
    // Signed for another socket: refused.
    const otherSig = `${APPS.acme.key}:${hmac(APPS.acme.secret, `1.2:private-d`)}`;
    s.send({ event: "pusher:subscribe", data: { channel: "private-d", auth: otherSig } });
    expect(JSON.parse((await s.next("pusher:subscription_error", "private-d")).data as string)).toMatchObject({ status: 401 });
    s.send({ event: "pusher:subscribe", data: { channel: "presence-c", auth: sign("presence-c", mine), channel_data: mine } });
    const ok = await s.next("pusher_internal:subscription_succeeded", "presence-c");
    expect(JSON.parse(ok.data as string)).toEqual({ presence: { ids: ["me"], hash: { me: null }, count: 1 } });
  });

  it("pusher - client events over the connection's publish rate get pusher:error 4301 and the connection stays", async () => {
    gw = await startPusherGateway({ limits: { publishRatePerSecond: 1, publishBurst: 2 } });
    const a = await open();
    const b = await open();
    const sign = (s: RawPusher, channel: string) => `${APPS.acme.key}:${hmac(APPS.acme.secret, `${s.socketId}:${channel}`)}`;
    for (const s of [a, b]) {
      s.send({ event: "pusher:subscribe", data: { channel: "private-rl", auth: sign(s, "private-rl") } });
      await s.next("pusher_internal:subscription_succeeded", "private-rl");
    }
    for (let i = 0; i < 4; i++) a.send({ event: "client-n", channel: "private-rl", data: { i } });
    const limited = await a.next("pusher:error");
    expect(limited.data).toMatchObject({ code: 4301, arqon_code: ErrorCode.RATE_LIMITED });
    await b.next("client-n", "private-rl");
    await b.next("client-n", "private-rl");
    a.send({ event: "pusher:ping", data: {} });
    await a.next("pusher:pong");
    expect(b.frames.filter((f) => f.event === "client-n")).toEqual([]);
  });

  it("pusher - a Pusher socket that stops reading is cut as a slow consumer; the other subscribers get every message", async () => {
    gw = await startPusherGateway({ limits: { maxPendingBytes: 64 * 1024 } });
    const stuck = await open();
    const reader = await open();
    for (const s of [stuck, reader]) {
      s.send({ event: "pusher:subscribe", data: { channel: "firehose" } });
      await s.next("pusher_internal:subscription_succeeded", "firehose");
    }
    (stuck.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    // 12 MB in all: more than loopback socket buffers hold, so the server's own backlog for the stuck socket grows.
    const text = "x".repeat(12_000);
    // One event-loop turn per message, so each is written out before the next (the backlog cap counts what is queued).
    for (let i = 0; i < 1000; i++) {
      await gw.server.publish("acme", "firehose", { i, text }, { headers: { event: "tick" } });
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (let i = 0; i < 400 && reader.frames.filter((f) => f.event === "tick").length < 1000; i++) await sleep(25);
    expect(reader.frames.filter((f) => f.event === "tick").length).toBe(1000);
    (stuck.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await Promise.race([stuck.closed, sleep(3000).then(() => ({ code: 0, reason: "still open" }))]);
    expect([4100, 1006]).toContain(closed.code);
    expect(stuck.frames.filter((f) => f.event === "tick").length).toBeLessThan(1000);
  });
});
