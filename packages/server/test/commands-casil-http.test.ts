import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket from "ws";
import { afterEach, describe, expect, it } from "vitest";
import { ArqonError, ErrorCode, jsonBytes, parseJsonBytes, utf8Decode, type Decision, type InspectionInput, type Inspector } from "@arqon/core";
import { createArqonServer } from "../src/index.js";
import { mintToken, payloadOf, startGateway, type TestGateway } from "../src/testing.js";
import { checkedFetch } from "./api-client.js";
import { pino } from "pino";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

/** Blocks any content containing "secret", redacts "password", fails on "explode"; records what it saw. */
function testInspector(seen: InspectionInput[]): Inspector {
  return {
    inspect(input): Decision {
      seen.push(input);
      const text = utf8Decode(input.payload);
      if (text.includes("explode")) throw new Error("inspector bug");
      if (text.includes("secret")) return { action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET, message: "looks like a secret" };
      if (text.includes("password")) return { action: "redact", payload: jsonBytes("[redacted]"), reasonCode: ErrorCode.CASIL_POLICY_REDACTED };
      return { action: "allow" };
    },
  };
}

describe("gateway commands", () => {
  it("commands - routed to handlers with ok responses and the documented error codes", async () => {
    gw = await startGateway();
    gw.server.registerCommand("op.echo.say", (ctx) => ({ sub: ctx.sub, tenant: ctx.tenant, args: ctx.args }));
    gw.server.registerCommand("op.admin.wipe", () => "wiped", { adminOnly: true });
    gw.server.registerCommand("op.check.input", () => {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, "n must be positive");
    });
    gw.server.registerCommand("op.buggy.run", () => {
      throw new Error("boom");
    });
    gw.server.registerCommand("op.later.run", () => "never");
    gw.server.commands.disable("op.later.run", "op.later is switched off");
    expect(() => gw!.server.registerCommand("op.echo.say", () => 1)).toThrow(/already registered/);
    const alice = await gw.client({ sub: "alice" });
    const ok = await alice.request({ type: "command", command: "op.echo.say", args: jsonBytes({ n: 1 }) });
    expect(ok).toMatchObject({ type: "response", status: "ok", command: "op.echo.say" });
    expect(payloadOf(ok)).toEqual({ sub: "alice", tenant: "acme", args: { n: 1 } });
    const codes = async (command: string) => (await alice.request({ type: "command", command })).error?.code;
    expect(await codes("op.nothing.here")).toBe(ErrorCode.NOT_FOUND);
    expect(await codes("op.admin.wipe")).toBe(ErrorCode.AUTHORIZATION_ERROR);
    expect(await codes("op.check.input")).toBe(ErrorCode.VALIDATION_ERROR);
    expect(await codes("op.buggy.run")).toBe(ErrorCode.INTERNAL_ERROR);
    expect(await codes("op.later.run")).toBe(ErrorCode.FEATURE_DISABLED);
    const admin = await gw.client({ sub: "root", role: "admin" });
    const wiped = await admin.request({ type: "command", command: "op.admin.wipe" });
    expect(wiped.status).toBe("ok");
    expect(payloadOf(wiped)).toBe("wiped");
  });
});

describe("gateway CASIL hook", () => {
  it("casil - blocks on every inbound path answer an error with the reason code; nothing is delivered or stored", async () => {
    const seen: InspectionInput[] = [];
    gw = await startGateway({ inspector: testInspector(seen) });
    let ran = 0;
    gw.server.registerCommand("op.note.add", () => ++ran);
    const alice = await gw.client({ sub: "alice" });
    const bob = await gw.client({ sub: "bob" });
    await bob.subscribe("lobby");
    const blocked = await alice.publish("lobby", { text: "my secret is 42" }, { requestId: "p1" });
    expect(blocked).toMatchObject({ type: "error", requestId: "p1", error: { code: ErrorCode.CASIL_POLICY_BLOCKED_SECRET, message: "looks like a secret" } });
    const pos = await gw.server.history.position((await import("@arqon/core")).roomKey("acme", "lobby"));
    expect(pos.offset).toBe(0);
    const presence = await alice.subscribe("other", { info: { info: jsonBytes({ bio: "secret" }) } });
    expect(presence.error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
    const state = await alice.request({ type: "state_set", room: "lobby", state: [{ key: "k", value: jsonBytes("secret") }] });
    expect(state.error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
    expect(await gw.server.state.get((await import("@arqon/core")).roomKey("acme", "lobby"))).toEqual([]);
    const command = await alice.request({ type: "command", command: "op.note.add", args: jsonBytes("secret") });
    expect(command).toMatchObject({ type: "error", error: { code: ErrorCode.CASIL_POLICY_BLOCKED_SECRET } });
    expect(ran).toBe(0);
    await expect(gw.server.publish("acme", "lobby", "server secret")).rejects.toMatchObject({ code: ErrorCode.CASIL_POLICY_BLOCKED_SECRET });
    const failed = await alice.publish("lobby", "explode");
    expect(failed.error?.code).toBe(ErrorCode.CASIL_INTERNAL_ERROR);
    const redacted = await alice.publish("lobby", "my password is hunter2");
    expect(redacted.type).toBe("ack");
    const msg = await bob.next("message");
    expect(payloadOf(msg)).toBe("[redacted]");
    expect(msg.inspection).toMatchObject({ decision: "redact", reasonCode: ErrorCode.CASIL_POLICY_REDACTED });
    expect(bob.frames.filter((f) => f.type === "message")).toHaveLength(1);
    expect(new Set(seen.map((s) => s.path))).toEqual(new Set(["publish", "presence", "state", "command", "server_publish"]));
    expect(seen.every((s) => s.tenant === "acme")).toBe(true);
  });
});

describe("gateway HTTP surface", () => {
  it("http - health, ready, version open; status and metrics labelled by tenant need the operator key or a scrape token", async () => {
    const operatorKey = "operator-key-for-the-http-surface-test";
    const scrapeToken = "scrape-token-for-the-http-surface-test";
    gw = await startGateway({ operatorKeys: [operatorKey], scrapeTokens: [scrapeToken] });
    const alice = await gw.client();
    await alice.subscribe("lobby");
    await alice.publish("lobby", "x", { echo: true });
    await alice.next("message");
    await alice.request({ type: "unsubscribe", room: "nope" });
    const get = async (path: string, headers: Record<string, string> = { authorization: `Bearer ${operatorKey}` }) => {
      const res = await checkedFetch(`${gw!.httpUrl}${path}`, { headers });
      return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
    };
    for (const path of ["/status", "/metrics"]) {
      const none = await get(path, {});
      expect([none.status, JSON.parse(none.text).error.code]).toEqual([401, ErrorCode.AUTH_MISSING]);
      const wrong = await get(path, { "x-api-key": "not-the-operator-key-at-all-nope" });
      expect([wrong.status, JSON.parse(wrong.text).error.code]).toEqual([401, ErrorCode.AUTH_INVALID]);
      const user = await get(path, { authorization: `Bearer ${await gw.token({ role: "admin" })}` });
      expect([user.status, JSON.parse(user.text).error.code]).toEqual([403, ErrorCode.FORBIDDEN]);
      expect((await get(path, { authorization: `Bearer ${scrapeToken}` })).status).toBe(200);
      expect((await get(path, { "x-api-key": operatorKey })).status).toBe(200);
    }
    expect(JSON.parse((await get("/health", {})).text)).toEqual({ status: "ok" });
    expect(JSON.parse((await get("/ready")).text)).toEqual({ ready: true });
    expect(JSON.parse((await get("/version")).text)).toMatchObject({ protocol: "1.0" });
    const status = JSON.parse((await get("/status")).text);
    expect(status).toMatchObject({ status: "ok", connections: 1, rooms: 1, tenants: 1, backends: { bus: "MemoryBus", history: "MemoryHistoryStore" } });
    expect(status.connectionsByTenant).toEqual({ acme: 1 });
    expect(status.uptimeMs).toBeGreaterThanOrEqual(0);
    const metrics = await get("/metrics");
    expect(metrics.type).toContain("text/plain");
    expect(metrics.text).toContain('arqon_connections{tenant="acme"} 1');
    expect(metrics.text).toMatch(/arqon_messages_in_total\{tenant="acme"\} [1-9]/);
    expect(metrics.text).toContain(`arqon_errors_total{tenant="acme",code="${ErrorCode.NOT_SUBSCRIBED}"} 1`);
    expect(metrics.text).toMatch(/arqon_fanout_seconds_count\{tenant="acme"\} [1-9]/);
    expect(metrics.text).toMatch(/arqon_messages_out_total\{tenant="acme"\} [1-9]/);
    expect(metrics.text).toMatch(/arqon_bytes_out_total\{tenant="acme"\} [1-9]/);
    const missing = await get("/nope");
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.text).error.code).toBe(ErrorCode.NOT_FOUND);
  });

  it("http - POST /api/publish needs an admin or server token and delivers into its tenant", async () => {
    gw = await startGateway();
    const bob = await gw.client({ sub: "bob" });
    await bob.subscribe("news");
    const post = (body: unknown, token?: string) =>
      checkedFetch(`${gw!.httpUrl}/api/publish`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    const noToken = await post({ room: "news", payload: 1 });
    expect(noToken.status).toBe(401);
    expect(noToken.headers.get("www-authenticate")).toMatch(/^Bearer/);
    const user = await post({ room: "news", payload: 1 }, await gw.token());
    expect(user.status).toBe(403);
    const admin = await gw.token({ sub: "ops", role: "admin" });
    expect((await post("{nope", admin)).status).toBe(400);
    expect((await post({ room: "news", payload: 1, tenant: "globex" }, admin)).status).toBe(403);
    const ok = await post({ room: "news", payload: { headline: "hi" }, headers: { "x-twist-id": "t1" } }, admin);
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { id: string; offset: number };
    expect(body.offset).toBe(1);
    const msg = await bob.next("message");
    expect(payloadOf(msg)).toEqual({ headline: "hi" });
    expect(msg).toMatchObject({ id: body.id, sender: "ops", headers: { "x-twist-id": "t1" } });
    const server = await post({ room: "news", payload: 2 }, await gw.token({ sub: "backend", role: "server" }));
    expect(server.status).toBe(200);
  });

  it("http - http.maxBodyBytes bounds POST /api/publish and the server API: 413 ARQ_PAYLOAD_TOO_LARGE over it", async () => {
    const key = "operator-key-of-the-body-limit-test-0123";
    gw = await startGateway({ operatorKeys: [key], http: { maxBodyBytes: 1024 } });
    const bob = await gw.client({ sub: "bob" });
    await bob.subscribe("news");
    const admin = await gw.token({ sub: "ops", role: "admin" });
    const post = (path: string, body: unknown, token: string) =>
      checkedFetch(`${gw!.httpUrl}${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
    const refused = async (res: Response) => [res.status, ((await res.json()) as { error: { code: string; message: string } }).error];

    expect(await refused(await post("/api/publish", { room: "news", payload: "x".repeat(2000) }, admin))).toEqual([
      413,
      { code: ErrorCode.PAYLOAD_TOO_LARGE, message: "request body larger than 1024 bytes" },
    ]);
    expect((await post("/api/publish", { room: "news", payload: "small" }, admin)).status).toBe(200);
    expect(payloadOf(await bob.next("message"))).toBe("small");

    expect(await refused(await post("/api/v1/tenants", { name: "acme", description: "d".repeat(2000) }, key))).toEqual([
      413,
      { code: ErrorCode.PAYLOAD_TOO_LARGE, message: "request body larger than 1024 bytes" },
    ]);
    expect((await post("/api/v1/tenants", { name: "acme" }, key)).status).toBe(201);

    expect(() => createArqonServer({ auth: { secret: "s".repeat(32) }, http: { maxBodyBytes: 0 }, logger: pino({ level: "silent" }) })).toThrow(
      expect.objectContaining({ code: ErrorCode.VALIDATION_ERROR }),
    );
  });

  it("embedding - attach() serves /ws on an existing server and leaves its routes alone", async () => {
    const secret = "embedding-secret-embedding-secret";
    const app: Server = createServer((req, res) => {
      res.end(`app:${req.url}`);
    });
    const arqon = createArqonServer({ auth: { secret }, logger: pino({ level: "silent" }), processMetrics: false });
    arqon.attach(app);
    await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
    const port = (app.address() as AddressInfo).port;
    try {
      expect(await (await fetch(`http://127.0.0.1:${port}/hello`)).text()).toBe("app:/hello");
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${await mintToken(secret)}` } });
      const first = await new Promise<string>((resolve, reject) => {
        ws.once("message", (d) => resolve(d.toString()));
        ws.once("error", reject);
      });
      expect(JSON.parse(first).type).toBe("welcome");
      const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
      await arqon.close();
      expect(await closed).toBe(1001);
    } finally {
      await new Promise((r) => app.close(r));
    }
  });

  it("server publish - in-process publish reaches subscribers; bytes go out as binary payloads", async () => {
    gw = await startGateway();
    const bob = await gw.client({ sub: "bob" });
    await bob.subscribe("feed");
    const r = await gw.server.publish("acme", "feed", { a: 1 });
    expect(r.offset).toBe(1);
    await gw.server.publish("acme", "feed", new Uint8Array([1, 2, 3]));
    const [m1, m2] = await bob.collect(2, (f) => f.type === "message");
    expect(payloadOf(m1!)).toEqual({ a: 1 });
    expect(m1!.sender).toBe("server");
    expect(m2!.payloadFormat).toBe("binary");
    expect([...m2!.payload!]).toEqual([1, 2, 3]);
    await expect(gw.server.publish("acme", "bad room!", 1)).rejects.toMatchObject({ code: ErrorCode.ROOM_INVALID });
    await expect(gw.server.publish("bad tenant!", "feed", 1)).rejects.toMatchObject({ code: ErrorCode.TENANT_INVALID });
    expect(parseJsonBytes(jsonBytes(1))).toBe(1);
  });
});
