import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, jsonBytes, parseJsonBytes, roomKey, type Frame } from "@arqon/core";
import type { TestClient, TokenClaims } from "@arqon/server/testing";
import { connectClient } from "./helpers/clients.js";
import { serveInProcess, type ServedGateway } from "./helpers/serve.js";

const SECRET = "red-team-secret-red-team-secret-0123456";
const KEY = "red-team-operator-key-0123456789abcdef";

/**
 * The red-team findings of the tenancy issue, each tried again the way it was found: over real sockets against the
 * real `arqon serve` (CASIL on, the standard operators and the omega lane registered). Each must now be refused.
 */
describe("red team - what one tenant could do to the others, and to the disk", () => {
  let gw: ServedGateway;
  const clients: TestClient[] = [];
  const hostDir = mkdtempSync(path.join(tmpdir(), "arqon-red-team-"));

  beforeAll(async () => {
    gw = await serveInProcess(["--memory"], {
      ARQON_JWT_SECRET: SECRET,
      ARQON_OPERATOR_KEY: KEY,
      ARQON_OMEGA_ENABLED: "1",
      ARQON_CASIL_MODE: "enforce",
      // Reads whole payloads up to 1 MiB, so the quota checks below are reached (past the inspected prefix, enforce
      // mode would refuse them first with CASIL_POLICY_DEFAULT_BLOCK).
      ARQON_CASIL_MAX_INSPECT_BYTES: String(1024 * 1024),
      ARQON_LOG_LEVEL: "silent",
    });
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await gw?.stop();
    rmSync(hostDir, { recursive: true, force: true });
  });

  const connect = (claims: TokenClaims): Promise<TestClient> => connectClient(gw.url, SECRET, claims, (c) => clients.push(c));

  function command(c: TestClient, name: string, args?: unknown): Promise<Frame> {
    return c.request({ type: "command", command: name, ...(args === undefined ? {} : { args: jsonBytes(args) }) });
  }

  async function operator(method: string, pathName: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(`${gw.httpUrl}${pathName}`, {
      method,
      headers: { "x-api-key": KEY, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  const SECRET_PAYLOAD = { note: "key AKIAIOSFODNN7EXAMPLE" };

  it("casil - evil's admin cannot switch inspection off, rewrite another tenant's rules, or reach host paths; victim stays inspected", async () => {
    const evil = await connect({ sub: "root", tenant: "evil", role: "admin" });
    const victim = await connect({ sub: "v", tenant: "victim" });
    const off = await command(evil, "op.casil.reload", { policy: { enabled: false } });
    expect(off.error?.code).toBe(ErrorCode.AUTHORIZATION_ERROR);
    const other = await command(evil, "op.casil.reload", { policy: { tenants: { victim: { scope: { include: ["nothing"] } } } } });
    expect(other.error?.code).toBe(ErrorCode.AUTHORIZATION_ERROR);
    // A path that exists and one that does not get the same answer: the refusal comes before any file access.
    writeFileSync(path.join(hostDir, "exists.wasm"), "not wasm");
    const existing = await command(evil, "op.casil.reload", { policy: { wasm: [{ name: "x", module: path.join(hostDir, "exists.wasm") }] } });
    const missing = await command(evil, "op.casil.reload", { policy: { wasm: [{ name: "x", module: path.join(hostDir, "missing.wasm") }] } });
    expect(existing.error).toEqual(missing.error);
    expect(existing.error?.code).toBe(ErrorCode.AUTHORIZATION_ERROR);
    // The baseline (enforce, from the server's environment) still blocks the victim's secret, and evil's own.
    expect((await victim.publish("lobby", SECRET_PAYLOAD)).error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
    expect((await evil.publish("lobby", SECRET_PAYLOAD)).error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
    expect(gw.server.casil!.baseline.version).toBe(1);
  });

  it("casil - op.casil.get shows a tenant admin the baseline's public part and its own layer, never other tenants or private rules", async () => {
    await operator("PUT", "/api/v1/casil/baseline", { policy: { mode: "enforce", patterns: [{ name: "operator-private-rule", pattern: "zq-secret-word" }], tenants: { vip: { maxPayloadBytes: 4096 } } } });
    const vip = await connect({ sub: "root", tenant: "vip", role: "admin" });
    await command(vip, "op.casil.reload", { policy: { patterns: [{ name: "vip-private-rule", pattern: "vip-word" }] } });
    const evil = await connect({ sub: "root", tenant: "evil", role: "admin" });
    const seen = JSON.stringify(parseJsonBytes((await command(evil, "op.casil.get")).payload!));
    for (const hidden of ["operator-private-rule", "zq-secret-word", "vip", "vip-private-rule"]) expect(seen).not.toContain(hidden);
    expect(seen).toContain('"mode":"enforce"');
    // The operator's rule applies to evil all the same.
    expect((await evil.publish("lobby", { text: "zq-secret-word" })).error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_PATTERN);
  });

  it("store - a user whose caps do not name the store can neither read nor overwrite an admin's key", async () => {
    const admin = await connect({ sub: "root", tenant: "acme", role: "admin" });
    expect((await command(admin, "op.store.put", { key: "plan", value: "secret plan" })).status).toBe("ok");
    const user = await connect({ sub: "u", tenant: "acme", caps: { sub: ["public"] } });
    expect((await command(user, "op.store.get", { key: "plan" })).error?.code).toBe(ErrorCode.AUTHORIZATION_ERROR);
    expect((await command(user, "op.store.put", { key: "plan", value: "mine now" })).error?.code).toBe(ErrorCode.AUTHORIZATION_ERROR);
    expect((await command(user, "op.store.list")).error?.code).toBe(ErrorCode.AUTHORIZATION_ERROR);
    expect(parseJsonBytes((await command(admin, "op.store.get", { key: "plan" })).payload!)).toMatchObject({ value: "secret plan" });
  });

  it("webhooks - a member cannot list the tenant's hook URLs", async () => {
    const member = await connect({ sub: "m", tenant: "acme" });
    expect((await command(member, "op.webhook.list")).error?.code).toBe(ErrorCode.AUTHORIZATION_ERROR);
  });

  it("monitoring - /metrics and /status answer 401 without a credential; /health and /ready stay open", async () => {
    expect((await fetch(`${gw.httpUrl}/metrics`)).status).toBe(401);
    expect((await fetch(`${gw.httpUrl}/status`)).status).toBe(401);
    expect((await fetch(`${gw.httpUrl}/health`)).status).toBe(200);
    expect((await fetch(`${gw.httpUrl}/ready`)).status).toBe(200);
  });

  it("omega - event numbers count per tenant: one tenant's activity does not show in another's seq", async () => {
    const a = await connect({ sub: "root", tenant: "omega-a", role: "admin" });
    const b = await connect({ sub: "root", tenant: "omega-b", role: "admin" });
    for (const c of [a, b]) await command(c, "op.omega.register_substrate", { name: "s", kind: "k" });
    for (let i = 0; i < 5; i++) await command(a, "op.omega.emit_event", { substrate: "s", event: "tick" });
    const fromB = parseJsonBytes((await command(b, "op.omega.emit_event", { substrate: "s", event: "tick" })).payload!) as { seq: number };
    expect(fromB.seq).toBe(1);
  });

  it("quotas - with limits set, the disk-filling attempts are refused with ARQ_QUOTA_EXCEEDED / ARQ_PAYLOAD_TOO_LARGE and other tenants are unaffected", async () => {
    await operator("POST", "/api/v1/tenants", {
      name: "filler",
      limits: { maxRooms: 20, maxMessageBytes: 65536, maxStateBytes: 1024 * 1024, maxStoreKeys: 50, maxStoreBytes: 1024 * 1024, maxCronJobs: 10, cronRatePerSecond: 5 },
    });
    const user = await connect({ sub: "u", tenant: "filler", caps: {} });
    const admin = await connect({ sub: "root", tenant: "filler", role: "admin" });
    const big = "x".repeat(256 * 1024);
    // 40 x 256 KiB messages into 40 new rooms: refused by the message size.
    const bigAcks = await Promise.all(Array.from({ length: 40 }, (_, i) => admin.publish(`big-${i}`, big)));
    expect(bigAcks.every((f) => f.error?.code === ErrorCode.PAYLOAD_TOO_LARGE)).toBe(true);
    // Many new rooms from two sockets: at most 20 hold data.
    const second = await connect({ sub: "root", tenant: "filler", role: "admin" });
    const roomAcks = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? admin : second).publish(`room-${i}`, { i })));
    expect(roomAcks.filter((f) => f.type === "ack")).toHaveLength(20);
    expect(roomAcks.filter((f) => f.type !== "ack").every((f) => f.error?.code === ErrorCode.QUOTA_EXCEEDED)).toBe(true);
    // 300 x 16 KiB state keys in one room: stopped at 1 MiB.
    const value = jsonBytes("s".repeat(16 * 1024));
    let stateWritten = 0;
    for (let i = 0; i < 300; i++) {
      const r = await admin.request({ type: "state_set", room: "room-1", state: [{ key: `k${i}`, value }] });
      if (r.type !== "ack") {
        expect(r.error?.code).toBe(ErrorCode.QUOTA_EXCEEDED);
        break;
      }
      stateWritten++;
    }
    expect(stateWritten).toBeLessThan(64);
    // 100 x 60 KiB store keys from a user with empty caps: no store capability at all.
    expect((await command(user, "op.store.put", { key: "k", value: "v".repeat(60 * 1024) })).error?.code).toBe(ErrorCode.AUTHORIZATION_ERROR);
    // ... and an admin stops at the tenant's byte limit.
    let stored = 0;
    for (let i = 0; i < 100; i++) {
      const r = await command(admin, "op.store.put", { key: `k${i}`, value: "v".repeat(60 * 1024) });
      if (r.status !== "ok") {
        expect(r.error?.code).toBe(ErrorCode.QUOTA_EXCEEDED);
        break;
      }
      stored++;
    }
    expect(stored).toBe(17);
    // 20 cron schedules of 256 KiB every second: the payload is too large, and the summed rate stops at 5/s.
    expect((await command(admin, "op.cron.schedule", { name: "c0", room: "room-1", payload: big, everyMs: 1000 })).error?.code).toBe(ErrorCode.PAYLOAD_TOO_LARGE);
    let scheduled = 0;
    for (let i = 0; i < 20; i++) {
      const r = await command(admin, "op.cron.schedule", { name: `c${i}`, room: "room-1", payload: { i }, everyMs: 1000 });
      if (r.status !== "ok") {
        expect(r.error?.code).toBe(ErrorCode.QUOTA_EXCEEDED);
        break;
      }
      scheduled++;
    }
    expect(scheduled).toBe(5);
    for (let i = 0; i < scheduled; i++) await command(admin, "op.cron.cancel", { name: `c${i}` });
    // Another tenant is not held back by any of it.
    const neighbour = await connect({ sub: "n", tenant: "neighbour" });
    expect((await neighbour.publish("room-x", "x".repeat(200 * 1024))).type).toBe("ack");
    expect((await gw.server.history.position(roomKey("filler", "big-0"))).offset).toBe(0);
  });
});
