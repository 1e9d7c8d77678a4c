import { afterEach, describe, expect, it } from "vitest";
import Ajv2020 from "ajv/dist/2020.js";
import { Validator } from "@seriousme/openapi-schema-validator";
import { CasilController } from "../src/casil/index.js";
import { API_OPERATIONS, FIXED_ROUTES, GENERIC_MARK, OPENAPI_PATH, openApiPath, operationKey } from "../src/openapi.js";
import { startGateway, type TestGateway } from "../src/testing.js";
import { answered, callApi, checkAnswer, checkedFetch, type Json } from "./api-client.js";

const KEY = "operator-key-of-the-openapi-tests-012345";
const SCRAPE = "scrape-token-of-the-openapi-tests-012345";
const METHODS = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];

let gw: TestGateway | undefined;
let casil: CasilController | undefined;
afterEach(async () => {
  await gw?.close();
  await casil?.close();
  gw = undefined;
  casil = undefined;
});

/** A gateway with every built-in route (CASIL on), an operator key and a scrape token. */
async function start(): Promise<TestGateway> {
  casil = await CasilController.create();
  gw = await startGateway({ operatorKeys: [KEY], scrapeTokens: [SCRAPE], casil });
  return gw;
}

async function fetchDocument(g: TestGateway, headers: Record<string, string> = {}): Promise<{ status: number; type: string | null; doc: Json }> {
  const res = await fetch(`${g.httpUrl}${OPENAPI_PATH}`, { headers });
  return { status: res.status, type: res.headers.get("content-type"), doc: await res.json() };
}

/** Every operation of a document as "METHOD /openapi/{path}". */
function operationsOf(doc: Json): Array<{ key: string; op: Json }> {
  const out: Array<{ key: string; op: Json }> = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Json>>)) {
    for (const method of METHODS) if (item[method]) out.push({ key: `${method.toUpperCase()} ${path}`, op: item[method] });
  }
  return out;
}

describe("openapi - GET /api/v1/openapi.json", () => {
  it("openapi - answers the same document with no credential and with every kind of credential", async () => {
    const g = await start();
    const anonymous = await fetchDocument(g);
    expect(anonymous.status).toBe(200);
    expect(anonymous.type).toContain("application/json");
    expect(anonymous.doc.openapi).toBe("3.1.0");
    const credentials: Record<string, Record<string, string>> = {
      "operator key (X-API-Key)": { "x-api-key": KEY },
      "operator key (bearer)": { authorization: `Bearer ${KEY}` },
      "scrape token": { authorization: `Bearer ${SCRAPE}` },
      "admin token": { authorization: `Bearer ${await g.token({ sub: "boss", role: "admin" })}` },
      "server-role token": { authorization: `Bearer ${await g.token({ sub: "backend", role: "server" })}` },
      "user token": { authorization: `Bearer ${await g.token({ sub: "carol" })}` },
      "expired token": { authorization: `Bearer ${await g.token({ ttlSec: -60 })}` },
      "garbage bearer": { authorization: "Bearer not-a-token" },
    };
    for (const [name, headers] of Object.entries(credentials)) {
      const r = await fetchDocument(g, headers);
      expect(r.status, name).toBe(200);
      expect(r.doc, name).toEqual(anonymous.doc);
    }
    const post = await fetch(`${g.httpUrl}${OPENAPI_PATH}`, { method: "POST", body: "{}" });
    expect([post.status, post.headers.get("allow"), ((await post.json()) as Json).error.code]).toEqual([405, "GET", "VALIDATION_ERROR"]);
    expect(anonymous.doc.paths[OPENAPI_PATH].get.security).toEqual([]);
    expect(anonymous.doc.paths[OPENAPI_PATH].get.description).toContain("holds no data");
    expect(anonymous.doc.info.version).toBe((await (await fetch(`${g.httpUrl}/version`)).json() as Json).version);
  });

  it("openapi - the document is valid OpenAPI 3.1 and every schema in it compiles as JSON Schema 2020-12", async () => {
    const { doc } = await fetchDocument(await start());
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors, JSON.stringify(result.errors, null, 2)).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
    const ajv = new Ajv2020({ strict: true, strictRequired: false, validateFormats: false });
    const local = (schema: unknown): Json => JSON.parse(JSON.stringify(schema).replaceAll("#/components/schemas/", "components#/$defs/"));
    ajv.addSchema({ $id: "components", $defs: local(doc.components.schemas) });
    const schemas: Array<[string, unknown]> = [];
    for (const { key, op } of operationsOf(doc)) {
      for (const [status, r] of Object.entries(op.responses as Record<string, Json>)) for (const m of Object.values(r.content as Json)) schemas.push([`${key} ${status}`, (m as Json).schema]);
      for (const m of Object.values((op.requestBody?.content ?? {}) as Json)) schemas.push([`${key} request`, (m as Json).schema]);
      for (const p of op.parameters ?? []) schemas.push([`${key} ${p.in} ${p.name}`, p.schema]);
    }
    expect(schemas.length).toBeGreaterThan(80);
    for (const [where, schema] of schemas) {
      expect(() => ajv.compile(local(schema)), where).not.toThrow();
    }
  });

  it("openapi - documents exactly the router's routes and the fixed ones, each with its own schema entry", async () => {
    const g = await start();
    const { doc } = await fetchDocument(g);
    const routes = g.server.apiRoutes();
    const expected = new Set([...FIXED_ROUTES, ...routes].map((r) => `${r.method} ${openApiPath(r.path)}`));
    const documented = new Set(operationsOf(doc).map((o) => o.key));
    const missing = [...expected].filter((k) => !documented.has(k));
    const extra = [...documented].filter((k) => !expected.has(k));
    expect({ missing, extra }).toEqual({ missing: [], extra: [] });
    // A route without an entry in API_OPERATIONS (src/openapi.ts) is listed generically: name each one.
    const withoutSchema = [...FIXED_ROUTES, ...routes].map((r) => operationKey(r.method, r.path)).filter((k) => API_OPERATIONS[k] === undefined);
    expect(withoutSchema, "routes with no schema entry in API_OPERATIONS").toEqual([]);
    expect(operationsOf(doc).filter((o) => o.op[GENERIC_MARK]).map((o) => o.key)).toEqual([]);
    // And no entry documents a route this server does not have (a typo in a key, a removed route).
    const real = new Set([...FIXED_ROUTES, ...routes].map((r) => operationKey(r.method, r.path)));
    expect(Object.keys(API_OPERATIONS).filter((k) => !real.has(k)), "schema entries without a route").toEqual([]);
  });

  it("openapi - operationIds are unique camelCase names; every operation lists its errors and security", async () => {
    const { doc } = await fetchDocument(await start());
    const ops = operationsOf(doc);
    const ids = ops.map((o) => o.op.operationId as string);
    const seen = new Map<string, string[]>();
    for (const o of ops) seen.set(o.op.operationId, [...(seen.get(o.op.operationId) ?? []), o.key]);
    expect([...seen].filter(([, keys]) => keys.length > 1), "operationIds used twice").toEqual([]);
    for (const id of ids) expect(id).toMatch(/^[a-z][A-Za-z0-9]*$/);
    expect(ids).toEqual(expect.arrayContaining(["publish", "publishToRoom", "roomHistory", "presenceStats", "setRoomState", "openApi", "createTenant"]));
    for (const { key, op } of ops) {
      expect(typeof op.summary, key).toBe("string");
      if (op.security.length === 0) continue;
      expect(op.security, key).toEqual([{ operatorKey: [] }, { bearer: [] }]);
      for (const status of ["401", "403"]) expect(op.responses[status]?.content["application/json"].schema, `${key} ${status}`).toEqual({ $ref: "#/components/schemas/Error" });
    }
    expect(Object.keys(doc.paths["/api/v1/tenants/{tenant}/rooms/{room}/state/{key}"].put.responses).sort()).toEqual(["200", "400", "401", "403", "409", "413", "422", "429", "500", "503"]);
    expect(doc.paths["/api/v1/tenants/{tenant}/publish"].post.requestBody.content["application/json"].schema.additionalProperties).toBe(false);
  });

  it("openapi - an embedder's route without a schema is listed generically, and the checker refuses its answers", async () => {
    const g = await start();
    g.server.addApiRoutes([{ method: "GET", path: "/api/v1/tenants/:tenant/widgets", access: "tenant-admin", summary: "list widgets", handle: () => ({ body: { widgets: [] } }) }]);
    const { doc } = await fetchDocument(g);
    const op = doc.paths["/api/v1/tenants/{tenant}/widgets"].get;
    expect(op).toMatchObject({ operationId: "getTenantsTenantWidgets", summary: "list widgets", [GENERIC_MARK]: true });
    expect(() => checkAnswer("GET", "/api/v1/tenants/acme/widgets", 200, { widgets: [] }, "application/json")).toThrow(/no operation documents GET \/api\/v1\/tenants\/acme\/widgets/);
  });

  it("openapi - the checker names a body, a status or a request the document does not allow", async () => {
    const g = await start();
    const real = await callApi(g.httpUrl, "GET", "/api/v1/tenants/acme/rooms/lobby/presence/stats", undefined, KEY);
    expect(real.json).toEqual({ clients: 0, users: 0 });
    expect(() => checkAnswer("GET", "/api/v1/tenants/acme/rooms/lobby/presence/stats", 200, { ...real.json, extra: 1 }, "application/json")).toThrow(/presenceStats.*does not match its schema/);
    expect(() => checkAnswer("GET", "/api/v1/tenants/acme/rooms/lobby/presence/stats", 418, { error: { code: "X", message: "x" } }, "application/json")).toThrow(/answered 418, which the document does not list/);
    expect(() => checkAnswer("GET", "/api/v1/tenants/acme/rooms?nope=1", 200, { rooms: [] }, "application/json")).toThrow(/query parameter "nope"/);
    expect(() => checkAnswer("POST", "/api/v1/tenants/acme/publish", 200, { id: "i", room: "r", offset: 1, epoch: "e", duplicate: false }, "application/json", { room: "r" })).toThrow(/request schema refuses/);
    expect(() => checkAnswer("GET", "/api/v1/nope", 404, { error: { code: "NOT_FOUND", message: "no route" } }, "application/json")).not.toThrow();
  });

  it("openapi - the CASIL routes' real answers match the document", async () => {
    const g = await start();
    const admin = await g.token({ sub: "boss", role: "admin" });
    const api = (method: string, path: string, body?: unknown, auth: string = KEY) => callApi(g.httpUrl, method, path, body, auth);
    expect((await api("GET", "/api/v1/casil/baseline")).json).toMatchObject({ version: 1, layers: [] });
    expect((await api("PUT", "/api/v1/casil/baseline", { policy: { mode: "monitor" }, dryRun: true })).json).toEqual({ valid: true, dryRun: true, version: 2, previousVersion: 1 });
    expect((await api("PUT", "/api/v1/casil/baseline", { mode: "enforce" })).json).toEqual({ valid: true, dryRun: false, version: 2, previousVersion: 1 });
    expect((await api("GET", "/api/v1/tenants/acme/casil", undefined, admin)).json).toMatchObject({ tenant: "acme", layer: null });
    expect((await api("PUT", "/api/v1/tenants/acme/casil", { mode: "enforce" }, admin)).json).toMatchObject({ valid: true, tenant: "acme", version: 1, previousVersion: 0 });
    expect((await api("GET", "/api/v1/tenants/acme/casil", undefined, admin)).json.layer).toMatchObject({ version: 1, mode: "enforce" });
    expect((await api("GET", "/api/v1/casil/baseline")).json.layers).toMatchObject([{ tenant: "acme", version: 1 }]);
    expect((await api("DELETE", "/api/v1/tenants/acme/casil", undefined, admin)).json).toMatchObject({ tenant: "acme", changes: ["layer removed"] });
    expect((await api("PUT", "/api/v1/tenants/acme/casil", { mode: "loud" }, admin)).status).toBe(400);
    expect((await api("GET", "/api/v1/audit")).json.records.length).toBeGreaterThan(0);
  });

  it("openapi - every documented operation gives a real 2xx answer that matches its schema", async () => {
    const g = await start();
    const api = async (method: string, path: string, body?: unknown, auth: string = KEY): Promise<Json> => {
      const r = await callApi(g.httpUrl, method, path, body, auth);
      expect(r.status, `${method} ${path}: ${JSON.stringify(r.json)}`).toBeLessThan(300);
      return r.json;
    };
    const alice = await g.client({ sub: "alice" });
    expect((await alice.subscribe("lobby")).type).toBe("subscribed");
    for (const path of ["/health", "/ready", "/version", "/status", "/metrics", OPENAPI_PATH]) {
      expect((await checkedFetch(`${g.httpUrl}${path}`, { headers: { "x-api-key": KEY } })).status, path).toBe(200);
    }
    const publish = await checkedFetch(`${g.httpUrl}/api/publish`, { method: "POST", headers: { "x-api-key": KEY, "content-type": "application/json" }, body: JSON.stringify({ tenant: "acme", room: "lobby", payload: 1 }) });
    expect(publish.status).toBe(200);
    await api("POST", "/api/v1/tenants", { name: "acme", description: "Acme" });
    await api("GET", "/api/v1/tenants");
    await api("GET", "/api/v1/tenants/acme");
    await api("PATCH", "/api/v1/tenants/acme", { limits: { maxRooms: 50, maxStateKeys: null } });
    await api("POST", "/api/v1/tenants/acme/kick", { user: "nobody" });
    expect((await api("POST", "/api/v1/tenants/acme/console-token", { access: "read" })).sub).toBe("operator");
    const { rule } = await api("POST", "/api/v1/tenants/acme/revocations", { user: "mallory", ttlMs: 60_000 });
    await api("GET", "/api/v1/tenants/acme/revocations");
    await api("DELETE", `/api/v1/tenants/acme/revocations/${encodeURIComponent(rule.id)}`);
    await api("GET", "/api/v1/tenants/acme/audit?limit=2");
    await api("GET", "/api/v1/casil/baseline");
    await api("PUT", "/api/v1/casil/baseline", { mode: "monitor", dryRun: true });
    await api("PUT", "/api/v1/tenants/acme/casil", { policy: { mode: "monitor" } });
    await api("GET", "/api/v1/tenants/acme/casil");
    await api("DELETE", "/api/v1/tenants/acme/casil");
    await api("POST", "/api/v1/tenants/acme/publish", { room: "lobby", payload: { n: 2 }, headers: { "x-kind": "note" }, idempotencyKey: "k" });
    await api("POST", "/api/v1/tenants/acme/broadcast", { rooms: ["lobby", "news"], payload: "b", payloadFormat: "json" });
    await api("GET", "/api/v1/tenants/acme/rooms/lobby/history?fromOffset=1&limit=10");
    const page = await api("GET", "/api/v1/tenants/acme/rooms?prefix=l&limit=1");
    expect(page.rooms).toEqual([{ room: "lobby", subscribers: 1, nodes: 1 }]);
    await api("GET", "/api/v1/tenants/acme/info");
    await api("GET", "/api/v1/info");
    await api("GET", "/api/v1/tenants/acme/rooms/lobby/presence");
    await api("GET", "/api/v1/tenants/acme/rooms/lobby/presence/stats");
    await api("PUT", "/api/v1/tenants/acme/rooms/lobby/state/topic", { value: { t: 1 }, expectedVersion: 0 });
    await api("GET", "/api/v1/tenants/acme/rooms/lobby/state");
    await api("POST", "/api/v1/tenants/acme/subscribe", { user: "alice", room: "news" });
    await api("POST", "/api/v1/tenants/acme/unsubscribe", { user: "alice", room: "news", client: alice.welcome.clientId });
    expect((await api("DELETE", "/api/v1/tenants/acme/rooms/lobby/history")).removed).toBe(true);
    await api("POST", "/api/v1/tenants/acme/disconnect", { user: "alice", code: 4001, reason: "bye" });
    await api("POST", "/api/v1/tenants/acme/disable");
    await api("POST", "/api/v1/tenants/acme/enable");
    await api("GET", "/api/v1/audit");
    await api("DELETE", "/api/v1/tenants/acme?confirm=acme");
    const { doc } = await fetchDocument(g);
    const untried = operationsOf(doc)
      .filter(({ op }) => ![...(answered.get(op.operationId) ?? [])].some((s) => s >= 200 && s < 300))
      .map(({ key, op }) => `${key} (${op.operationId})`);
    expect(untried, "operations no real 2xx answer was checked for (add a call above)").toEqual([]);
  });
});
