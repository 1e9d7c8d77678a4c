import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, MemoryBusHub, MemoryControlPlane, jsonBytes } from "@arqon/core";
import { startGateway, type TestGateway } from "../src/testing.js";
import { callApi, codeOf, type ApiAnswer, type Json } from "./api-client.js";

const KEY = "operator-key-of-the-api-users-tests-0123";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

async function start(): Promise<TestGateway> {
  gw = await startGateway({ operatorKeys: [KEY] });
  return gw;
}

/** Calls the server API; `auth` is the bearer credential (the operator key unless given). */
function api(method: string, path: string, body?: unknown, auth: string | null = KEY): Promise<ApiAnswer> {
  return callApi(gw!.httpUrl, method, path, body, auth);
}

/** The credentials every route is called with, and whether each may call it. */
async function principals(g: TestGateway): Promise<Array<{ name: string; auth: string | null; allowed: boolean; status?: number; code?: string }>> {
  return [
    { name: "operator key", auth: KEY, allowed: true },
    { name: "admin of acme", auth: await g.token({ sub: "boss", role: "admin" }), allowed: true },
    { name: "server of acme", auth: await g.token({ sub: "backend", role: "server" }), allowed: true },
    { name: "admin of another tenant", auth: await g.token({ sub: "boss", tenant: "other", role: "admin" }), allowed: false, status: 403, code: ErrorCode.FORBIDDEN },
    { name: "plain user of acme", auth: await g.token({ sub: "carol" }), allowed: false, status: 403, code: ErrorCode.FORBIDDEN },
    { name: "no credential", auth: null, allowed: false, status: 401, code: ErrorCode.AUTH_MISSING },
  ];
}

describe("api-users - presence", () => {
  it("presence - members and stats of a room, with their info", async () => {
    const g = await start();
    const a1 = await g.client({ sub: "alice" });
    const a2 = await g.client({ sub: "alice" });
    const b = await g.client({ sub: "bob" });
    for (const c of [a1, a2, b]) expect((await c.subscribe("lobby")).type).toBe("subscribed");
    expect((await a1.request({ type: "presence_set", room: "lobby", info: { info: jsonBytes({ mood: "happy" }) } })).type).toBe("ack");

    for (const p of await principals(g)) {
      const list = await api("GET", "/api/v1/tenants/acme/rooms/lobby/presence", undefined, p.auth);
      const stats = await api("GET", "/api/v1/tenants/acme/rooms/lobby/presence/stats", undefined, p.auth);
      if (!p.allowed) {
        expect(codeOf(list), p.name).toEqual([p.status, p.code]);
        expect(codeOf(stats), p.name).toEqual([p.status, p.code]);
        continue;
      }
      expect(list.status, p.name).toBe(200);
      const members = [...list.json.members].sort((x: Json, y: Json) => String(x.clientId).localeCompare(String(y.clientId)));
      const expected = [
        { clientId: a1.welcome.clientId, user: "alice", info: { mood: "happy" } },
        { clientId: a2.welcome.clientId, user: "alice" },
        { clientId: b.welcome.clientId, user: "bob" },
      ].sort((x, y) => String(x.clientId).localeCompare(String(y.clientId)));
      expect(members, p.name).toMatchObject(expected);
      for (const m of members) expect(typeof m.joinedAt).toBe("number");
      expect(stats.status, p.name).toBe(200);
      expect(stats.json, p.name).toEqual({ clients: 3, users: 2 });
    }
    expect((await api("GET", "/api/v1/tenants/acme/rooms/empty/presence")).json).toEqual({ members: [] });
    expect((await api("GET", "/api/v1/tenants/acme/rooms/empty/presence/stats")).json).toEqual({ clients: 0, users: 0 });
  });

  it("presence - bad room or tenant names get their codes", async () => {
    await start();
    expect(codeOf(await api("GET", "/api/v1/tenants/acme/rooms/bad%20room/presence"))).toEqual([400, ErrorCode.ROOM_INVALID]);
    expect(codeOf(await api("GET", "/api/v1/tenants/acme/rooms/bad%20room/presence/stats"))).toEqual([400, ErrorCode.ROOM_INVALID]);
    expect(codeOf(await api("GET", "/api/v1/tenants/bad%20tenant/rooms/lobby/presence"))).toEqual([400, ErrorCode.TENANT_INVALID]);
    expect(codeOf(await api("POST", "/api/v1/tenants/acme/rooms/lobby/presence", {}))[0]).toBe(405);
  });
});

describe("api-users - room state", () => {
  it("state - a PUT reaches subscribers as state_changed, GET reads it back, for every principal", async () => {
    const g = await start();
    const sub = await g.client({ sub: "watcher" });
    expect((await sub.subscribe("doc")).type).toBe("subscribed");
    let n = 0;
    for (const p of await principals(g)) {
      const put = await api("PUT", `/api/v1/tenants/acme/rooms/doc/state/title`, { value: { text: `v${n + 1}` } }, p.auth);
      const get = await api("GET", "/api/v1/tenants/acme/rooms/doc/state", undefined, p.auth);
      if (!p.allowed) {
        expect(codeOf(put), p.name).toEqual([p.status, p.code]);
        expect(codeOf(get), p.name).toEqual([p.status, p.code]);
        continue;
      }
      n++;
      expect(put.status, p.name).toBe(200);
      expect(put.json, p.name).toEqual({ key: "title", version: n });
      const changed = await sub.waitFor((f) => f.type === "state_changed" && f.state?.[0]?.version === n);
      expect(changed.room).toBe("doc");
      expect(changed.state![0]!.key).toBe("title");
      expect(JSON.parse(new TextDecoder().decode(changed.state![0]!.value))).toEqual({ text: `v${n}` });
      expect(get.json.entries, p.name).toMatchObject([{ key: "title", value: { text: `v${n}` }, version: n }]);
    }
    expect(n).toBe(3);
    // What the socket reads agrees with the API.
    const state = await sub.request({ type: "state_get", room: "doc" });
    expect(state.state![0]!.version).toBe(3);
  });

  it("state - compare-and-set: a wrong expectedVersion is 409 ARQ_STATE_CONFLICT and writes nothing", async () => {
    await start();
    expect((await api("PUT", "/api/v1/tenants/acme/rooms/doc/state/k", { value: 1, expectedVersion: 0 })).json).toEqual({ key: "k", version: 1 });
    expect(codeOf(await api("PUT", "/api/v1/tenants/acme/rooms/doc/state/k", { value: 2, expectedVersion: 0 }))).toEqual([409, ErrorCode.STATE_CONFLICT]);
    expect(codeOf(await api("PUT", "/api/v1/tenants/acme/rooms/doc/state/k", { value: 2, expectedVersion: 5 }))).toEqual([409, ErrorCode.STATE_CONFLICT]);
    expect((await api("GET", "/api/v1/tenants/acme/rooms/doc/state")).json.entries).toMatchObject([{ key: "k", value: 1, version: 1 }]);
    expect((await api("PUT", "/api/v1/tenants/acme/rooms/doc/state/k", { value: 2, expectedVersion: 1 })).json).toEqual({ key: "k", version: 2 });
  });

  it("state - bad input gets its code and the server keeps serving", async () => {
    await start();
    const put = (key: string, body: unknown) => api("PUT", `/api/v1/tenants/acme/rooms/doc/state/${key}`, body);
    expect(codeOf(await put("k", {}))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await put("k", { value: 1, expectedVersion: -1 }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await put("k", { value: 1, expectedVersion: "1" }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await put("k", { value: 1, nope: true }))).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    expect(codeOf(await put("bad%20key", { value: 1 }))).toEqual([400, ErrorCode.STATE_KEY_INVALID]);
    expect(codeOf(await put("x".repeat(129), { value: 1 }))).toEqual([400, ErrorCode.STATE_KEY_INVALID]);
    expect(codeOf(await api("PUT", "/api/v1/tenants/acme/rooms/bad%20room/state/k", { value: 1 }))).toEqual([400, ErrorCode.ROOM_INVALID]);
    expect(codeOf(await api("GET", "/api/v1/tenants/acme/rooms/bad%20room/state"))).toEqual([400, ErrorCode.ROOM_INVALID]);
    const res = await fetch(`${gw!.httpUrl}/api/v1/tenants/acme/rooms/doc/state/k`, { method: "PUT", headers: { authorization: `Bearer ${KEY}` }, body: "{nope" });
    expect(res.status).toBe(400);
    expect(codeOf(await api("PUT", "/api/v1/tenants/acme/rooms/doc/state/k", { value: "x".repeat(2 * 1024 * 1024) }))).toEqual([413, ErrorCode.PAYLOAD_TOO_LARGE]);
    expect((await api("GET", "/api/v1/tenants/acme/rooms/doc/state")).json).toEqual({ entries: [] });
  });
});

describe("api-users - disconnect", () => {
  it("disconnect - closes the user's connections with the given code, for every principal", async () => {
    const g = await start();
    for (const p of await principals(g)) {
      const victim = await g.client({ sub: "mallory" });
      const bystander = await g.client({ sub: "bob" });
      const r = await api("POST", "/api/v1/tenants/acme/disconnect", { user: "mallory", code: 4321, reason: "bye" }, p.auth);
      if (!p.allowed) {
        expect(codeOf(r), p.name).toEqual([p.status, p.code]);
        expect(victim.ws.readyState, p.name).toBe(victim.ws.OPEN);
        await victim.close();
        await bystander.close();
        continue;
      }
      expect(r.status, p.name).toBe(200);
      expect(r.json, p.name).toEqual({ closedHere: 1 });
      expect(await victim.closed, p.name).toEqual({ code: 4321, reason: "bye" });
      expect(bystander.ws.readyState, p.name).toBe(bystander.ws.OPEN);
      await bystander.close();
    }
  });

  it("disconnect - one client by id, 4504 by default; bad input gets VALIDATION_ERROR", async () => {
    const g = await start();
    const a = await g.client({ sub: "alice" });
    const a2 = await g.client({ sub: "alice" });
    const r = await api("POST", "/api/v1/tenants/acme/disconnect", { client: a.welcome.clientId });
    expect(r.json).toEqual({ closedHere: 1 });
    expect((await a.closed).code).toBe(4504);
    expect(a2.ws.readyState).toBe(a2.ws.OPEN);
    for (const body of [{ code: 3999 }, { code: 5000 }, { code: 4000.5 }, { code: "4000" }, { reason: 7 }, { reason: "é".repeat(70) }, { user: "" }, { user: 5 }, { nope: 1 }]) {
      expect(codeOf(await api("POST", "/api/v1/tenants/acme/disconnect", body)), JSON.stringify(body)).toEqual([400, ErrorCode.VALIDATION_ERROR]);
    }
    expect(codeOf(await api("POST", "/api/v1/tenants/bad%20tenant/disconnect", {}))).toEqual([400, ErrorCode.TENANT_INVALID]);
    expect(a2.ws.readyState).toBe(a2.ws.OPEN);
  });

  it("disconnect - a call on node B closes the user's connection on node A with the given code", async () => {
    const hub = new MemoryBusHub();
    const secret = "secret-of-the-api-users-cluster-test-0123456789";
    const a = await startGateway({ secret, operatorKeys: [KEY], controlPlane: new MemoryControlPlane({ hub }) });
    gw = await startGateway({ secret, operatorKeys: [KEY], controlPlane: new MemoryControlPlane({ hub }) });
    try {
      const onA = await a.client({ sub: "mallory" });
      const stays = await a.client({ sub: "bob" });
      const r = await api("POST", "/api/v1/tenants/acme/disconnect", { user: "mallory", code: 4444, reason: "moved" });
      expect(r.json).toEqual({ closedHere: 0 });
      expect(await onA.closed).toEqual({ code: 4444, reason: "moved" });
      expect((await stays.request({ type: "ping" })).type).toBe("pong");
    } finally {
      await a.close();
    }
  });
});
