import { afterEach, describe, expect, it } from "vitest";
import { CloseCode, ErrorCode, MemoryKeyValueStore, jsonBytes, roomKey } from "@arqon/core";
import { CasilController } from "../src/casil/index.js";
import { TenantRegistry, builtinTenantLimits } from "../src/tenants.js";
import { payloadOf, startGateway, type StartGatewayOptions, type TestGateway } from "../src/testing.js";
import { callApi, codeOf, type ApiAnswer } from "./api-client.js";

const KEY = "operator-key-of-the-tenancy-tests-0123";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

async function start(options: StartGatewayOptions = {}): Promise<TestGateway> {
  gw = await startGateway({ operatorKeys: [KEY], ...options });
  return gw;
}

/** Calls the server API; `auth` is the bearer credential (the operator key unless given). */
function api(method: string, path: string, body?: unknown, auth: string | null = KEY): Promise<ApiAnswer> {
  return callApi(gw!.httpUrl, method, path, body, auth);
}

describe("tenancy - lifecycle over the server API", () => {
  it("tenants - create, list, show, set; the operator key is the only way in", async () => {
    await start();
    expect(codeOf(await api("GET", "/api/v1/tenants", undefined, null))).toEqual([401, ErrorCode.AUTH_MISSING]);
    expect(codeOf(await api("GET", "/api/v1/tenants", undefined, "wrong-key-wrong-key-wrong-key"))).toEqual([401, ErrorCode.AUTH_INVALID]);
    // A tenant token is never an operator, whatever it claims.
    const fake = await gw!.token({ role: "admin", claims: { operator: true, role: "operator" } as never });
    expect(codeOf(await api("GET", "/api/v1/tenants", undefined, fake))).toEqual([403, ErrorCode.FORBIDDEN]);

    const created = await api("POST", "/api/v1/tenants", { name: "acme", limits: { maxConnections: 5 }, description: "Acme Inc." });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: "acme", status: "active", limits: { maxConnections: 5 }, description: "Acme Inc." });
    expect(codeOf(await api("POST", "/api/v1/tenants", { name: "acme" }))).toEqual([409, ErrorCode.CONFLICT]);
    expect(codeOf(await api("POST", "/api/v1/tenants", { name: "bad name!" }))).toEqual([400, ErrorCode.TENANT_INVALID]);
    expect(codeOf(await api("POST", "/api/v1/tenants", { name: "x", limits: { maxRooms: -1 } }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await api("POST", "/api/v1/tenants", { name: "x", limits: { nope: 1 } }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await api("POST", "/api/v1/tenants", { name: "x", limits: { maxRooms: 1.5 } }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect((await api("GET", "/api/v1/tenants/x")).json.status).toBe("unregistered");

    const list = await api("GET", "/api/v1/tenants");
    expect(list.json).toMatchObject({ mode: "open", tenants: [{ name: "acme" }] });
    const set = await api("PATCH", "/api/v1/tenants/acme", { limits: { maxRooms: 3, maxConnections: null } });
    expect(set.json.limits).toEqual({ maxRooms: 3 });
    const shown = await api("GET", "/api/v1/tenants/acme");
    expect(shown.json).toMatchObject({ name: "acme", status: "active", limits: { maxRooms: 3, maxConnections: 100_000 }, usage: { rooms: 0 } });
    expect(codeOf(await api("PATCH", "/api/v1/tenants/ghost", { limits: { maxRooms: 1 } }))).toEqual([404, ErrorCode.NOT_FOUND]);
    expect(codeOf(await api("PUT", "/api/v1/tenants/acme", {}))).toEqual([405, ErrorCode.VALIDATION_ERROR]);
  });

  it("tenants - registered mode admits only created tenants (403 ARQ_TENANT_UNKNOWN before the upgrade)", async () => {
    await start({ tenancy: "registered" });
    const before = await gw!.upgrade({ headers: { authorization: `Bearer ${await gw!.token({ tenant: "acme" })}` } });
    expect([before.status, before.json?.error?.code]).toEqual([403, ErrorCode.TENANT_UNKNOWN]);
    await api("POST", "/api/v1/tenants", { name: "acme" });
    const alice = await gw!.client({ tenant: "acme" });
    expect(alice.welcome.tenant).toBe("acme");
  });

  it("tenants - disable closes every connection with 4503 and refuses upgrades and publishes; enable restores", async () => {
    await start();
    const alice = await gw!.client({ tenant: "acme", sub: "alice" });
    const other = await gw!.client({ tenant: "beta", sub: "bob" });
    const disabled = await api("POST", "/api/v1/tenants/acme/disable");
    expect(disabled.json).toMatchObject({ record: { status: "disabled" }, closedHere: 1 });
    expect(await alice.closed).toMatchObject({ code: CloseCode.TENANT_DISABLED });
    const refused = await gw!.upgrade({ headers: { authorization: `Bearer ${await gw!.token({ tenant: "acme" })}` } });
    expect([refused.status, refused.json?.error?.code]).toEqual([403, ErrorCode.TENANT_DISABLED]);
    await expect(gw!.server.publish("acme", "lobby", { n: 1 })).rejects.toMatchObject({ code: ErrorCode.TENANT_DISABLED });
    // Other tenants do not notice.
    expect((await other.publish("lobby", { n: 1 })).type).toBe("ack");
    await api("POST", "/api/v1/tenants/acme/enable");
    expect((await gw!.client({ tenant: "acme" })).welcome.type).toBe("welcome");
  });

  it("delete - needs the confirmation, closes connections (4503) and removes history, state, store values, the CASIL layer, rooms, revocations and the record", async () => {
    const casil = await CasilController.create({ policy: {} });
    await start({ casil });
    await api("POST", "/api/v1/tenants", { name: "acme" });
    const alice = await gw!.client({ sub: "alice" });
    const other = await gw!.client({ tenant: "acme2" });
    const first = await alice.publish("lobby", { n: 1 });
    await alice.request({ type: "state_set", room: "lobby", state: [{ key: "k", value: jsonBytes(1) }] });
    await other.publish("lobby", { n: 1 });
    await gw!.server.kv.put("op.store/acme/default", "key", jsonBytes("v"));
    await gw!.server.kv.put("op.store/acme2/default", "key", jsonBytes("v"));
    await api("PUT", "/api/v1/tenants/acme/casil", { mode: "enforce" });
    await api("POST", "/api/v1/tenants/acme/revocations", { user: "mallory" });
    expect(gw!.server.casil!.layerVersion("acme")).toBe(1);

    expect(codeOf(await api("DELETE", "/api/v1/tenants/acme"))).toEqual([400, ErrorCode.CONFIRMATION_REQUIRED]);
    expect(codeOf(await api("DELETE", "/api/v1/tenants/acme?confirm=acme2"))).toEqual([400, ErrorCode.CONFIRMATION_REQUIRED]);
    expect((await gw!.server.history.position(roomKey("acme", "lobby"))).offset).toBe(1);
    const deleted = await api("DELETE", "/api/v1/tenants/acme?confirm=acme");
    // History rooms: lobby and the tenant's audit trail.
    expect(deleted.json).toMatchObject({ rooms: 2, stateRooms: 1, storeKeys: 1 });
    expect((await alice.closed).code).toBe(CloseCode.TENANT_DISABLED);
    const key = roomKey("acme", "lobby");
    expect((await gw!.server.history.read(key, {})).messages).toEqual([]);
    expect(await gw!.server.state.get(key)).toEqual([]);
    expect(await gw!.server.kv.get("op.store/acme/default", "key")).toBeUndefined();
    expect(gw!.server.casil!.layerVersion("acme")).toBeUndefined();
    expect(gw!.server.tenants.get("acme")).toBeUndefined();
    expect(gw!.server.tenants.revocations("acme")).toEqual([]);
    expect((await api("GET", "/api/v1/tenants/acme")).json).toMatchObject({ status: "unregistered", usage: { rooms: 0 } });
    // The neighbour with a longer name that starts the same keeps everything.
    expect((await gw!.server.history.position(roomKey("acme2", "lobby"))).offset).toBe(1);
    expect(await gw!.server.kv.get("op.store/acme2/default", "key")).toBeDefined();
    // Open mode: the name can be used again, from scratch (a new epoch, so old positions are not mistaken for new).
    const again = await gw!.client({ sub: "alice" });
    const ack = await again.publish("lobby", { n: 1 });
    expect(ack).toMatchObject({ type: "ack", offset: 1 });
    expect(ack.epoch).not.toBe(first.epoch);
    const trail = (await api("GET", "/api/v1/audit")).json.records as Array<{ action: string; target: string }>;
    expect(trail[0]).toMatchObject({ action: "tenant.delete", target: "acme" });
  });

  it("kick - closes the chosen user's (or client's) connections with 4504; a tenant admin kicks only in its tenant", async () => {
    await start();
    const a1 = await gw!.client({ sub: "alice" });
    const a2 = await gw!.client({ sub: "alice" });
    const bob = await gw!.client({ sub: "bob" });
    const otherAlice = await gw!.client({ sub: "alice", tenant: "beta" });
    const kicked = await api("POST", "/api/v1/tenants/acme/kick", { user: "alice" });
    expect(kicked.json).toEqual({ closedHere: 2 });
    expect((await a1.closed).code).toBe(CloseCode.KICKED);
    expect((await a2.closed).code).toBe(CloseCode.KICKED);
    const admin = await gw!.token({ sub: "root", role: "admin", tenant: "acme" });
    expect((await api("POST", "/api/v1/tenants/acme/kick", { client: bob.clientId }, admin)).json).toEqual({ closedHere: 1 });
    expect((await bob.closed).code).toBe(CloseCode.KICKED);
    expect(codeOf(await api("POST", "/api/v1/tenants/beta/kick", { user: "alice" }, admin))).toEqual([403, ErrorCode.FORBIDDEN]);
    const user = await gw!.token({ sub: "mallory", tenant: "acme" });
    expect(codeOf(await api("POST", "/api/v1/tenants/acme/kick", {}, user))).toEqual([403, ErrorCode.FORBIDDEN]);
    expect((await otherAlice.request({ type: "ping" })).type).toBe("pong");
  });

  it("revoke - matching tokens get 401 ARQ_AUTH_REVOKED at the upgrade and live ones close with 4500, until the rule is lifted", async () => {
    await start();
    const old = await gw!.token({ sub: "alice" });
    const live = await gw!.client({ token: old });
    const bob = await gw!.client({ sub: "bob" });
    const r = await api("POST", "/api/v1/tenants/acme/revocations", { user: "alice" });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ rule: { tenant: "acme", user: "alice" }, closedHere: 1 });
    expect((await live.closed).code).toBe(CloseCode.AUTH_INVALID);
    const refused = await gw!.upgrade({ headers: { authorization: `Bearer ${old}` } });
    expect([refused.status, refused.json?.error?.code]).toEqual([401, ErrorCode.AUTH_REVOKED]);
    // A token issued after the rule (iat in a later second) is fine; bob never was affected.
    await new Promise((res) => setTimeout(res, 1100));
    expect((await gw!.client({ sub: "alice" })).welcome.type).toBe("welcome");
    expect((await bob.request({ type: "ping" })).type).toBe("pong");
    // A refresh to a revoked token is refused on a live connection.
    const jtiToken = await gw!.token({ sub: "carol", claims: { jti: "t-1" } });
    const carol = await gw!.client({ sub: "carol" });
    await api("POST", "/api/v1/tenants/acme/revocations", { jti: "t-1" });
    expect((await carol.request({ type: "auth", token: jtiToken })).error?.code).toBe(ErrorCode.AUTH_REVOKED);
    const rules = (await api("GET", "/api/v1/tenants/acme/revocations")).json.revocations;
    expect(rules).toHaveLength(2);
    for (const rule of rules) expect((await api("DELETE", `/api/v1/tenants/acme/revocations/${rule.id}`)).json).toEqual({ removed: true });
    expect((await gw!.upgrade({ headers: { authorization: `Bearer ${old}` } })).status).toBe(101);
    expect(codeOf(await api("POST", "/api/v1/tenants/acme/revocations", { ttlMs: 5 }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await api("POST", "/api/v1/tenants/acme/revocations", { before: "not a time" }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
  });

  it("audit - operator and tenant-admin actions are recorded with who, action, target and result; newest first", async () => {
    await start();
    await api("POST", "/api/v1/tenants", { name: "acme" });
    await api("POST", "/api/v1/tenants", { name: "acme" });
    await api("POST", "/api/v1/tenants/acme/kick", { user: "nobody" });
    const admin = await gw!.client({ sub: "root", role: "admin" });
    await admin.request({ type: "command", command: "op.cron.nope" });
    const adminToken = await gw!.token({ sub: "root", role: "admin" });
    const trail = await api("GET", "/api/v1/tenants/acme/audit", undefined, adminToken);
    expect(trail.status).toBe(200);
    const records = trail.json.records as Array<{ action: string; result: string; actor: { kind: string }; target?: string }>;
    expect(records.map((r) => [r.action, r.result])).toEqual([
      ["tenant.kick", "ok"],
      ["tenant.create", ErrorCode.CONFLICT],
      ["tenant.create", "ok"],
    ]);
    expect(records[0]!.actor).toMatchObject({ kind: "operator" });
    expect(JSON.stringify(records)).not.toContain(KEY);
    const other = await gw!.token({ sub: "root", role: "admin", tenant: "beta" });
    expect(codeOf(await api("GET", "/api/v1/tenants/acme/audit", undefined, other))).toEqual([403, ErrorCode.FORBIDDEN]);
    const page = await api("GET", "/api/v1/tenants/acme/audit?limit=2");
    expect(page.json.records).toHaveLength(2);
    const rest = await api("GET", `/api/v1/tenants/acme/audit?limit=2&before=${page.json.next}`);
    expect(rest.json.records.map((r: { action: string }) => r.action)).toEqual(["tenant.create"]);
  });
});

describe("tenancy - limits", () => {
  it("limits - connections: the tenant's limit answers 429 and leaves other tenants alone", async () => {
    await start({ tenantLimits: { small: { maxConnections: 2 } } });
    await gw!.client({ tenant: "small" });
    const second = await gw!.client({ tenant: "small" });
    const third = await gw!.upgrade({ headers: { authorization: `Bearer ${await gw!.token({ tenant: "small" })}` } });
    expect([third.status, third.json?.error?.code]).toEqual([429, ErrorCode.TOO_MANY_CONNECTIONS]);
    expect((await gw!.client({ tenant: "big" })).welcome.type).toBe("welcome");
    await second.close();
    await new Promise((r) => setTimeout(r, 50));
    expect((await gw!.client({ tenant: "small" })).welcome.type).toBe("welcome");
  });

  it("limits - rooms holding data, message size and state are bounded per tenant; the connection stays open", async () => {
    await start();
    await api("POST", "/api/v1/tenants", { name: "acme", limits: { maxRooms: 2, maxMessageBytes: 1024, maxStateKeys: 2, maxStateBytes: 64 } });
    const alice = await gw!.client();
    const neighbour = await gw!.client({ tenant: "beta" });
    expect((await alice.publish("r1", { n: 1 })).type).toBe("ack");
    expect((await alice.publish("r2", { n: 1 })).type).toBe("ack");
    const third = await alice.publish("r3", { n: 1 });
    expect(third.error).toMatchObject({ code: ErrorCode.QUOTA_EXCEEDED });
    expect((await alice.publish("r1", { n: 2 })).type).toBe("ack");
    const big = await alice.publish("r1", { text: "x".repeat(2000) });
    expect(big.error?.code).toBe(ErrorCode.PAYLOAD_TOO_LARGE);
    expect((await gw!.server.history.position(roomKey("acme", "r3"))).offset).toBe(0);
    const set = (state: Array<{ key: string; value: unknown }>) =>
      alice.request({ type: "state_set", room: "r1", state: state.map((e) => ({ key: e.key, value: jsonBytes(e.value) })) });
    expect((await set([{ key: "a", value: 1 }, { key: "b", value: 2 }])).type).toBe("ack");
    expect((await set([{ key: "c", value: 3 }])).error?.code).toBe(ErrorCode.QUOTA_EXCEEDED);
    expect((await set([{ key: "a", value: "y".repeat(80) }])).error?.code).toBe(ErrorCode.QUOTA_EXCEEDED);
    expect((await gw!.server.state.get(roomKey("acme", "r1"))).map((e) => e.key)).toEqual(["a", "b"]);
    // A fresh room for state counts too: the room limit is reached.
    expect((await alice.request({ type: "state_set", room: "r9", state: [{ key: "k", value: jsonBytes(1) }] })).error?.code).toBe(ErrorCode.QUOTA_EXCEEDED);
    for (let i = 0; i < 5; i++) expect((await neighbour.publish(`room-${i}`, { i })).type).toBe("ack");
    expect((await api("GET", "/api/v1/tenants/acme")).json.usage.rooms).toBe(2);
    expect((await alice.request({ type: "ping" })).type).toBe("pong");
  });

  it("limits - presence members per room; the tenant publish rate covers server publishes too", async () => {
    await start({ tenantLimits: { acme: { maxPresencePerRoom: 2, publishRatePerSecond: 1, publishBurst: 2 } } });
    const a = await gw!.client({ sub: "a" });
    const b = await gw!.client({ sub: "b" });
    const c = await gw!.client({ sub: "c" });
    expect((await a.subscribe("lobby")).type).toBe("subscribed");
    expect((await b.subscribe("lobby")).type).toBe("subscribed");
    expect((await c.subscribe("lobby")).error).toMatchObject({ code: ErrorCode.QUOTA_EXCEEDED });
    expect((await a.subscribe("lobby")).type).toBe("subscribed");
    await gw!.server.publish("acme", "news", 1);
    await gw!.server.publish("acme", "news", 2);
    await expect(gw!.server.publish("acme", "news", 3)).rejects.toMatchObject({ code: ErrorCode.RATE_LIMITED });
    expect(payloadOf((await a.request({ type: "history", room: "news" })).messages![1]!)).toBe(2);
  });
});

describe("tenancy - publish burst default", () => {
  it("limits - a tenant given its own rate without a burst gets 2 × that rate, not the server's tenant burst", async () => {
    await start({ limits: { tenantPublishRatePerSecond: 1000, tenantPublishBurst: 500 }, tenantLimits: { acme: { publishRatePerSecond: 1 } } });
    await gw!.server.publish("acme", "news", 1);
    await gw!.server.publish("acme", "news", 2);
    await expect(gw!.server.publish("acme", "news", 3)).rejects.toMatchObject({ code: ErrorCode.RATE_LIMITED });
    // Other tenants keep the server's rate and burst.
    for (let i = 0; i < 20; i++) await gw!.server.publish("beta", "news", i);
    // A record that sets only the rate (over the server API) gets 2 × its rate too.
    expect((await api("POST", "/api/v1/tenants", { name: "gamma", limits: { publishRatePerSecond: 2 } })).status).toBe(201);
    for (let i = 0; i < 4; i++) await gw!.server.publish("gamma", "news", i);
    await expect(gw!.server.publish("gamma", "news", 4)).rejects.toMatchObject({ code: ErrorCode.RATE_LIMITED });
  });

  it("registry - the burst comes from the layer that set the rate, else 2 × the rate", () => {
    const defaults = builtinTenantLimits({ maxConnectionsPerTenant: 100, tenantPublishRatePerSecond: 10, tenantPublishBurst: 50, maxPayloadBytes: 1024 });
    const registry = new TenantRegistry({ kv: new MemoryKeyValueStore(), mode: "open", defaults, configured: { a: { publishRatePerSecond: 3 }, b: { publishBurst: 7 }, c: { publishRatePerSecond: 3, publishBurst: 0 } } });
    expect(registry.limitsOf("other").publishBurst).toBe(50);
    expect(registry.limitsOf("a").publishBurst).toBe(6);
    expect(registry.limitsOf("b")).toMatchObject({ publishRatePerSecond: 10, publishBurst: 7 });
    expect(registry.limitsOf("c").publishBurst).toBe(6);
  });
});

describe("tenancy - registry", () => {
  it("registry - sync adopts what another node changed (a missed control message) and keeps unchanged runtimes", async () => {
    const kv = new MemoryKeyValueStore();
    const defaults = builtinTenantLimits({ maxConnectionsPerTenant: 100, tenantPublishRatePerSecond: 0, tenantPublishBurst: 0, maxPayloadBytes: 1024 });
    const here = new TenantRegistry({ kv, mode: "open", defaults });
    const there = new TenantRegistry({ kv, mode: "open", defaults });
    await there.create("acme", { limits: { publishRatePerSecond: 5 } });
    await there.create("beta");
    await here.load();
    const beta = here.runtime("beta");
    await there.setStatus("acme", "disabled");
    await there.revoke("beta", { user: "mallory" }, "test");
    await there.create("gamma");
    expect(here.refusal("acme")).toBeUndefined();
    expect((await here.sync()).sort()).toEqual(["acme", "beta", "gamma"]);
    expect(here.refusal("acme")?.code).toBe(ErrorCode.TENANT_DISABLED);
    expect(here.revocations("beta")).toHaveLength(1);
    expect(await here.sync()).toEqual([]);
    await there.remove("gamma");
    expect(await here.sync()).toEqual(["gamma"]);
    expect(here.runtime("beta")).not.toBe(beta);
    const kept = here.runtime("beta");
    await here.sync();
    expect(here.runtime("beta")).toBe(kept);
  });
});
