/**
 * A client of the ArqonBus server API (`/api/v1`) for application backends and operators, in Node (>= 20: it uses the
 * global `fetch`; pass `fetch` to use another). It is kept out of the main entry and the browser bundles: an operator
 * key or a server token belongs on a server, never in a page.
 *
 * ```ts
 * import { ArqonServerClient } from "@arqon/sdk/server";
 * const api = new ArqonServerClient({ url: "http://127.0.0.1:9100", token: serverToken, tenant: "acme" });
 * await api.publish("lobby", { text: "hello from the backend" });
 * for await (const m of api.historyMessages("lobby", { fromOffset: 1 })) console.log(m.offset, m.payload);
 * ```
 *
 * Every route has one entry in {@link SERVER_OPERATIONS} (its method, path and who may call it); the methods of
 * {@link ArqonServerClient} are named after those entries, and `arqon api <operation>` uses the same names.
 *
 * @module @arqon/sdk/server
 */
import { ArqonError } from "@arqon/core";
import { ClientErrorCode } from "./errors.js";

/** Who may call a route (docs/security.md): the operator only, also an admin of the tenant, or also its backend. */
export type ServerAccess = "operator" | "tenant-admin" | "tenant-backend";

/** One route of the server API, as the client and `arqon api` call it. */
export interface ServerOperation {
  /** The HTTP method. */
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** The path under the server, with `:name` parameters (`:tenant` is the client's tenant unless given). */
  path: string;
  /** Who may call it. */
  access: ServerAccess;
  /** Query parameters it reads (besides the path parameters). */
  query?: readonly string[];
  /** Whether it takes a JSON body. */
  body?: boolean;
  /** What it does, in a few words. */
  summary: string;
}

/**
 * The routes of the server API by operation name. The names are the methods of {@link ArqonServerClient} and the
 * operations of `arqon api`; a route added to the server gets one entry here (and a method).
 */
export const SERVER_OPERATIONS = {
  listTenants: { method: "GET", path: "/api/v1/tenants", access: "operator", summary: "list tenant records" },
  createTenant: { method: "POST", path: "/api/v1/tenants", access: "operator", body: true, summary: "create a tenant {name, limits?, description?, disabled?}" },
  showTenant: { method: "GET", path: "/api/v1/tenants/:tenant", access: "tenant-admin", summary: "a tenant's record, limits in force, usage, revocations" },
  setTenant: { method: "PATCH", path: "/api/v1/tenants/:tenant", access: "operator", body: true, summary: "change a tenant's limits or description {limits?, description?}" },
  deleteTenant: { method: "DELETE", path: "/api/v1/tenants/:tenant", access: "operator", query: ["confirm"], summary: "delete a tenant and its data (confirm=<tenant>)" },
  disableTenant: { method: "POST", path: "/api/v1/tenants/:tenant/disable", access: "operator", summary: "disable a tenant: its connections close with 4503" },
  enableTenant: { method: "POST", path: "/api/v1/tenants/:tenant/enable", access: "operator", summary: "enable a disabled tenant" },
  kick: { method: "POST", path: "/api/v1/tenants/:tenant/kick", access: "tenant-admin", body: true, summary: "close connections (4504) {user?, client?}" },
  revocations: { method: "GET", path: "/api/v1/tenants/:tenant/revocations", access: "tenant-admin", summary: "list revocation rules" },
  revoke: { method: "POST", path: "/api/v1/tenants/:tenant/revocations", access: "tenant-admin", body: true, summary: "refuse tokens {user?, jti?, before?, ttlMs?}" },
  unrevoke: { method: "DELETE", path: "/api/v1/tenants/:tenant/revocations/:id", access: "tenant-admin", summary: "lift a revocation rule" },
  audit: { method: "GET", path: "/api/v1/tenants/:tenant/audit", access: "tenant-admin", query: ["limit", "before"], summary: "a tenant's audit trail, newest first" },
  serverAudit: { method: "GET", path: "/api/v1/audit", access: "operator", query: ["limit", "before"], summary: "the server's audit trail, newest first" },
  casilBaseline: { method: "GET", path: "/api/v1/casil/baseline", access: "operator", summary: "the CASIL baseline and its counters" },
  casilBaselinePut: { method: "PUT", path: "/api/v1/casil/baseline", access: "operator", body: true, summary: "reload the CASIL baseline {policy} | {mode}, dryRun?" },
  casilGet: { method: "GET", path: "/api/v1/tenants/:tenant/casil", access: "tenant-admin", summary: "a tenant's CASIL layer" },
  casilPut: { method: "PUT", path: "/api/v1/tenants/:tenant/casil", access: "tenant-admin", body: true, summary: "change a tenant's CASIL layer {policy} | {mode} | {clear}, dryRun?" },
  casilDelete: { method: "DELETE", path: "/api/v1/tenants/:tenant/casil", access: "tenant-admin", summary: "clear a tenant's CASIL layer" },
  publish: { method: "POST", path: "/api/v1/tenants/:tenant/publish", access: "tenant-backend", body: true, summary: "publish into a room {room, payload, payloadFormat?, headers?, idempotencyKey?}" },
  broadcast: { method: "POST", path: "/api/v1/tenants/:tenant/broadcast", access: "tenant-backend", body: true, summary: "publish one message into several rooms {rooms, payload, ...}" },
  history: {
    method: "GET",
    path: "/api/v1/tenants/:tenant/rooms/:room/history",
    access: "tenant-backend",
    query: ["fromOffset", "toOffset", "fromTs", "toTs", "reverse", "limit"],
    summary: "a page of a room's history",
  },
  rooms: { method: "GET", path: "/api/v1/tenants/:tenant/rooms", access: "tenant-backend", query: ["prefix", "limit", "cursor"], summary: "the tenant's rooms live on any node, a page at a time" },
  historyRemove: { method: "DELETE", path: "/api/v1/tenants/:tenant/rooms/:room/history", access: "tenant-backend", summary: "remove a room's history (the room starts over in a new epoch)" },
  presence: { method: "GET", path: "/api/v1/tenants/:tenant/rooms/:room/presence", access: "tenant-backend", summary: "a room's presence members" },
  presenceStats: { method: "GET", path: "/api/v1/tenants/:tenant/rooms/:room/presence/stats", access: "tenant-backend", summary: "a room's presence counts" },
  stateGet: { method: "GET", path: "/api/v1/tenants/:tenant/rooms/:room/state", access: "tenant-backend", summary: "a room's state entries" },
  stateSet: { method: "PUT", path: "/api/v1/tenants/:tenant/rooms/:room/state/:key", access: "tenant-backend", body: true, summary: "write a room state key {value, expectedVersion?}" },
  disconnect: { method: "POST", path: "/api/v1/tenants/:tenant/disconnect", access: "tenant-backend", body: true, summary: "close connections {user?, client?, code?, reason?}" },
  subscribeUser: { method: "POST", path: "/api/v1/tenants/:tenant/subscribe", access: "tenant-backend", body: true, summary: "subscribe a user's live connections to a room {user, room, client?}" },
  unsubscribeUser: { method: "POST", path: "/api/v1/tenants/:tenant/unsubscribe", access: "tenant-backend", body: true, summary: "unsubscribe a user's live connections from a room {user, room, client?}" },
  tenantInfo: { method: "GET", path: "/api/v1/tenants/:tenant/info", access: "tenant-admin", summary: "a tenant's connections and subscriptions per node" },
  info: { method: "GET", path: "/api/v1/info", access: "operator", summary: "this node and every other node of the cluster" },
  consoleToken: { method: "POST", path: "/api/v1/tenants/:tenant/console-token", access: "tenant-admin", body: true, summary: "a short-lived token of the tenant for the web console {access?: read | admin}" },
} as const satisfies Record<string, ServerOperation>;

/** The name of an operation of {@link SERVER_OPERATIONS}. */
export type ServerOperationName = keyof typeof SERVER_OPERATIONS;

/** The path parameters of `path` (`:tenant`, `:room`, ...) in order. */
export function operationParams(path: string): string[] {
  return path
    .split("/")
    .filter((s) => s.startsWith(":"))
    .map((s) => s.slice(1));
}

/**
 * The path of an operation with its parameters filled in (each encoded as one segment: a `/` in a room name becomes
 * `%2F`, as the server expects). Throws a TypeError naming a parameter that is missing or empty.
 */
export function operationPath(op: Pick<ServerOperation, "path">, params: Record<string, string | undefined>): string {
  return op.path.replace(/:([a-zA-Z]+)/g, (_m, name: string) => {
    const value = params[name];
    if (value === undefined || value === "") throw new TypeError(`the route ${op.path} needs "${name}"`);
    return encodeURIComponent(value);
  });
}

/**
 * The server API refused a request, or gave no answer. `code` is the server's (docs/errors.md); a request that got no
 * answer has `status` 0 and code ARQ_REQUEST_TIMEOUT (no answer within `timeoutMs`) or ARQ_CONNECTION_CLOSED (no
 * connection, or it broke: whether the server acted is unknown).
 */
export class ArqonApiError extends ArqonError {
  /** The HTTP status of the answer; 0 when there was none. */
  readonly status: number;
  /** For a 429 (or 503) with a `Retry-After` header: how long the server asks to wait, in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(code: string, message: string, status: number, options?: ErrorOptions & { retryAfterMs?: number; detail?: Record<string, unknown> }) {
    super(code, message, options);
    this.name = "ArqonApiError";
    this.status = status;
    this.retryAfterMs = options?.retryAfterMs;
  }

  /** True for 429 and 503 answers and for requests without an answer, besides the codes `isRetryable` names. */
  override get retryable(): boolean {
    return this.status === 429 || this.status === 503 || this.status === 0 || super.retryable;
  }
}

/** Milliseconds of a `Retry-After` header (delta-seconds or an HTTP date); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Options of {@link ArqonServerClient}. Give `operatorKey` or `token`, not both. */
export interface ArqonServerClientOptions {
  /** The server: `http(s)://host:port` (a `ws(s)://host:port/ws` URL works too; its path is dropped). */
  url: string;
  /** An operator key, sent as `X-API-Key`: any tenant, named in each call or by `tenant`. */
  operatorKey?: string;
  /** A token with role "server" or "admin" of a tenant, sent as `Authorization: Bearer`. */
  token?: string;
  /** The tenant of calls that do not name one. */
  tenant?: string;
  /** How long one request may take before it fails with ARQ_REQUEST_TIMEOUT. @default 10000 */
  timeoutMs?: number;
  /** The fetch to use. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** Options every tenant-scoped call takes. */
export interface TenantScoped {
  /** The tenant of this call. @default the client's `tenant` */
  tenant?: string;
}

/** How a published message is written. */
export interface ServerPublishOptions extends TenantScoped {
  /** Message headers: lower-case names (`[a-z0-9][a-z0-9._-]*`), string values of at most 4096 characters. */
  headers?: Record<string, string>;
  /** A publish carrying the same key within the dedupe window is acknowledged as a duplicate and not delivered again. */
  idempotencyKey?: string;
}

/** What the server answers a publish. */
export interface ServerPublishResult {
  id: string;
  room: string;
  offset: number;
  epoch: string;
  /** True when the idempotency key was seen within the window: nothing was delivered again. */
  duplicate: boolean;
}

/** One room's outcome of a broadcast: published, or refused on its own (CASIL, a limit). */
export type BroadcastResult = ({ room: string } & Omit<ServerPublishResult, "room">) | { room: string; error: { code: string; message: string } };

/** A page query of a room's history. Numbers are whole and >= 0. */
export interface ServerHistoryQuery extends TenantScoped {
  /** First offset (inclusive). */
  fromOffset?: number;
  /** Last offset (inclusive). */
  toOffset?: number;
  /** Only messages stored at or after this time, epoch ms. */
  fromTs?: number;
  /** Only messages stored at or before this time, epoch ms. */
  toTs?: number;
  /** Newest first, from `toOffset` (or the newest message). */
  reverse?: boolean;
  /** Most messages in the page, 1-1000. @default 100 (the server's) */
  limit?: number;
}

/** One stored message. A binary payload is base64 with `payloadFormat: "binary"`; a JSON one is the value. */
export interface ServerHistoryMessage {
  id: string;
  offset: number;
  epoch: string;
  timestamp: number;
  sender?: string;
  headers?: Record<string, string>;
  payload: unknown;
  payloadFormat?: "binary";
}

/** A page of history and the room's position (its newest offset and epoch). */
export interface ServerHistoryPage {
  messages: ServerHistoryMessage[];
  position: { offset: number; epoch: string };
}

/** A room live on the node that answered, with its local subscriptions. */
export interface ServerRoom {
  room: string;
  /** Subscriptions over every node. */
  subscribers: number;
  /** Nodes it is live on. */
  nodes: number;
}

/** A presence member. */
export interface ServerPresenceMember {
  clientId: string;
  user: string;
  info?: unknown;
  joinedAt?: number;
}

/** A room state entry. */
export interface ServerStateEntry {
  key: string;
  value: unknown;
  version: number;
  updatedAt?: number;
}

/** Which connections to close: a user's, one client's, or (neither) every connection of the tenant. */
export interface ConnectionSelector extends TenantScoped {
  /** The token's `sub`. */
  user?: string;
  /** The connection's client id. */
  client?: string;
}

/** A tenant's limits (docs/security.md#tenants): whole numbers, bytes and milliseconds. */
export type TenantLimits = Record<string, number>;

/** A tenant's record. */
export interface TenantRecord {
  name: string;
  status: "active" | "disabled";
  /** The limits the record sets (the others come from configuration and defaults). */
  limits: TenantLimits;
  description?: string;
  createdAt: number;
  updatedAt: number;
  disabledAt?: number;
}

/** A revocation rule. */
export interface RevocationRule {
  id: string;
  tenant: string;
  user?: string;
  jti?: string;
  before?: number;
  createdAt: number;
  expiresAt: number;
  by: string;
}

/** What `showTenant` answers. */
export interface TenantView {
  name: string;
  status: "active" | "disabled" | "unregistered";
  record?: TenantRecord;
  /** The limits in force (record over configuration over defaults). */
  limits: TenantLimits;
  usage: { rooms: number; storeKeys: number; storeBytes: number };
  connectionsHere: number;
  revocations: RevocationRule[];
}

/** Who did something, in an audit record. */
export type AuditActor = { kind: "operator"; key: string } | { kind: "tenant_admin" | "tenant_server" | "user"; tenant: string; sub: string };

/** One audit record. */
export interface AuditRecord {
  time: string;
  actor: AuditActor;
  tenant: string;
  action: string;
  target?: string;
  /** "ok", or the error code of a refusal. */
  result: string;
  detail?: Record<string, unknown>;
  offset: number;
}

/** A page of an audit trail; `next` is the `before` of the next, older page. */
export interface AuditPage {
  records: AuditRecord[];
  next?: number;
}

/** A CASIL reload (docs/casil.md): exactly one of `policy`, `mode`, `clear` (tenant layers only). */
export interface CasilReload {
  policy?: Record<string, unknown> | string;
  mode?: "monitor" | "enforce";
  clear?: true;
  /** Validate and answer what would change; store nothing. */
  dryRun?: boolean;
}

/** What a CASIL layer write answers. */
export interface CasilLayerWriteResult {
  valid: true;
  dryRun: boolean;
  tenant: string;
  version: number;
  previousVersion: number;
  changes: string[];
}

const DEFAULT_TIMEOUT_MS = 10_000;

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** The HTTP base (`http://host:port`) of a server URL given as http(s) or ws(s). */
function httpBase(url: string): string {
  const u = new URL(url);
  if (u.protocol === "ws:") u.protocol = "http:";
  else if (u.protocol === "wss:") u.protocol = "https:";
  else if (u.protocol !== "http:" && u.protocol !== "https:") throw new TypeError(`url: "${u.protocol}" is not http, https, ws or wss`);
  return u.origin;
}

/**
 * Calls the server API with one credential. Every method resolves with the server's JSON answer, typed, or rejects
 * with an {@link ArqonApiError}. Redirects are not followed, so the credential never goes to another host.
 */
export class ArqonServerClient {
  /** The server's HTTP base, `http(s)://host:port`. */
  readonly baseUrl: string;
  /** The tenant of calls that do not name one. */
  readonly tenant: string | undefined;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: ArqonServerClientOptions) {
    if (options.operatorKey !== undefined && options.token !== undefined) throw new TypeError("give operatorKey or token, not both");
    this.baseUrl = httpBase(options.url);
    this.tenant = options.tenant;
    this.#headers = { accept: "application/json" };
    if (options.operatorKey !== undefined) this.#headers["x-api-key"] = options.operatorKey;
    if (options.token !== undefined) this.#headers.authorization = `Bearer ${options.token}`;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new TypeError("no fetch: pass options.fetch (Node >= 20 has a global one)");
    this.#fetch = f;
  }

  /**
   * Sends one request to `path` (under the server, e.g. "/api/v1/tenants/acme/rooms") and resolves with the parsed
   * JSON answer: the escape hatch for routes this client has no method for. `query` entries left undefined are
   * dropped.
   */
  async call<T = unknown>(method: ServerOperation["method"], path: string, body?: unknown, query?: Record<string, string | number | boolean | undefined>): Promise<T> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const url = `${this.baseUrl}${path}${qs.size > 0 ? `?${qs.toString()}` : ""}`;
    const headers = { ...this.#headers };
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    let text: string;
    try {
      res = await this.#fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), redirect: "manual", signal: AbortSignal.timeout(this.#timeoutMs) });
      text = await res.text();
    } catch (err) {
      const e = err as Error & { cause?: { message?: string; code?: string } };
      if (e.name === "TimeoutError") throw new ArqonApiError(ClientErrorCode.REQUEST_TIMEOUT, `no answer from ${this.baseUrl} within ${this.#timeoutMs} ms`, 0, { cause: err });
      throw new ArqonApiError(ClientErrorCode.CONNECTION_CLOSED, `cannot reach ${this.baseUrl}: ${e.cause?.message || e.cause?.code || e.message}`, 0, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.status < 200 || res.status > 299) {
      const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const code = typeof error?.code === "string" ? error.code : `HTTP_${res.status}`;
      const message = typeof error?.message === "string" ? error.message : `${method} ${path} answered HTTP ${res.status}`;
      const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
      throw new ArqonApiError(code, message, res.status, retryAfterMs === undefined ? {} : { retryAfterMs });
    }
    if (parsed === undefined) throw new ArqonApiError(`HTTP_${res.status}`, `${method} ${path} answered HTTP ${res.status} without a JSON body`, res.status);
    return parsed as T;
  }

  /**
   * Calls an operation of {@link SERVER_OPERATIONS} by name: `params` fill its path (`tenant` defaults to the client's),
   * `query` its query string, `body` its JSON body.
   */
  operation<T = unknown>(name: ServerOperationName, input: { params?: Record<string, string | undefined>; query?: Record<string, string | number | boolean | undefined>; body?: unknown } = {}): Promise<T> {
    const op: ServerOperation = SERVER_OPERATIONS[name];
    const params = { ...input.params };
    if (params.tenant === undefined && op.path.includes(":tenant")) {
      if (this.tenant === undefined) return Promise.reject(new TypeError(`${name} needs a tenant: give options.tenant or the client's tenant`));
      params.tenant = this.tenant;
    }
    let path: string;
    try {
      path = operationPath(op, params);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.call<T>(op.method, path, input.body ?? (op.body ? {} : undefined), input.query);
  }

  #scoped<T>(name: ServerOperationName, o: TenantScoped | undefined, rest: { params?: Record<string, string>; query?: Record<string, string | number | boolean | undefined>; body?: unknown } = {}): Promise<T> {
    return this.operation<T>(name, { ...rest, params: { ...rest.params, ...(o?.tenant !== undefined ? { tenant: o.tenant } : {}) } });
  }

  // Rooms and users (operator, admin or role "server" of the tenant).

  /** Publishes into `room` through the same path as a client's publish (CASIL, limits, history, bus). A Uint8Array is sent as binary. */
  publish(room: string, payload: unknown, options: ServerPublishOptions = {}): Promise<ServerPublishResult> {
    return this.#scoped("publish", options, { body: { room, ...messageBody(payload, options) } });
  }

  /** Publishes one message into 1-100 distinct rooms, one after the other; each room's refusal is its own result. */
  broadcast(rooms: readonly string[], payload: unknown, options: ServerPublishOptions = {}): Promise<{ results: BroadcastResult[] }> {
    return this.#scoped("broadcast", options, { body: { rooms, ...messageBody(payload, options) } });
  }

  /** One page of a room's history (oldest first, or newest first with `reverse`). */
  history(room: string, query: ServerHistoryQuery = {}): Promise<ServerHistoryPage> {
    const { tenant, reverse, ...rest } = query;
    return this.#scoped("history", { tenant }, { params: { room }, query: { ...rest, reverse: reverse === true ? true : undefined } });
  }

  /**
   * Every message of a room's history matching `query`, page after page (`limit` is the page size): forwards from
   * `fromOffset`, or with `reverse` backwards from `toOffset`. Stops after a short page or at the range's end.
   */
  async *historyMessages(room: string, query: ServerHistoryQuery = {}): AsyncGenerator<ServerHistoryMessage, void, undefined> {
    let q = { ...query };
    for (;;) {
      const page = await this.history(room, q);
      for (const m of page.messages) yield m;
      const last = page.messages[page.messages.length - 1];
      if (last === undefined || page.messages.length < (q.limit ?? 100)) return;
      if (q.reverse) {
        if (last.offset <= 1 || (q.fromOffset !== undefined && last.offset <= q.fromOffset)) return;
        q = { ...q, toOffset: last.offset - 1 };
      } else {
        if (q.toOffset !== undefined && last.offset >= q.toOffset) return;
        q = { ...q, fromOffset: last.offset + 1 };
      }
    }
  }

  /**
   * A page of the tenant's rooms live on any node, sorted by name; pass the answer's `next` as `cursor` for the next
   * page. `partial` when a known node did not answer in time.
   */
  rooms(options: TenantScoped & { prefix?: string; limit?: number; cursor?: string } = {}): Promise<{ rooms: ServerRoom[]; next?: string; partial?: true }> {
    return this.#scoped("rooms", options, { query: { prefix: options.prefix, limit: options.limit, cursor: options.cursor } });
  }

  /** Removes a room's stored history; the room starts over at offset 1 in a new epoch. */
  historyRemove(room: string, options: TenantScoped = {}): Promise<{ removed: boolean; position: { offset: number; epoch: string } }> {
    return this.#scoped("historyRemove", options, { params: { room } });
  }

  /**
   * Subscribes the user's live connections (or the one `client`) to `room` on every node, caps aside; each gets a
   * `subscribed` frame with `reason: "server"`. A reconnect does not renew it.
   */
  subscribeUser(user: string, room: string, options: TenantScoped & { client?: string } = {}): Promise<{ subscribedHere: number; refusedHere?: Array<{ client: string; error: { code: string; message: string } }> }> {
    const body: Record<string, unknown> = { user, room };
    if (options.client !== undefined) body.client = options.client;
    return this.#scoped("subscribeUser", options, { body });
  }

  /** Ends the user's subscriptions to `room` (or the one `client`'s) on every node. */
  unsubscribeUser(user: string, room: string, options: TenantScoped & { client?: string } = {}): Promise<{ unsubscribedHere: number }> {
    const body: Record<string, unknown> = { user, room };
    if (options.client !== undefined) body.client = options.client;
    return this.#scoped("unsubscribeUser", options, { body });
  }

  /** The tenant's connections and room subscriptions per node. Operator, or an admin of the tenant. */
  tenantInfo(options: TenantScoped = {}): Promise<{ tenant: string; nodes: Array<{ id: string; connections: number; rooms: number; subscribers: number }>; connections: number; subscribers: number; partial?: true }> {
    return this.#scoped("tenantInfo", options, {});
  }

  /** This node first, then every other node known from its heartbeats. Operator only. */
  info(): Promise<{ node: string; clustered: boolean; nodes: Array<Record<string, unknown> & { id: string; self: boolean }> }> {
    return this.call("GET", "/api/v1/info");
  }

  /** A room's presence members. 400 ARQ_PRESENCE_DISABLED when the room keeps none. */
  presence(room: string, options: TenantScoped = {}): Promise<{ members: ServerPresenceMember[] }> {
    return this.#scoped("presence", options, { params: { room } });
  }

  /** How many connections (`clients`) and distinct users are present in a room. */
  presenceStats(room: string, options: TenantScoped = {}): Promise<{ clients: number; users: number }> {
    return this.#scoped("presenceStats", options, { params: { room } });
  }

  /** A room's state entries. */
  stateGet(room: string, options: TenantScoped = {}): Promise<{ entries: ServerStateEntry[] }> {
    return this.#scoped("stateGet", options, { params: { room } });
  }

  /**
   * Writes a room state key (delivered to subscribers as a client's state_set is). With `expectedVersion` the write
   * applies only when the key is at that version (0: it must not exist), else 409 ARQ_STATE_CONFLICT.
   */
  stateSet(room: string, key: string, value: unknown, options: TenantScoped & { expectedVersion?: number } = {}): Promise<{ key: string; version: number }> {
    const body: Record<string, unknown> = { value };
    if (options.expectedVersion !== undefined) body.expectedVersion = options.expectedVersion;
    return this.#scoped("stateSet", options, { params: { room, key }, body });
  }

  /** Closes the selected connections on every node with `code` (4000-4999, default 4504) and `reason`. */
  disconnect(options: ConnectionSelector & { code?: number; reason?: string } = {}): Promise<{ closedHere: number }> {
    const { tenant, ...body } = options;
    return this.#scoped("disconnect", { tenant }, { body });
  }

  // Tenant administration (operator; show, kick, revocations, audit and CASIL also an admin of the tenant).

  /** Every tenant record, and the tenancy mode. Operator only. */
  listTenants(): Promise<{ mode: "open" | "registered"; tenants: TenantRecord[] }> {
    return this.operation("listTenants");
  }

  /** Creates a tenant record (409 CONFLICT when it exists). Operator only. */
  createTenant(name: string, input: { limits?: TenantLimits; description?: string; disabled?: boolean } = {}): Promise<TenantRecord> {
    return this.operation("createTenant", { body: { name, ...input } });
  }

  /** A tenant's record, the limits in force, its usage and revocations. */
  showTenant(tenant?: string): Promise<TenantView> {
    return this.#scoped("showTenant", { tenant });
  }

  /** Merges limits into a tenant's record (a limit set to null goes back to the default). Operator only. */
  setTenant(tenant: string, input: { limits?: Record<string, number | null>; description?: string }): Promise<TenantRecord> {
    return this.#scoped("setTenant", { tenant }, { body: input });
  }

  /** Deletes a tenant and all its data; `confirm` must repeat its name. Operator only. */
  deleteTenant(tenant: string, options: { confirm: string }): Promise<{ rooms: number; stateRooms: number; storeKeys: number }> {
    return this.#scoped("deleteTenant", { tenant }, { query: { confirm: options.confirm } });
  }

  /** Disables a tenant: its connections close with 4503 on every node. Operator only. */
  disableTenant(tenant: string): Promise<{ record: TenantRecord; closedHere: number }> {
    return this.#scoped("disableTenant", { tenant });
  }

  /** Enables a disabled tenant. Operator only. */
  enableTenant(tenant: string): Promise<TenantRecord> {
    return this.#scoped("enableTenant", { tenant });
  }

  /** Closes (4504) the selected connections of the tenant on every node. */
  kick(options: ConnectionSelector = {}): Promise<{ closedHere: number }> {
    const { tenant, ...body } = options;
    return this.#scoped("kick", { tenant }, { body });
  }

  /**
   * Mints a short-lived (at most 15 minutes) token of the tenant for the web console's WebSocket: `"read"` (the
   * default) may subscribe and see presence, `"admin"` is a `role: "admin"` token. 501 FEATURE_DISABLED when the
   * server cannot sign (public-key tokens only).
   */
  consoleToken(options: TenantScoped & { access?: "read" | "admin" } = {}): Promise<{ token: string; tenant: string; sub: string; access: "read" | "admin"; expiresAt: string }> {
    const { tenant, ...body } = options;
    return this.#scoped("consoleToken", { tenant }, { body });
  }

  /** The tenant's revocation rules in force. */
  revocations(options: TenantScoped = {}): Promise<{ revocations: RevocationRule[] }> {
    return this.#scoped("revocations", options);
  }

  /** Refuses matching tokens (401 ARQ_AUTH_REVOKED) and closes live ones (4500). */
  revoke(rule: TenantScoped & { user?: string; jti?: string; before?: number; ttlMs?: number }): Promise<{ rule: RevocationRule; closedHere: number }> {
    const { tenant, ...body } = rule;
    return this.#scoped("revoke", { tenant }, { body });
  }

  /** Lifts a revocation rule (404 NOT_FOUND when there is none with that id). */
  unrevoke(id: string, options: TenantScoped = {}): Promise<{ removed: boolean }> {
    return this.#scoped("unrevoke", options, { params: { id } });
  }

  /** A page of the tenant's audit trail, newest first. */
  audit(options: TenantScoped & { limit?: number; before?: number } = {}): Promise<AuditPage> {
    return this.#scoped("audit", options, { query: { limit: options.limit, before: options.before } });
  }

  /** A page of the server's own audit trail (baseline reloads, deletions). Operator only. */
  serverAudit(options: { limit?: number; before?: number } = {}): Promise<AuditPage> {
    return this.operation("serverAudit", { query: { limit: options.limit, before: options.before } });
  }

  /** The CASIL baseline's description and counters. Operator only; 404 when CASIL is off. */
  casilBaseline(): Promise<Record<string, unknown>> {
    return this.operation("casilBaseline");
  }

  /** Reloads (or with `dryRun` checks) the CASIL baseline. Operator only. */
  casilBaselinePut(reload: Omit<CasilReload, "clear">): Promise<{ valid: true; dryRun: boolean; version: number } & Record<string, unknown>> {
    return this.operation("casilBaselinePut", { body: reload });
  }

  /** The tenant's CASIL view: the baseline's public part, its layer and its decision counters. */
  casilGet(options: TenantScoped = {}): Promise<Record<string, unknown>> {
    return this.#scoped("casilGet", options);
  }

  /** Changes (or with `dryRun` checks) the tenant's CASIL layer. */
  casilPut(reload: CasilReload & TenantScoped): Promise<CasilLayerWriteResult> {
    const { tenant, ...body } = reload;
    return this.#scoped("casilPut", { tenant }, { body });
  }

  /** Removes the tenant's CASIL layer. */
  casilDelete(options: TenantScoped = {}): Promise<CasilLayerWriteResult> {
    return this.#scoped("casilDelete", options);
  }
}

function messageBody(payload: unknown, options: ServerPublishOptions): Record<string, unknown> {
  const out: Record<string, unknown> = payload instanceof Uint8Array ? { payload: toBase64(payload), payloadFormat: "binary" } : { payload };
  if (options.headers !== undefined) out.headers = options.headers;
  if (options.idempotencyKey !== undefined) out.idempotencyKey = options.idempotencyKey;
  return out;
}
