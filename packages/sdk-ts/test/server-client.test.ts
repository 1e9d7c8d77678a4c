import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { CasilController } from "@arqon/server";
import { startGateway, type StartGatewayOptions, type TestGateway } from "@arqon/server/testing";
import { ErrorCode } from "@arqon/core";
import { ArqonClient, type Room, type RoomEvents, type RoomMessage, type StateChange } from "../src/index.js";
import { ArqonApiError, ArqonServerClient, SERVER_OPERATIONS, operationParams, parseRetryAfter, type ArqonServerClientOptions } from "../src/server.js";
import { nextEvent, until } from "./helpers/wait.js";

const KEY = "operator-key-of-the-sdk-server-client-tests";

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function gateway(options: StartGatewayOptions = {}): Promise<TestGateway> {
  const gw = await startGateway({ operatorKeys: [KEY], ...options });
  cleanup.push(() => gw.close());
  return gw;
}

function api(gw: TestGateway, options: Partial<ArqonServerClientOptions> = {}): ArqonServerClient {
  return new ArqonServerClient({ url: gw.httpUrl, operatorKey: KEY, tenant: "acme", ...options });
}

async function wsClient(gw: TestGateway, sub: string, tenant = "acme"): Promise<ArqonClient> {
  const c = new ArqonClient(gw.url, { token: await gw.token({ sub, tenant }), reconnect: false });
  cleanup.push(() => c.close());
  await c.connect();
  return c;
}

/** The ArqonApiError a promise rejects with (failing the test when it resolves or throws something else). */
async function refusal(p: Promise<unknown>): Promise<ArqonApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ArqonApiError);
  return err as ArqonApiError;
}

function codeOf(e: ArqonApiError): [number, string] {
  return [e.status, e.code];
}

describe("server client - rooms and users", () => {
  it("publish - a message published through the client reaches a WebSocket client of @arqon/sdk, with headers and sender", async () => {
    const gw = await gateway();
    const bob = await wsClient(gw, "bob");
    const got: RoomMessage[] = [];
    await bob.room("news").subscribe((m) => got.push(m));
    const server = api(gw, { operatorKey: undefined, token: await gw.token({ sub: "backend", role: "server" }) });
    const ack = await server.publish("news", { text: "from the backend" }, { headers: { "x-source": "api" } });
    expect(ack).toEqual({ id: expect.any(String), room: "news", offset: 1, epoch: expect.any(String), duplicate: false });
    await until(() => got.length === 1);
    expect(got[0]).toMatchObject({ id: ack.id, room: "news", payload: { text: "from the backend" }, format: "json", offset: 1, sender: "backend" });
    expect(got[0]!.headers["x-source"]).toBe("api");

    const binary = await api(gw).publish("news", new Uint8Array([1, 2, 3]), { idempotencyKey: "k1" });
    expect((await api(gw).publish("news", new Uint8Array([1, 2, 3]), { idempotencyKey: "k1" })).duplicate).toBe(true);
    await until(() => got.length === 2);
    expect(got[1]).toMatchObject({ id: binary.id, format: "binary", sender: "operator" });
    expect([...(got[1]!.payload as Uint8Array)]).toEqual([1, 2, 3]);
  });

  it("cluster routes - rooms pages with a cursor, historyRemove starts a new epoch, subscribeUser reaches a live client, tenantInfo and info", async () => {
    const gw = await gateway();
    const server = api(gw);
    const bob = await wsClient(gw, "bob");
    for (const name of ["a.one", "a.two", "a.three"]) await bob.room(name).subscribe();
    const first = await server.rooms({ prefix: "a.", limit: 2 });
    expect(first.rooms).toEqual([
      { room: "a.one", subscribers: 1, nodes: 1 },
      { room: "a.three", subscribers: 1, nodes: 1 },
    ]);
    expect(typeof first.next).toBe("string");
    const second = await server.rooms({ prefix: "a.", limit: 2, cursor: first.next });
    expect(second).toEqual({ rooms: [{ room: "a.two", subscribers: 1, nodes: 1 }] });
    const before = await server.publish("a.one", { n: 1 });
    const removed = await server.historyRemove("a.one");
    expect(removed.removed).toBe(true);
    expect(removed.position.offset).toBe(0);
    expect(removed.position.epoch).not.toBe(before.epoch);
    expect((await server.history("a.one")).messages).toEqual([]);
    const joined = nextEvent(bob, "serverSubscribed");
    expect(await server.subscribeUser("bob", "pushed")).toEqual({ subscribedHere: 1 });
    const room: Room = await joined;
    expect(room.name).toBe("pushed");
    const got = nextEvent<RoomEvents, "message">(room, "message");
    await server.publish("pushed", { hi: 1 });
    expect((await got).payload).toEqual({ hi: 1 });
    expect(await server.unsubscribeUser("bob", "pushed")).toEqual({ unsubscribedHere: 1 });
    const info = await server.tenantInfo();
    expect(info).toMatchObject({ tenant: "acme", connections: 1, nodes: [{ connections: 1 }] });
    const nodes = await server.info();
    expect(nodes.clustered).toBe(false);
    expect(nodes.nodes).toMatchObject([{ id: nodes.node, self: true, connections: 1 }]);
    // info is the operator's; an admin of the tenant gets 403, a server token also for tenantInfo.
    const admin = api(gw, { operatorKey: undefined, token: await gw.token({ sub: "boss", role: "admin" }) });
    expect(codeOf(await refusal(admin.info()))).toEqual([403, ErrorCode.FORBIDDEN]);
    const backend = api(gw, { operatorKey: undefined, token: await gw.token({ sub: "b", role: "server" }) });
    expect(codeOf(await refusal(backend.tenantInfo()))).toEqual([403, ErrorCode.FORBIDDEN]);
  });

  it("operations - SERVER_OPERATIONS names exactly the /api/v1 operations of the server's OpenAPI document, with their methods", async () => {
    const gw = await gateway({ casil: await CasilController.create({ policy: { mode: "monitor" } }) });
    const doc = (await (await fetch(`${gw.httpUrl}/api/v1/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (!path.startsWith("/api/v1/") || path === "/api/v1/openapi.json") continue;
      for (const method of Object.keys(ops)) if (["get", "post", "put", "patch", "delete"].includes(method)) documented.add(`${method.toUpperCase()} ${path}`);
    }
    const ours = new Set(Object.values(SERVER_OPERATIONS).map((o) => `${o.method} ${o.path.replace(/:(\w+)/g, "{$1}")}`));
    expect([...ours].filter((o) => !documented.has(o)), "client operations the server does not document").toEqual([]);
    expect([...documented].filter((o) => !ours.has(o)), "documented operations the client has no method for").toEqual([]);
  });

  it("broadcast - one message into several rooms; a bad room name is a 400 for the whole request", async () => {
    const gw = await gateway();
    const bob = await wsClient(gw, "bob");
    const got: RoomMessage[] = [];
    await bob.room("a").subscribe((m) => got.push(m));
    await bob.room("b").subscribe((m) => got.push(m));
    const { results } = await api(gw).broadcast(["a", "b"], { n: 1 });
    expect(results).toEqual([
      { room: "a", id: expect.any(String), offset: 1, epoch: expect.any(String), duplicate: false },
      { room: "b", id: expect.any(String), offset: 1, epoch: expect.any(String), duplicate: false },
    ]);
    await until(() => got.length === 2);
    expect(got.map((m) => [m.room, m.payload])).toEqual([
      ["a", { n: 1 }],
      ["b", { n: 1 }],
    ]);
    const bad = await refusal(api(gw).broadcast(["a", "a"], { n: 2 }));
    expect([...codeOf(bad), bad.message]).toEqual([400, ErrorCode.VALIDATION_ERROR, 'rooms[1]: "a" is named twice']);
  });

  it("history - offset and time ranges, reverse, limit, and historyMessages paging through all of it", async () => {
    const gw = await gateway();
    const c = api(gw);
    const acks = [];
    for (let i = 1; i <= 7; i++) acks.push(await c.publish("log", { i }));
    const all = await c.history("log");
    expect(all.position).toEqual({ offset: 7, epoch: acks[0]!.epoch });
    expect(all.messages.map((m) => m.payload)).toEqual([1, 2, 3, 4, 5, 6, 7].map((i) => ({ i })));
    expect(all.messages[0]).toEqual({
      id: acks[0]!.id,
      offset: 1,
      epoch: acks[0]!.epoch,
      timestamp: expect.any(Number),
      sender: "operator",
      headers: { "x-timestamp": String(all.messages[0]!.timestamp), "x-twist-id": "main" },
      payload: { i: 1 },
    });
    expect((await c.history("log", { fromOffset: 3, toOffset: 5 })).messages.map((m) => m.offset)).toEqual([3, 4, 5]);
    expect((await c.history("log", { reverse: true, limit: 2 })).messages.map((m) => m.offset)).toEqual([7, 6]);
    const ts = all.messages[3]!.timestamp;
    expect((await c.history("log", { fromTs: ts })).messages.every((m) => m.timestamp >= ts)).toBe(true);
    expect((await c.history("log", { toTs: ts - 1_000_000 })).messages).toEqual([]);

    const forward: number[] = [];
    for await (const m of c.historyMessages("log", { limit: 3 })) forward.push(m.offset);
    expect(forward).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const backward: number[] = [];
    for await (const m of c.historyMessages("log", { reverse: true, limit: 2, fromOffset: 2 })) backward.push(m.offset);
    expect(backward).toEqual([7, 6, 5, 4, 3, 2]);
    const bounded: number[] = [];
    for await (const m of c.historyMessages("log", { fromOffset: 2, toOffset: 5, limit: 2 })) bounded.push(m.offset);
    expect(bounded).toEqual([2, 3, 4, 5]);

    // A room name with "/" travels as one path segment.
    await c.publish("team/eng", { x: 1 });
    expect((await c.history("team/eng")).messages.map((m) => m.payload)).toEqual([{ x: 1 }]);
  });

  it("rooms, presence, presenceStats - what the WebSocket clients of the tenant are doing, and nothing of another tenant", async () => {
    const gw = await gateway();
    const alice = await wsClient(gw, "alice");
    const bob = await wsClient(gw, "bob");
    const alice2 = await wsClient(gw, "alice");
    const beta = await wsClient(gw, "eve", "beta");
    await alice.room("lobby").subscribe(() => undefined);
    await bob.room("lobby").subscribe(() => undefined);
    await alice2.room("lobby").subscribe(() => undefined);
    await bob.room("lab").subscribe(() => undefined);
    await beta.room("lobby").subscribe(() => undefined);
    const c = api(gw);
    expect(await c.rooms()).toEqual({
      rooms: [
        { room: "lab", subscribers: 1, nodes: 1 },
        { room: "lobby", subscribers: 3, nodes: 1 },
      ],
    });
    expect(await c.rooms({ prefix: "lo" })).toEqual({ rooms: [{ room: "lobby", subscribers: 3, nodes: 1 }] });
    expect(await c.rooms({ limit: 1 })).toMatchObject({ rooms: [{ room: "lab", subscribers: 1, nodes: 1 }], next: expect.any(String) });
    expect(await c.rooms({ tenant: "beta" })).toEqual({ rooms: [{ room: "lobby", subscribers: 1, nodes: 1 }] });
    const { members } = await c.presence("lobby");
    expect(members.map((m) => m.user).sort()).toEqual(["alice", "alice", "bob"]);
    expect(members.every((m) => typeof m.clientId === "string")).toBe(true);
    expect(await c.presenceStats("lobby")).toEqual({ clients: 3, users: 2 });
    expect(await c.presenceStats("lobby", { tenant: "beta" })).toEqual({ clients: 1, users: 1 });
  });

  it("state - stateSet reaches subscribers, stateGet reads it back, a wrong expectedVersion is 409 ARQ_STATE_CONFLICT", async () => {
    const gw = await gateway();
    const bob = await wsClient(gw, "bob");
    const room = bob.room("doc");
    await room.subscribe(() => undefined);
    const c = api(gw);
    const changed = nextEvent(room.state, "change", (changes: StateChange[]) => changes.some((e) => e.key === "title"));
    expect(await c.stateSet("doc", "title", "Draft", { expectedVersion: 0 })).toEqual({ key: "title", version: 1 });
    expect((await changed).find((e: StateChange) => e.key === "title")).toMatchObject({ key: "title", value: "Draft", version: 1, deleted: false });
    expect(await c.stateSet("doc", "title", "Final", { expectedVersion: 1 })).toEqual({ key: "title", version: 2 });
    const conflict = await refusal(c.stateSet("doc", "title", "Lost", { expectedVersion: 1 }));
    expect(codeOf(conflict)).toEqual([409, ErrorCode.STATE_CONFLICT]);
    expect(await c.stateSet("doc", "count", { n: 3 })).toEqual({ key: "count", version: 1 });
    const { entries } = await c.stateGet("doc");
    expect(entries.map(({ key, value, version }) => ({ key, value, version })).sort((a, b) => a.key.localeCompare(b.key))).toEqual([
      { key: "count", value: { n: 3 }, version: 1 },
      { key: "title", value: "Final", version: 2 },
    ]);
  });

  it("disconnect - closes the user's connections with the code and reason given", async () => {
    const gw = await gateway();
    const bob = await wsClient(gw, "bob");
    const alice = await wsClient(gw, "alice");
    const closed = nextEvent(bob, "disconnected");
    expect(await api(gw).disconnect({ user: "bob", code: 4321, reason: "bye" })).toEqual({ closedHere: 1 });
    expect(await closed).toMatchObject({ code: 4321, reason: "bye" });
    expect(alice.connected).toBe(true);
    const bad = await refusal(api(gw).disconnect({ user: "alice", code: 1000 }));
    expect([...codeOf(bad), bad.message]).toEqual([400, ErrorCode.VALIDATION_ERROR, '"code" must be a whole number from 4000 to 4999']);
  });
});

describe("server client - tenant administration", () => {
  it("tenants - list, create, show, set, disable, enable and delete round trip", async () => {
    const gw = await gateway();
    const c = api(gw);
    expect(await c.listTenants()).toEqual({ mode: "open", tenants: [] });
    const created = await c.createTenant("acme", { limits: { maxConnections: 50 }, description: "Acme" });
    expect(created).toMatchObject({ name: "acme", status: "active", limits: { maxConnections: 50 }, description: "Acme" });
    expect(codeOf(await refusal(c.createTenant("acme")))).toEqual([409, ErrorCode.CONFLICT]);
    expect((await c.listTenants()).tenants.map((t) => t.name)).toEqual(["acme"]);
    const shown = await c.showTenant();
    expect(shown).toMatchObject({ name: "acme", status: "active", record: { description: "Acme" }, limits: { maxConnections: 50 }, connectionsHere: 0, revocations: [] });
    expect(shown.usage).toEqual({ rooms: 0, storeKeys: 0, storeBytes: 0 });
    expect(await c.setTenant("acme", { limits: { maxConnections: null, publishRatePerSecond: 20 } })).toMatchObject({ limits: { publishRatePerSecond: 20 } });
    expect((await c.showTenant("acme")).record?.limits).toEqual({ publishRatePerSecond: 20 });

    const member = await wsClient(gw, "carol");
    const gone = nextEvent(member, "disconnected");
    const disabled = await c.disableTenant("acme");
    expect(disabled).toMatchObject({ record: { status: "disabled" }, closedHere: 1 });
    expect((await gone).code).toBe(4503);
    expect(await c.enableTenant("acme")).toMatchObject({ name: "acme", status: "active" });

    await c.publish("kept", { n: 1 });
    expect(codeOf(await refusal(c.deleteTenant("acme", { confirm: "nope" })))).toEqual([400, ErrorCode.CONFIRMATION_REQUIRED]);
    // Two rooms held history: "kept" and the tenant's audit trail.
    expect(await c.deleteTenant("acme", { confirm: "acme" })).toEqual({ rooms: 2, stateRooms: 0, storeKeys: 0 });
    expect(await c.listTenants()).toEqual({ mode: "open", tenants: [] });
    expect((await c.serverAudit()).records.map((r) => r.action)).toContain("tenant.delete");
  });

  it("kick, revoke, revocations, unrevoke, audit - as a tenant admin of its own tenant", async () => {
    const gw = await gateway();
    const admin = api(gw, { operatorKey: undefined, token: await gw.token({ sub: "root", role: "admin" }) });
    const mallory = await wsClient(gw, "mallory");
    const kicked = nextEvent(mallory, "disconnected");
    expect(await admin.kick({ user: "mallory" })).toEqual({ closedHere: 1 });
    expect((await kicked).code).toBe(4504);

    const eve = await wsClient(gw, "eve");
    const revokedClose = nextEvent(eve, "disconnected");
    const { rule, closedHere } = await admin.revoke({ user: "eve", ttlMs: 60_000 });
    expect(rule).toMatchObject({ tenant: "acme", user: "eve", by: "root", id: expect.any(String) });
    expect(closedHere).toBe(1);
    expect((await revokedClose).code).toBe(4500);
    expect((await admin.revocations()).revocations.map((r) => r.id)).toEqual([rule.id]);
    expect(await admin.unrevoke(rule.id)).toEqual({ removed: true });
    expect(codeOf(await refusal(admin.unrevoke(rule.id)))).toEqual([404, ErrorCode.NOT_FOUND]);
    expect(await admin.revocations()).toEqual({ revocations: [] });

    const trail = await admin.audit({ limit: 2 });
    expect(trail.records.map((r) => r.action)).toEqual(["tenant.unrevoke", "tenant.unrevoke"]);
    expect(trail.records[1]).toMatchObject({ actor: { kind: "tenant_admin", tenant: "acme", sub: "root" }, result: "ok" });
    expect(trail.next).toEqual(expect.any(Number));
    const older = await admin.audit({ before: trail.next! });
    expect(older.records.map((r) => r.action)).toEqual(["tenant.revoke", "tenant.kick"]);
    // The admin of acme may not read the server's trail nor act on another tenant.
    expect(codeOf(await refusal(admin.serverAudit()))).toEqual([403, ErrorCode.FORBIDDEN]);
    expect(codeOf(await refusal(admin.kick({ tenant: "beta", user: "x" })))).toEqual([403, ErrorCode.FORBIDDEN]);
  });

  it("casil - baseline get and put (operator), a tenant layer put, get and delete (tenant admin)", async () => {
    const casil = await CasilController.create({ policy: { mode: "monitor" } });
    cleanup.push(() => casil.close());
    const gw = await gateway({ casil });
    const op = api(gw);
    expect(await op.casilBaseline()).toMatchObject({ version: 1, mode: "monitor", layers: [] });
    expect(await op.casilBaselinePut({ mode: "enforce", dryRun: true })).toMatchObject({ valid: true, dryRun: true });
    const admin = api(gw, { operatorKey: undefined, token: await gw.token({ sub: "root", role: "admin" }) });
    const put = await admin.casilPut({ policy: { mode: "enforce", maxPayloadBytes: 2048 } });
    expect(put).toEqual({ valid: true, dryRun: false, tenant: "acme", version: 1, previousVersion: 0, changes: ["layer created", "mode: unset -> enforce", "maxPayloadBytes: unset -> 2048"] });
    expect(await admin.casilGet()).toMatchObject({ layer: { version: 1 } });
    expect(await admin.casilDelete()).toMatchObject({ tenant: "acme", version: 2, previousVersion: 1, changes: ["layer removed"] });
    expect(codeOf(await refusal(admin.casilBaseline()))).toEqual([403, ErrorCode.FORBIDDEN]);
    const invalid = await refusal(admin.casilPut({ mode: "enforce", clear: true }));
    expect(codeOf(invalid)).toEqual([400, ErrorCode.VALIDATION_ERROR]);
  });
});

describe("server client - errors", () => {
  it("errors - 401 without or with a wrong credential, 403 for another tenant's token or a user token", async () => {
    const gw = await gateway();
    const none = await refusal(api(gw, { operatorKey: undefined }).rooms());
    expect([...codeOf(none), none.message]).toEqual([401, ErrorCode.AUTH_MISSING, "an operator key or a bearer token is required"]);
    expect(none.retryable).toBe(false);
    expect(codeOf(await refusal(api(gw, { operatorKey: "not-the-key" }).rooms()))).toEqual([401, ErrorCode.AUTH_INVALID]);
    const beta = api(gw, { operatorKey: undefined, token: await gw.token({ sub: "b", role: "server", tenant: "beta" }) });
    expect(codeOf(await refusal(beta.publish("news", { x: 1 })))).toEqual([403, ErrorCode.FORBIDDEN]);
    expect(await beta.publish("news", { x: 1 }, { tenant: "beta" })).toMatchObject({ offset: 1 });
    const user = api(gw, { operatorKey: undefined, token: await gw.token({ sub: "mallory" }) });
    expect(codeOf(await refusal(user.history("news")))).toEqual([403, ErrorCode.FORBIDDEN]);
    const server = api(gw, { operatorKey: undefined, token: await gw.token({ sub: "b", role: "server" }) });
    expect(codeOf(await refusal(server.listTenants()))).toEqual([403, ErrorCode.FORBIDDEN]);
  });

  it("errors - 400 for bad input, 404 for an unknown route, 405 for a wrong method, 413 for a body over the limit", async () => {
    const gw = await gateway({ http: { maxBodyBytes: 1024 } });
    const c = api(gw);
    const limit = await refusal(c.history("log", { limit: 0 }));
    expect([...codeOf(limit), limit.message]).toEqual([400, ErrorCode.VALIDATION_ERROR, "limit must be a whole number from 1 to 1000"]);
    expect(codeOf(await refusal(c.publish("bad room!", { x: 1 })))).toEqual([400, ErrorCode.ROOM_INVALID]);
    expect(codeOf(await refusal(c.stateSet("doc", "$bad", 1)))).toEqual([400, ErrorCode.STATE_KEY_INVALID]);
    expect(codeOf(await refusal(c.call("POST", "/api/v1/tenants/acme/publish", { room: "x", payload: 1, extra: true })))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    const missing = await refusal(c.call("GET", "/api/v1/nothing-here"));
    expect([...codeOf(missing), missing.message]).toEqual([404, ErrorCode.NOT_FOUND, "no route /api/v1/nothing-here"]);
    expect(codeOf(await refusal(c.call("DELETE", "/api/v1/tenants/acme/publish")))).toEqual([405, ErrorCode.VALIDATION_ERROR]);
    const big = await refusal(c.publish("news", { text: "x".repeat(2000) }));
    expect(codeOf(big)).toEqual([413, ErrorCode.PAYLOAD_TOO_LARGE]);
    // The escape hatch answers what the server answers, query included.
    await c.publish("news", { n: 1 });
    expect(await c.call("GET", "/api/v1/tenants/acme/rooms/news/history", undefined, { limit: 1, reverse: true })).toMatchObject({ messages: [{ offset: 1 }] });
  });

  it("errors - 429 ARQ_RATE_LIMITED when the tenant's publish rate is spent (retryable)", async () => {
    const gw = await gateway({ tenantLimits: { acme: { publishRatePerSecond: 1, publishBurst: 1 } } });
    const c = api(gw);
    await c.publish("news", { n: 1 });
    const limited = await refusal(c.publish("news", { n: 2 }));
    expect(codeOf(limited)).toEqual([429, ErrorCode.RATE_LIMITED]);
    expect(limited.retryable).toBe(true);
  });

  it("errors - Retry-After of a 429 becomes retryAfterMs; no answer in time is ARQ_REQUEST_TIMEOUT; no server ARQ_CONNECTION_CLOSED", async () => {
    // A plain HTTP server standing in for a rate-limiting proxy in front of the gateway (main's gateway sends no
    // Retry-After on the API yet), and one that never answers.
    let hang: (() => void) | undefined;
    const server: Server = createServer((req, res) => {
      if (req.url?.startsWith("/api/v1/slow")) {
        hang = () => res.end();
        return;
      }
      res.writeHead(429, { "content-type": "application/json", "retry-after": "3" });
      res.end(JSON.stringify({ error: { code: ErrorCode.RATE_LIMITED, message: "slow down" } }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    cleanup.push(() => hang?.());
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const limited = await refusal(new ArqonServerClient({ url, operatorKey: KEY, tenant: "acme" }).publish("news", 1));
    expect([...codeOf(limited), limited.message, limited.retryAfterMs]).toEqual([429, ErrorCode.RATE_LIMITED, "slow down", 3000]);
    const slow = await refusal(new ArqonServerClient({ url, operatorKey: KEY, timeoutMs: 200 }).call("GET", "/api/v1/slow"));
    expect(codeOf(slow)).toEqual([0, "ARQ_REQUEST_TIMEOUT"]);
    expect(parseRetryAfter(new Date(Date.now() + 60_000).toUTCString())).toBeGreaterThan(55_000);
    expect(parseRetryAfter("soon")).toBeUndefined();

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const dead = await refusal(new ArqonServerClient({ url: `ws://127.0.0.1:${deadPort}/ws`, operatorKey: KEY }).listTenants());
    expect(codeOf(dead)).toEqual([0, "ARQ_CONNECTION_CLOSED"]);
    expect(dead.message).toMatch(new RegExp(`^cannot reach http://127\\.0\\.0\\.1:${deadPort}: .*ECONNREFUSED`));
  });

  it("options - a tenant is needed for tenant routes; operatorKey and token exclude each other; every operation has a method", async () => {
    const gw = await gateway();
    await expect(new ArqonServerClient({ url: gw.httpUrl, operatorKey: KEY }).rooms()).rejects.toThrow("rooms needs a tenant");
    expect(() => new ArqonServerClient({ url: gw.httpUrl, operatorKey: KEY, token: "t" })).toThrow("give operatorKey or token, not both");
    const proto = ArqonServerClient.prototype as unknown as Record<string, unknown>;
    expect(Object.keys(SERVER_OPERATIONS).filter((name) => typeof proto[name] !== "function")).toEqual([]);
    expect(operationParams(SERVER_OPERATIONS.stateSet.path)).toEqual(["tenant", "room", "key"]);
  });
});
