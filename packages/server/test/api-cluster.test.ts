import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, MemoryBusHub, MemoryControlPlane, roomKey } from "@arqon/core";
import { pino } from "pino";
import { ApiRateLimiter } from "../src/api-rate-limit.js";
import { ClusterInfo } from "../src/cluster-info.js";
import { ClusterControl } from "../src/control.js";
import { startGateway, type StartGatewayOptions, type TestGateway } from "../src/testing.js";
import { callApi, codeOf, type ApiAnswer, type Json } from "./api-client.js";

const KEY = "operator-key-of-the-api-cluster-tests-01";
const SCRAPE = "scrape-token-of-the-api-cluster-tests-01";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

async function start(options: StartGatewayOptions = {}): Promise<TestGateway> {
  gw = await startGateway({ operatorKeys: [KEY], scrapeTokens: [SCRAPE], ...options });
  return gw;
}

function api(method: string, path: string, auth: string | null = KEY): Promise<ApiAnswer> {
  return callApi(gw!.httpUrl, method, path, undefined, auth);
}

interface Who {
  name: string;
  auth: string | null;
}

/** Every principal, with who gets in on a "tenant-backend" route of tenant acme, and what the others get. */
async function principals(g: TestGateway): Promise<Record<"operator" | "admin" | "server" | "otherAdmin" | "otherServer" | "user" | "none", Who>> {
  return {
    operator: { name: "operator key", auth: KEY },
    admin: { name: "admin of acme", auth: await g.token({ sub: "root", role: "admin" }) },
    server: { name: 'role "server" of acme', auth: await g.token({ sub: "backend", role: "server" }) },
    otherAdmin: { name: "admin of beta", auth: await g.token({ sub: "root", role: "admin", tenant: "beta" }) },
    otherServer: { name: "server of beta", auth: await g.token({ sub: "backend", role: "server", tenant: "beta" }) },
    user: { name: "user of acme", auth: await g.token({ sub: "mallory" }) },
    none: { name: "no credential", auth: null },
  };
}

describe("api-cluster - GET /api/v1/tenants/:tenant/rooms on one node", () => {
  it("rooms - pages through every room with an opaque cursor, by prefix, without a control plane", async () => {
    const g = await start();
    const alice = await g.client({ sub: "alice" });
    const names = Array.from({ length: 7 }, (_, i) => `r${i}`);
    for (const room of [...names].reverse()) await alice.subscribe(room);
    const bob = await g.client({ sub: "bob" });
    await bob.subscribe("r3");
    const seen: Json[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await api("GET", `/api/v1/tenants/acme/rooms?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      expect(r.status).toBe(200);
      expect(r.json.rooms.length).toBeLessThanOrEqual(3);
      seen.push(...r.json.rooms);
      cursor = r.json.next;
      pages++;
    } while (cursor !== undefined);
    expect(pages).toBe(3);
    expect(seen.map((r) => r.room)).toEqual(names);
    expect(seen.find((r) => r.room === "r3")).toEqual({ room: "r3", subscribers: 2, nodes: 1 });
    // An exactly full last page has no next.
    const full = await api("GET", "/api/v1/tenants/acme/rooms?limit=7");
    expect([full.json.rooms.length, full.json.next]).toEqual([7, undefined]);
    const first = await api("GET", "/api/v1/tenants/acme/rooms?prefix=r&limit=6");
    expect(first.json.next).toEqual(expect.any(String));
    expect((await api("GET", `/api/v1/tenants/acme/rooms?prefix=r&cursor=${first.json.next}`)).json).toEqual({ rooms: [{ room: "r6", subscribers: 1, nodes: 1 }] });
  });

  it("rooms - a bad cursor or prefix answers 400 with its code", async () => {
    await start();
    for (const cursor of ["nope!", Buffer.from("2:r1").toString("base64url"), Buffer.from("1:bad room").toString("base64url"), "x".repeat(401)]) {
      expect([cursor, ...codeOf(await api("GET", `/api/v1/tenants/acme/rooms?cursor=${cursor}`))]).toEqual([cursor, 400, ErrorCode.VALIDATION_ERROR]);
    }
    expect(codeOf(await api("GET", "/api/v1/tenants/acme/rooms?prefix=a%20b"))).toEqual([400, ErrorCode.ROOM_INVALID]);
  });
});

describe("api-cluster - DELETE /api/v1/tenants/:tenant/rooms/:room/history", () => {
  it("history remove - removes the room's messages, moves it to a new epoch, leaves an audit record; who may call it", async () => {
    const g = await start();
    const p = await principals(g);
    const alice = await g.client({ sub: "alice" });
    await alice.subscribe("news");
    for (const [i, who] of [p.operator, p.admin, p.server].entries()) {
      const ack = await alice.publish("news", { n: i });
      const old = { offset: ack.offset!, epoch: ack.epoch! };
      await g.server.publish("acme", "kept", { n: i });
      const r = await callApi(g.httpUrl, "DELETE", "/api/v1/tenants/acme/rooms/news/history", undefined, who.auth);
      expect([who.name, r.status]).toEqual([who.name, 200]);
      expect(r.json).toEqual({ removed: true, position: { offset: 0, epoch: expect.any(String) } });
      expect(r.json.position.epoch).not.toBe(old.epoch);
      const recovered = await g.server.history.recover(roomKey("acme", "news"), old, 100);
      expect(recovered).toMatchObject({ recovered: false, reason: "epoch_mismatch" });
      expect((await api("GET", "/api/v1/tenants/acme/rooms/news/history")).json.messages).toEqual([]);
      expect((await api("GET", "/api/v1/tenants/acme/rooms/kept/history")).json.messages).toHaveLength(i + 1);
    }
    const again = await api("DELETE", "/api/v1/tenants/acme/rooms/news/history");
    expect(again.json.removed).toBe(false);
    for (const who of [p.otherAdmin, p.otherServer, p.user, p.none]) {
      const r = await callApi(g.httpUrl, "DELETE", "/api/v1/tenants/acme/rooms/kept/history", undefined, who.auth);
      expect([who.name, ...codeOf(r)]).toEqual([who.name, ...(who.auth === null ? [401, ErrorCode.AUTH_MISSING] : [403, ErrorCode.FORBIDDEN])]);
    }
    expect((await api("GET", "/api/v1/tenants/acme/rooms/kept/history")).json.messages).toHaveLength(3);
    const audit = await api("GET", "/api/v1/tenants/acme/audit");
    const records = audit.json.records.filter((r: Json) => r.action === "room.history.delete");
    expect(records).toHaveLength(4);
    expect(records[0]).toMatchObject({ target: "news", result: "ok", detail: { removed: false }, actor: { kind: "operator" } });
    expect(records.map((r: Json) => r.actor.kind)).toEqual(["operator", "tenant_server", "tenant_admin", "operator"]);
    // A published message after the delete starts at offset 1 and live delivery goes on.
    const after = await alice.publish("news", { n: 9 });
    expect(after.offset).toBe(1);
    expect(codeOf(await api("DELETE", "/api/v1/tenants/acme/rooms/bad%20room/history"))).toEqual([400, ErrorCode.ROOM_INVALID]);
    // The audit trail is kept in a reserved room no route can name.
    expect(codeOf(await api("DELETE", "/api/v1/tenants/acme/rooms/%24audit/history"))).toEqual([400, ErrorCode.ROOM_INVALID]);
    expect((await api("GET", "/api/v1/tenants/acme/audit")).json.records.length).toBeGreaterThan(0);
    expect(codeOf(await api("DELETE", "/api/v1/tenants/bad!t/rooms/news/history"))).toEqual([400, ErrorCode.TENANT_INVALID]);
    expect(codeOf(await api("DELETE", "/api/v1/tenants/acme/rooms/news/history?x=1"))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
  });
});

describe("api-cluster - GET /api/v1/info and /api/v1/tenants/:tenant/info on one node", () => {
  it("info - the operator sees this node; everyone else is refused", async () => {
    const g = await start();
    await g.client({ sub: "alice" });
    const p = await principals(g);
    const r = await api("GET", "/api/v1/info");
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ node: g.server.nodeId, clustered: false });
    expect(r.json.nodes).toEqual([
      expect.objectContaining({ id: g.server.nodeId, self: true, version: expect.any(String), connections: 1, tenants: 1, rooms: 0, status: "ok", uptimeMs: expect.any(Number) }),
    ]);
    expect(r.json.nodes[0].backends).toMatchObject({ bus: "MemoryBus", history: "MemoryHistoryStore" });
    for (const who of [p.admin, p.server, p.otherAdmin, p.user, p.none, { name: "scrape token", auth: SCRAPE }]) {
      const refused = await callApi(g.httpUrl, "GET", "/api/v1/info", undefined, who.auth);
      expect([who.name, ...codeOf(refused)]).toEqual([who.name, ...(who.auth === null ? [401, ErrorCode.AUTH_MISSING] : [403, ErrorCode.FORBIDDEN])]);
    }
  });

  it("tenant info - the operator and the tenant's admin see its numbers only; a server token, another tenant, a user and nobody are refused", async () => {
    const g = await start();
    const a1 = await g.client({ sub: "alice" });
    await a1.subscribe("x");
    await a1.subscribe("y");
    const a2 = await g.client({ sub: "bob" });
    await a2.subscribe("x");
    const beta = await g.client({ tenant: "beta" });
    await beta.subscribe("z");
    const p = await principals(g);
    for (const who of [p.operator, p.admin]) {
      const r = await callApi(g.httpUrl, "GET", "/api/v1/tenants/acme/info", undefined, who.auth);
      expect([who.name, r.status, r.json]).toEqual([
        who.name,
        200,
        { tenant: "acme", connections: 2, subscribers: 3, nodes: [{ id: g.server.nodeId, connections: 2, rooms: 2, subscribers: 3 }] },
      ]);
    }
    for (const who of [p.server, p.otherAdmin, p.otherServer, p.user, p.none]) {
      const r = await callApi(g.httpUrl, "GET", "/api/v1/tenants/acme/info", undefined, who.auth);
      expect([who.name, ...codeOf(r)]).toEqual([who.name, ...(who.auth === null ? [401, ErrorCode.AUTH_MISSING] : [403, ErrorCode.FORBIDDEN])]);
    }
    expect(codeOf(await api("GET", "/api/v1/tenants/bad!t/info"))).toEqual([400, ErrorCode.TENANT_INVALID]);
  });
});

describe("api-cluster - the server API rate limit", () => {
  it("rate limit - past the burst a credential gets 429 ARQ_RATE_LIMITED with Retry-After; another credential is unaffected", async () => {
    const g = await start({ http: { apiRateLimit: { perSecond: 1, burst: 3 } } });
    const server = await g.token({ sub: "backend", role: "server" });
    for (let i = 0; i < 3; i++) expect((await api("GET", "/api/v1/tenants/acme/rooms", server)).status).toBe(200);
    const res = await fetch(`${g.httpUrl}/api/v1/tenants/acme/rooms`, { headers: { authorization: `Bearer ${server}` } });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(((await res.json()) as Json).error).toEqual({ code: ErrorCode.RATE_LIMITED, message: expect.stringContaining("retry after 1 s") });
    // Another token of the same tenant (another sub), the operator key and another tenant's token each have their own bucket.
    const others: Array<[string, string]> = [
      [await g.token({ sub: "other-backend", role: "server" }), "/api/v1/tenants/acme/rooms"],
      [KEY, "/api/v1/tenants/acme/rooms"],
      [await g.token({ sub: "backend", role: "server", tenant: "beta" }), "/api/v1/tenants/beta/rooms"],
    ];
    for (const [auth, path] of others) expect((await api("GET", path, auth)).status).toBe(200);
    expect((await api("GET", "/api/v1/tenants/acme/rooms", server)).status).toBe(429);
    // The bucket refills at its rate.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await api("GET", "/api/v1/tenants/acme/rooms", server)).status).toBe(200);
  });

  it("rate limit - the default (200/s, burst 400) lets a busy backend through", async () => {
    const g = await start();
    const server = await g.token({ sub: "backend", role: "server" });
    const answers = await Promise.all(Array.from({ length: 300 }, () => api("GET", "/api/v1/tenants/acme/rooms", server)));
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
  });

  it("rate limit - buckets stay bounded under a flood of credentials, and the cost of a check is printed", () => {
    let now = 0;
    const limiter = new ApiRateLimiter({ perSecond: 10, burst: 2, maxKeys: 100 }, () => now);
    for (let i = 0; i < 10_000; i++) limiter.take(`t:acme/sub-${i}`);
    expect(limiter.size).toBe(100);
    limiter.take("k");
    limiter.take("k");
    expect(() => limiter.take("k")).toThrow(expect.objectContaining({ code: ErrorCode.RATE_LIMITED, retryAfterSeconds: 1 }));
    now += 100;
    expect(() => limiter.take("k")).not.toThrow();
    expect(() => new ApiRateLimiter({ perSecond: -1 })).toThrow(expect.objectContaining({ code: ErrorCode.VALIDATION_ERROR }));
    const off = new ApiRateLimiter({ perSecond: 0 });
    for (let i = 0; i < 1000; i++) off.take("k");
    expect(off.size).toBe(0);
    // Measured, printed as a figure: the check's cost per request.
    const real = new ApiRateLimiter();
    const start = performance.now();
    for (let i = 0; i < 200_000; i++) {
      try {
        real.take(`k${i % 1000}`);
      } catch {
        // refused past the burst: still a check
      }
    }
    console.log(`api rate limit: ${(((performance.now() - start) / 200_000) * 1e6).toFixed(0)} ns per check (1000 keys)`);
  });
});

describe("api-cluster - node registry and scatter-gather over a control plane", () => {
  const logger = pino({ level: "silent" });
  const key = Buffer.alloc(32, 7);
  const infos: ClusterInfo[] = [];
  afterEach(async () => {
    for (const i of infos.splice(0)) await i.close();
  });

  function node(hub: MemoryBusHub, id: string, options: { heartbeatMs?: number; timeoutMs?: number } = {}): ClusterInfo {
    const control = new ClusterControl(new MemoryControlPlane({ hub }), key, id, logger);
    const info = new ClusterInfo({ control, logger, beat: { version: "test", startedAt: 1 }, ...options });
    info.answer("echo", (args) => ({ from: id, args }));
    infos.push(info);
    return info;
  }

  it("registry - nodes learn of each other at once, expire after missed beats, and a closing node says goodbye", async () => {
    const hub = new MemoryBusHub();
    const a = node(hub, "a", { heartbeatMs: 50 });
    const b = node(hub, "b", { heartbeatMs: 50 });
    expect(a.known().map((n) => n.id)).toEqual(["b"]);
    expect(b.known().map((n) => n.id)).toEqual(["a"]);
    const got = await a.gather<Json>("echo", { q: 1 });
    expect(got).toEqual({ answers: [{ node: "a", body: { from: "a", args: { q: 1 } } }, { node: "b", body: { from: "b", args: { q: 1 } } }], missing: [] });
    await b.close();
    expect(a.known()).toEqual([]);
    // A node that stops beating without a goodbye is forgotten after three missed beats.
    const c = node(hub, "c", { heartbeatMs: 50 });
    expect(a.known().map((n) => n.id)).toEqual(["c"]);
    (c as unknown as { closed: boolean }).closed = true;
    await expect.poll(() => a.known().map((n) => n.id), { timeout: 1000 }).toEqual([]);
  });

  it("gather - a node that does not answer is reported missing after the timeout; one that refuses too", async () => {
    const hub = new MemoryBusHub();
    const a = node(hub, "a", { timeoutMs: 100 });
    const b = node(hub, "b");
    const c = node(hub, "c");
    b.answer("echo", () => new Promise(() => undefined));
    c.answer("echo", () => {
      throw new Error("no");
    });
    const started = performance.now();
    const got = await a.gather<Json>("echo", {});
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
    expect(got.answers.map((x) => x.node)).toEqual(["a"]);
    expect(got.missing).toEqual(["b", "c"]);
  });

  it("gather - without a working control plane this node answers alone and the others are missing, at once", async () => {
    const hub = new MemoryBusHub();
    const plane = new MemoryControlPlane({ hub });
    const control = new ClusterControl(plane, key, "a", logger);
    const a = new ClusterInfo({ control, logger, beat: { version: "test", startedAt: 1 } });
    a.answer("echo", () => "here");
    infos.push(a);
    node(hub, "b");
    expect(a.known().map((n) => n.id)).toEqual(["b"]);
    await plane.close();
    expect(await a.gather("echo", {})).toEqual({ answers: [{ node: "a", body: "here" }], missing: ["b"] });
  });
});
