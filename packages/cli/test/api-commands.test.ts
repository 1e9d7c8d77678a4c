import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "@arqon/server/testing";
import { ErrorCode } from "@arqon/core";
import { SERVER_OPERATIONS } from "@arqon/sdk/server";
import { run } from "../src/index.js";

const KEY = "api-commands-operator-key-0123456789abc";
const tmp = mkdtempSync(path.join(tmpdir(), "arqon-cli-api-"));
/** A data dir without an operator-key file, so no test picks up a developer's ./.arqon. */
const EMPTY_DATA_DIR = path.join(tmp, "empty");

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Result {
  code: number;
  out: string[];
  err: string[];
}

async function cli(argv: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (l) => out.push(l), err: (l) => err.push(l) }, { env, cwd: tmp });
  return { code, out, err };
}

/** The JSON answer a successful run printed. */
async function answer<T = Record<string, unknown>>(argv: string[], env: NodeJS.ProcessEnv): Promise<T> {
  const r = await cli(argv, env);
  expect(r.err, r.err.join("\n")).toEqual([]);
  expect(r.code).toBe(0);
  return JSON.parse(r.out.join("\n")) as T;
}

interface Principals {
  gw: TestGateway;
  /** The operator key. */
  operator: NodeJS.ProcessEnv;
  /** A token with role "admin" of acme. */
  admin: NodeJS.ProcessEnv;
  /** A token with role "server" of acme. */
  server: NodeJS.ProcessEnv;
  /** A token with role "admin" of beta. */
  otherAdmin: NodeJS.ProcessEnv;
  /** A user token of acme. */
  user: NodeJS.ProcessEnv;
}

async function principals(): Promise<Principals> {
  gw = await startGateway({ operatorKeys: [KEY] });
  const base = { ARQON_URL: gw.httpUrl, ARQON_DATA_DIR: EMPTY_DATA_DIR };
  return {
    gw,
    operator: { ...base, ARQON_OPERATOR_KEY: KEY },
    admin: { ...base, ARQON_TOKEN: await gw.token({ sub: "root", role: "admin" }) },
    server: { ...base, ARQON_TOKEN: await gw.token({ sub: "backend", role: "server" }) },
    otherAdmin: { ...base, ARQON_TOKEN: await gw.token({ sub: "root", role: "admin", tenant: "beta" }) },
    user: { ...base, ARQON_TOKEN: await gw.token({ sub: "mallory" }) },
  };
}

describe("cli - arqon api", () => {
  it("api --list - every operation of @arqon/sdk/server with its method, path and who may call it", async () => {
    const r = await cli(["api", "--list"], {});
    expect(r.code).toBe(0);
    expect(r.out[0]).toMatch(/^OPERATION\s+METHOD\s+PATH\s+WHO\s+DOES$/);
    expect(r.out).toHaveLength(Object.keys(SERVER_OPERATIONS).length + 1);
    expect(r.out).toContainEqual(expect.stringMatching(/^publish\s+POST\s+\/api\/v1\/tenants\/:tenant\/publish\s+tenant-backend\s+publish into a room/));
    expect(r.out).toContainEqual(expect.stringMatching(/^listTenants\s+GET\s+\/api\/v1\/tenants\s+operator\s+/));
    const listed = JSON.parse((await cli(["api", "--list", "--json"], {})).out[0]!) as Array<{ name: string; method: string; path: string }>;
    expect(listed.map((o) => o.name)).toEqual(Object.keys(SERVER_OPERATIONS));
    expect((await cli(["api", "--help"], {})).out[0]).toMatch(/^usage: arqon api <operation> \[--tenant T\] \[--data JSON\] \[--query k=v \.\.\.\]\n/);
  });

  it("api - publish, history, stateSet and stateGet with the operator key, an admin token and a server token; a ws subscriber gets the message", async () => {
    const p = await principals();
    const bob = await p.gw.client({ sub: "bob" });
    await bob.subscribe("lobby");
    let offset = 0;
    for (const [who, env] of [
      ["operator", p.operator],
      ["root", p.admin],
      ["backend", p.server],
    ] as const) {
      const ack = await answer<{ id: string; offset: number }>(["api", "publish", "--tenant", "acme", "--data", JSON.stringify({ room: "lobby", payload: { by: who } })], env);
      expect(ack).toMatchObject({ room: "lobby", offset: ++offset, duplicate: false });
      const msg = await bob.next("message", "lobby");
      expect(msg).toMatchObject({ id: ack.id, sender: who });
    }
    // A token's tenant is the default one.
    const page = await answer<{ messages: Array<{ offset: number; payload: unknown }> }>(["api", "history", "--query", "room=lobby", "--query", "reverse=true", "--query", "limit=2"], p.server);
    expect(page.messages.map((m) => [m.offset, m.payload])).toEqual([
      [3, { by: "backend" }],
      [2, { by: "root" }],
    ]);
    expect(await answer(["api", "stateSet", "--tenant", "acme", "--query", "room=doc", "--query", "key=title", "--data", '{"value":"Draft","expectedVersion":0}'], p.admin)).toEqual({ key: "title", version: 1 });
    const conflict = await cli(["api", "stateSet", "--query", "room=doc", "--query", "key=title", "--data", '{"value":"Lost","expectedVersion":0}'], p.admin);
    expect(conflict).toMatchObject({ code: 1, out: [] });
    expect(conflict.err[0]).toMatch(new RegExp(`^arqon api: ${ErrorCode.STATE_CONFLICT}: `));
    expect(await answer(["api", "stateGet", "--tenant", "acme", "--query", "room=doc"], p.operator)).toMatchObject({ entries: [{ key: "title", value: "Draft", version: 1 }] });
  });

  it("api - tenant records are the operator's: listTenants works with the key, a tenant admin gets 403; the other tenant's admin 403s everywhere", async () => {
    const p = await principals();
    expect(await answer(["api", "createTenant", "--data", '{"name":"acme","limits":{"maxConnections":5}}'], p.operator)).toMatchObject({ name: "acme", status: "active" });
    expect(await answer(["api", "listTenants"], p.operator)).toMatchObject({ mode: "open", tenants: [{ name: "acme" }] });
    expect(await answer(["api", "showTenant", "--tenant", "acme"], p.admin)).toMatchObject({ name: "acme", limits: { maxConnections: 5 } });
    const refused = await cli(["api", "listTenants"], p.admin);
    expect(refused).toEqual({ code: 1, out: [], err: [`arqon api: ${ErrorCode.FORBIDDEN}: this route needs an operator key`] });
    const other = await cli(["api", "publish", "--tenant", "acme", "--data", '{"room":"lobby","payload":1}'], p.otherAdmin);
    expect(other).toEqual({ code: 1, out: [], err: [`arqon api: ${ErrorCode.FORBIDDEN}: a token of tenant "beta" cannot act on tenant "acme"`] });
    const user = await cli(["api", "rooms", "--tenant", "acme"], p.user);
    expect(user).toEqual({ code: 1, out: [], err: [`arqon api: ${ErrorCode.FORBIDDEN}: this route needs a token with role "admin" or "server"`] });
    const bad = await cli(["api", "history", "--tenant", "acme", "--query", "room=lobby", "--query", "limit=0"], p.operator);
    expect(bad).toEqual({ code: 1, out: [], err: [`arqon api: ${ErrorCode.VALIDATION_ERROR}: limit must be a whole number from 1 to 1000`] });
  });

  it("api - usage errors exit 2 before any request", async () => {
    const env = { ARQON_URL: "http://127.0.0.1:9", ARQON_OPERATOR_KEY: KEY, ARQON_DATA_DIR: EMPTY_DATA_DIR };
    expect(await cli(["api"], env)).toEqual({ code: 2, out: [], err: ["arqon api: name an operation (arqon api --list prints them)"] });
    expect(await cli(["api", "nope"], env)).toEqual({ code: 2, out: [], err: ['arqon api: unknown operation "nope" (arqon api --list prints them)'] });
    expect(await cli(["api", "history", "--tenant", "acme"], env)).toEqual({ code: 2, out: [], err: ["arqon api: history needs --query room=... (GET /api/v1/tenants/:tenant/rooms/:room/history)"] });
    expect(await cli(["api", "rooms"], env)).toEqual({ code: 2, out: [], err: ["arqon api: --tenant is required (see arqon api --help)"] });
    expect(await cli(["api", "publish", "--tenant", "acme", "--data", "{oops"], env)).toMatchObject({ code: 2, err: [expect.stringMatching(/^arqon api: --data is not JSON: /)] });
    expect(await cli(["api", "rooms", "--tenant", "acme", "--data", "{}"], env)).toMatchObject({ code: 2, err: ["arqon api: rooms (GET /api/v1/tenants/:tenant/rooms) takes no --data"] });
    expect(await cli(["api", "listTenants", "--tenant", "acme"], env)).toMatchObject({ code: 2, err: ["arqon api: listTenants (/api/v1/tenants) names no tenant"] });
    expect(await cli(["api", "rooms", "--tenant", "acme", "--query", "oops"], env)).toMatchObject({ code: 2, err: ['arqon api: --query: "oops" is not k=v'] });
    const unreachable = await cli(["api", "rooms", "--tenant", "acme"], env);
    expect(unreachable.code).toBe(1);
    expect(unreachable.err[0]).toMatch(/^arqon api: cannot reach http:\/\/127\.0\.0\.1:9: /);
  });
});

describe("cli - arqon history, presence, rooms", () => {
  it("history - a table of the room's messages, ranges, reverse and limit; --json the server's answer", async () => {
    const p = await principals();
    for (let i = 1; i <= 4; i++) await answer(["api", "publish", "--tenant", "acme", "--data", JSON.stringify({ room: "log", payload: { i } })], p.operator);
    for (const env of [p.operator, p.admin, p.server]) {
      const r = await cli(["history", "log", "--tenant", "acme"], env);
      expect(r.code).toBe(0);
      expect(r.out[0]).toMatch(/^OFFSET\s+TIME\s+SENDER\s+PAYLOAD$/);
      expect(r.out.slice(1).map((l) => l.split(/\s+/).filter((_c, i) => i !== 1))).toEqual([1, 2, 3, 4].map((i) => [String(i), "operator", `{"i":${i}}`]));
    }
    const page = await answer<{ messages: Array<{ offset: number }>; position: { offset: number } }>(["history", "log", "--from-offset", "2", "--limit", "2", "--json"], p.server);
    expect([page.messages.map((m) => m.offset), page.position.offset]).toEqual([[2, 3], 4]);
    const back = await answer<{ messages: Array<{ offset: number }> }>(["history", "log", "--tenant", "acme", "--reverse", "--to-offset", "3", "--json"], p.admin);
    expect(back.messages.map((m) => m.offset)).toEqual([3, 2, 1]);
    expect((await cli(["history", "empty", "--tenant", "acme"], p.operator)).out).toEqual(["no messages in room empty of tenant acme (position 0)"]);
    const other = await cli(["history", "log", "--tenant", "acme"], p.otherAdmin);
    expect(other).toEqual({ code: 1, out: [], err: [`arqon history: ${ErrorCode.FORBIDDEN}: a token of tenant "beta" cannot act on tenant "acme"`] });
    const user = await cli(["history", "log"], p.user);
    expect(user).toEqual({ code: 1, out: [], err: [`arqon history: ${ErrorCode.FORBIDDEN}: this route needs a token with role "admin" or "server"`] });
    expect(await cli(["history", "log", "--limit", "ten"], p.operator)).toEqual({ code: 2, out: [], err: ['arqon history: --limit: "ten" is not a whole number'] });
    expect(await cli(["history", "log"], p.operator)).toEqual({ code: 2, out: [], err: ["arqon history: --tenant is required (see arqon history --help)"] });
    expect((await cli(["history", "--help"], {})).out[0]).toMatch(/^usage: arqon history <room>/);
  });

  it("presence - members and --stats of a room with real WebSocket clients", async () => {
    const p = await principals();
    const a = await p.gw.client({ sub: "alice" });
    const b = await p.gw.client({ sub: "bob" });
    const a2 = await p.gw.client({ sub: "alice" });
    for (const c of [a, b, a2]) await c.subscribe("lobby");
    for (const env of [p.operator, p.admin, p.server]) {
      const r = await cli(["presence", "lobby", "--tenant", "acme"], env);
      expect(r.code).toBe(0);
      expect(r.out[0]).toMatch(/^CLIENT\s+USER\s+SINCE\s+INFO$/);
      expect(r.out.slice(1).map((l) => l.split(/\s+/)[1]).sort()).toEqual(["alice", "alice", "bob"]);
      expect(await cli(["presence", "lobby", "--tenant", "acme", "--stats"], env)).toEqual({ code: 0, out: ["room lobby of tenant acme: 3 connection(s), 2 user(s)"], err: [] });
    }
    expect(await answer(["presence", "lobby", "--stats", "--json"], p.server)).toEqual({ clients: 3, users: 2 });
    expect((await cli(["presence", "empty", "--tenant", "acme"], p.operator)).out).toEqual(["nobody is present in room empty of tenant acme"]);
    const other = await cli(["presence", "lobby", "--tenant", "acme", "--stats"], p.otherAdmin);
    expect(other).toEqual({ code: 1, out: [], err: [`arqon presence: ${ErrorCode.FORBIDDEN}: a token of tenant "beta" cannot act on tenant "acme"`] });
    expect(await cli(["presence"], p.operator)).toEqual({ code: 2, out: [], err: ["arqon presence: name a room (see arqon presence --help)"] });
  });

  it("rooms - the tenant's live rooms with --prefix and --limit, nothing of another tenant", async () => {
    const p = await principals();
    const a = await p.gw.client({ sub: "alice" });
    await a.subscribe("team/eng");
    await a.subscribe("team/ops");
    await a.subscribe("lobby");
    const beta = await p.gw.client({ sub: "eve", tenant: "beta" });
    await beta.subscribe("secret");
    for (const env of [p.operator, p.admin, p.server]) {
      const r = await cli(["rooms", "--tenant", "acme"], env);
      expect(r.code).toBe(0);
      expect(r.out.map((l) => l.split(/\s+/))).toEqual([
        ["ROOM", "SUBSCRIBERS", "NODES"],
        ["lobby", "1", "1"],
        ["team/eng", "1", "1"],
        ["team/ops", "1", "1"],
      ]);
    }
    const page = (await answer(["rooms", "--prefix", "team/", "--limit", "1", "--json"], p.server)) as { rooms: unknown[]; next: string };
    expect(page).toEqual({ rooms: [{ room: "team/eng", subscribers: 1, nodes: 1 }], next: expect.any(String) });
    const paged = await cli(["rooms", "--tenant", "acme", "--prefix", "team/", "--limit", "1"], p.operator);
    expect(paged.out.at(-1)).toBe(`more: --cursor ${page.next}`);
    const rest = await cli(["rooms", "--tenant", "acme", "--prefix", "team/", "--cursor", page.next], p.operator);
    expect(rest.out.map((l) => l.split(/\s+/))).toEqual([
      ["ROOM", "SUBSCRIBERS", "NODES"],
      ["team/ops", "1", "1"],
    ]);
    expect((await cli(["rooms", "--tenant", "acme", "--prefix", "zzz"], p.operator)).out).toEqual(["no rooms of tenant acme live on any node"]);
    const other = await cli(["rooms", "--tenant", "acme"], p.otherAdmin);
    expect(other).toEqual({ code: 1, out: [], err: [`arqon rooms: ${ErrorCode.FORBIDDEN}: a token of tenant "beta" cannot act on tenant "acme"`] });
    const anonymous = { ARQON_URL: p.gw.httpUrl, ARQON_DATA_DIR: EMPTY_DATA_DIR };
    for (const verb of [["rooms"], ["history", "log"], ["presence", "lobby"], ["api", "rooms"]]) {
      const r = await cli([...verb, "--tenant", "acme"], anonymous);
      expect(r.code).toBe(1);
      expect(r.err[0]).toBe(`arqon ${verb[0]}: ${ErrorCode.AUTH_MISSING}: an operator key or a bearer token is required`);
      expect(r.err[1]).toMatch(/^hint: no credential was sent/);
    }
    expect(await cli(["rooms", "extra"], p.operator)).toEqual({ code: 2, out: [], err: ['arqon rooms: unexpected argument "extra" (see arqon rooms --help)'] });
  });
});
