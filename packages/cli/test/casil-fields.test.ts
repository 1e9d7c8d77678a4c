import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, jsonBytes, parseJsonBytes } from "@arqon/core";
import { mintToken, type TestClient, type TokenClaims } from "@arqon/server/testing";
import { connectClient } from "./helpers/clients.js";
import { serveInProcess, type ServedGateway } from "./helpers/serve.js";

const SECRET = "casil-fields-secret-casil-fields-0123456";
const KEY = "casil-fields-operator-key-0123456789abc";
const AWS_KEY = "AKIAIOSFODNN7EXAMPLE";

/**
 * Issue 21's CASIL red-team pass, tried again over real sockets against `arqon serve` in enforce mode: a secret moved
 * out of the payload (into a header, the room name, a state key, presence metadata, the HTTP publish's headers), hidden
 * behind 64 KiB of padding, or a pathological regex in a tenant's layer. Each path is tried on its own.
 */
describe("casil - content cannot be moved out of CASIL's reach", () => {
  let gw: ServedGateway;
  let receiver: Server;
  let receiverUrl: string;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    receiver = createServer((_req, res) => res.writeHead(204).end());
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    gw = await serveInProcess(["--memory", "--outbound-allow", "127.0.0.1", "--outbound-allow-http"], {
      ARQON_JWT_SECRET: SECRET,
      ARQON_OPERATOR_KEY: KEY,
      ARQON_CASIL_MODE: "enforce",
      ARQON_CASIL_BLOCK_ON_PROBABLE_SECRET: "true",
      ARQON_LOG_LEVEL: "silent",
    });
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await gw?.stop();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  const connect = (claims: TokenClaims): Promise<TestClient> => connectClient(gw.url, SECRET, claims, (c) => clients.push(c));
  const user = () => connect({ sub: "u", tenant: "acme", caps: { sub: ["**"], pub: ["**"], presence: ["**"] } });

  it("websocket publish - a secret in a header value or a header name is blocked; the room sees nothing", async () => {
    const [sender, watcher] = await Promise.all([user(), user()]);
    await watcher.subscribe("chat");
    const inValue = await sender.publish("chat", { text: "hi" }, { headers: { "x-note": `key ${AWS_KEY}` } });
    expect(inValue.error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
    expect(inValue.error?.message).toMatch(/header "x-note"/);
    const inName = await sender.publish("chat", { text: "hi" }, { headers: { [`x-${AWS_KEY.toLowerCase()}`]: "1", "x-api-key": "live-4f9a8b7c6d5e" } });
    expect(inName.error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
    const fine = await sender.publish("chat", { text: "hi" }, { headers: { "x-trace": "abc" } });
    expect(fine.type).toBe("ack");
    const got = await watcher.next("message", "chat");
    expect(parseJsonBytes(got.payload!)).toEqual({ text: "hi" });
    expect(got.id).toBe(fine.id);
  });

  it("room names - a secret as the room name is blocked on publish, state and presence", async () => {
    const c = await user();
    const room = `leak.${AWS_KEY}`;
    expect((await c.publish(room, { text: "hi" })).error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
    const state = await c.request({ type: "state_set", room, state: [{ key: "k", value: jsonBytes(1) }] });
    expect(state.error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
  });

  it("state keys and presence metadata - a secret in the key or in the member info is blocked", async () => {
    const c = await user();
    const state = await c.request({ type: "state_set", room: "board", state: [{ key: `k-${AWS_KEY}`, value: jsonBytes({ ok: true }) }] });
    expect(state.error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
    expect(state.error?.message).toMatch(/state key/);
    const ok = await c.request({ type: "state_set", room: "board", state: [{ key: "k", value: jsonBytes({ ok: true }) }] });
    expect(ok.type).toBe("ack");
    await c.subscribe("team");
    const presence = await c.request({ type: "presence_set", room: "team", info: { info: jsonBytes({ status: "away", token: AWS_KEY }) } });
    expect(presence.error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
    const onJoin = await c.request({ type: "subscribe", room: "team2", info: { info: jsonBytes({ note: `aws ${AWS_KEY}` }) } });
    expect(onJoin.error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
  });

  it("HTTP publish - headers of POST /api/publish are inspected like a socket's", async () => {
    const token = await mintToken(SECRET, { sub: "backend", tenant: "acme", role: "server" });
    const post = (body: unknown) =>
      fetch(`${gw.httpUrl}/api/publish`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    const blocked = await post({ room: "chat", payload: { text: "hi" }, headers: { "x-note": AWS_KEY } });
    expect(blocked.status).toBeGreaterThanOrEqual(400);
    expect(((await blocked.json()) as { error: { code: string } }).error.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
    const fine = await post({ room: "chat", payload: { text: "hi" }, headers: { "x-note": "plain" } });
    expect(fine.status).toBe(200);
  });

  it("server API - an embedding app's server.publish and an operator's publish are inspected the same way", async () => {
    const refusal = (p: Promise<unknown>) => p.then(() => undefined, (e: { code?: string }) => e.code);
    expect(await refusal(gw.server.publish("acme", "chat", { text: "hi" }, { headers: { "x-note": AWS_KEY } }))).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
    expect(await refusal(gw.server.publish("acme", `r.${AWS_KEY}`, { text: "hi" }))).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
    expect(await refusal(gw.server.publish("acme", "chat", { text: "hi" }, { path: "operator", headers: { "x-note": AWS_KEY } }))).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
    expect((await gw.server.publish("acme", "chat", { text: "hi" }, { headers: { "x-note": "plain" } })).offset).toBeGreaterThan(0);
  });

  it("padding - a secret after 64 KiB of padding is blocked in enforce (CASIL_POLICY_DEFAULT_BLOCK), and so is it over HTTP", async () => {
    const c = await user();
    const padded = { pad: "x".repeat(70 * 1024), key: AWS_KEY };
    const r = await c.publish("chat", padded);
    expect(r.error?.code).toBe(ErrorCode.CASIL_POLICY_DEFAULT_BLOCK);
    const token = await mintToken(SECRET, { sub: "backend", tenant: "acme", role: "server" });
    const res = await fetch(`${gw.httpUrl}/api/publish`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ room: "chat", payload: padded }) });
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(ErrorCode.CASIL_POLICY_DEFAULT_BLOCK);
  });

  it("trusted fields - op.webhook.register with the caller's own whsec_ secret is allowed in enforce; the secret elsewhere is not", async () => {
    const admin = await connect({ sub: "root", tenant: "acme", role: "admin" });
    const secret = "whsec_" + Buffer.from("0123456789abcdef0123456789abcdef").toString("base64");
    const ok = await admin.request({ type: "command", command: "op.webhook.register", args: jsonBytes({ name: "h1", room: "orders", url: receiverUrl, secret }) });
    expect(ok.status, JSON.stringify(ok.error)).toBe("ok");
    expect((parseJsonBytes(ok.payload!) as { secret: string }).secret).toBe(secret);
    // The same secret in an ordinary publish is content and is blocked.
    expect((await admin.publish("orders", { secret })).error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
    // Another field of the same command is still inspected.
    const leak = await admin.request({ type: "command", command: "op.webhook.register", args: jsonBytes({ name: `h-${AWS_KEY}`, room: "orders", url: receiverUrl, secret }) });
    expect(leak.error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
  });

  it("ReDoS - a tenant layer with ^(a+)+$ and its attack input does not stall /health or other tenants", async () => {
    const admin = await connect({ sub: "root", tenant: "evil", role: "admin" });
    const reload = await admin.request({
      type: "command",
      command: "op.casil.reload",
      args: jsonBytes({ policy: { mode: "enforce", patterns: [{ name: "evil", pattern: "^(a+)+$" }], redactionPatterns: ["(x+x+)+y"] } }),
    });
    expect(reload.status, JSON.stringify(reload.error)).toBe("ok");
    const attacker = await connect({ sub: "e", tenant: "evil", caps: { pub: ["**"] } });
    const victim = await user();
    const attack = "a".repeat(60_000) + "!";
    const healthTimes: number[] = [];
    const publishes = Promise.all(Array.from({ length: 20 }, () => attacker.publish("chat", attack)));
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      expect((await fetch(`${gw.httpUrl}/health`)).status).toBe(200);
      healthTimes.push(performance.now() - t0);
    }
    const acks = await publishes;
    // The linear-time engine answers: each publish is decided (allowed, the pattern does not match), none hangs.
    for (const a of acks) expect(a.type).toBe("ack");
    expect(Math.max(...healthTimes)).toBeLessThan(1000);
    const t0 = performance.now();
    expect((await victim.publish("chat", { text: "still here" })).type).toBe("ack");
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

