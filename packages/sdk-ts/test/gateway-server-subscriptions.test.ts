import { afterEach, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "@arqon/server/testing";
import { ArqonClient, type ArqonClientOptions, type Room, type RoomMessage } from "../src/index.js";
import "../src/protobuf.js";
import { CuttableProxy } from "./helpers/proxy.js";
import { collect, nextEvent, until } from "./helpers/wait.js";

const KEY = "operator-key-of-the-sdk-server-subs-0123";

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function gateway(): Promise<TestGateway> {
  const gw = await startGateway({ operatorKeys: [KEY] });
  cleanup.push(() => gw.close());
  return gw;
}

async function client(gw: TestGateway, sub: string, options: ArqonClientOptions = {}, url = gw.url): Promise<ArqonClient> {
  const c = new ArqonClient(url, { token: await gw.token({ sub }), reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...options });
  cleanup.push(() => c.close());
  await c.connect();
  return c;
}

/** The application backend: a server-API call with the operator key. */
async function backend(gw: TestGateway, action: "subscribe" | "unsubscribe" | "publish", body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${gw.httpUrl}/api/v1/tenants/acme/${action}`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

/** Subscribers of `room` on the gateway, as its rooms route counts them. */
async function subscribers(gw: TestGateway, room: string): Promise<number> {
  const res = await fetch(`${gw.httpUrl}/api/v1/tenants/acme/rooms?prefix=${room}`, { headers: { authorization: `Bearer ${KEY}` } });
  const body = (await res.json()) as { rooms: Array<{ room: string; subscribers: number }> };
  return body.rooms.find((r) => r.room === room)?.subscribers ?? 0;
}

describe("sdk - server-side subscriptions", () => {
  for (const codec of ["json", "protobuf"] as const) {
    it(`serverSubscribed - the backend's subscribe hands the client a subscribed Room that receives the room's messages (${codec})`, async () => {
      const gw = await gateway();
      const alice = await client(gw, "alice", { codec });
      const got: RoomMessage[] = [];
      const seen: Promise<Room> = nextEvent(alice, "serverSubscribed");
      alice.on("serverSubscribed", (room) => room.on("message", (m: RoomMessage) => got.push(m)));
      await backend(gw, "publish", { room: "news", payload: { n: 0 } });
      expect(await backend(gw, "subscribe", { user: "alice", room: "news" })).toEqual({ subscribedHere: 1 });
      const room = await seen;
      expect(room).toBe(alice.room("news"));
      expect(room.subscribed).toBe(true);
      expect(room.position).toEqual({ offset: 1, epoch: expect.any(String) });
      expect(room.presence.current.map((m) => m.userId)).toEqual(["alice"]);
      await backend(gw, "publish", { room: "news", payload: { n: 1 } });
      await until(() => got.length === 1);
      expect(got[0]).toMatchObject({ room: "news", payload: { n: 1 }, offset: 2, sender: "operator" });
    });
  }

  it("serverSubscribed - the room's subscribed event has reason server; the backend's unsubscribe ends it with reason server", async () => {
    const gw = await gateway();
    const alice = await client(gw, "alice");
    const room = alice.room("news");
    const subscribed = nextEvent(room, "subscribed");
    await backend(gw, "subscribe", { user: "alice", room: "news" });
    expect(await subscribed).toMatchObject({ room: "news", reason: "server", resubscribed: false });
    expect((await subscribed).recovered).toBeUndefined();
    const got = collect(room, "message");
    const ended = nextEvent(room, "unsubscribed");
    expect(await backend(gw, "unsubscribe", { user: "alice", room: "news" })).toEqual({ unsubscribedHere: 1 });
    expect(await ended).toEqual({ room: "news", reason: "server" });
    expect(room.subscribed).toBe(false);
    await backend(gw, "publish", { room: "news", payload: { late: true } });
    // A round trip after the publish: anything the server delivered would have arrived by now.
    await alice.ping();
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([]);
  });

  it("room.unsubscribe() ends a server-side subscription on the server too", async () => {
    const gw = await gateway();
    const alice = await client(gw, "alice");
    const seen: Promise<Room> = nextEvent(alice, "serverSubscribed");
    await backend(gw, "subscribe", { user: "alice", room: "news" });
    const room = await seen;
    expect(await subscribers(gw, "news")).toBe(1);
    const ended = nextEvent(room, "unsubscribed");
    await room.unsubscribe();
    expect(await ended).toEqual({ room: "news", reason: "client" });
    expect(await subscribers(gw, "news")).toBe(0);
  });

  it("reconnect - the client does not renew a server-side subscription (the backend subscribes again); its own subscriptions are renewed", async () => {
    const gw = await gateway();
    const proxy = await CuttableProxy.start(gw.port);
    cleanup.push(() => proxy.close());
    const alice = await client(gw, "alice", {}, `ws://127.0.0.1:${proxy.port}/ws`);
    await alice.room("mine").subscribe();
    const first: Promise<Room> = nextEvent(alice, "serverSubscribed");
    await backend(gw, "subscribe", { user: "alice", room: "news" });
    const news: Room = await first;
    const got = collect(news, "message");

    const reconnected = nextEvent(alice, "connected", (e) => e.reconnected);
    proxy.cut();
    await reconnected;
    await until(() => alice.room("mine").subscribed, 3000, "the client's own room renewed");
    expect(news.subscribed).toBe(false);
    expect(await subscribers(gw, "mine")).toBe(1);
    expect(await subscribers(gw, "news")).toBe(0);

    // What a backend does on a connect event: subscribe the user again.
    const again = nextEvent(alice, "serverSubscribed");
    expect(await backend(gw, "subscribe", { user: "alice", room: "news" })).toEqual({ subscribedHere: 1 });
    expect(await again).toBe(news);
    await backend(gw, "publish", { room: "news", payload: { after: "reconnect" } });
    await until(() => got.length === 1);
    expect(got[0]!.payload).toEqual({ after: "reconnect" });
  });

  it("room.subscribe() on a server-side room makes it the client's own: renewed after a reconnect", async () => {
    const gw = await gateway();
    const proxy = await CuttableProxy.start(gw.port);
    cleanup.push(() => proxy.close());
    const alice = await client(gw, "alice", {}, `ws://127.0.0.1:${proxy.port}/ws`);
    const seen: Promise<Room> = nextEvent(alice, "serverSubscribed");
    await backend(gw, "subscribe", { user: "alice", room: "news" });
    const room = await seen;
    await room.subscribe();
    const renewed = nextEvent(room, "subscribed", (e) => e.resubscribed);
    proxy.cut();
    expect(await renewed).toMatchObject({ room: "news", resubscribed: true });
    expect(await subscribers(gw, "news")).toBe(1);
  });
});
