import { PROTOCOL_VERSION } from "@arqon/core";
import type { ApiRoute } from "./admin-http.js";
import type { HttpAccess } from "./authority.js";
import { TENANT_LIMIT_FIELDS } from "./tenants.js";

/** A JSON Schema (2020-12, the dialect of OpenAPI 3.1). */
export type JsonSchema = Record<string, unknown>;

/** How one operation of the HTTP surface is documented: one entry of {@link API_OPERATIONS}. */
export interface ApiOperationSpec {
  /** Stable camelCase name; server-API clients use it as the method name. */
  operationId: string;
  /** One line; the route's own `summary` when unset. */
  summary?: string;
  /** More words, when one line is not enough. */
  description?: string;
  /** Query parameters the route reads (a route that refuses others says so in its description). */
  query?: Array<{
    /** The parameter's name. */
    name: string;
    /** What it does. */
    description: string;
    /** Its value's schema (query values are strings on the wire; integers are written in decimal). */
    schema: JsonSchema;
  }>;
  /** The JSON request body. */
  body?: {
    /** The body's schema; `additionalProperties: false` where the route refuses unknown fields. */
    schema: JsonSchema;
    /** Whether a body must be sent. @default true */
    required?: boolean;
  };
  /** Success answers by HTTP status. */
  responses: Record<
    number,
    {
      /** What the answer means. */
      description: string;
      /** Its JSON schema (for `text/plain`: the schema of the text). */
      schema: JsonSchema;
      /** @default "application/json" */
      contentType?: string;
    }
  >;
  /** Error statuses the route can answer besides the ones every route of its kind can (see `openApiDocument`). */
  errors: number[];
}

/** A route served by the HTTP surface itself rather than by the `ServerApi` router. */
export interface FixedRoute {
  /** Its method. */
  method: ApiRoute["method"];
  /** Its path. */
  path: string;
  /** Who may call it. */
  access: HttpAccess;
  /** One line. */
  summary: string;
}

/** The path of the document itself (served by the HTTP surface, credentials ignored: it holds no data). */
export const OPENAPI_PATH = "/api/v1/openapi.json";

/** The routes of the HTTP surface outside the `ServerApi` router (http.ts). */
export const FIXED_ROUTES: readonly FixedRoute[] = [
  { method: "GET", path: "/health", access: "open", summary: "liveness" },
  { method: "GET", path: "/ready", access: "open", summary: "readiness" },
  { method: "GET", path: "/version", access: "open", summary: "server and protocol versions" },
  { method: "GET", path: "/status", access: "monitor", summary: "counts, backends and connections per tenant" },
  { method: "GET", path: "/metrics", access: "monitor", summary: "Prometheus metrics" },
  { method: "POST", path: "/api/publish", access: "tenant-backend", summary: "publish into a room (token's tenant, or `tenant` for the operator)" },
  { method: "GET", path: OPENAPI_PATH, access: "open", summary: "this OpenAPI document" },
];

/** The key of an operation in {@link API_OPERATIONS}: the method and the route's path as `ApiRoute` writes it. */
export function operationKey(method: string, path: string): string {
  return `${method} ${path}`;
}

/** Marks an operation documented generically (a route with no entry in {@link API_OPERATIONS}). */
export const GENERIC_MARK = "x-arqon-generic";

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const str: JsonSchema = { type: "string" };
const int: JsonSchema = { type: "integer", minimum: 0 };
const bool: JsonSchema = { type: "boolean" };
const anyJson: JsonSchema = { description: "any JSON value" };
/** An object with exactly these properties (all required unless listed in `optional`), nothing else. */
function obj(properties: Record<string, JsonSchema>, optional: string[] = [], extra = false): JsonSchema {
  return { type: "object", properties, required: Object.keys(properties).filter((k) => !optional.includes(k)), additionalProperties: extra };
}
const list = (items: JsonSchema): JsonSchema => ({ type: "array", items });
const json = (description: string, schema: JsonSchema): ApiOperationSpec["responses"][number] => ({ description, schema });

const limitProps = Object.fromEntries(Object.entries(TENANT_LIMIT_FIELDS).map(([field, max]) => [field, { type: "integer", minimum: 0, maximum: max }]));

const errorObject = obj({ code: { type: "string", pattern: "^[A-Z][A-Z0-9_]*$" }, message: str });

/** Schemas shared by several operations (`#/components/schemas/...`). */
const COMPONENTS: Record<string, JsonSchema> = {
  Error: {
    description: "Every refusal: a stable code from docs/errors.md and a message for people.",
    ...obj({ error: errorObject }),
  },
  TenantName: { type: "string", pattern: "^[A-Za-z0-9_-]{1,64}$" },
  TenantLimits: { description: "Limits a record sets (whole numbers; bytes and ms).", ...obj(limitProps, Object.keys(limitProps)) },
  TenantLimitsPatch: {
    description: "Limits to change; null puts a limit back to its default.",
    type: "object",
    properties: Object.fromEntries(Object.entries(limitProps).map(([k, v]) => [k, { oneOf: [v, { type: "null" }] }])),
    additionalProperties: false,
  },
  ResolvedTenantLimits: { description: "Every limit with the value in force.", ...obj(limitProps) },
  TenantRecord: obj(
    {
      name: ref("TenantName"),
      status: { enum: ["active", "disabled"] },
      limits: ref("TenantLimits"),
      description: { type: "string", minLength: 1, maxLength: 512 },
      createdAt: int,
      updatedAt: int,
      disabledAt: int,
      proxy: ref("TenantProxy"),
    },
    ["description", "disabledAt", "proxy"],
  ),
  ProxyHook: obj(
    { url: str, timeoutMs: { type: "integer", minimum: 1 }, maxConcurrency: { type: "integer", minimum: 1 }, failOpen: bool },
    ["timeoutMs", "maxConcurrency", "failOpen"],
  ),
  TenantProxy: {
    type: "object",
    description: "The tenant's own proxy hooks (docs/gateway.md, Proxy hooks); a tenant admin sees the secret as \"(set)\".",
    properties: {
      connect: ref("ProxyHook"),
      subscribe: ref("ProxyHook"),
      publish: ref("ProxyHook"),
      refresh: ref("ProxyHook"),
      rpc: ref("ProxyHook"),
      secret: str,
    },
    additionalProperties: false,
  },
  TenantProxyPatch: {
    type: ["object", "null"],
    description: "Set by the operator only. A hook is a URL or its options; a hook given as null, or the whole field as null, removes it.",
    properties: Object.fromEntries(
      [...["connect", "subscribe", "publish", "refresh", "rpc"].map((h) => [h, { oneOf: [str, ref("ProxyHook"), { type: "null" }] }]), ["secret", { type: ["string", "null"] }]],
    ),
    additionalProperties: false,
  },
  RevocationRule: obj(
    { id: str, tenant: ref("TenantName"), user: str, jti: str, before: int, createdAt: int, expiresAt: int, by: str },
    ["user", "jti", "before"],
  ),
  AuditActor: {
    oneOf: [
      obj({ kind: { const: "operator" }, key: str }),
      obj({ kind: { enum: ["tenant_admin", "tenant_server", "user"] }, tenant: str, sub: str }),
    ],
  },
  AuditPage: obj(
    {
      records: list(
        obj(
          {
            time: { type: "string", format: "date-time" },
            actor: ref("AuditActor"),
            tenant: str,
            action: str,
            target: str,
            result: str,
            detail: { type: "object" },
            offset: int,
          },
          ["target", "detail"],
        ),
      ),
      next: { type: "integer", minimum: 1 },
    },
    ["next"],
  ),
  Closed: obj({ closedHere: int }),
  PublishResult: obj({ id: str, room: str, offset: int, epoch: str, duplicate: bool }),
  Headers: { type: "object", additionalProperties: { type: "string" } },
  CasilStats: obj(
    {
      decisions: list(obj({ tenant: str, mode: { enum: ["monitor", "enforce"] }, decision: str, reason: str, count: int })),
      shadowDifferences: list(obj({ tenant: str, count: int })),
      wasm: list(obj({ policy: str, outcome: str, count: int })),
    },
  ),
  WasmBreaker: obj({ policy: str, state: { enum: ["closed", "open", "half_open"] }, consecutiveFailures: int, trips: int, retryAt: str }, ["retryAt"]),
  CasilWriteResult: obj({ valid: { const: true }, dryRun: bool, tenant: str, version: int, previousVersion: int, changes: list(str) }),
};

/** The body of a CASIL reload: exactly one of `policy` and `mode` (and, for a tenant layer, `clear`). */
function casilReload(layer: boolean): JsonSchema {
  const one = layer ? ["policy", "mode", "clear"] : ["policy", "mode"];
  return {
    description: `Exactly one of ${one.map((f) => `"${f}"`).join(", ")}; "dryRun" validates and changes nothing.`,
    type: "object",
    properties: {
      policy: { oneOf: [{ type: "object" }, { type: "string" }], description: "a policy document, or its JSON/YAML text" },
      mode: { enum: ["monitor", "enforce"] },
      ...(layer ? { clear: { const: true } } : {}),
      dryRun: bool,
    },
    oneOf: one.map((f) => ({ required: [f] })),
    additionalProperties: false,
  };
}

const publishFields: Record<string, JsonSchema> = {
  room: { type: "string", description: "the room (a name the gateway accepts)" },
  payload: { description: 'any JSON value, or base64 with "payloadFormat": "binary"' },
  payloadFormat: { enum: ["json", "binary"] },
  headers: ref("Headers"),
  idempotencyKey: { type: "string", description: "a repeat within the dedupe window is answered, not delivered again" },
};
const historyQuery: NonNullable<ApiOperationSpec["query"]> = [
  { name: "fromOffset", description: "first offset (inclusive)", schema: int },
  { name: "toOffset", description: "last offset (inclusive)", schema: int },
  { name: "fromTs", description: "first timestamp, epoch ms", schema: int },
  { name: "toTs", description: "last timestamp, epoch ms", schema: int },
  { name: "reverse", description: "newest first", schema: { enum: ["true", "false"] } },
  { name: "limit", description: "page size", schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 } },
];
const auditQuery: NonNullable<ApiOperationSpec["query"]> = [
  { name: "limit", description: "page size", schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 } },
  { name: "before", description: "only records older than this offset (the `next` of the page before)", schema: { type: "integer", minimum: 1 } },
];
const ok = (description: string, schema: JsonSchema) => ({ 200: json(description, schema) });

/**
 * How every operation of the HTTP surface is documented, keyed by `operationKey(method, path)` with the path as
 * `ApiRoute` writes it (`/api/v1/tenants/:tenant`). A route with no entry here is documented generically and
 * test/openapi.test.ts fails naming it. Add an entry for every new route.
 */
export const API_OPERATIONS: Readonly<Record<string, ApiOperationSpec>> = {
  "GET /health": {
    operationId: "health",
    description: 'Stays 200 while an external backend reconnects: `{"status":"degraded","<backend>":"<state>"}`.',
    responses: ok("alive", { type: "object", properties: { status: { enum: ["ok", "degraded"] } }, required: ["status"], additionalProperties: { type: "string" } }),
    errors: [],
  },
  "GET /ready": {
    operationId: "ready",
    responses: { 200: json("ready for traffic", obj({ ready: { const: true } })), 503: json("shutting down or a backend is away", obj({ ready: { const: false }, reason: str })) },
    errors: [],
  },
  "GET /version": {
    operationId: "version",
    responses: ok("versions", obj({ version: str, protocol: str, protocols: list(str) })),
    errors: [],
  },
  "GET /status": {
    operationId: "status",
    responses: ok(
      "the node's status",
      obj(
        {
          status: { enum: ["ok", "degraded", "shutting_down"] },
          version: str,
          protocol: str,
          protocols: list(str),
          node: str,
          uptimeMs: int,
          connections: int,
          rooms: int,
          tenants: int,
          backends: obj({ bus: str, history: str, presence: str, state: str, kv: str }),
          storage: { type: "object", properties: { backend: str, durable: bool }, required: ["backend"] },
          cluster: { type: "object", properties: { name: str, state: str }, required: ["name", "state"] },
          connectionsByTenant: { type: "object", additionalProperties: int },
        },
        ["cluster"],
      ),
    ),
    errors: [],
  },
  "GET /metrics": {
    operationId: "metrics",
    responses: { 200: { description: "Prometheus text exposition", schema: str, contentType: "text/plain" } },
    errors: [],
  },
  "POST /api/publish": {
    operationId: "publish",
    description: "Publishes into the token's tenant; the operator key names `tenant`. Fields other than these are ignored.",
    body: { schema: { type: "object", properties: { tenant: ref("TenantName"), ...publishFields }, required: ["room", "payload"] } },
    responses: ok("published (or a repeat of an idempotency key)", ref("PublishResult")),
    errors: [400, 413, 422, 429, 503],
  },
  [`GET ${OPENAPI_PATH}`]: {
    operationId: "openApi",
    description: "Open to anyone, credentials are not looked at: the document holds no data, only the shape of the API.",
    responses: ok("an OpenAPI 3.1 document", { type: "object", required: ["openapi", "info", "paths"] }),
    errors: [],
  },
  "GET /api/v1/tenants": {
    operationId: "listTenants",
    responses: ok("every tenant record, by name", obj({ mode: { enum: ["open", "registered"] }, tenants: list(ref("TenantRecord")) })),
    errors: [],
  },
  "POST /api/v1/tenants": {
    operationId: "createTenant",
    body: {
      schema: obj(
        { name: ref("TenantName"), limits: ref("TenantLimits"), description: { type: "string", minLength: 1, maxLength: 512 }, disabled: bool, proxy: ref("TenantProxyPatch") },
        ["limits", "description", "disabled", "proxy"],
      ),
    },
    responses: { 201: json("created", ref("TenantRecord")) },
    errors: [409],
  },
  "GET /api/v1/tenants/:tenant": {
    operationId: "showTenant",
    responses: ok(
      "the tenant as this node sees it",
      obj(
        {
          name: ref("TenantName"),
          status: { enum: ["active", "disabled", "unregistered"] },
          record: ref("TenantRecord"),
          limits: ref("ResolvedTenantLimits"),
          usage: obj({ rooms: int, storeKeys: int, storeBytes: int }),
          connectionsHere: int,
          revocations: list(ref("RevocationRule")),
        },
        ["record"],
      ),
    ),
    errors: [400],
  },
  "PATCH /api/v1/tenants/:tenant": {
    operationId: "setTenant",
    body: { schema: obj({ limits: ref("TenantLimitsPatch"), description: { type: "string", minLength: 1, maxLength: 512 }, proxy: ref("TenantProxyPatch") }, ["limits", "description", "proxy"]) },
    responses: ok("the record as it is now", ref("TenantRecord")),
    errors: [404],
  },
  "DELETE /api/v1/tenants/:tenant": {
    operationId: "deleteTenant",
    description: "Removes the tenant and all its data; `confirm` (query or body) repeats its name, else 400 ARQ_CONFIRMATION_REQUIRED.",
    query: [{ name: "confirm", description: "the tenant's name again", schema: ref("TenantName") }],
    body: { schema: obj({ confirm: str }, ["confirm"], true), required: false },
    responses: ok("what was removed", obj({ rooms: int, stateRooms: int, storeKeys: int })),
    errors: [],
  },
  "POST /api/v1/tenants/:tenant/disable": {
    operationId: "disableTenant",
    responses: ok("disabled; its connections closed with 4503", obj({ record: ref("TenantRecord"), closedHere: int })),
    errors: [],
  },
  "POST /api/v1/tenants/:tenant/enable": {
    operationId: "enableTenant",
    responses: ok("active again", ref("TenantRecord")),
    errors: [404],
  },
  "POST /api/v1/tenants/:tenant/kick": {
    operationId: "kick",
    description: "Closes (4504) the tenant's connections of `user`, or the one with id `client`, or all, on every node.",
    body: { schema: { type: "object", properties: { user: { type: ["string", "null"], minLength: 1, maxLength: 256 }, client: { type: ["string", "null"], minLength: 1, maxLength: 256 } } }, required: false },
    responses: ok("closed", ref("Closed")),
    errors: [],
  },
  "GET /api/v1/tenants/:tenant/revocations": {
    operationId: "listRevocations",
    responses: ok("the rules in force", obj({ revocations: list(ref("RevocationRule")) })),
    errors: [],
  },
  "POST /api/v1/tenants/:tenant/revocations": {
    operationId: "revoke",
    body: {
      schema: obj(
        {
          user: { type: "string", minLength: 1, maxLength: 256 },
          jti: { type: "string", minLength: 1, maxLength: 256 },
          before: { oneOf: [int, { type: "string", description: "ISO 8601" }] },
          ttlMs: { type: "integer", minimum: 1000, maximum: 366 * 86_400_000 },
        },
        ["user", "jti", "before", "ttlMs"],
      ),
      required: false,
    },
    responses: { 201: json("the rule, and the connections it closed here", obj({ rule: ref("RevocationRule"), closedHere: int })) },
    errors: [429],
  },
  "DELETE /api/v1/tenants/:tenant/revocations/:id": {
    operationId: "unrevoke",
    responses: ok("lifted", obj({ removed: { const: true } })),
    errors: [404],
  },
  "GET /api/v1/tenants/:tenant/audit": {
    operationId: "tenantAudit",
    query: auditQuery,
    responses: ok("records, newest first", ref("AuditPage")),
    errors: [400],
  },
  "GET /api/v1/audit": {
    operationId: "serverAudit",
    query: auditQuery,
    responses: ok("the server's records (baseline reloads, deletions), newest first", ref("AuditPage")),
    errors: [400],
  },
  "GET /api/v1/casil/baseline": {
    operationId: "casilBaseline",
    responses: ok(
      "the baseline, every tenant layer's summary and the counters",
      {
        type: "object",
        properties: {
          version: int,
          enabled: bool,
          mode: { enum: ["monitor", "enforce"] },
          source: { enum: ["initial", "local", "file", "command", "remote"] },
          loadedAt: str,
          document: { type: "object" },
          effective: { type: "object" },
          wasm: list(str),
          wasmBreakers: list(ref("WasmBreaker")),
          layers: list(obj({ tenant: str, version: int, mode: { enum: ["monitor", "enforce"] }, wasm: list(str), updatedAt: str, updatedBy: str, error: str }, ["error"])),
          stats: ref("CasilStats"),
        },
        required: ["version", "enabled", "mode", "source", "loadedAt", "document", "layers", "stats"],
      },
    ),
    errors: [],
  },
  "PUT /api/v1/casil/baseline": {
    operationId: "reloadCasilBaseline",
    body: { schema: casilReload(false) },
    responses: ok("reloaded (or checked, with dryRun)", obj({ valid: { const: true }, dryRun: bool, version: int, previousVersion: int })),
    errors: [400],
  },
  "GET /api/v1/tenants/:tenant/casil": {
    operationId: "tenantCasil",
    responses: ok(
      "the baseline's public part, the tenant's layer and its counters",
      obj({
        tenant: str,
        baseline: obj({ version: int, enabled: bool, mode: { enum: ["monitor", "enforce"] }, maxPayloadBytes: int, maxInspectBytes: int }),
        layer: {
          oneOf: [
            { type: "null" },
            obj({ version: int, updatedAt: str, updatedBy: str, mode: { enum: ["monitor", "enforce"] }, document: anyJson, wasmBreakers: list(ref("WasmBreaker")), error: str }, ["error"]),
          ],
        },
        effectiveMode: obj({ baseline: { enum: ["monitor", "enforce"] }, layer: { enum: ["monitor", "enforce", null] } }),
        stats: obj({ baseline: list({ type: "object" }), layer: list({ type: "object" }) }),
      }),
    ),
    errors: [400],
  },
  "PUT /api/v1/tenants/:tenant/casil": {
    operationId: "setTenantCasil",
    body: { schema: casilReload(true) },
    responses: ok("written (or checked, with dryRun)", ref("CasilWriteResult")),
    errors: [400, 409],
  },
  "DELETE /api/v1/tenants/:tenant/casil": {
    operationId: "clearTenantCasil",
    responses: ok("the layer removed", ref("CasilWriteResult")),
    errors: [400, 409],
  },
  "POST /api/v1/tenants/:tenant/publish": {
    operationId: "publishToRoom",
    description: "The publish path of POST /api/publish (CASIL, limits, history, bus); the sender is the token's `sub` or `operator`.",
    body: { schema: obj(publishFields, ["payloadFormat", "headers", "idempotencyKey"]) },
    responses: ok("published (or a repeat of an idempotency key)", ref("PublishResult")),
    errors: [422, 429],
  },
  "POST /api/v1/tenants/:tenant/broadcast": {
    operationId: "broadcast",
    description: "Publishes into each room in turn; a room's refusal (CASIL, quota, rate) is its own result.",
    body: {
      schema: obj(
        { rooms: { type: "array", items: str, minItems: 1, maxItems: 100, uniqueItems: true }, payload: publishFields.payload!, payloadFormat: publishFields.payloadFormat!, headers: publishFields.headers!, idempotencyKey: publishFields.idempotencyKey! },
        ["payloadFormat", "headers", "idempotencyKey"],
      ),
    },
    responses: ok(
      "one result per room, in the order given",
      obj({ results: list({ oneOf: [obj({ room: str, id: str, offset: int, epoch: str, duplicate: bool }), obj({ room: str, error: errorObject })] }) }),
    ),
    errors: [],
  },
  "GET /api/v1/tenants/:tenant/rooms/:room/history": {
    operationId: "roomHistory",
    description: "Encode `/` in the room as `%2F`. Other query parameters are refused.",
    query: historyQuery,
    responses: ok(
      "a page of stored messages",
      obj({
        messages: list(obj({ id: str, offset: int, epoch: str, timestamp: int, sender: str, headers: ref("Headers"), payload: anyJson, payloadFormat: { const: "binary" } }, ["sender", "headers", "payloadFormat"])),
        position: obj({ offset: int, epoch: str }),
      }),
    ),
    errors: [],
  },
  "GET /api/v1/tenants/:tenant/rooms": {
    operationId: "listRooms",
    description:
      "The tenant's rooms live on any node (every node answers within 500 ms), sorted by name, with the subscriptions summed over nodes. Page with `cursor` = the previous answer's `next`. `partial: true` when a known node did not answer. Other query parameters are refused.",
    query: [
      { name: "prefix", description: "only rooms whose name starts with it", schema: str },
      { name: "limit", description: "at most this many", schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 } },
      { name: "cursor", description: "the `next` of the previous page (opaque)", schema: str },
    ],
    responses: ok(
      "a page of rooms",
      obj({ rooms: list(obj({ room: str, subscribers: int, nodes: { type: "integer", minimum: 1 } })), next: str, partial: { const: true } }, ["next", "partial"]),
    ),
    errors: [],
  },
  "DELETE /api/v1/tenants/:tenant/rooms/:room/history": {
    operationId: "historyRemove",
    description:
      "Removes the room's stored messages and idempotency keys on the shared store; the room starts over at offset 1 in a new epoch, so positions handed out before get `recovered: false` (epoch_mismatch). Audited as room.history.delete.",
    responses: ok("removed (false: the room had no message)", obj({ removed: bool, position: obj({ offset: int, epoch: str }) })),
    errors: [],
  },
  "GET /api/v1/info": {
    operationId: "info",
    description: "This node first, then every other node known from its heartbeats; a node that did not answer within 500 ms is listed with `answered: false` and what its last heartbeat said.",
    responses: ok(
      "the nodes",
      obj({
        node: str,
        clustered: bool,
        nodes: list(
          obj(
            {
              id: str,
              self: bool,
              answered: { const: false },
              version: str,
              startedAt: int,
              uptimeMs: int,
              status: str,
              connections: int,
              rooms: int,
              tenants: int,
              backends: { type: "object" },
              storage: { type: "object" },
              cluster: { type: "object" },
              lastHeartbeat: int,
            },
            ["answered", "version", "startedAt", "uptimeMs", "status", "connections", "rooms", "tenants", "backends", "storage", "cluster", "lastHeartbeat"],
          ),
        ),
      }),
    ),
    errors: [],
  },
  "GET /api/v1/tenants/:tenant/info": {
    operationId: "tenantInfo",
    description: "The tenant's connections and room subscriptions per node, and their totals; never another tenant's numbers.",
    responses: ok(
      "the tenant's figures",
      obj(
        {
          tenant: str,
          nodes: list(obj({ id: str, connections: int, rooms: int, subscribers: int })),
          connections: int,
          subscribers: int,
          partial: { const: true },
        },
        ["partial"],
      ),
    ),
    errors: [],
  },
  "GET /api/v1/tenants/:tenant/rooms/:room/presence": {
    operationId: "roomPresence",
    responses: ok("who is in the room", obj({ members: list(obj({ clientId: str, user: str, info: anyJson, joinedAt: int }, ["info", "joinedAt"])) })),
    errors: [],
  },
  "GET /api/v1/tenants/:tenant/rooms/:room/presence/stats": {
    operationId: "presenceStats",
    responses: ok("connections and distinct users in the room", obj({ clients: int, users: int })),
    errors: [],
  },
  "GET /api/v1/tenants/:tenant/rooms/:room/state": {
    operationId: "roomState",
    responses: ok("the room's state entries", obj({ entries: list(obj({ key: str, value: anyJson, version: int, updatedAt: int }, ["updatedAt"])) })),
    errors: [],
  },
  "PUT /api/v1/tenants/:tenant/rooms/:room/state/:key": {
    operationId: "setRoomState",
    description: "Delivered as a `state_set`'s write is. A wrong `expectedVersion` (0: the key must not exist) is 409 ARQ_STATE_CONFLICT.",
    body: { schema: obj({ value: anyJson, expectedVersion: int }, ["expectedVersion"]) },
    responses: ok("written", obj({ key: str, version: int })),
    errors: [409, 422, 429],
  },
  "POST /api/v1/tenants/:tenant/disconnect": {
    operationId: "disconnect",
    description: "Closes the matching connections on every node (all of the tenant's when neither user nor client is given).",
    body: {
      schema: obj(
        { user: { type: ["string", "null"], minLength: 1, maxLength: 256 }, client: { type: ["string", "null"], minLength: 1, maxLength: 256 }, code: { type: "integer", minimum: 4000, maximum: 4999, default: 4504 }, reason: { type: "string", default: "disconnected" } },
        ["user", "client", "code", "reason"],
      ),
      required: false,
    },
    responses: ok("closed", ref("Closed")),
    errors: [],
  },
  "POST /api/v1/tenants/:tenant/subscribe": {
    operationId: "subscribeUser",
    description:
      "Subscribes the user's live connections (or the one with id `client`) to the room on every node, without consulting the user's caps; each is told with `subscribed` carrying `reason: \"server\"`. A connection already subscribed is left as it is; one the subscription limit or presence quota refuses is listed in `refusedHere`.",
    body: { schema: obj({ user: { type: "string", minLength: 1, maxLength: 256 }, room: str, client: { type: ["string", "null"], minLength: 1, maxLength: 256 } }, ["client"]) },
    responses: ok("subscribed on this node (the other nodes subscribe theirs)", obj({ subscribedHere: int, refusedHere: list(obj({ client: str, error: errorObject })) }, ["refusedHere"])),
    errors: [],
  },
  "POST /api/v1/tenants/:tenant/unsubscribe": {
    operationId: "unsubscribeUser",
    description: "Ends the room's subscription of the user's live connections (or the one with id `client`) on every node, whoever made it; each is told with `unsubscribed` carrying `reason: \"server\"`.",
    body: { schema: obj({ user: { type: "string", minLength: 1, maxLength: 256 }, room: str, client: { type: ["string", "null"], minLength: 1, maxLength: 256 } }, ["client"]) },
    responses: ok("unsubscribed on this node (the other nodes unsubscribe theirs)", obj({ unsubscribedHere: int })),
    errors: [],
  },
  "POST /api/v1/tenants/:tenant/console-token": {
    operationId: "consoleToken",
    description:
      'Mints a token of the tenant for the web console\'s WebSocket (live tail, operator commands), signed with the server\'s HMAC secret and valid at most 15 minutes: `access: "read"` (the default) may subscribe and see presence in every room, publish nothing and use no store; `"admin"` is a `role: "admin"` token. An admin\'s console token keeps its `sub` and `jti` and never outlives its own token; the operator\'s says `sub: "operator"`. 501 `FEATURE_DISABLED` when the server verifies public-key tokens only.',
    body: { schema: obj({ access: { enum: ["read", "admin"], default: "read" } }, ["access"]), required: false },
    responses: { 201: json("the token", obj({ token: str, tenant: str, sub: str, access: { enum: ["read", "admin"] }, expiresAt: { type: "string", format: "date-time" } })) },
    errors: [501],
  },
};

/** A route as the document needs it. */
export type DocumentedRoute = Pick<ApiRoute, "method" | "path" | "access" | "summary">;

/** The OpenAPI path of a route path: `:tenant` becomes `{tenant}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

function camel(words: string[]): string {
  return words
    .flatMap((w) => w.split(/[^A-Za-z0-9]+/))
    .filter(Boolean)
    .map((w, i) => (i === 0 ? w.toLowerCase() : w[0]!.toUpperCase() + w.slice(1)))
    .join("");
}

function genericSpec(route: DocumentedRoute): ApiOperationSpec {
  const segments = route.path.split("/").filter((s) => s && s !== "api" && s !== "v1").map((s) => (s.startsWith(":") ? s.slice(1) : s));
  return {
    operationId: camel([route.method, ...segments]),
    description: "Added by the embedding application; its answer has no schema here.",
    ...(route.method === "GET" || route.method === "DELETE" ? {} : { body: { schema: { type: "object" }, required: false } }),
    responses: ok("the route's answer", anyJson),
    errors: [400, 404, 409],
  };
}

const SECURITY: Record<HttpAccess, Array<Record<string, string[]>>> = {
  open: [],
  monitor: [{ operatorKey: [] }, { bearer: [] }],
  operator: [{ operatorKey: [] }, { bearer: [] }],
  "tenant-admin": [{ operatorKey: [] }, { bearer: [] }],
  "tenant-backend": [{ operatorKey: [] }, { bearer: [] }],
};

const WHO: Record<HttpAccess, string> = {
  open: "Anyone.",
  monitor: "The operator key, or a scrape token.",
  operator: "The operator key.",
  "tenant-admin": 'The operator key, or a token with role "admin" of the tenant the path names.',
  "tenant-backend": 'The operator key, or a token with role "admin" or "server" of the tenant the path names.',
};

const STATUS_TEXT: Record<number, string> = {
  400: "bad input (VALIDATION_ERROR, ARQ_TENANT_INVALID, ARQ_ROOM_INVALID, ARQ_FRAME_*, ARQ_HEADER_INVALID, ARQ_CONFIRMATION_REQUIRED, ...)",
  401: "missing, invalid, expired or revoked credential (ARQ_AUTH_*)",
  403: "not allowed (ARQ_FORBIDDEN, ARQ_TENANT_DISABLED, ARQ_TENANT_UNKNOWN, AUTHORIZATION_ERROR)",
  404: "no such thing (NOT_FOUND)",
  409: "conflict (CONFLICT, ARQ_STATE_CONFLICT)",
  413: "body or payload too large (ARQ_PAYLOAD_TOO_LARGE)",
  422: "refused by CASIL (CASIL_*)",
  429: "a rate or quota is exceeded (ARQ_RATE_LIMITED, ARQ_QUOTA_EXCEEDED)",
  500: "internal error",
  501: "the server is not set up for this (FEATURE_DISABLED)",
  503: "a backend is unavailable, or the server is shutting down (ARQ_BACKEND_UNAVAILABLE, ARQ_SHUTTING_DOWN)",
};

/** The error statuses every route of this kind can answer. */
function commonErrors(route: DocumentedRoute, fixed: boolean): number[] {
  if (route.access === "open") return [];
  const out = [401, 403, 500];
  // Every /api/v1 route is rate limited per credential (429 ARQ_RATE_LIMITED with Retry-After).
  if (!fixed) out.push(429, 503);
  if (route.method !== "GET") out.push(400, 413);
  if (route.path.includes(":tenant")) out.push(400);
  return out;
}

function operation(route: DocumentedRoute, spec: ApiOperationSpec, fixed: boolean, generic: boolean): Record<string, unknown> {
  const parameters: Array<Record<string, unknown>> = [];
  for (const seg of route.path.split("/")) {
    if (!seg.startsWith(":")) continue;
    const name = seg.slice(1);
    parameters.push({ name, in: "path", required: true, schema: name === "tenant" ? ref("TenantName") : str });
  }
  for (const q of spec.query ?? []) parameters.push({ name: q.name, in: "query", required: false, description: q.description, schema: q.schema });
  const responses: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(spec.responses)) {
    responses[status] = { description: r.description, content: { [r.contentType ?? "application/json"]: { schema: r.schema } } };
  }
  const errors = [...new Set([...commonErrors(route, fixed), ...spec.errors])].sort((a, b) => a - b);
  for (const status of errors) {
    if (responses[status] === undefined) responses[status] = { description: STATUS_TEXT[status] ?? "error", content: { "application/json": { schema: ref("Error") } } };
  }
  const description = [spec.description, WHO[route.access]].filter(Boolean).join(" ");
  return {
    operationId: spec.operationId,
    summary: spec.summary ?? route.summary,
    description,
    ...(fixed ? { tags: ["http"] } : { tags: ["server-api"] }),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(spec.body
      ? { requestBody: { required: spec.body.required ?? true, content: { "application/json": { schema: spec.body.schema } } } }
      : {}),
    responses,
    security: SECURITY[route.access],
    ...(generic ? { [GENERIC_MARK]: true } : {}),
  };
}

/** What `openApiDocument` is told about the server. */
export interface OpenApiOptions {
  /** The server's version (`info.version`). @default "0.0.0" */
  version?: string;
}

/**
 * The OpenAPI 3.1 document of the HTTP surface: the fixed routes ({@link FIXED_ROUTES}) and every route of the
 * server API router given (`ServerApi.list()`), each documented by its {@link API_OPERATIONS} entry. A route without
 * an entry (one an embedder added with `addApiRoutes`) is still listed, with an `x-arqon-generic` mark, a body and an
 * answer of any JSON, and an operationId made of its method and path. Every route of the router can also answer 405
 * (another method on its path) and the router 404 (no route); those are not operations and are not listed.
 */
export function openApiDocument(routes: readonly DocumentedRoute[], options: OpenApiOptions = {}): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const add = (route: DocumentedRoute, fixed: boolean): void => {
    const key = operationKey(route.method, route.path);
    const method = route.method.toLowerCase();
    const path = openApiPath(route.path);
    const entry = (paths[path] ??= {});
    if (entry[method] !== undefined) return; // the router answers with the first route of a method and path
    const spec = API_OPERATIONS[key];
    entry[method] = operation(route, spec ?? genericSpec(route), fixed, spec === undefined);
  };
  for (const route of FIXED_ROUTES) add(route, true);
  for (const route of routes) add(route, false);
  return {
    openapi: "3.1.0",
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    info: {
      title: "ArqonBus HTTP API",
      version: options.version ?? "0.0.0",
      description:
        `The HTTP surface of an ArqonBus gateway (WebSocket protocol ${PROTOCOL_VERSION}): health, version, status, metrics, ` +
        "POST /api/publish and the server API under /api/v1. Errors are `{\"error\":{\"code\",\"message\"}}` with the codes of " +
        "docs/errors.md. Any path of the router answers 405 (with Allow) for another method and 404 for no route; any request " +
        "with too many headers gets 431. This document is open (no credential): it holds no data.",
    },
    tags: [
      { name: "http", description: "the gateway's own routes" },
      { name: "server-api", description: "the server API (/api/v1)" },
    ],
    paths,
    components: {
      schemas: COMPONENTS,
      securitySchemes: {
        operatorKey: { type: "apiKey", in: "header", name: "X-API-Key", description: "an operator key (or, for /status and /metrics, a scrape token)" },
        bearer: {
          type: "http",
          scheme: "bearer",
          description: 'an operator key, a scrape token (monitoring only), or a tenant token (JWT) with the role the route needs',
        },
      },
    },
  };
}
