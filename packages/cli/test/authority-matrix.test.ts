import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonBytes, roomKey, type Frame } from "@arqon/core";
import { mintToken, TestClient, type TokenClaims } from "@arqon/server/testing";
import { run } from "../src/index.js";
import { serveInProcess, type ServedGateway } from "./helpers/serve.js";

/**
 * The authority matrix of docs/security.md, as a table-driven test: every WebSocket frame and command, every HTTP
 * route and every CLI verb that talks to a server, tried by each principal over real sockets and real HTTP against
 * `arqon serve`. A cell is allowed (✓; "✓ in U" for an admin of another tenant U, whose action lands in U and leaves
 * tenant T's data exactly as it was) or refused with the code it names. The docs' table is rendered from this one
 * and compared (ARQON_WRITE_DOCS=1 rewrites it).
 */

const SECRET = "authority-matrix-secret-0123456789abcdef";
const KEY = "authority-matrix-operator-key-012345678";
const DOC = new URL("../../../docs/security.md", import.meta.url);
const START = "<!-- authority-matrix:start -->";
const END = "<!-- authority-matrix:end -->";

const PRINCIPALS = ["operator", "adminT", "adminU", "userCaps", "userNoCaps", "none"] as const;
type Who = (typeof PRINCIPALS)[number];
const HEADINGS: Record<Who, string> = {
  operator: "operator key",
  adminT: "admin of T",
  adminU: "admin of U",
  userCaps: "user, caps grant it",
  userNoCaps: "user, caps lack it",
  none: "no credential",
};

const OK = "✓";
const IN_U = "✓ in U";
type Cells = Record<Who, string>;
const cells = (...values: string[]): Cells => Object.fromEntries(PRINCIPALS.map((p, i) => [p, values[i]!])) as Cells;

// Expectations by kind of action.
const WS_ROOM = cells("ARQ_AUTH_INVALID", OK, IN_U, OK, "ARQ_FORBIDDEN", "ARQ_AUTH_MISSING");
const WS_OWN = cells("ARQ_AUTH_INVALID", OK, IN_U, OK, OK, "ARQ_AUTH_MISSING");
const CMD_CAP = cells("ARQ_AUTH_INVALID", OK, IN_U, OK, "AUTHORIZATION_ERROR", "ARQ_AUTH_MISSING");
const CMD_ADMIN = cells("ARQ_AUTH_INVALID", OK, IN_U, "AUTHORIZATION_ERROR", "AUTHORIZATION_ERROR", "ARQ_AUTH_MISSING");
const CMD_MEMBER = WS_OWN;
const HTTP_OPEN = cells(OK, OK, OK, OK, OK, OK);
const HTTP_OPERATOR = cells(OK, "ARQ_FORBIDDEN", "ARQ_FORBIDDEN", "ARQ_FORBIDDEN", "ARQ_FORBIDDEN", "ARQ_AUTH_MISSING");
const HTTP_TENANT_ADMIN = cells(OK, OK, "ARQ_FORBIDDEN", "ARQ_FORBIDDEN", "ARQ_FORBIDDEN", "ARQ_AUTH_MISSING");
const CLI_WS_ROOM = cells("ARQ_AUTH_MISSING", OK, IN_U, OK, "ARQ_FORBIDDEN", "ARQ_AUTH_MISSING");
const CLI_CASIL = cells(OK, OK, IN_U, "AUTHORIZATION_ERROR", "AUTHORIZATION_ERROR", "ARQ_AUTH_MISSING");

interface Cell {
  who: Who;
  /** The tenant T of this row. */
  tenant: string;
  /** The tenant the principal belongs to (U for adminU). */
  own: string;
  /** What `setup` returned. */
  context: unknown;
}

interface Row {
  group: "WebSocket frames" | "WebSocket commands" | "HTTP" | "CLI";
  label: string;
  expect: Cells;
  /** The row's tenant T (rows that disable or delete their tenant get one of their own). @default "t" */
  tenant?: string;
  /** Runs before each cell, for the principal's own tenant (e.g. the key a get reads). */
  setup?: (tenant: string) => Promise<unknown>;
  run: (cell: Cell) => Promise<string>;
}

const CODE_RE = /\b(ARQ_[A-Z_]+|AUTHORIZATION_ERROR|VALIDATION_ERROR|NOT_FOUND|FEATURE_DISABLED|CONFLICT|INTERNAL_ERROR)\b/;

describe("authority matrix (docs/security.md)", () => {
  let gw: ServedGateway;
  let hookTarget: Server;
  let hookUrl: string;
  const sockets: TestClient[] = [];
  let seq = 0;

  beforeAll(async () => {
    // One Pusher app (docs/pusher.md), so that its HTTP API's rows try real routes.
    const config = path.join(mkdtempSync(path.join(tmpdir(), "arqon-matrix-")), "arqon.config.json");
    writeFileSync(config, JSON.stringify({ pusher: { apps: [{ tenant: "t", appId: "matrix", key: "matrix-key", secret: "matrix-pusher-secret-0123456789" }] } }));
    gw = await serveInProcess(["--memory", "--config", config, "--outbound-allow", "127.0.0.1", "--outbound-allow-http"], {
      ARQON_JWT_SECRET: SECRET,
      ARQON_OPERATOR_KEY: KEY,
      ARQON_OMEGA_ENABLED: "1",
      ARQON_LOG_LEVEL: "silent",
    });
    // Webhooks registered by the matrix deliver to this loopback receiver only.
    hookTarget = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.end("ok"));
    });
    await new Promise<void>((r) => hookTarget.listen(0, "127.0.0.1", () => r()));
    hookUrl = `http://127.0.0.1:${(hookTarget.address() as AddressInfo).port}/hook`;
  });
  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    await gw?.stop();
    await new Promise((r) => hookTarget?.close(r));
  });

  function claims(who: Who, tenant: string): TokenClaims | undefined {
    const all = ["lobby", "public.*"];
    switch (who) {
      case "adminT":
        return { sub: "root", tenant, role: "admin" };
      case "adminU":
        return { sub: "root", tenant: "u", role: "admin" };
      case "userCaps":
        return { sub: "alice", tenant, caps: { sub: all, pub: all, presence: all, store: ["default"] } };
      case "userNoCaps":
        return { sub: "mallory", tenant, caps: { sub: ["public.*"] } };
      default:
        return undefined;
    }
  }

  async function tokenOf(who: Who, tenant: string): Promise<string | undefined> {
    if (who === "operator") return KEY;
    const c = claims(who, tenant);
    return c ? mintToken(SECRET, c) : undefined;
  }

  /** Connects as `who`; a refused upgrade resolves to its error code. */
  async function connect(who: Who, tenant: string): Promise<TestClient | string> {
    const token = await tokenOf(who, tenant);
    const ws = new WebSocket(gw.url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const client = new TestClient(ws, "json");
    sockets.push(client);
    return new Promise((resolve, reject) => {
      ws.once("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve((JSON.parse(body) as { error: { code: string } }).error.code));
      });
      ws.once("error", () => undefined);
      client.next("welcome", undefined, { timeoutMs: 5000 }).then((welcome) => {
        client.welcome = welcome;
        resolve(client);
      }, reject);
    });
  }

  function outcome(reply: Frame): string {
    if (reply.type === "error") return reply.error!.code;
    if (reply.type === "response" && reply.status === "error") return reply.error!.code;
    return OK;
  }

  /** Sends frames in order as `who`; every reply before the last must succeed; the last one is the outcome. */
  async function ws(cell: Cell, frames: Frame[]): Promise<string> {
    const client = await connect(cell.who, cell.tenant);
    if (typeof client === "string") return client;
    let result = OK;
    for (const frame of frames) {
      result = outcome(await client.request(frame));
      if (frame !== frames.at(-1) && result !== OK) throw new Error(`${frame.type} before the tried frame failed: ${result}`);
    }
    client.ws.close();
    return result;
  }

  const command = (name: string, args?: unknown): Frame => ({ type: "command", command: name, ...(args === undefined ? {} : { args: jsonBytes(args) }) });

  async function http(cell: Cell, method: string, path: string, body?: unknown): Promise<string> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (cell.who === "operator") headers["x-api-key"] = KEY;
    else {
      const token = await tokenOf(cell.who, cell.tenant);
      if (token) headers.authorization = `Bearer ${token}`;
    }
    const res = await fetch(`${gw.httpUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (res.ok) return OK;
    return (JSON.parse(text) as { error: { code: string } }).error.code;
  }

  /** `POST /ws/ticket` with the principal's credential as the bearer token (the only way the endpoint reads one). */
  async function ticket(cell: Cell): Promise<string> {
    const token = await tokenOf(cell.who, cell.tenant);
    const res = await fetch(`${gw.httpUrl}/ws/ticket`, { method: "POST", headers: token ? { authorization: `Bearer ${token}` } : {} });
    const body = (await res.json()) as { ticket?: string; error?: { code: string } };
    if (!res.ok) return body.error!.code;
    return typeof body.ticket === "string" ? OK : "no ticket in the answer";
  }

  /** The fallback transports (docs/protocol.md): a stream with the bearer header, `frame` posted to its session. */
  async function sse(cell: Cell, frame: Record<string, unknown>): Promise<string> {
    const token = await tokenOf(cell.who, cell.tenant);
    const abort = new AbortController();
    try {
      const res = await fetch(`${gw.httpUrl}/ws/sse`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: abort.signal });
      if (!res.ok) return (JSON.parse(await res.text()) as { error: { code: string } }).error.code;
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = "";
      let session: string | undefined;
      const deadline = Date.now() + 5000;
      for (;;) {
        if (Date.now() > deadline) throw new Error("no reply on the fallback stream");
        const { value, done } = await reader.read();
        if (done) throw new Error("the fallback stream ended");
        text += decoder.decode(value, { stream: true });
        for (let end = text.indexOf("\n\n"); end >= 0; end = text.indexOf("\n\n")) {
          const event = text.slice(0, end);
          text = text.slice(end + 2);
          const data = event.split("\n").find((l) => l.startsWith("data: "))?.slice(6);
          if (data === undefined) continue;
          if (event.includes("event: session")) {
            session = (JSON.parse(data) as { session: string }).session;
            continue;
          }
          const f = JSON.parse(data) as { type: string; requestId?: string; error?: { code: string } };
          if (f.type === "welcome") {
            const sent = await fetch(`${gw.httpUrl}/ws/send`, { method: "POST", headers: { "x-arqon-session": session! }, body: JSON.stringify({ ...frame, requestId: "m1" }) });
            if (sent.status !== 204) throw new Error(`send answered ${sent.status}`);
          } else if (f.requestId === "m1") {
            return f.type === "error" ? f.error!.code : OK;
          }
        }
      }
    } finally {
      abort.abort();
    }
  }

  async function cli(cell: Cell, argv: string[], signal?: AbortSignal): Promise<string> {
    const env: NodeJS.ProcessEnv = { ARQON_URL: gw.url, ARQON_DATA_DIR: `${gw.dir}/nothing-here` };
    if (cell.who === "operator") env.ARQON_OPERATOR_KEY = KEY;
    else {
      const token = await tokenOf(cell.who, cell.tenant);
      if (token) env.ARQON_TOKEN = token;
    }
    const err: string[] = [];
    const code = await run(argv, { out: () => undefined, err: (l) => err.push(l) }, { env, cwd: gw.dir, ...(signal ? { signal } : {}) });
    if (code === 0) return OK;
    const found = CODE_RE.exec(err.join("\n"));
    return found ? found[1]! : `exit ${code}: ${err.join(" | ")}`;
  }

  /** Tenant T's data as the server holds it: an admin of U acting must leave it exactly as it was. */
  async function fingerprint(tenant: string): Promise<string> {
    const s = gw.server;
    const key = roomKey(tenant, "lobby");
    const list = async (ns: string, prefix?: string) => (await s.kv.list(ns, { prefix, limit: 10_000 })).map((e) => [e.key, e.revision]);
    return JSON.stringify({
      history: await s.history.position(key),
      state: (await s.state.get(key)).map((e) => [e.key, e.version]),
      store: await list(`op.store/${tenant}/default`),
      cron: await list("op.cron", `${tenant}/`),
      hooks: await list("op.webhook", `${tenant}/`),
      layer: s.casil?.layerVersion(tenant),
      record: s.tenants.get(tenant),
      revocations: s.tenants.revocations(tenant).length,
      audit: await s.history.position(roomKey(tenant, "$audit")),
    });
  }

  /** Runs a command as the admin of `tenant` (row setups). */
  async function asAdmin(tenant: string, name: string, args?: unknown): Promise<void> {
    const client = await connect("adminT", tenant);
    if (typeof client === "string") throw new Error(`setup could not connect: ${client}`);
    const reply = await client.request(command(name, args));
    client.ws.close();
    if (outcome(reply) !== OK) throw new Error(`setup ${name} failed: ${outcome(reply)}`);
  }

  const ROWS: Row[] = [
    // ---- WebSocket frames -----------------------------------------------------------------------------------------
    { group: "WebSocket frames", label: "`subscribe` (a room)", expect: WS_ROOM, run: (c) => ws(c, [{ type: "subscribe", room: "lobby" }]) },
    { group: "WebSocket frames", label: "`subscribe` (a pattern its caps cover: `public.*`)", expect: WS_OWN, run: (c) => ws(c, [{ type: "subscribe", room: "public.*" }]) },
    {
      group: "WebSocket frames",
      label: "`subscribe` (a pattern beyond its caps: `**`)",
      expect: cells("ARQ_AUTH_INVALID", OK, IN_U, "ARQ_FORBIDDEN", "ARQ_FORBIDDEN", "ARQ_AUTH_MISSING"),
      run: (c) => ws(c, [{ type: "subscribe", room: "**" }]),
    },
    { group: "WebSocket frames", label: "`unsubscribe`", expect: WS_OWN, run: (c) => ws(c, [{ type: "subscribe", room: "public.x" }, { type: "unsubscribe", room: "public.x" }]) },
    { group: "WebSocket frames", label: "`publish`", expect: WS_ROOM, run: (c) => ws(c, [{ type: "publish", room: "lobby", payload: jsonBytes({ n: 1 }) }]) },
    { group: "WebSocket frames", label: "`history`", expect: WS_ROOM, run: (c) => ws(c, [{ type: "history", room: "lobby" }]) },
    { group: "WebSocket frames", label: "`presence_list`", expect: WS_ROOM, run: (c) => ws(c, [{ type: "presence_list", room: "lobby" }]) },
    {
      group: "WebSocket frames",
      label: "`presence_set` (on its own subscription)",
      expect: WS_OWN,
      run: (c) => ws(c, [{ type: "subscribe", room: "public.x" }, { type: "presence_set", room: "public.x", info: { info: jsonBytes({ status: "away" }) } }]),
    },
    { group: "WebSocket frames", label: "`state_get`", expect: WS_ROOM, run: (c) => ws(c, [{ type: "state_get", room: "lobby" }]) },
    { group: "WebSocket frames", label: "`state_set`", expect: WS_ROOM, run: (c) => ws(c, [{ type: "state_set", room: "lobby", state: [{ key: "k", value: jsonBytes(1) }] }]) },
    {
      group: "WebSocket frames",
      label: "`auth` (refresh with its own new token)",
      expect: WS_OWN,
      run: async (c) => ws(c, [{ type: "auth", token: (await tokenOf(c.who, c.tenant))! }]),
    },
    { group: "WebSocket frames", label: "`hello`, `ping`", expect: WS_OWN, run: (c) => ws(c, [{ type: "hello" }, { type: "ping" }]) },
    // ---- WebSocket commands ---------------------------------------------------------------------------------------
    { group: "WebSocket commands", label: "`op.history.get`", expect: CMD_CAP, run: (c) => ws(c, [command("op.history.get", { room: "lobby" })]) },
    { group: "WebSocket commands", label: "`op.history.replay`", expect: CMD_CAP, run: (c) => ws(c, [command("op.history.replay", { room: "lobby" })]) },
    { group: "WebSocket commands", label: "`op.casil.get` (baseline's public part, own layer)", expect: CMD_ADMIN, run: (c) => ws(c, [command("op.casil.get")]) },
    { group: "WebSocket commands", label: "`op.casil.reload` (own layer)", expect: CMD_ADMIN, run: (c) => ws(c, [command("op.casil.reload", { mode: "enforce" })]) },
    { group: "WebSocket commands", label: "`op.audit.list` (own trail)", expect: CMD_ADMIN, run: (c) => ws(c, [command("op.audit.list")]) },
    {
      group: "WebSocket commands",
      label: "`op.store.get` (capability `store`)",
      expect: CMD_CAP,
      setup: async (tenant) => gw.server.kv.put(`op.store/${tenant}/default`, "k", jsonBytes(1)),
      run: (c) => ws(c, [command("op.store.get", { key: "k" })]),
    },
    { group: "WebSocket commands", label: "`op.store.put`", expect: CMD_CAP, run: (c) => ws(c, [command("op.store.put", { key: `w${++seq}`, value: 1 })]) },
    { group: "WebSocket commands", label: "`op.store.delete`", expect: CMD_CAP, run: (c) => ws(c, [command("op.store.delete", { key: "absent" })]) },
    { group: "WebSocket commands", label: "`op.store.list`", expect: CMD_CAP, run: (c) => ws(c, [command("op.store.list")]) },
    {
      group: "WebSocket commands",
      label: "`op.cron.schedule`",
      expect: CMD_ADMIN,
      run: (c) => ws(c, [command("op.cron.schedule", { name: `m${++seq}`, room: "lobby", payload: 1, everyMs: 3_600_000 })]),
    },
    {
      group: "WebSocket commands",
      label: "`op.cron.cancel`",
      expect: CMD_ADMIN,
      setup: (tenant) => asAdmin(tenant, "op.cron.schedule", { name: "gone", room: "lobby", payload: 1, everyMs: 3_600_000 }),
      run: (c) => ws(c, [command("op.cron.cancel", { name: "gone" })]),
    },
    { group: "WebSocket commands", label: "`op.cron.list`", expect: CMD_ADMIN, run: (c) => ws(c, [command("op.cron.list")]) },
    {
      group: "WebSocket commands",
      label: "`op.webhook.register`",
      expect: CMD_ADMIN,
      run: (c) => ws(c, [command("op.webhook.register", { name: `h${++seq}`, room: "hooked", url: hookUrl })]),
    },
    {
      group: "WebSocket commands",
      label: "`op.webhook.remove`",
      expect: CMD_ADMIN,
      setup: (tenant) => asAdmin(tenant, "op.webhook.register", { name: "gone", room: "hooked", url: hookUrl }),
      run: (c) => ws(c, [command("op.webhook.remove", { name: "gone" })]),
    },
    { group: "WebSocket commands", label: "`op.webhook.list`", expect: CMD_ADMIN, run: (c) => ws(c, [command("op.webhook.list")]) },
    { group: "WebSocket commands", label: "`op.omega.status`", expect: CMD_MEMBER, run: (c) => ws(c, [command("op.omega.status")]) },
    { group: "WebSocket commands", label: "`op.omega.register_substrate`", expect: CMD_ADMIN, run: (c) => ws(c, [command("op.omega.register_substrate", { name: "s", kind: "k" })]) },
    { group: "WebSocket commands", label: "`op.omega.list_substrates`", expect: CMD_MEMBER, run: (c) => ws(c, [command("op.omega.list_substrates")]) },
    {
      group: "WebSocket commands",
      label: "`op.omega.emit_event`",
      expect: CMD_ADMIN,
      setup: (tenant) => asAdmin(tenant, "op.omega.register_substrate", { name: "s", kind: "k" }),
      run: (c) => ws(c, [command("op.omega.emit_event", { substrate: "s", event: "e" })]),
    },
    { group: "WebSocket commands", label: "`op.omega.list_events`", expect: CMD_MEMBER, run: (c) => ws(c, [command("op.omega.list_events")]) },
    // ---- HTTP -------------------------------------------------------------------------------------------------------
    {
      group: "HTTP",
      label: "`POST /apps/:appId/events`, `GET /apps/:appId/channels` (the Pusher HTTP API: the app secret's signed query only, [pusher.md](pusher.md))",
      expect: cells("ARQ_AUTH_MISSING", "ARQ_AUTH_MISSING", "ARQ_AUTH_MISSING", "ARQ_AUTH_MISSING", "ARQ_AUTH_MISSING", "ARQ_AUTH_MISSING"),
      run: async (c) => {
        const post = await http(c, "POST", "/apps/matrix/events", { name: "e", channels: ["lobby"], data: "{}" });
        return post === OK ? http(c, "GET", "/apps/matrix/channels") : post;
      },
    },
    { group: "HTTP", label: "`GET /health`, `/ready`, `/version`", expect: HTTP_OPEN, run: async (c) => [await http(c, "GET", "/health"), await http(c, "GET", "/ready"), await http(c, "GET", "/version")].find((r) => r !== OK) ?? OK },
    { group: "HTTP", label: "`GET /status`, `/metrics` (also a scrape token)", expect: HTTP_OPERATOR, run: async (c) => ((await http(c, "GET", "/status")) === OK ? http(c, "GET", "/metrics") : http(c, "GET", "/status")) },
    {
      group: "HTTP",
      label: "`POST /api/publish` (also `role: \"server\"`)",
      expect: HTTP_TENANT_ADMIN,
      run: (c) => http(c, "POST", "/api/publish", { tenant: c.tenant, room: "lobby", payload: { n: 1 } }),
    },
    { group: "HTTP", label: "`GET /api/v1/tenants`", expect: HTTP_OPERATOR, run: (c) => http(c, "GET", "/api/v1/tenants") },
    { group: "HTTP", label: "`POST /api/v1/tenants`", expect: HTTP_OPERATOR, run: (c) => http(c, "POST", "/api/v1/tenants", { name: `made-${++seq}` }) },
    { group: "HTTP", label: "`GET /api/v1/tenants/:t`", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "GET", `/api/v1/tenants/${c.tenant}`) },
    { group: "HTTP", label: "`PATCH /api/v1/tenants/:t`", expect: HTTP_OPERATOR, run: (c) => http(c, "PATCH", `/api/v1/tenants/${c.tenant}`, { limits: { maxRooms: 10_000 } }), setup: ensureRecord },
    {
      group: "HTTP",
      label: "`POST /api/v1/tenants/:t/disable`, `/enable`",
      tenant: "t-life",
      expect: HTTP_OPERATOR,
      run: async (c) => {
        const disabled = await http(c, "POST", `/api/v1/tenants/${c.tenant}/disable`);
        return disabled === OK ? http(c, "POST", `/api/v1/tenants/${c.tenant}/enable`) : disabled;
      },
    },
    { group: "HTTP", label: "`DELETE /api/v1/tenants/:t?confirm=:t`", tenant: "t-del", expect: HTTP_OPERATOR, run: (c) => http(c, "DELETE", `/api/v1/tenants/${c.tenant}?confirm=${c.tenant}`) },
    { group: "HTTP", label: "`POST /ws/ticket` (a fallback transport's ticket for its own bearer token)", expect: WS_OWN, run: (c) => ticket(c) },
    { group: "HTTP", label: "`GET /ws/sse` + `POST /ws/send` of `subscribe` (a room, over a fallback stream)", expect: WS_ROOM, run: (c) => sse(c, { type: "subscribe", room: "lobby" }) },
    { group: "HTTP", label: "`GET /ws/sse` + `POST /ws/send` of `publish` (over a fallback stream)", expect: WS_ROOM, run: (c) => sse(c, { type: "publish", room: "lobby", payload: { n: 1 } }) },
    { group: "HTTP", label: "`POST /api/v1/tenants/:t/console-token` (the web console's WebSocket token)", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "POST", `/api/v1/tenants/${c.tenant}/console-token`, {}) },
    { group: "HTTP", label: "`POST /api/v1/tenants/:t/kick`", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "POST", `/api/v1/tenants/${c.tenant}/kick`, { user: "nobody" }) },
    { group: "HTTP", label: "`GET /api/v1/tenants/:t/revocations`", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "GET", `/api/v1/tenants/${c.tenant}/revocations`) },
    { group: "HTTP", label: "`POST /api/v1/tenants/:t/revocations`", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "POST", `/api/v1/tenants/${c.tenant}/revocations`, { user: "nobody", ttlMs: 60_000 }) },
    {
      group: "HTTP",
      label: "`DELETE /api/v1/tenants/:t/revocations/:id`",
      expect: HTTP_TENANT_ADMIN,
      setup: async (tenant) => (await gw.server.tenants.revoke(tenant, { user: "nobody", ttlMs: 60_000 }, "matrix")).id,
      run: (c) => http(c, "DELETE", `/api/v1/tenants/${c.tenant}/revocations/${String(c.context)}`),
    },
    { group: "HTTP", label: "`GET /api/v1/tenants/:t/audit`", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "GET", `/api/v1/tenants/${c.tenant}/audit`) },
    { group: "HTTP", label: "`GET /api/v1/audit` (the server's trail)", expect: HTTP_OPERATOR, run: (c) => http(c, "GET", "/api/v1/audit") },
    { group: "HTTP", label: "`GET /api/v1/casil/baseline`", expect: HTTP_OPERATOR, run: (c) => http(c, "GET", "/api/v1/casil/baseline") },
    { group: "HTTP", label: "`PUT /api/v1/casil/baseline`", expect: HTTP_OPERATOR, run: (c) => http(c, "PUT", "/api/v1/casil/baseline", { policy: {}, dryRun: true }) },
    { group: "HTTP", label: "`GET /api/v1/tenants/:t/casil`", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "GET", `/api/v1/tenants/${c.tenant}/casil`) },
    { group: "HTTP", label: "`PUT /api/v1/tenants/:t/casil`", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "PUT", `/api/v1/tenants/${c.tenant}/casil`, { mode: "enforce", dryRun: true }) },
    { group: "HTTP", label: "`DELETE /api/v1/tenants/:t/casil`", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "DELETE", `/api/v1/tenants/${c.tenant}/casil`) },
    { group: "HTTP", label: "`POST /api/v1/tenants/:t/publish` (also `role: \"server\"`)", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "POST", `/api/v1/tenants/${c.tenant}/publish`, { room: "lobby", payload: { n: 1 } }) },
    { group: "HTTP", label: "`POST /api/v1/tenants/:t/broadcast` (also `role: \"server\"`)", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "POST", `/api/v1/tenants/${c.tenant}/broadcast`, { rooms: ["lobby", "news"], payload: { n: 1 } }) },
    { group: "HTTP", label: "`GET /api/v1/tenants/:t/rooms/:room/history` (also `role: \"server\"`)", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "GET", `/api/v1/tenants/${c.tenant}/rooms/lobby/history?limit=5`) },
    { group: "HTTP", label: "`GET /api/v1/tenants/:t/rooms` (also `role: \"server\"`)", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "GET", `/api/v1/tenants/${c.tenant}/rooms`) },
    {
      group: "HTTP",
      label: "`GET /api/v1/tenants/:t/rooms/:room/presence`, `/presence/stats` (also `role: \"server\"`)",
      expect: HTTP_TENANT_ADMIN,
      run: async (c) => {
        const members = await http(c, "GET", `/api/v1/tenants/${c.tenant}/rooms/lobby/presence`);
        return members === OK ? http(c, "GET", `/api/v1/tenants/${c.tenant}/rooms/lobby/presence/stats`) : members;
      },
    },
    { group: "HTTP", label: "`GET /api/v1/tenants/:t/rooms/:room/state` (also `role: \"server\"`)", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "GET", `/api/v1/tenants/${c.tenant}/rooms/lobby/state`) },
    { group: "HTTP", label: "`PUT /api/v1/tenants/:t/rooms/:room/state/:key` (also `role: \"server\"`)", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "PUT", `/api/v1/tenants/${c.tenant}/rooms/lobby/state/topic`, { value: `v${++seq}` }) },
    { group: "HTTP", label: "`POST /api/v1/tenants/:t/disconnect` (also `role: \"server\"`)", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "POST", `/api/v1/tenants/${c.tenant}/disconnect`, { user: "nobody", code: 4504 }) },
    { group: "HTTP", label: "`GET /api/v1/openapi.json`", expect: HTTP_OPEN, run: (c) => http(c, "GET", "/api/v1/openapi.json") },
    { group: "HTTP", label: "`POST /api/v1/tenants/:t/subscribe`, `/unsubscribe` (also `role: \"server\"`)", expect: HTTP_TENANT_ADMIN, run: async (c) => {
        const added = await http(c, "POST", `/api/v1/tenants/${c.tenant}/subscribe`, { user: "nobody", room: "lobby" });
        return added === OK ? http(c, "POST", `/api/v1/tenants/${c.tenant}/unsubscribe`, { user: "nobody", room: "lobby" }) : added;
      },
    },
    { group: "HTTP", label: "`DELETE /api/v1/tenants/:t/rooms/:room/history` (also `role: \"server\"`)", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "DELETE", `/api/v1/tenants/${c.tenant}/rooms/scratch/history`) },
    { group: "HTTP", label: "`GET /api/v1/tenants/:t/info`", expect: HTTP_TENANT_ADMIN, run: (c) => http(c, "GET", `/api/v1/tenants/${c.tenant}/info`) },
    { group: "HTTP", label: "`GET /api/v1/info`", expect: HTTP_OPERATOR, run: (c) => http(c, "GET", "/api/v1/info") },
    // ---- CLI --------------------------------------------------------------------------------------------------------
    { group: "CLI", label: "`arqon status`", expect: HTTP_OPERATOR, run: (c) => cli(c, ["status", "--json"]) },
    { group: "CLI", label: "`arqon tenant list`", expect: HTTP_OPERATOR, run: (c) => cli(c, ["tenant", "list"]) },
    { group: "CLI", label: "`arqon tenant create`", expect: HTTP_OPERATOR, run: (c) => cli(c, ["tenant", "create", `cli-${++seq}`]) },
    { group: "CLI", label: "`arqon tenant show`", expect: HTTP_TENANT_ADMIN, run: (c) => cli(c, ["tenant", "show", c.tenant]) },
    { group: "CLI", label: "`arqon tenant set`", expect: HTTP_OPERATOR, setup: ensureRecord, run: (c) => cli(c, ["tenant", "set", c.tenant, "--max-rooms", "10000"]) },
    {
      group: "CLI",
      label: "`arqon tenant disable`, `enable`",
      tenant: "t-life",
      expect: HTTP_OPERATOR,
      run: async (c) => {
        const disabled = await cli(c, ["tenant", "disable", c.tenant]);
        return disabled === OK ? cli(c, ["tenant", "enable", c.tenant]) : disabled;
      },
    },
    { group: "CLI", label: "`arqon tenant delete --yes`", tenant: "t-del", expect: HTTP_OPERATOR, run: (c) => cli(c, ["tenant", "delete", c.tenant, "--yes"]) },
    { group: "CLI", label: "`arqon kick`", expect: HTTP_TENANT_ADMIN, run: (c) => cli(c, ["kick", "--tenant", c.tenant, "--user", "nobody"]) },
    { group: "CLI", label: "`arqon revoke`", expect: HTTP_TENANT_ADMIN, run: (c) => cli(c, ["revoke", "--tenant", c.tenant, "--user", "nobody", "--ttl", "1m"]) },
    { group: "CLI", label: "`arqon audit --tenant`", expect: HTTP_TENANT_ADMIN, run: (c) => cli(c, ["audit", "--tenant", c.tenant]) },
    { group: "CLI", label: "`arqon history` (also `role: \"server\"`)", expect: HTTP_TENANT_ADMIN, run: (c) => cli(c, ["history", "lobby", "--tenant", c.tenant]) },
    { group: "CLI", label: "`arqon presence [--stats]` (also `role: \"server\"`)", expect: HTTP_TENANT_ADMIN, run: (c) => cli(c, ["presence", "lobby", "--tenant", c.tenant, "--stats"]) },
    { group: "CLI", label: "`arqon rooms` (also `role: \"server\"`)", expect: HTTP_TENANT_ADMIN, run: (c) => cli(c, ["rooms", "--tenant", c.tenant]) },
    { group: "CLI", label: "`arqon api <operation>`: the operation's route (here `showTenant`)", expect: HTTP_TENANT_ADMIN, run: (c) => cli(c, ["api", "showTenant", "--tenant", c.tenant]) },
    { group: "CLI", label: "`arqon api info` (an operator route)", expect: HTTP_OPERATOR, run: (c) => cli(c, ["api", "info"]) },
    { group: "CLI", label: "`arqon casil get` (operator: the baseline)", expect: CLI_CASIL, run: (c) => cli(c, ["casil", "get"]) },
    { group: "CLI", label: "`arqon casil reload` (operator: the baseline)", expect: CLI_CASIL, run: (c) => cli(c, ["casil", "reload", "--mode", "enforce", "--dry-run"]) },
    { group: "CLI", label: "`arqon publish`", expect: CLI_WS_ROOM, run: (c) => cli(c, ["publish", "lobby", '{"n":1}']) },
    {
      group: "CLI",
      label: "`arqon tail`",
      expect: CLI_WS_ROOM,
      run: async (c) => {
        const stop = new AbortController();
        const timer = setTimeout(() => stop.abort(), 300);
        try {
          return await cli(c, ["tail", "lobby"], stop.signal);
        } finally {
          clearTimeout(timer);
        }
      },
    },
  ];

  async function ensureRecord(tenant: string): Promise<void> {
    if (!gw.server.tenants.get(tenant)) await gw.server.tenants.create(tenant);
  }

  /** The matrix as docs/security.md shows it. */
  function render(): string {
    const lines: string[] = [];
    for (const group of ["WebSocket frames", "WebSocket commands", "HTTP", "CLI"] as const) {
      lines.push(`**${group}**`, "", `| | ${PRINCIPALS.map((p) => HEADINGS[p]).join(" | ")} |`, `|---|${PRINCIPALS.map(() => "---").join("|")}|`);
      for (const row of ROWS.filter((r) => r.group === group)) {
        lines.push(`| ${row.label} | ${PRINCIPALS.map((p) => (row.expect[p].startsWith("✓") ? row.expect[p] : `\`${row.expect[p]}\``)).join(" | ")} |`);
      }
      lines.push("");
    }
    return lines.join("\n");
  }

  it("matrix - docs/security.md shows this table", () => {
    const doc = readFileSync(DOC, "utf8");
    const at = doc.indexOf(START);
    const end = doc.indexOf(END);
    expect(at, "docs/security.md has the authority-matrix markers").toBeGreaterThan(0);
    const table = `${START}\n${render()}${END}`;
    if (process.env.ARQON_WRITE_DOCS === "1") writeFileSync(DOC, doc.slice(0, at) + table + doc.slice(end + END.length));
    else expect(doc.slice(at, end + END.length)).toBe(table);
  });

  for (const row of ROWS) {
    it(`matrix - ${row.group}: ${row.label}`, async () => {
      const tenant = row.tenant ?? "t";
      const got: Partial<Cells> = {};
      for (const who of PRINCIPALS) {
        const own = who === "adminU" ? "u" : tenant;
        const context = row.setup ? await row.setup(own) : undefined;
        const before = who === "adminU" ? await fingerprint(tenant) : undefined;
        let result = await row.run({ who, tenant, own, context });
        if (who === "adminU" && result === OK) {
          // Allowed for U's admin: it must have acted in U (or on no tenant at all), leaving T as it was.
          result = (await fingerprint(tenant)) !== before ? "✓ but T changed" : row.expect.adminU === OK ? OK : IN_U;
        }
        got[who] = result;
      }
      expect(got).toEqual(row.expect);
    });
  }
});
