import { afterEach, describe, expect, it } from "vitest";
import { createArqonServer, type ArqonServer } from "@arqon/server";
import { mintToken, startGateway, type TestGateway } from "@arqon/server/testing";
import { ArqonError, ErrorCode } from "@arqon/core";
import { ArqonClient, ArqonRequestError, CloseCode, type ArqonClientOptions, type RoomMessage } from "../src/index.js";
import "../src/protobuf.js";
import { CuttableProxy } from "./helpers/proxy.js";
import { collect, nextEvent, until } from "./helpers/wait.js";

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function gateway(): Promise<TestGateway> {
  const gw = await startGateway();
  cleanup.push(() => gw.close());
  return gw;
}

async function client(gw: { url: string; token: TestGateway["token"] }, sub: string, options: ArqonClientOptions = {}, claims: Parameters<TestGateway["token"]>[0] = {}): Promise<ArqonClient> {
  const c = new ArqonClient(gw.url, { token: await gw.token({ sub, ...claims }), reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...options });
  cleanup.push(() => c.close());
  await c.connect();
  return c;
}

describe("gateway - connect and rooms", () => {
  it("connect - welcome fills the connected event: client id, protocol 1.1 (the default), limits, token expiry", async () => {
    const gw = await gateway();
    const c = new ArqonClient(gw.url, { token: await gw.token({ sub: "alice" }) });
    cleanup.push(() => c.close());
    const connected = nextEvent(c, "connected");
    await c.connect();
    const event = await connected;
    expect(event.clientId).toMatch(/.+/);
    expect(event.protocol).toBe("1.1");
    expect(event.reconnected).toBe(false);
    expect(event.limits.maxPayloadBytes).toBeGreaterThan(0);
    expect(event.expiresAt).toBeGreaterThan(Date.now());
    expect(c.status.type).toBe("connected");
  });

  it("connect - the token can travel in ?token= instead of the subprotocol list", async () => {
    const gw = await gateway();
    const c = await client(gw, "carol", { tokenTransport: "query" });
    expect(c.connected).toBe(true);
    await expect(c.room("lobby").publish({ via: "query" })).resolves.toMatchObject({ offset: 1 });
  });

  it("rooms - publish resolves with the ack; the other subscriber gets the message with headers and sender", async () => {
    const gw = await gateway();
    const alice = await client(gw, "alice");
    const bob = await client(gw, "bob");
    const got: RoomMessage[] = [];
    const sub = await bob.room("lobby").subscribe((m) => got.push(m));
    expect(sub).toMatchObject({ room: "lobby", resubscribed: false });
    const ack = await alice.room("lobby").publish({ text: "hi" }, { headers: { "x-twist-id": "t1" } });
    expect(ack.id).toMatch(/.+/);
    expect(ack.offset).toBe(1);
    expect(ack.epoch).toMatch(/.+/);
    await until(() => got.length === 1);
    expect(got[0]).toMatchObject({ id: ack.id, room: "lobby", payload: { text: "hi" }, format: "json", offset: 1, epoch: ack.epoch, sender: "alice" });
    expect(got[0]!.headers["x-twist-id"]).toBe("t1");
    expect(Number(got[0]!.headers["x-timestamp"])).toBeGreaterThan(0);
  });

  it("rooms - the publisher is excluded unless echo is set; binary payloads arrive as bytes", async () => {
    const gw = await gateway();
    const alice = await client(gw, "alice");
    const got: RoomMessage[] = [];
    await alice.room("lobby").subscribe((m) => got.push(m));
    await alice.room("lobby").publish({ n: 1 });
    await alice.room("lobby").publish(new Uint8Array([1, 2, 3]), { echo: true });
    await until(() => got.length === 1);
    await alice.ping();
    expect(got).toHaveLength(1);
    expect(got[0]!.format).toBe("binary");
    expect([...(got[0]!.payload as Uint8Array)]).toEqual([1, 2, 3]);
  });

  it("rooms - a publish repeated with the same idempotency key is delivered once", async () => {
    const gw = await gateway();
    const alice = await client(gw, "alice");
    const bob = await client(gw, "bob");
    const got: RoomMessage[] = [];
    await bob.room("orders").subscribe((m) => got.push(m));
    const first = await alice.room("orders").publish({ order: 1 }, { idempotencyKey: "order-1" });
    const again = await alice.room("orders").publish({ order: 1 }, { idempotencyKey: "order-1" });
    expect(again.id).toBe(first.id);
    expect(again.offset).toBe(first.offset);
    expect([first.duplicate, again.duplicate]).toEqual([false, true]);
    await alice.room("orders").publish({ order: 2 });
    await until(() => got.length === 2);
    expect(got.map((m) => m.payload)).toEqual([{ order: 1 }, { order: 2 }]);
  });

  it("rooms - unsubscribe stops delivery", async () => {
    const gw = await gateway();
    const alice = await client(gw, "alice");
    const bob = await client(gw, "bob");
    const got: RoomMessage[] = [];
    const room = bob.room("lobby");
    await room.subscribe((m) => got.push(m));
    await alice.room("lobby").publish(1);
    await until(() => got.length === 1);
    await room.unsubscribe();
    expect(room.subscribed).toBe(false);
    await alice.room("lobby").publish(2);
    await bob.ping();
    expect(got.map((m) => m.payload)).toEqual([1]);
  });

  it("history - pages forwards and backwards", async () => {
    const gw = await gateway();
    const alice = await client(gw, "alice");
    const room = alice.room("log");
    for (let i = 1; i <= 5; i++) await room.publish({ i });
    const page = await room.history({ fromOffset: 2, limit: 2 });
    expect(page.messages.map((m) => [m.offset, m.payload])).toEqual([
      [2, { i: 2 }],
      [3, { i: 3 }],
    ]);
    const back = await room.history({ reverse: true, limit: 2 });
    expect(back.messages.map((m) => m.offset).sort()).toEqual([4, 5]);
  });

  it("codec - a protobuf client and a JSON client share a room", async () => {
    const gw = await gateway();
    const proto = await client(gw, "pb", { codec: "protobuf" });
    const json = await client(gw, "js");
    const got: RoomMessage[] = [];
    await proto.room("mixed").subscribe((m) => got.push(m));
    await json.room("mixed").publish({ from: "json" });
    await until(() => got.length === 1);
    expect(got[0]!.payload).toEqual({ from: "json" });
    const ack = await proto.room("mixed").publish({ from: "proto" });
    expect(ack.offset).toBe(2);
  });
});

describe("gateway - presence and state", () => {
  it("presence - members on subscribe, join and leave events, setMeta visible to others", async () => {
    const gw = await gateway();
    const alice = await client(gw, "alice");
    const bob = await client(gw, "bob");
    const room = alice.room("lobby");
    await room.subscribe(undefined, { meta: { name: "Alice" } });
    const joined = nextEvent(room.presence, "join");
    await bob.room("lobby").subscribe();
    expect(await joined).toMatchObject({ userId: "bob", clientId: bob.clientId });
    const list = await bob.room("lobby").presence.members();
    expect(list.map((m) => m.userId).sort()).toEqual(["alice", "bob"]);
    expect(list.find((m) => m.userId === "alice")!.info).toEqual({ name: "Alice" });
    const left = nextEvent(room.presence, "leave");
    await bob.close();
    expect(await left).toMatchObject({ userId: "bob" });
    expect(room.presence.current.map((m) => m.userId)).toEqual(["alice"]);
    await room.presence.setMeta({ name: "Alice", status: "away" });
    expect((await room.presence.members())[0]!.info).toEqual({ name: "Alice", status: "away" });
  });

  it("state - set, change events to members, compare-and-set conflict is ARQ_STATE_CONFLICT", async () => {
    const gw = await gateway();
    const alice = await client(gw, "alice");
    const bob = await client(gw, "bob");
    await bob.room("quiz").subscribe();
    const change = nextEvent(bob.room("quiz").state, "change");
    const written = await alice.room("quiz").state.set("mode", "lecture", { ifVersion: 0 });
    expect(written.version).toBe(1);
    expect(await change).toEqual([expect.objectContaining({ key: "mode", value: "lecture", version: 1, deleted: false })]);
    const err = await alice.room("quiz").state.set("mode", "quiz", { ifVersion: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArqonRequestError);
    expect((err as ArqonRequestError).code).toBe(ErrorCode.STATE_CONFLICT);
    await alice.room("quiz").state.set("mode", "quiz", { ifVersion: 1 });
    expect(await alice.room("quiz").state.get()).toMatchObject({ mode: { value: "quiz", version: 2 } });
    await until(() => bob.room("quiz").state.current.mode?.version === 2);
  });
});

describe("gateway - commands and errors", () => {
  it("commands - result, unknown command NOT_FOUND, admin-only AUTHORIZATION_ERROR, handler error code", async () => {
    const gw = await gateway();
    gw.server.registerCommand("op.math.add", (ctx) => {
      const { a, b } = ctx.args as { a: number; b: number };
      if (typeof a !== "number") throw new ArqonError(ErrorCode.VALIDATION_ERROR, "a must be a number");
      return { sum: a + b };
    });
    gw.server.registerCommand("op.admin.reset", () => "ok", { adminOnly: true });
    const alice = await client(gw, "alice");
    await expect(alice.command("op.math.add", { a: 2, b: 3 })).resolves.toEqual({ sum: 5 });
    const codes = await Promise.all(
      [alice.command("op.nope.run"), alice.command("op.admin.reset"), alice.command("op.math.add", { a: "x" })].map((p) =>
        p.then(
          () => "resolved",
          (e: unknown) => (e instanceof ArqonRequestError ? e.code : String(e)),
        ),
      ),
    );
    expect(codes).toEqual([ErrorCode.NOT_FOUND, ErrorCode.AUTHORIZATION_ERROR, ErrorCode.VALIDATION_ERROR]);
  });

  it("errors - forbidden publish and invalid room names reject with their codes; the connection stays up", async () => {
    const gw = await gateway();
    const alice = await client(gw, "alice", {}, { caps: { sub: ["lobby"], pub: ["lobby"] } });
    const forbidden = await alice.room("secret").publish(1).catch((e: unknown) => e);
    expect(forbidden).toMatchObject({ code: ErrorCode.FORBIDDEN });
    const sub = await alice.room("secret").subscribe().catch((e: unknown) => e);
    expect(sub).toMatchObject({ code: ErrorCode.FORBIDDEN });
    const bad = await alice.room("bad room!").publish(1).catch((e: unknown) => e);
    expect(bad).toMatchObject({ code: ErrorCode.ROOM_INVALID });
    await expect(alice.room("lobby").publish(1)).resolves.toMatchObject({ offset: 1 });
    expect(alice.connected).toBe(true);
  });
});

describe("gateway - reconnect", () => {
  it("restart - the server restarts on the same port: the client reconnects and resubscribes (new epoch: recovered false)", async () => {
    const secret = "restart-secret-0123456789";
    const first = await startGateway({ secret });
    let server: ArqonServer = first.server;
    cleanup.push(() => server.close());
    const port = first.port;
    const start = async (): Promise<ArqonServer> => {
      const s = createArqonServer({ auth: { secret }, logger: first.server.logger, processMetrics: false });
      await s.listen(port, "127.0.0.1");
      return s;
    };
    const url = `ws://127.0.0.1:${port}/ws`;
    const token = (sub: string): Promise<string> => mintToken(secret, { sub });
    const alice = await client({ url, token: (c) => token(c?.sub ?? "x") }, "alice");
    const got: RoomMessage[] = [];
    const room = alice.room("lobby");
    await room.subscribe((m) => got.push(m));
    await server.publish("acme", "lobby", { n: 1 });
    await until(() => got.length === 1);
    const subscribed = nextEvent(room, "subscribed", (e) => e.resubscribed);
    const disconnected = nextEvent(alice, "disconnected");
    await server.close();
    expect(await disconnected).toMatchObject({ code: CloseCode.GOING_AWAY, willReconnect: true });
    server = await start();
    const event = await subscribed;
    expect(event.recovered).toBe(false);
    expect(event.reason).toBe("epoch_mismatch");
    await server.publish("acme", "lobby", { n: 2 });
    await until(() => got.length === 2);
    expect(got.map((m) => m.payload)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(alice.status).toMatchObject({ type: "connected", reconnected: true });
  });

  for (const protocol of ["1.1", "1.0"] as const) {
    it(`recovery - a dropped network link: the client resubscribes from its last offset and receives what it missed, in order (protocol ${protocol})`, async () => {
      const gw = await gateway();
      const proxy = await CuttableProxy.start(gw.port);
      cleanup.push(() => proxy.close());
      const url = `ws://127.0.0.1:${proxy.port}/ws`;
      const bob = await client({ url, token: gw.token }, "bob", { protocol });
      const alice = await client(gw, "alice");
      const got: unknown[] = [];
      const room = bob.room("feed");
      await room.subscribe((m) => got.push(m.payload));
      await alice.room("feed").publish(1);
      await until(() => got.length === 1);
      const disconnected = nextEvent(bob, "disconnected");
      const resubscribed = nextEvent(room, "subscribed", (e) => e.resubscribed, 5000);
      proxy.cut();
      expect((await disconnected).willReconnect).toBe(true);
      // Published while bob is away (his server-side socket may linger; these are in history either way).
      await alice.room("feed").publish(2);
      await alice.room("feed").publish(3);
      const event = await resubscribed;
      expect(event.recovered).toBe(true);
      await until(() => got.length === 3);
      await alice.room("feed").publish(4);
      await until(() => got.length === 4);
      expect(got).toEqual([1, 2, 3, 4]);
      expect(room.position).toEqual({ offset: 4, epoch: event.position.epoch });
    });
  }

  it("auth failure - a refused token (HTTP 401) closes the client for good: no reconnect attempts", async () => {
    const gw = await gateway();
    const c = new ArqonClient(gw.url, { token: "not-a-jwt", reconnect: { initialDelayMs: 10 } });
    cleanup.push(() => c.close());
    const reconnecting = collect(c, "reconnecting");
    const closed = nextEvent(c, "closed");
    const err = await c.connect().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ARQ_CLIENT_CLOSED" });
    expect(await closed).toEqual({ code: CloseCode.AUTH_INVALID, reason: "upgrade refused with HTTP 401" });
    await new Promise((r) => setTimeout(r, 100));
    expect(reconnecting).toEqual([]);
    expect(gw.server.connectionCount).toBe(0);
  });

  it("backoff - with the server gone, delays stay under maxDelayMs and the client gives up after maxAttempts", async () => {
    const gw = await startGateway();
    const alice = await client(gw, "alice", { reconnect: { initialDelayMs: 10, maxDelayMs: 40, maxAttempts: 4 } });
    const reconnecting = collect(alice, "reconnecting");
    const closed = nextEvent(alice, "closed", undefined, 5000);
    await gw.close();
    const event = await closed;
    expect(reconnecting.map((r) => r.attempt)).toEqual([1, 2, 3, 4]);
    for (const r of reconnecting) {
      expect(r.delay).toBeGreaterThanOrEqual(0);
      expect(r.delay).toBeLessThan(Math.min(40, 10 * 2 ** (r.attempt - 1)));
    }
    expect(event.reason).toMatch(/gave up after 4 attempts/);
  });

  it("token - refreshed with an auth frame before expiry, without reconnecting", async () => {
    const gw = await gateway();
    let calls = 0;
    const c = new ArqonClient(gw.url, { getToken: () => gw.token({ sub: "alice", ttlSec: ++calls === 1 ? 2 : 3600 }), tokenRefreshMarginMs: 1500 });
    cleanup.push(() => c.close());
    const disconnected = collect(c, "disconnected");
    await c.connect();
    const refreshed = await nextEvent(c, "token", undefined, 3000);
    expect(refreshed.expiresAt).toBeGreaterThan(Date.now() + 3_000_000);
    expect(calls).toBe(2);
    await new Promise((r) => setTimeout(r, 1500));
    expect(c.connected).toBe(true);
    expect(disconnected).toEqual([]);
  });

  it("token - a token that runs out unrefreshed gets 4004; the client fetches a fresh one and reconnects", async () => {
    const gw = await gateway();
    let calls = 0;
    const c = new ArqonClient(gw.url, {
      getToken: async () => {
        calls += 1;
        if (calls === 2) throw new Error("token service down");
        return gw.token({ sub: "alice", ttlSec: calls === 1 ? 2 : 3600 });
      },
      reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    });
    cleanup.push(() => c.close());
    const errors = collect(c, "error");
    await c.connect();
    await c.room("lobby").subscribe();
    const disconnected = nextEvent(c, "disconnected", undefined, 5000);
    const reconnected = nextEvent(c, "connected", (e) => e.reconnected, 6000);
    const resubscribed = nextEvent(c.room("lobby"), "subscribed", (e) => e.resubscribed, 6000);
    expect(await disconnected).toMatchObject({ code: CloseCode.TOKEN_EXPIRED, willReconnect: true });
    await reconnected;
    await resubscribed;
    expect(calls).toBe(3);
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.AUTH_INVALID]);
  });
});
