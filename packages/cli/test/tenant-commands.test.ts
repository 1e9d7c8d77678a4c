import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "@arqon/server/testing";
import { run } from "../src/index.js";

const KEY = "test-operator-key-0123456789abcdef";
const tmp = mkdtempSync(path.join(tmpdir(), "arqon-cli-tenant-"));
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

/** Runs the CLI with only `env` as its environment. */
async function cli(argv: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (l) => out.push(l), err: (l) => err.push(l) }, { env, cwd: tmp });
  return { code, out, err };
}

/** The JSON a `--json` run printed, asserting it succeeded. */
async function json<T = Record<string, unknown>>(argv: string[], env: NodeJS.ProcessEnv): Promise<T> {
  const r = await cli([...argv, "--json"], env);
  expect(r, r.err.join("\n")).toMatchObject({ code: 0, err: [] });
  return JSON.parse(r.out[0]!) as T;
}

async function operatorGateway(): Promise<{ gw: TestGateway; env: NodeJS.ProcessEnv }> {
  gw = await startGateway({ operatorKeys: [KEY] });
  return { gw, env: { ARQON_URL: gw.httpUrl, ARQON_OPERATOR_KEY: KEY, ARQON_DATA_DIR: EMPTY_DATA_DIR } };
}

describe("cli - tenant commands against a real gateway", () => {
  it("tenant - create, list, show, set, disable, enable and delete round trip", async () => {
    const { gw, env } = await operatorGateway();

    const created = await cli(["tenant", "create", "acme", "--max-connections", "50", "--description", "Acme Inc"], env);
    expect(created).toEqual({ code: 0, out: ["created tenant acme (active; limits: max-connections=50)"], err: [] });
    const again = await cli(["tenant", "create", "acme"], env);
    expect(again).toEqual({ code: 1, out: [], err: ['arqon tenant: CONFLICT: tenant "acme" exists'] });

    const list = await cli(["tenant", "list"], env);
    expect(list.code).toBe(0);
    expect(list.out[0]).toMatch(/^NAME\s+STATUS\s+CREATED\s+LIMITS$/);
    expect(list.out[1]).toMatch(/^acme\s+active\s+\d{4}-\d\d-\d\dT[\d:]+Z\s+max-connections=50$/);
    expect(list.out[2]).toBe("tenancy mode: open");
    expect(await json(["tenant", "list"], env)).toMatchObject({ mode: "open", tenants: [{ name: "acme", status: "active", limits: { maxConnections: 50 } }] });

    const show = await cli(["tenant", "show", "acme"], env);
    expect(show.code).toBe(0);
    expect(show.out).toEqual(expect.arrayContaining(["name: acme", "status: active", "description: Acme Inc", "connections here: 0", "revocations: 0"]));
    expect(show.out).toContainEqual(expect.stringMatching(/^ {2}max-connections: +50 \*$/));
    expect(show.out).toContainEqual(expect.stringMatching(/^ {2}max-state-bytes: +4MiB$/));

    expect((await cli(["tenant", "set", "acme", "--unset", "max-connections", "--publish-rate", "20/s"], env)).code).toBe(0);
    const afterSet = await json<{ record: { limits: Record<string, number> }; limits: Record<string, number> }>(["tenant", "show", "acme"], env);
    expect(afterSet.record.limits).toEqual({ publishRatePerSecond: 20 });
    expect(afterSet.limits).toMatchObject({ publishRatePerSecond: 20, publishBurst: 40, maxConnections: 100_000 });

    const member = await gw.client({ tenant: "acme", sub: "carol" });
    const disabled = await cli(["tenant", "disable", "acme"], env);
    expect(disabled.code).toBe(0);
    expect(disabled.out[0]).toMatch(/^disabled tenant acme: 1 connection\(s\) closed/);
    expect(await member.closed).toEqual({ code: 4503, reason: "tenant disabled" });
    const refused = await gw.upgrade({ headers: { authorization: `Bearer ${await gw.token({ tenant: "acme" })}` } });
    expect([refused.status, refused.json?.error?.code]).toEqual([403, "ARQ_TENANT_DISABLED"]);
    expect(await json(["tenant", "show", "acme"], env)).toMatchObject({ status: "disabled" });

    expect(await cli(["tenant", "enable", "acme"], env)).toEqual({ code: 0, out: ["enabled tenant acme"], err: [] });
    await (await gw.client({ tenant: "acme" })).close();

    const deleted = await cli(["tenant", "delete", "acme", "--yes"], env);
    expect(deleted).toMatchObject({ code: 0, err: [] });
    expect(deleted.out[0]).toMatch(/^deleted tenant acme: history of \d+ room\(s\), state of \d+ room\(s\), \d+ store key\(s\) removed$/);
    expect(await json(["tenant", "list"], env)).toEqual({ mode: "open", tenants: [] });
    expect(await json(["tenant", "show", "acme"], env)).toMatchObject({ name: "acme", status: "unregistered" });
  });

  it("tenant - size, duration and rate flags reach the server as whole numbers", async () => {
    const { env } = await operatorGateway();
    const r = await cli(
      [
        "tenant", "create", "units",
        "--max-message-bytes", "64KiB",
        "--history-max-bytes", "2MB",
        "--history-retention", "7d",
        "--wasm-budget", "250ms",
        "--wasm-max-memory", "8MiB",
        "--publish-rate", "50/s",
        "--cron-rate", "5",
        "--max-store-bytes", "1GiB",
      ],
      env,
    );
    expect(r).toMatchObject({ code: 0, err: [] });
    const view = await json<{ record: { limits: Record<string, number> } }>(["tenant", "show", "units"], env);
    expect(view.record.limits).toEqual({
      maxMessageBytes: 65_536,
      historyMaxBytes: 2_000_000,
      historyRetentionMs: 7 * 86_400_000,
      wasmBudgetMs: 250,
      wasmMaxMemoryBytes: 8 * 1024 * 1024,
      publishRatePerSecond: 50,
      cronRatePerSecond: 5,
      maxStoreBytes: 1024 ** 3,
    });
    expect((await cli(["tenant", "set", "units", "--history-retention", "90m"], env)).code).toBe(0);
    const shown = await cli(["tenant", "show", "units"], env);
    expect(shown.out).toContainEqual(expect.stringMatching(/^ {2}history-retention: +90m \*$/));
    expect(shown.out).toContainEqual(expect.stringMatching(/^ {2}max-message-bytes: +64KiB \*$/));
  });

  it("tenant - malformed flags are exit 2 naming the flag, and nothing is sent", async () => {
    const { env } = await operatorGateway();
    const cases: Array<[string[], RegExp]> = [
      [["tenant", "create", "bad", "--max-message-bytes", "12XB"], /^arqon tenant: --max-message-bytes: "12XB" is not a size/],
      [["tenant", "create", "bad", "--history-retention", "10"], /^arqon tenant: --history-retention: "10" is not a duration/],
      [["tenant", "create", "bad", "--publish-rate", "5/m"], /^arqon tenant: --publish-rate: "5\/m" is not a rate/],
      [["tenant", "create", "bad", "--max-rooms=-1"], /^arqon tenant: --max-rooms: "-1" is not a whole number/],
      [["tenant", "create", "bad", "--max-rooms", "1.5"], /^arqon tenant: --max-rooms: "1.5" is not a whole number/],
      [["tenant", "create", "bad", "--max-message-bytes", "0.5B"], /^arqon tenant: --max-message-bytes: "0.5B" is not a size/],
      [["tenant", "create", "bad", "--max-connectionz", "1"], /^arqon tenant: Unknown option '--max-connectionz'/],
      [["tenant", "create", "bad", "--unset", "max-rooms"], /^arqon tenant: --unset is not an option of tenant create$/],
      [["tenant", "set", "bad", "--unset", "max-roomz"], /^arqon tenant: --unset: unknown limit "max-roomz"/],
      [["tenant", "set", "bad", "--max-rooms", "5", "--unset", "max-rooms"], /^arqon tenant: --max-rooms is both set and unset$/],
      [["tenant", "set", "bad"], /^arqon tenant: tenant set needs a limit flag/],
      [["tenant", "show"], /^arqon tenant: tenant show needs a tenant name/],
      [["tenant", "frobnicate", "bad"], /^arqon tenant: unknown verb "frobnicate"/],
      [["revoke", "--tenant", "bad", "--user", "u", "--before", "yesterday"], /^arqon revoke: --before: "yesterday" is not a time/],
      [["revoke", "--tenant", "bad", "--user", "u", "--ttl", "1w"], /^arqon revoke: --ttl: "1w" is not a duration/],
      [["revoke", "--tenant", "bad"], /^arqon revoke: say which tokens/],
      [["kick", "--tenant", "bad"], /^arqon kick: give exactly one of --user U, --client C or --all$/],
      [["kick", "--tenant", "bad", "--user", "a", "--client", "c"], /^arqon kick: give exactly one of/],
      [["kick", "--user", "a"], /^arqon kick: --tenant is required$/],
      [["audit", "--limit", "ten"], /^arqon audit: --limit: "ten" is not a whole number/],
    ];
    for (const [argv, message] of cases) {
      const r = await cli(argv, env);
      expect({ argv, code: r.code, out: r.out }).toEqual({ argv, code: 2, out: [] });
      expect(r.err[0], argv.join(" ")).toMatch(message);
    }
    expect(await json(["tenant", "list"], env)).toEqual({ mode: "open", tenants: [] });
    expect(await json(["audit"], env)).toEqual({ records: [] });
    expect(await json(["audit", "--tenant", "bad"], env)).toEqual({ records: [] });
  });

  it("tenant delete - without --yes is exit 2, explains that all data goes, and deletes nothing", async () => {
    const { env } = await operatorGateway();
    expect((await cli(["tenant", "create", "keep"], env)).code).toBe(0);
    const r = await cli(["tenant", "delete", "keep"], env);
    expect(r.code).toBe(2);
    expect(r.err).toEqual([expect.stringMatching(/^arqon tenant: deleting tenant "keep" removes all its data .* run again with --yes to confirm$/)]);
    expect(await json(["tenant", "show", "keep"], env)).toMatchObject({ status: "active", record: { name: "keep" } });
    const trail = await json<{ records: Array<{ action: string }> }>(["audit", "--tenant", "keep"], env);
    expect(trail.records.map((x) => x.action)).toEqual(["tenant.create"]);
  });

  it("kick - closes exactly the chosen user's connections of the tenant with 4504", async () => {
    const { gw, env } = await operatorGateway();
    const alice1 = await gw.client({ tenant: "acme", sub: "alice" });
    const alice2 = await gw.client({ tenant: "acme", sub: "alice" });
    const bob = await gw.client({ tenant: "acme", sub: "bob" });
    const otherAlice = await gw.client({ tenant: "globex", sub: "alice" });

    const r = await cli(["kick", "--tenant", "acme", "--user", "alice"], env);
    expect(r).toMatchObject({ code: 0, err: [] });
    expect(r.out[0]).toMatch(/^kicked user alice of tenant acme: 2 connection\(s\) closed/);
    expect(await alice1.closed).toEqual({ code: 4504, reason: "kicked" });
    expect(await alice2.closed).toEqual({ code: 4504, reason: "kicked" });
    // Both survivors still answer on their connection.
    expect((await bob.subscribe("lobby")).type).not.toBe("error");
    expect((await otherAlice.subscribe("lobby")).type).not.toBe("error");

    // Client ids may start with "-": the = form keeps parseArgs from reading one as a flag.
    expect(await json(["kick", "--tenant", "acme", `--client=${bob.clientId}`], env)).toEqual({ closedHere: 1 });
    expect((await bob.closed).code).toBe(4504);
    expect(otherAlice.ws.readyState).toBe(otherAlice.ws.OPEN);
  });

  it("revoke - the same token's next upgrade answers 401; --list shows the rule and --lift removes it", async () => {
    const { gw, env } = await operatorGateway();
    const mallory = await gw.token({ tenant: "acme", sub: "mallory" });
    const trent = await gw.token({ tenant: "acme", sub: "trent" });
    const auth = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
    expect((await gw.upgrade(auth(mallory))).status).toBe(101);
    const live = await gw.client({ token: mallory });

    const r = await json<{ rule: { id: string; user: string; createdAt: number; expiresAt: number }; closedHere: number }>(
      ["revoke", "--tenant", "acme", "--user", "mallory", "--ttl", "2h"],
      env,
    );
    expect(r.rule.user).toBe("mallory");
    expect(r.rule.expiresAt - r.rule.createdAt).toBe(2 * 3_600_000);
    expect(r.closedHere).toBe(1);
    expect((await live.closed).code).toBe(4500);

    const refused = await gw.upgrade(auth(mallory));
    expect([refused.status, refused.json?.error?.code]).toEqual([401, "ARQ_AUTH_REVOKED"]);
    expect((await gw.upgrade(auth(trent))).status).toBe(101);

    const listed = await cli(["revoke", "--tenant", "acme", "--list"], env);
    expect(listed.code).toBe(0);
    expect(listed.out[0]).toMatch(/^ID\s+USER\s+JTI\s+ISSUED BEFORE\s+EXPIRES\s+BY$/);
    expect(listed.out[1]).toMatch(new RegExp(`^${r.rule.id}\\s+mallory\\s+\\*\\s+\\d{4}-`));

    expect(await cli(["revoke", "--tenant", "acme", `--lift=${r.rule.id}`], env)).toEqual({ code: 0, out: [`lifted revocation ${r.rule.id} of tenant acme`], err: [] });
    expect((await gw.upgrade(auth(mallory))).status).toBe(101);
    const gone = await cli(["revoke", "--tenant", "acme", `--lift=${r.rule.id}`], env);
    expect(gone).toEqual({ code: 1, out: [], err: [`arqon revoke: NOT_FOUND: no revocation "${r.rule.id}" in tenant "acme"`] });

    // --before as ISO 8601: a token issued before that time is refused, one issued after is not.
    const before = await json<{ rule: { before: number } }>(["revoke", "--tenant", "acme", "--before", "2000-01-01T00:00:00Z"], env);
    expect(before.rule.before).toBe(Date.parse("2000-01-01T00:00:00Z"));
    expect((await gw.upgrade(auth(trent))).status).toBe(101);
  });

  it("audit - lists the tenant's actions newest first, and the server trail without --tenant", async () => {
    const { gw, env } = await operatorGateway();
    await gw.client({ tenant: "acme", sub: "alice" });
    for (const argv of [["tenant", "create", "acme"], ["kick", "--tenant", "acme", "--user", "alice"], ["tenant", "disable", "acme"], ["tenant", "enable", "acme"]]) {
      expect((await cli(argv, env)).code).toBe(0);
    }
    const trail = await json<{ records: Array<{ action: string; result: string; actor: { kind: string }; offset: number }> }>(["audit", "--tenant", "acme"], env);
    expect(trail.records.map((x) => x.action)).toEqual(["tenant.enable", "tenant.disable", "tenant.kick", "tenant.create"]);
    expect(trail.records.every((x) => x.result === "ok" && x.actor.kind === "operator")).toBe(true);

    const human = await cli(["audit", "--tenant", "acme", "--limit", "2"], env);
    expect(human.code).toBe(0);
    expect(human.out[0]).toMatch(/^OFFSET\s+TIME\s+ACTOR\s+ACTION\s+TARGET\s+RESULT\s+DETAIL$/);
    expect(human.out.slice(1)).toEqual([expect.stringMatching(/^4\s.*operator key:[0-9a-f]{8}\s+tenant\.enable\s+acme\s+ok/), expect.stringMatching(/^3\s.*tenant\.disable\s+acme\s+ok\s+\{"closedHere":0\}$/)]);
    expect(human.err).toEqual(["more: arqon audit --tenant acme --limit 2 --before 3"]);
    const older = await json<{ records: Array<{ action: string }> }>(["audit", "--tenant", "acme", "--before", "3"], env);
    expect(older.records.map((x) => x.action)).toEqual(["tenant.kick", "tenant.create"]);

    expect((await cli(["tenant", "delete", "acme", "--yes"], env)).code).toBe(0);
    const server = await json<{ records: Array<{ action: string; target: string }> }>(["audit"], env);
    expect(server.records[0]).toMatchObject({ action: "tenant.delete", target: "acme" });
  });

  it("tenant admin token - may show and kick in its own tenant, gets ARQ_FORBIDDEN elsewhere and for create", async () => {
    const { gw } = await operatorGateway();
    const admin = await gw.token({ tenant: "acme", sub: "ada", role: "admin" });
    const env = { ARQON_URL: gw.url, ARQON_TOKEN: admin, ARQON_DATA_DIR: EMPTY_DATA_DIR };
    const bob = await gw.client({ tenant: "acme", sub: "bob" });

    expect(await json(["tenant", "show", "acme"], env)).toMatchObject({ name: "acme", status: "unregistered", connectionsHere: 1 });
    expect(await json(["kick", "--tenant", "acme", "--user", "bob"], env)).toEqual({ closedHere: 1 });
    expect((await bob.closed).code).toBe(4504);
    expect((await cli(["revoke", "--tenant", "acme", "--list"], env)).code).toBe(0);
    expect((await cli(["audit", "--tenant", "acme"], env)).code).toBe(0);

    const forbidden = 'arqon tenant: ARQ_FORBIDDEN: a token of tenant "acme" cannot act on tenant "globex"';
    expect(await cli(["tenant", "show", "globex"], env)).toEqual({ code: 1, out: [], err: [forbidden] });
    expect(await cli(["kick", "--tenant", "globex", "--all"], env)).toEqual({ code: 1, out: [], err: [forbidden.replace("tenant:", "kick:")] });
    const create = await cli(["tenant", "create", "mine"], env);
    expect(create).toEqual({ code: 1, out: [], err: ["arqon tenant: ARQ_FORBIDDEN: this route needs an operator key"] });
    const flag = await cli(["tenant", "create", "mine", "--token", admin], { ARQON_URL: gw.url, ARQON_DATA_DIR: EMPTY_DATA_DIR });
    expect(flag).toEqual(create);
    expect(await cli(["audit"], env)).toEqual({ code: 2, out: [], err: ["arqon audit: the server's trail needs an operator key; with a tenant admin token, give --tenant"] });
  });

  it("credentials - a wrong operator key is exit 1 with ARQ_AUTH_INVALID and a hint, and no key is printed", async () => {
    const { gw } = await operatorGateway();
    const wrong = "wrong-operator-key-0123456789abcdef";
    const r = await cli(["tenant", "list"], { ARQON_URL: gw.url, ARQON_OPERATOR_KEY: wrong, ARQON_DATA_DIR: EMPTY_DATA_DIR });
    expect(r).toEqual({
      code: 1,
      out: [],
      err: ["arqon tenant: ARQ_AUTH_INVALID: unknown API key", "hint: the server refused the operator key from ARQON_OPERATOR_KEY: set ARQON_OPERATOR_KEY to one of its operator keys"],
    });
    const none = await cli(["tenant", "list"], { ARQON_URL: gw.url, ARQON_DATA_DIR: EMPTY_DATA_DIR });
    expect(none.code).toBe(1);
    expect(none.err[0]).toMatch(/^arqon tenant: ARQ_AUTH_MISSING: /);
    expect(none.err[1]).toMatch(/^hint: no credential was sent: set ARQON_OPERATOR_KEY/);
    const both = await cli(["tenant", "list", "--operator-key", KEY, "--token", "t"], { ARQON_URL: gw.url });
    expect(both).toEqual({ code: 2, out: [], err: ["arqon tenant: give --operator-key or --token, not both"] });
    expect(JSON.stringify([r, none, both])).not.toContain(KEY);
    expect(JSON.stringify(r)).not.toContain(wrong);
  });

  it("credentials - the dev operator key file is used when ARQON_OPERATOR_KEY is not set", async () => {
    const { gw } = await operatorGateway();
    const dataDir = path.join(tmp, "dev");
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(path.join(dataDir, "operator-key"), `${KEY}\n`, { mode: 0o600 });
    const env = { ARQON_URL: gw.httpUrl, ARQON_DATA_DIR: dataDir };
    expect(await json(["tenant", "list"], env)).toEqual({ mode: "open", tenants: [] });
    expect(await json(["status"], env)).toHaveProperty("connections");
    // ARQON_TOKEN does not shadow the dev key for operator-only verbs.
    const userToken = await gw.token({ tenant: "acme", sub: "u" });
    expect((await cli(["tenant", "create", "acme"], { ...env, ARQON_TOKEN: userToken })).code).toBe(0);
  });

  it("status - sends the operator key; without one, a 401 comes with a hint", async () => {
    const { gw, env } = await operatorGateway();
    const status = await json(["status", "--url", gw.url], env);
    expect(status).toHaveProperty("connections");
    const userToken = await gw.token({ tenant: "acme" });
    const asUser = await cli(["status", "--url", gw.url, "--token", userToken], {});
    expect(asUser).toEqual({ code: 1, out: [], err: ["arqon status: ARQ_FORBIDDEN: this route needs an operator key"] });
    const r = await cli(["status", "--url", gw.url], { ARQON_DATA_DIR: EMPTY_DATA_DIR });
    expect(r.code).toBe(1);
    expect(r.err).toEqual([
      "arqon status: ARQ_AUTH_MISSING: an operator key or a bearer token is required",
      expect.stringMatching(/^hint: no credential was sent: set ARQON_OPERATOR_KEY to an operator key of the server \(dev mode of `arqon serve` writes one to .*operator-key\)$/),
    ]);
  });

  it("status - a scrape token given with --token may read /status but not the tenant API", async () => {
    const scrape = "scrape-token-0123456789abcdefgh";
    gw = await startGateway({ operatorKeys: [KEY], scrapeTokens: [scrape] });
    const env = { ARQON_URL: gw.url, ARQON_DATA_DIR: EMPTY_DATA_DIR };
    expect(await json(["status", "--token", scrape], env)).toHaveProperty("connections");
    expect(await cli(["tenant", "list", "--token", scrape], env)).toEqual({ code: 1, out: [], err: ["arqon tenant: ARQ_FORBIDDEN: a scrape token may only read /status and /metrics"] });
  });

  it("operator commands - an unreachable server is exit 1 with a message", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const r = await cli(["tenant", "list"], { ARQON_URL: `http://127.0.0.1:${port}`, ARQON_OPERATOR_KEY: KEY });
    expect(r).toEqual({ code: 1, out: [], err: [`arqon tenant: cannot reach http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`] });
    expect((await cli(["tenant", "list"], { ARQON_URL: "ftp://x" })).code).toBe(2);
  });
});
