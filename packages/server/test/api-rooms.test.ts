import { describe, expect, it } from "vitest";
import { ErrorCode, roomKey, toBase64 } from "@arqon/core";
import { payloadOf, type TestGateway } from "../src/testing.js";
import { apiGateway, codeOf, type Json } from "./api-client.js";

const KEY = "operator-key-of-the-api-rooms-tests-0123";

const { start, api } = apiGateway(KEY);

interface Allowed {
  name: string;
  auth: string;
  /** The sender the messages it publishes carry. */
  sender: string;
}
interface Refused {
  name: string;
  auth: string | null;
  status: number;
  code: string;
}

/** The principals of a "tenant-backend" route of tenant acme: who gets in, and what the others get. */
async function principals(g: TestGateway): Promise<{ allowed: Allowed[]; refused: Refused[] }> {
  return {
    allowed: [
      { name: "operator key", auth: KEY, sender: "operator" },
      { name: "admin of acme", auth: await g.token({ sub: "root", role: "admin" }), sender: "root" },
      { name: 'role "server" of acme', auth: await g.token({ sub: "backend", role: "server" }), sender: "backend" },
    ],
    refused: [
      { name: "admin of beta", auth: await g.token({ sub: "root", role: "admin", tenant: "beta" }), status: 403, code: ErrorCode.FORBIDDEN },
      { name: "server of beta", auth: await g.token({ sub: "backend", role: "server", tenant: "beta" }), status: 403, code: ErrorCode.FORBIDDEN },
      { name: "user of acme", auth: await g.token({ sub: "mallory" }), status: 403, code: ErrorCode.FORBIDDEN },
      { name: "no credential", auth: null, status: 401, code: ErrorCode.AUTH_MISSING },
      { name: "unknown API key", auth: "not-an-operator-key-not-a-token", status: 401, code: ErrorCode.AUTH_INVALID },
    ],
  };
}

describe("api-rooms - POST /api/v1/tenants/:tenant/publish", () => {
  it("publish - the operator, an admin and a server token of the tenant publish; subscribers get it; others are refused", async () => {
    const g = await start();
    const bob = await g.client({ sub: "bob" });
    await bob.subscribe("news");
    const other = await g.client({ sub: "bob", tenant: "beta" });
    await other.subscribe("news");
    const { allowed, refused } = await principals(g);
    let offset = 0;
    for (const p of allowed) {
      const r = await api("POST", "/api/v1/tenants/acme/publish", { room: "news", payload: { by: p.name } }, p.auth);
      expect([p.name, r.status]).toEqual([p.name, 200]);
      offset++;
      expect(r.json).toEqual({ id: expect.any(String), room: "news", offset, epoch: expect.any(String), duplicate: false });
      const msg = await bob.next("message", "news");
      expect(payloadOf(msg)).toEqual({ by: p.name });
      expect(msg).toMatchObject({ id: r.json.id, offset, sender: p.sender });
    }
    for (const p of refused) {
      const r = await api("POST", "/api/v1/tenants/acme/publish", { room: "news", payload: { by: p.name } }, p.auth);
      expect([p.name, ...codeOf(r)]).toEqual([p.name, p.status, p.code]);
    }
    // Nothing of the refused ones was stored or delivered, and tenant beta's room of the same name saw nothing.
    expect((await g.server.history.position(roomKey("acme", "news"))).offset).toBe(allowed.length);
    expect((await g.server.history.position(roomKey("beta", "news"))).offset).toBe(0);
    expect((await bob.request({ type: "ping" })).type).toBe("pong");
    expect(bob.frames.filter((f) => f.type === "message")).toHaveLength(allowed.length);
    expect(other.frames.filter((f) => f.type === "message")).toHaveLength(0);
  });

  it("publish - headers, binary payloads and idempotency keys work as on POST /api/publish", async () => {
    const g = await start();
    const bob = await g.client({ sub: "bob" });
    await bob.subscribe("files");
    const server = await g.token({ sub: "backend", role: "server" });
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    const first = await api("POST", "/api/v1/tenants/acme/publish", { room: "files", payload: toBase64(bytes), payloadFormat: "binary", headers: { "x-kind": "blob" }, idempotencyKey: "k1" }, server);
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ room: "files", offset: 1, duplicate: false });
    const msg = await bob.next("message", "files");
    expect(msg).toMatchObject({ payloadFormat: "binary", sender: "backend", headers: { "x-kind": "blob" } });
    expect([...msg.payload!]).toEqual([...bytes]);
    const again = await api("POST", "/api/v1/tenants/acme/publish", { room: "files", payload: toBase64(bytes), payloadFormat: "binary", idempotencyKey: "k1" }, server);
    expect(again.json).toEqual({ ...first.json, duplicate: true });
    expect((await g.server.history.position(roomKey("acme", "files"))).offset).toBe(1);
  });

  it("publish - bad input answers 400 with its code and nothing is stored", async () => {
    const g = await start();
    const p = "/api/v1/tenants/acme/publish";
    expect(codeOf(await api("POST", p, { payload: 1 }))).toEqual([400, ErrorCode.FRAME_MISSING_FIELD]);
    expect(codeOf(await api("POST", p, { room: 7, payload: 1 }))).toEqual([400, ErrorCode.FRAME_MISSING_FIELD]);
    expect(codeOf(await api("POST", p, { room: "news" }))).toEqual([400, ErrorCode.FRAME_MISSING_FIELD]);
    expect(codeOf(await api("POST", p, { room: "bad room", payload: 1 }))).toEqual([400, ErrorCode.ROOM_INVALID]);
    expect(codeOf(await api("POST", p, { room: "news", payload: 1, tenant: "beta" }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await api("POST", p, { room: "news", payload: 1, payloadFormat: "xml" }))).toEqual([400, ErrorCode.FRAME_WRONG_TYPE]);
    expect(codeOf(await api("POST", p, { room: "news", payload: "***", payloadFormat: "binary" }))).toEqual([400, ErrorCode.FRAME_WRONG_TYPE]);
    expect(codeOf(await api("POST", p, { room: "news", payload: 1, headers: { "Bad Name": "v" } }))).toEqual([400, ErrorCode.HEADER_INVALID]);
    expect(codeOf(await api("POST", p, { room: "news", payload: 1, headers: ["x"] }))).toEqual([400, ErrorCode.HEADER_INVALID]);
    expect(codeOf(await api("POST", p, { room: "news", payload: 1, idempotencyKey: 5 }))).toEqual([400, ErrorCode.FRAME_WRONG_TYPE]);
    expect(codeOf(await api("POST", p, "{not json"))).toEqual([400, ErrorCode.FRAME_MALFORMED]);
    expect(codeOf(await api("POST", p, "[1]"))).toEqual([400, ErrorCode.FRAME_MALFORMED]);
    expect(codeOf(await api("POST", "/api/v1/tenants/bad!tenant/publish", { room: "news", payload: 1 }))).toEqual([400, ErrorCode.TENANT_INVALID]);
    expect(codeOf(await api("GET", p))).toEqual([405, ErrorCode.VALIDATION_ERROR]);
    expect((await g.server.history.position(roomKey("acme", "news"))).offset).toBe(0);
    // The server still answers.
    expect((await api("POST", p, { room: "news", payload: 1 })).status).toBe(200);
  });

  it("publish - the tenant's limits apply: a payload over maxMessageBytes is 413, a disabled tenant 403", async () => {
    const g = await start();
    expect((await api("POST", "/api/v1/tenants", { name: "acme", limits: { maxMessageBytes: 16 } })).status).toBe(201);
    expect(codeOf(await api("POST", "/api/v1/tenants/acme/publish", { room: "news", payload: "x".repeat(100) }))).toEqual([413, ErrorCode.PAYLOAD_TOO_LARGE]);
    await api("POST", "/api/v1/tenants/acme/disable");
    expect(codeOf(await api("POST", "/api/v1/tenants/acme/publish", { room: "news", payload: 1 }))).toEqual([403, ErrorCode.TENANT_DISABLED]);
    const server = await g.token({ sub: "backend", role: "server" });
    expect(codeOf(await api("POST", "/api/v1/tenants/acme/publish", { room: "news", payload: 1 }, server))).toEqual([403, ErrorCode.TENANT_DISABLED]);
  });

  it("publish - a body over http.maxBodyBytes is 413 ARQ_PAYLOAD_TOO_LARGE", async () => {
    const g = await start({ http: { maxBodyBytes: 1024 } });
    const server = await g.token({ sub: "backend", role: "server" });
    const r = await api("POST", "/api/v1/tenants/acme/publish", { room: "news", payload: "x".repeat(2000) }, server);
    expect(r).toEqual({ status: 413, json: { error: { code: ErrorCode.PAYLOAD_TOO_LARGE, message: "request body larger than 1024 bytes" } } });
    const b = await api("POST", "/api/v1/tenants/acme/broadcast", { rooms: ["a"], payload: "x".repeat(2000) }, server);
    expect(codeOf(b)).toEqual([413, ErrorCode.PAYLOAD_TOO_LARGE]);
    expect((await api("POST", "/api/v1/tenants/acme/publish", { room: "news", payload: "small" }, server)).status).toBe(200);
  });
});

describe("api-rooms - POST /api/v1/tenants/:tenant/broadcast", () => {
  it("broadcast - one message into every room named, in order; subscribers of each get it", async () => {
    const g = await start();
    const bob = await g.client({ sub: "bob" });
    await bob.subscribe("a");
    await bob.subscribe("b");
    const carol = await g.client({ sub: "carol" });
    await carol.subscribe("c");
    const r = await api("POST", "/api/v1/tenants/acme/broadcast", { rooms: ["c", "a", "b"], payload: { hello: "all" }, headers: { "x-kind": "notice" } });
    expect(r.status).toBe(200);
    expect(r.json.results.map((x: Json) => x.room)).toEqual(["c", "a", "b"]);
    for (const x of r.json.results) expect(x).toEqual({ room: x.room, id: expect.any(String), offset: 1, epoch: expect.any(String), duplicate: false });
    for (const [client, room] of [[bob, "a"], [bob, "b"], [carol, "c"]] as const) {
      const msg = await client.next("message", room);
      expect(payloadOf(msg)).toEqual({ hello: "all" });
      expect(msg).toMatchObject({ sender: "operator", headers: { "x-kind": "notice" }, id: r.json.results.find((x: Json) => x.room === room).id });
    }
    // The idempotency key holds per room: a repeat stores nothing new anywhere.
    const once = await api("POST", "/api/v1/tenants/acme/broadcast", { rooms: ["a", "b"], payload: 2, idempotencyKey: "k" });
    const twice = await api("POST", "/api/v1/tenants/acme/broadcast", { rooms: ["a", "b"], payload: 2, idempotencyKey: "k" });
    expect(twice.json.results).toEqual(once.json.results.map((x: Json) => ({ ...x, duplicate: true })));
    expect((await g.server.history.position(roomKey("acme", "a"))).offset).toBe(2);
  });

  it("broadcast - one room's refusal (the tenant's room limit) is its own result; the other rooms still get the message", async () => {
    const g = await start();
    await api("POST", "/api/v1/tenants", { name: "acme", limits: { maxRooms: 2 } });
    const bob = await g.client({ sub: "bob" });
    await bob.subscribe("a");
    await bob.subscribe("c");
    const r = await api("POST", "/api/v1/tenants/acme/broadcast", { rooms: ["a", "b", "c"], payload: 1 });
    expect(r.status).toBe(200);
    expect(r.json.results[0]).toMatchObject({ room: "a", offset: 1 });
    expect(r.json.results[1]).toMatchObject({ room: "b", offset: 1 });
    expect(r.json.results[2]).toEqual({ room: "c", error: { code: ErrorCode.QUOTA_EXCEEDED, message: expect.any(String) } });
    expect(payloadOf(await bob.next("message", "a"))).toBe(1);
    expect((await g.server.history.position(roomKey("acme", "c"))).offset).toBe(0);
    expect(bob.frames.filter((f) => f.type === "message" && f.room === "c")).toHaveLength(0);
  });

  it("broadcast - the operator, an admin and a server token of the tenant broadcast; others are refused", async () => {
    const g = await start();
    const bob = await g.client({ sub: "bob" });
    await bob.subscribe("x");
    const { allowed, refused } = await principals(g);
    for (const [i, p] of allowed.entries()) {
      const r = await api("POST", "/api/v1/tenants/acme/broadcast", { rooms: ["x", "y"], payload: p.name }, p.auth);
      expect([p.name, r.status]).toEqual([p.name, 200]);
      expect(r.json.results).toMatchObject([
        { room: "x", offset: i + 1 },
        { room: "y", offset: i + 1 },
      ]);
      const msg = await bob.next("message", "x");
      expect([payloadOf(msg), msg.sender]).toEqual([p.name, p.sender]);
    }
    for (const p of refused) {
      const r = await api("POST", "/api/v1/tenants/acme/broadcast", { rooms: ["x", "y"], payload: p.name }, p.auth);
      expect([p.name, ...codeOf(r)]).toEqual([p.name, p.status, p.code]);
    }
    expect((await g.server.history.position(roomKey("acme", "y"))).offset).toBe(allowed.length);
  });

  it("broadcast - bad input answers 400 with its code and nothing is stored", async () => {
    const g = await start();
    const p = "/api/v1/tenants/acme/broadcast";
    const many = Array.from({ length: 101 }, (_, i) => `r${i}`);
    expect(codeOf(await api("POST", p, { payload: 1 }))).toEqual([400, ErrorCode.FRAME_MISSING_FIELD]);
    expect(codeOf(await api("POST", p, { rooms: "a", payload: 1 }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await api("POST", p, { rooms: [], payload: 1 }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await api("POST", p, { rooms: many, payload: 1 }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await api("POST", p, { rooms: ["a", "a"], payload: 1 }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await api("POST", p, { rooms: ["a", 2], payload: 1 }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await api("POST", p, { rooms: ["a", "no spaces"], payload: 1 }))).toEqual([400, ErrorCode.ROOM_INVALID]);
    expect(codeOf(await api("POST", p, { rooms: ["a"] }))).toEqual([400, ErrorCode.FRAME_MISSING_FIELD]);
    expect(codeOf(await api("POST", p, { rooms: ["a"], payload: 1, room: "b" }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await api("POST", p, { rooms: ["a"], payload: 1, headers: { x: 1 } }))).toEqual([400, ErrorCode.HEADER_INVALID]);
    expect(codeOf(await api("POST", "/api/v1/tenants/bad!tenant/broadcast", { rooms: ["a"], payload: 1 }))).toEqual([400, ErrorCode.TENANT_INVALID]);
    expect((await g.server.history.position(roomKey("acme", "a"))).offset).toBe(0);
    // 100 distinct rooms is the most, and allowed.
    const hundred = await api("POST", p, { rooms: many.slice(0, 100), payload: 1 });
    expect(hundred.status).toBe(200);
    expect(hundred.json.results).toHaveLength(100);
    expect(hundred.json.results.every((x: Json) => x.offset === 1)).toBe(true);
  });
});

describe("api-rooms - GET /api/v1/tenants/:tenant/rooms/:room/history", () => {
  it("history - reads what was published, by offset, time and direction, with JSON and binary payloads", async () => {
    const g = await start();
    const alice = await g.client({ sub: "alice" });
    for (let n = 1; n <= 4; n++) expect((await alice.publish("chat/general", { n }, { headers: { "x-n": String(n) } })).type).toBe("ack");
    const bytes = new Uint8Array([9, 8, 7]);
    await api("POST", "/api/v1/tenants/acme/publish", { room: "chat/general", payload: toBase64(bytes), payloadFormat: "binary" });
    // A subscriber sees the API publish too.
    const bob = await g.client({ sub: "bob" });
    await bob.subscribe("chat/general");
    await api("POST", "/api/v1/tenants/acme/publish", { room: "chat/general", payload: "live" });
    expect(payloadOf(await bob.next("message", "chat/general"))).toBe("live");

    const base = "/api/v1/tenants/acme/rooms/chat%2Fgeneral/history";
    const all = await api("GET", base);
    expect(all.status).toBe(200);
    expect(all.json.messages.map((m: Json) => m.offset)).toEqual([1, 2, 3, 4, 5, 6]);
    const epoch = all.json.position.epoch as string;
    expect(all.json.position).toEqual({ offset: 6, epoch: expect.any(String) });
    expect(all.json.messages[0]).toEqual({
      id: expect.any(String),
      offset: 1,
      epoch,
      timestamp: expect.any(Number),
      sender: "alice",
      headers: expect.objectContaining({ "x-n": "1" }),
      payload: { n: 1 },
    });
    expect(all.json.messages[4]).toMatchObject({ offset: 5, sender: "operator", payloadFormat: "binary", payload: toBase64(bytes) });
    expect(all.json.messages[5]).toMatchObject({ offset: 6, payload: "live" });
    expect(all.json.messages[5].payloadFormat).toBeUndefined();

    const range = await api("GET", `${base}?fromOffset=2&toOffset=3`);
    expect(range.json.messages.map((m: Json) => m.payload)).toEqual([{ n: 2 }, { n: 3 }]);
    const newest = await api("GET", `${base}?reverse=true&limit=2`);
    expect(newest.json.messages.map((m: Json) => m.offset)).toEqual([6, 5]);
    const forward = await api("GET", `${base}?reverse=false&limit=2`);
    expect(forward.json.messages.map((m: Json) => m.offset)).toEqual([1, 2]);
    const ts = all.json.messages[0].timestamp as number;
    expect((await api("GET", `${base}?toTs=${ts - 1}`)).json.messages).toEqual([]);
    expect((await api("GET", `${base}?fromTs=${Date.now() + 60_000}`)).json.messages).toEqual([]);
    expect((await api("GET", `${base}?fromTs=${ts}`)).json.messages).toHaveLength(6);
    // An empty room, and the same room name in another tenant.
    expect((await api("GET", "/api/v1/tenants/acme/rooms/empty/history")).json).toEqual({ messages: [], position: { offset: 0, epoch: expect.any(String) } });
    expect((await api("GET", "/api/v1/tenants/beta/rooms/chat%2Fgeneral/history")).json.messages).toEqual([]);
  });

  it("history - the default page is 100 messages and limit goes up to 1000", async () => {
    const g = await start();
    for (let n = 1; n <= 120; n++) await g.server.publish("acme", "busy", { n });
    const base = "/api/v1/tenants/acme/rooms/busy/history";
    expect((await api("GET", base)).json.messages).toHaveLength(100);
    expect((await api("GET", `${base}?limit=1000`)).json.messages).toHaveLength(120);
    expect((await api("GET", `${base}?limit=1`)).json.messages.map((m: Json) => m.payload)).toEqual([{ n: 1 }]);
  });

  it("history - the operator, an admin and a server token of the tenant read it; others are refused", async () => {
    const g = await start();
    await g.server.publish("acme", "news", { n: 1 });
    await g.server.publish("beta", "news", { n: "beta" });
    const { allowed, refused } = await principals(g);
    for (const p of allowed) {
      const r = await api("GET", "/api/v1/tenants/acme/rooms/news/history", undefined, p.auth);
      expect([p.name, r.status, r.json.messages.map((m: Json) => m.payload)]).toEqual([p.name, 200, [{ n: 1 }]]);
    }
    for (const p of refused) {
      const r = await api("GET", "/api/v1/tenants/acme/rooms/news/history", undefined, p.auth);
      expect([p.name, ...codeOf(r)]).toEqual([p.name, p.status, p.code]);
    }
  });

  it("history - bad numbers, flags, parameters and names answer 400 with their code", async () => {
    const g = await start();
    await g.server.publish("acme", "news", { n: 1 });
    const base = "/api/v1/tenants/acme/rooms/news/history";
    for (const q of ["limit=0", "limit=1001", "limit=abc", "limit=", "limit=1.5", "fromOffset=-1", "toOffset=1e3", "fromTs=x", "toTs=-5", "fromOffset=99999999999999999999", "reverse=yes", "reverse=1", "from=1"]) {
      expect([q, ...codeOf(await api("GET", `${base}?${q}`))]).toEqual([q, 400, ErrorCode.VALIDATION_ERROR]);
    }
    expect(codeOf(await api("GET", "/api/v1/tenants/acme/rooms/bad%20room/history"))).toEqual([400, ErrorCode.ROOM_INVALID]);
    expect(codeOf(await api("GET", "/api/v1/tenants/bad!tenant/rooms/news/history"))).toEqual([400, ErrorCode.TENANT_INVALID]);
    expect(codeOf(await api("POST", base, {}))).toEqual([405, ErrorCode.VALIDATION_ERROR]);
    expect((await api("GET", base)).json.messages).toHaveLength(1);
  });
});

describe("api-rooms - GET /api/v1/tenants/:tenant/rooms", () => {
  it("rooms - lists the tenant's rooms with local subscribers, sorted, by prefix, at most limit", async () => {
    const g = await start();
    const a1 = await g.client({ sub: "alice" });
    const a2 = await g.client({ sub: "alice" });
    const bob = await g.client({ sub: "bob" });
    await a1.subscribe("chat:2");
    await a1.subscribe("chat:1");
    await a2.subscribe("chat:1");
    await bob.subscribe("other");
    const beta = await g.client({ tenant: "beta" });
    await beta.subscribe("chat:3");
    expect((await api("GET", "/api/v1/tenants/acme/rooms")).json).toEqual({
      rooms: [
        { room: "chat:1", subscribers: 2, nodes: 1 },
        { room: "chat:2", subscribers: 1, nodes: 1 },
        { room: "other", subscribers: 1, nodes: 1 },
      ],
    });
    expect((await api("GET", "/api/v1/tenants/acme/rooms?prefix=chat:")).json.rooms.map((r: Json) => r.room)).toEqual(["chat:1", "chat:2"]);
    expect((await api("GET", "/api/v1/tenants/acme/rooms?limit=1")).json.rooms).toEqual([{ room: "chat:1", subscribers: 2, nodes: 1 }]);
    expect((await api("GET", "/api/v1/tenants/acme/rooms?prefix=nothing")).json.rooms).toEqual([]);
    expect((await api("GET", "/api/v1/tenants/beta/rooms")).json.rooms).toEqual([{ room: "chat:3", subscribers: 1, nodes: 1 }]);
    expect((await api("GET", "/api/v1/tenants/gamma/rooms")).json.rooms).toEqual([]);
    // Subscribers come and go with the sockets.
    await a2.close();
    await a1.request({ type: "unsubscribe", room: "chat:2" });
    await expect.poll(async () => (await api("GET", "/api/v1/tenants/acme/rooms")).json.rooms).toEqual([
      { room: "chat:1", subscribers: 1, nodes: 1 },
      { room: "other", subscribers: 1, nodes: 1 },
    ]);
  });

  it("rooms - the operator, an admin and a server token of the tenant list them; others are refused", async () => {
    const g = await start();
    const bob = await g.client({ sub: "bob" });
    await bob.subscribe("news");
    const { allowed, refused } = await principals(g);
    for (const p of allowed) {
      const r = await api("GET", "/api/v1/tenants/acme/rooms", undefined, p.auth);
      expect([p.name, r.status, r.json]).toEqual([p.name, 200, { rooms: [{ room: "news", subscribers: 1, nodes: 1 }] }]);
    }
    for (const p of refused) {
      const r = await api("GET", "/api/v1/tenants/acme/rooms", undefined, p.auth);
      expect([p.name, ...codeOf(r)]).toEqual([p.name, p.status, p.code]);
    }
  });

  it("rooms - bad limits and unknown parameters answer 400 VALIDATION_ERROR", async () => {
    await start();
    for (const q of ["limit=0", "limit=1001", "limit=-1", "limit=ten", "limit=2.5", "room=x"]) {
      expect([q, ...codeOf(await api("GET", `/api/v1/tenants/acme/rooms?${q}`))]).toEqual([q, 400, ErrorCode.VALIDATION_ERROR]);
    }
    expect(codeOf(await api("GET", "/api/v1/tenants/bad!tenant/rooms"))).toEqual([400, ErrorCode.TENANT_INVALID]);
    expect((await api("GET", "/api/v1/tenants/acme/rooms?limit=1000")).status).toBe(200);
  });
});
