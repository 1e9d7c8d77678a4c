import { describe, expect, it } from "vitest";
import { ErrorCode, MemoryHistoryStore, type Position, type RoomKey } from "@arqon/core";
import { payloadOf, type TestClient } from "../src/testing.js";
import { apiGateway, codeOf } from "./api-client.js";
import { startBackend } from "./proxy-backend.js";

const KEY = "operator-key-of-the-api-subscriptions-0";

const { start, api } = apiGateway(KEY);

const subscribe = (body: unknown, auth?: string | null) => api("POST", "/api/v1/tenants/acme/subscribe", body, auth);
const unsubscribe = (body: unknown, auth?: string | null) => api("POST", "/api/v1/tenants/acme/unsubscribe", body, auth);

/** Resolves true when `client` receives a frame matching `predicate` within `ms`, false otherwise. */
async function receives(client: TestClient, predicate: Parameters<TestClient["waitFor"]>[0], ms = 200): Promise<boolean> {
  return client.waitFor(predicate, { timeoutMs: ms }).then(
    () => true,
    () => false,
  );
}

describe("api-subscriptions - who may call", () => {
  it("subscribe and unsubscribe - operator, admin and server of the tenant may; another tenant's admin and a user get 403, no credential 401", async () => {
    const g = await start();
    const alice = await g.client({ sub: "alice" });
    const publisher = await g.client({ sub: "pub" });
    const principals = [
      { name: "operator key", auth: KEY, allowed: true },
      { name: "admin of acme", auth: await g.token({ sub: "boss", role: "admin" }), allowed: true },
      { name: "server of acme", auth: await g.token({ sub: "backend", role: "server" }), allowed: true },
      { name: "admin of another tenant", auth: await g.token({ sub: "boss", tenant: "other", role: "admin" }), allowed: false, status: 403, code: ErrorCode.FORBIDDEN },
      { name: "server of another tenant", auth: await g.token({ sub: "backend", tenant: "other", role: "server" }), allowed: false, status: 403, code: ErrorCode.FORBIDDEN },
      { name: "plain user of acme", auth: await g.token({ sub: "carol" }), allowed: false, status: 403, code: ErrorCode.FORBIDDEN },
      { name: "no credential", auth: null, allowed: false, status: 401, code: ErrorCode.AUTH_MISSING },
    ];
    let n = 0;
    for (const p of principals) {
      const room = `news-${n++}`;
      const sub = await subscribe({ user: "alice", room }, p.auth);
      const unsub = await unsubscribe({ user: "alice", room }, p.auth);
      if (!p.allowed) {
        expect(codeOf(sub), p.name).toEqual([p.status, p.code]);
        expect(codeOf(unsub), p.name).toEqual([p.status, p.code]);
        expect(alice.frames.filter((f) => f.room === room), p.name).toEqual([]);
        continue;
      }
      expect([sub.status, sub.json], p.name).toEqual([200, { subscribedHere: 1 }]);
      expect([unsub.status, unsub.json], p.name).toEqual([200, { unsubscribedHere: 1 }]);
      expect(await alice.next("subscribed", room)).toMatchObject({ room, reason: "server" });
      expect(await alice.next("unsubscribed", room)).toEqual({ type: "unsubscribed", room, reason: "server" });
    }
    // Refused calls changed nothing: the user's connection is subscribed to nothing and still served.
    expect((await publisher.publish("news-3", { n: 1 })).type).toBe("ack");
    expect(await receives(alice, (f) => f.type === "message")).toBe(false);
    expect((await alice.request({ type: "ping" })).type).toBe("pong");
  });
});

describe("api-subscriptions - subscribe", () => {
  it("subscribe - every live connection of the user gets subscribed (no requestId, reason server) and receives the room's messages", async () => {
    const g = await start();
    const a1 = await g.client({ sub: "alice" });
    const a2 = await g.client({ sub: "alice", codec: "protobuf" });
    const bob = await g.client({ sub: "bob" });
    const publisher = await g.client({ sub: "pub" });
    expect((await publisher.publish("news", { n: 1 })).type).toBe("ack");

    expect((await subscribe({ user: "alice", room: "news" })).json).toEqual({ subscribedHere: 2 });
    for (const c of [a1, a2]) {
      const subscribed = await c.next("subscribed", "news");
      expect(subscribed.requestId).toBeUndefined();
      expect(subscribed.reason).toBe("server");
      // The room's position, for the client to recover from later.
      expect(subscribed.offset).toBe(1);
      expect(typeof subscribed.epoch).toBe("string");
      expect(subscribed.members?.map((m) => m.clientId).sort()).toEqual([a1.welcome.clientId, a2.welcome.clientId].sort());
    }
    expect((await publisher.publish("news", { n: 2 })).type).toBe("ack");
    for (const c of [a1, a2]) expect(payloadOf(await c.next("message", "news"))).toEqual({ n: 2 });
    expect(await receives(bob, (f) => f.room === "news")).toBe(false);
    // The subscription is the connection's like any other: the client may end it itself.
    expect((await a1.request({ type: "unsubscribe", room: "news" })).type).toBe("unsubscribed");
    const rooms = await api("GET", "/api/v1/tenants/acme/rooms");
    expect(rooms.json.rooms).toEqual([{ room: "news", subscribers: 1, nodes: 1 }]);
  });

  it("subscribe - the user's caps are not consulted for the subscription, but still hold for the client's own frames", async () => {
    const g = await start();
    const alice = await g.client({ sub: "alice", caps: { sub: ["public/*"], pub: ["public/*"] } });
    const publisher = await g.client({ sub: "pub" });
    expect((await alice.subscribe("vip")).error?.code).toBe(ErrorCode.FORBIDDEN);
    expect((await subscribe({ user: "alice", room: "vip" })).json).toEqual({ subscribedHere: 1 });
    expect((await alice.next("subscribed", "vip")).reason).toBe("server");
    expect((await publisher.publish("vip", { secret: "menu" })).type).toBe("ack");
    expect(payloadOf(await alice.next("message", "vip"))).toEqual({ secret: "menu" });
    expect((await alice.publish("vip", { n: 1 })).error?.code).toBe(ErrorCode.FORBIDDEN);
  });

  it("subscribe - the subscribe proxy hook is not asked (the backend it would ask decided); it still judges the client's own subscribes", async () => {
    await using backend = await startBackend();
    backend.route("/subscribe", { deny: { reason: "not_a_member" } });
    const g = await start({ outbound: { allow: ["127.0.0.1"], allowHttp: true }, proxy: { secret: backend.secret, subscribe: backend.url("/subscribe") } });
    const alice = await g.client({ sub: "alice" });
    expect((await alice.subscribe("vip")).error?.code).toBe("ARQ_PROXY_DENIED");
    expect(backend.callsTo("/subscribe")).toHaveLength(1);
    expect((await subscribe({ user: "alice", room: "vip" })).json).toEqual({ subscribedHere: 1 });
    expect((await alice.next("subscribed", "vip")).reason).toBe("server");
    expect(backend.callsTo("/subscribe")).toHaveLength(1);
  });

  it("subscribe - `client` picks one connection; a connection already subscribed is left as it is and not counted", async () => {
    const g = await start();
    const a1 = await g.client({ sub: "alice" });
    const a2 = await g.client({ sub: "alice" });
    expect((await subscribe({ user: "alice", room: "news", client: a2.welcome.clientId })).json).toEqual({ subscribedHere: 1 });
    expect((await a2.next("subscribed", "news")).reason).toBe("server");
    expect(await receives(a1, (f) => f.room === "news")).toBe(false);
    expect((await subscribe({ user: "alice", room: "news", client: a2.welcome.clientId })).json).toEqual({ subscribedHere: 0 });
    expect((await subscribe({ user: "alice", room: "news", client: "no-such-client" })).json).toEqual({ subscribedHere: 0 });
    expect((await subscribe({ user: "nobody", room: "news" })).json).toEqual({ subscribedHere: 0 });
    expect(await receives(a2, (f) => f.type === "subscribed")).toBe(false);
  });

  it("subscribe - tenant isolation: the same user name in another tenant is untouched, and the room is the tenant's", async () => {
    const g = await start();
    const mine = await g.client({ sub: "alice" });
    const theirs = await g.client({ sub: "alice", tenant: "other" });
    const theirPublisher = await g.client({ sub: "pub", tenant: "other" });
    const ourPublisher = await g.client({ sub: "pub" });
    expect((await subscribe({ user: "alice", room: "news" })).json).toEqual({ subscribedHere: 1 });
    await mine.next("subscribed", "news");
    expect(await receives(theirs, (f) => f.room === "news")).toBe(false);
    expect((await theirPublisher.publish("news", { from: "other" })).type).toBe("ack");
    expect((await ourPublisher.publish("news", { from: "acme" })).type).toBe("ack");
    expect(payloadOf(await mine.next("message", "news"))).toEqual({ from: "acme" });
    expect(await receives(mine, (f) => f.type === "message")).toBe(false);
  });

  it("subscribe - presence: the member joins the room's presence (others see the join) and leaves on unsubscribe", async () => {
    const g = await start({ presenceOptions: { coalesceMs: 0 } });
    const watcher = await g.client({ sub: "watcher" });
    expect((await watcher.subscribe("lobby")).type).toBe("subscribed");
    const alice = await g.client({ sub: "alice" });
    expect((await subscribe({ user: "alice", room: "lobby" })).json).toEqual({ subscribedHere: 1 });
    const join = await watcher.waitFor((f) => f.type === "presence_join" && f.members?.[0]?.userId === "alice");
    expect(join.members).toMatchObject([{ clientId: alice.welcome.clientId, userId: "alice" }]);
    const listed = await api("GET", "/api/v1/tenants/acme/rooms/lobby/presence");
    expect(listed.json.members.map((m: { user: string }) => m.user).sort()).toEqual(["alice", "watcher"]);
    expect((await unsubscribe({ user: "alice", room: "lobby" })).json).toEqual({ unsubscribedHere: 1 });
    const leave = await watcher.next("presence_leave", "lobby");
    expect(leave.members).toMatchObject([{ clientId: alice.welcome.clientId }]);
    expect((await api("GET", "/api/v1/tenants/acme/rooms/lobby/presence/stats")).json).toEqual({ clients: 1, users: 1 });
  });

  it("subscribe - a room without presence: subscribed, no member list, no presence entry", async () => {
    const g = await start({ presenceOptions: { coalesceMs: 0, disabledRooms: ["feed/*"] } });
    const alice = await g.client({ sub: "alice" });
    expect((await subscribe({ user: "alice", room: "feed/prices" })).json).toEqual({ subscribedHere: 1 });
    const subscribed = await alice.next("subscribed", "feed/prices");
    expect(subscribed.members).toBeUndefined();
    expect(codeOf(await api("GET", "/api/v1/tenants/acme/rooms/feed%2Fprices/presence"))).toEqual([400, ErrorCode.PRESENCE_DISABLED]);
  });

  it("subscribe - the per-connection subscription limit holds: a full connection is refused in refusedHere and stays open", async () => {
    const g = await start({ limits: { maxSubscriptions: 1 } });
    const full = await g.client({ sub: "alice" });
    const free = await g.client({ sub: "alice" });
    expect((await full.subscribe("one")).type).toBe("subscribed");
    const r = await subscribe({ user: "alice", room: "two" });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      subscribedHere: 1,
      refusedHere: [{ client: full.welcome.clientId, error: { code: ErrorCode.TOO_MANY_SUBSCRIPTIONS, message: "at most 1 subscriptions per connection" } }],
    });
    expect((await free.next("subscribed", "two")).reason).toBe("server");
    expect(await receives(full, (f) => f.room === "two" || f.type === "error")).toBe(false);
    expect((await full.request({ type: "ping" })).type).toBe("pong");
  });

  it("subscribe - runs in turn with the client's own frames: a subscribe the client sent just before is answered first", async () => {
    const g = await start();
    const alice = await g.client({ sub: "alice" });
    alice.send({ type: "subscribe", room: "mine", requestId: "own" });
    alice.send({ type: "unsubscribe", room: "news", requestId: "before" });
    expect((await subscribe({ user: "alice", room: "news" })).json).toEqual({ subscribedHere: 1 });
    alice.send({ type: "unsubscribe", room: "news", requestId: "after" });
    await alice.waitFor((f) => f.requestId === "after");
    const order = alice.frames.filter((f) => f.requestId !== undefined || f.reason === "server").map((f) => `${f.type}:${f.requestId ?? f.reason}`);
    expect(order).toEqual(["subscribed:own", "error:before", "subscribed:server", "unsubscribed:after"]);
  });
});

/** An in-memory history whose `position` waits for `gate`: holds a subscribe (and the connection's queue) mid-way. */
class HeldHistory extends MemoryHistoryStore {
  gate: Promise<void> = Promise.resolve();
  override async position(key: RoomKey): Promise<Position> {
    await this.gate;
    return super.position(key);
  }
}

describe("api-subscriptions - in turn", () => {
  it("subscribe - a connection that closes while the action waits its turn is not counted, and the call still answers", async () => {
    const history = new HeldHistory();
    let release!: () => void;
    history.gate = new Promise((r) => (release = r));
    const g = await start({ history });
    const alice = await g.client({ sub: "alice" });
    const bob = await g.client({ sub: "bob" });
    // The client's own subscribe holds its queue (its snapshot read waits); the server's subscribe queues behind it.
    alice.send({ type: "subscribe", room: "held", requestId: "held" });
    await new Promise((r) => setTimeout(r, 20));
    const answer = subscribe({ user: "alice", room: "news" });
    await new Promise((r) => setTimeout(r, 20));
    alice.ws.terminate();
    expect((await answer).json).toEqual({ subscribedHere: 0 });
    release();
    // The other connection was not disturbed.
    expect((await bob.subscribe("news")).type).toBe("subscribed");
    expect((await api("GET", "/api/v1/tenants/acme/rooms")).json.rooms).toEqual([{ room: "news", subscribers: 1, nodes: 1 }]);
  });
});

describe("api-subscriptions - unsubscribe", () => {
  it("unsubscribe - ends the room on every matching connection, tells it, and no more messages arrive; other rooms stay", async () => {
    const g = await start();
    const a1 = await g.client({ sub: "alice" });
    const a2 = await g.client({ sub: "alice" });
    const publisher = await g.client({ sub: "pub" });
    expect((await a1.subscribe("news")).type).toBe("subscribed");
    expect((await a1.subscribe("other")).type).toBe("subscribed");
    expect((await subscribe({ user: "alice", room: "news" })).json).toEqual({ subscribedHere: 1 });
    await a2.next("subscribed", "news");
    expect((await unsubscribe({ user: "alice", room: "news" })).json).toEqual({ unsubscribedHere: 2 });
    for (const c of [a1, a2]) expect(await c.next("unsubscribed", "news")).toEqual({ type: "unsubscribed", room: "news", reason: "server" });
    expect((await publisher.publish("news", { n: 1 })).type).toBe("ack");
    expect((await publisher.publish("other", { n: 2 })).type).toBe("ack");
    expect(payloadOf(await a1.next("message", "other"))).toEqual({ n: 2 });
    for (const c of [a1, a2]) expect(await receives(c, (f) => f.type === "message" && f.room === "news")).toBe(false);
    expect((await unsubscribe({ user: "alice", room: "news" })).json).toEqual({ unsubscribedHere: 0 });
    expect((await a1.request({ type: "unsubscribe", room: "news" })).error?.code).toBe(ErrorCode.NOT_SUBSCRIBED);
  });

  it("subscribe and unsubscribe - a closed connection is not counted", async () => {
    const g = await start();
    const alice = await g.client({ sub: "alice" });
    await alice.close();
    await new Promise((r) => setTimeout(r, 20));
    expect((await subscribe({ user: "alice", room: "news" })).json).toEqual({ subscribedHere: 0 });
    expect((await unsubscribe({ user: "alice", room: "news" })).json).toEqual({ unsubscribedHere: 0 });
  });
});

describe("api-subscriptions - bad input", () => {
  it("bad input gets its documented code and the server keeps serving its connections", async () => {
    const g = await start();
    const alice = await g.client({ sub: "alice" });
    expect((await alice.subscribe("lobby")).type).toBe("subscribed");
    for (const call of [subscribe, unsubscribe]) {
      expect(codeOf(await call({ user: "alice", room: "news", extra: 1 }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
      expect(codeOf(await call({ room: "news" }))).toEqual([400, ErrorCode.FRAME_MISSING_FIELD]);
      expect(codeOf(await call({ user: "alice" }))).toEqual([400, ErrorCode.FRAME_MISSING_FIELD]);
      expect(codeOf(await call({ user: "alice", room: "bad room" }))).toEqual([400, ErrorCode.ROOM_INVALID]);
      expect(codeOf(await call({ user: "alice", room: "" }))).toEqual([400, ErrorCode.ROOM_INVALID]);
      expect(codeOf(await call({ user: "alice", room: 7 }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
      expect(codeOf(await call({ user: 7, room: "news" }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
      expect(codeOf(await call({ user: "", room: "news" }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
      expect(codeOf(await call({ user: "alice", room: "news", client: 5 }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
      expect(codeOf(await call("{not json"))).toEqual([400, ErrorCode.FRAME_MALFORMED]);
      expect(codeOf(await call([]))).toEqual([400, ErrorCode.FRAME_MALFORMED]);
    }
    expect(codeOf(await api("POST", "/api/v1/tenants/bad%20tenant/subscribe", { user: "alice", room: "news" }))).toEqual([400, ErrorCode.TENANT_INVALID]);
    expect(codeOf(await api("GET", "/api/v1/tenants/acme/subscribe"))[0]).toBe(405);
    expect(codeOf(await api("GET", "/api/v1/tenants/acme/unsubscribe"))[0]).toBe(405);
    // Nothing reached the connection, which still works.
    expect(alice.frames.filter((f) => f.room === "news")).toEqual([]);
    expect((await alice.publish("lobby", { ok: true }, { echo: true })).type).toBe("ack");
    expect(payloadOf(await alice.next("message", "lobby"))).toEqual({ ok: true });
  });
});
