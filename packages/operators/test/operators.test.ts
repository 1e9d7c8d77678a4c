import { afterEach, describe, expect, it } from "vitest";
import { startGateway, payloadOf, type TestGateway, type TestClient } from "@arqon/server/testing";
import type { Frame } from "@arqon/core";
import { cronOperator, omegaOperator, registerStandardOperators, storeOperator, STANDARD_OPERATORS, type Operator } from "../src/index.js";

let gw: TestGateway | undefined;
let ops: Operator | undefined;
afterEach(async () => {
  await ops?.close();
  await gw?.close();
  ops = gw = undefined;
});

async function command(client: TestClient, command: string, args?: unknown): Promise<Frame> {
  const frame: Frame = { type: "command", command };
  if (args !== undefined) frame.args = new TextEncoder().encode(JSON.stringify(args));
  return client.request(frame);
}

describe("operators - op.store", () => {
  it("store - put, get, compare-and-set, list and delete, scoped by tenant", async () => {
    gw = await startGateway();
    ops = storeOperator(gw.server);
    const alice = await gw.client({ sub: "alice", tenant: "acme" });
    const eve = await gw.client({ sub: "eve", tenant: "evil" });

    const put = await command(alice, "op.store.put", { key: "profile:1", value: { name: "Ada" } });
    expect(put.status).toBe("ok");
    expect(payloadOf(put)).toEqual({ key: "profile:1", revision: 1 });

    const got = await command(alice, "op.store.get", { key: "profile:1" });
    expect(payloadOf(got)).toMatchObject({ key: "profile:1", value: { name: "Ada" }, revision: 1 });

    const stale = await command(alice, "op.store.put", { key: "profile:1", value: 2, ifRevision: 0 });
    expect(stale.status).toBe("error");
    expect(stale.error?.code).toBe("CONFLICT");
    const cas = await command(alice, "op.store.put", { key: "profile:1", value: 2, ifRevision: 1 });
    expect(payloadOf(cas)).toEqual({ key: "profile:1", revision: 2 });

    await command(alice, "op.store.put", { key: "profile:0", value: 0 });
    const list = await command(alice, "op.store.list", { prefix: "profile:" });
    expect((payloadOf(list) as { entries: { key: string }[] }).entries.map((e) => e.key)).toEqual(["profile:0", "profile:1"]);

    // Another tenant sees nothing of acme's store.
    const foreign = await command(eve, "op.store.get", { key: "profile:1" });
    expect(foreign.error?.code).toBe("NOT_FOUND");

    const del = await command(alice, "op.store.delete", { key: "profile:1" });
    expect(payloadOf(del)).toEqual({ key: "profile:1", deleted: true });
    expect((await command(alice, "op.store.get", { key: "profile:1" })).error?.code).toBe("NOT_FOUND");
  });

  it("store - bad arguments answer VALIDATION_ERROR", async () => {
    gw = await startGateway();
    ops = storeOperator(gw.server, { maxValueBytes: 32 });
    const alice = await gw.client();
    expect((await command(alice, "op.store.get", { key: 5 })).error?.code).toBe("VALIDATION_ERROR");
    expect((await command(alice, "op.store.put", { key: "k" })).error?.code).toBe("VALIDATION_ERROR");
    expect((await command(alice, "op.store.put", { key: "k", value: "x".repeat(64) })).error?.code).toBe("VALIDATION_ERROR");
    expect((await command(alice, "op.store.get", [1, 2])).error?.code).toBe("VALIDATION_ERROR");
    // Keys read like paths: nothing that looks like a traversal, no empty segment; namespaces are names.
    for (const key of ["../etc/passwd", "a/../b", "./a", "/abs", "a//b", "a/", "x".repeat(257), "a b", "é"]) {
      expect((await command(alice, "op.store.put", { key, value: 1 })).error?.code, key).toBe("VALIDATION_ERROR");
    }
    for (const namespace of ["..", ".", "a/b", ""]) {
      expect((await command(alice, "op.store.put", { key: "k", value: 1, namespace })).error?.code, namespace).toBe("VALIDATION_ERROR");
    }
    expect((await command(alice, "op.store.put", { key: "profile/v1:2", value: 1, namespace: "agents.v2" })).status).toBe("ok");
  });
});

describe("operators - op.cron", () => {
  it("cron - an admin schedules messages into a room; others may neither list nor schedule", async () => {
    gw = await startGateway({ tenantDefaults: { cronRatePerSecond: 100 } });
    ops = await cronOperator(gw.server, { minIntervalMs: 50 });
    const admin = await gw.client({ sub: "root", role: "admin" });
    const bob = await gw.client({ sub: "bob" });
    await bob.subscribe("ticks");

    const refused = await command(bob, "op.cron.schedule", { name: "t", room: "ticks", payload: 1, everyMs: 50 });
    expect(refused.error?.code).toBe("AUTHORIZATION_ERROR");
    const tooFast = await command(admin, "op.cron.schedule", { name: "t", room: "ticks", payload: 1, everyMs: 5 });
    expect(tooFast.error?.code).toBe("VALIDATION_ERROR");
    const badCron = await command(admin, "op.cron.schedule", { name: "t", room: "ticks", payload: 1, cron: "not a cron" });
    expect(badCron.error?.code).toBe("VALIDATION_ERROR");

    const ok = await command(admin, "op.cron.schedule", { name: "t", room: "ticks", payload: { tick: true }, everyMs: 50 });
    expect(ok.status).toBe("ok");
    const ticks = await bob.collect(3, (f) => f.type === "message" && f.room === "ticks", { timeoutMs: 3000 });
    expect(ticks.map(payloadOf)).toEqual([{ tick: true }, { tick: true }, { tick: true }]);
    expect(ticks.every((f) => f.sender === "op.cron")).toBe(true);
    // Offsets keep counting without gaps: operator output takes the same path as any publish.
    expect(ticks[1]!.offset! - ticks[0]!.offset!).toBe(1);

    expect((await command(bob, "op.cron.list")).error?.code).toBe("AUTHORIZATION_ERROR");
    const list = await command(admin, "op.cron.list");
    expect((payloadOf(list) as { schedules: { name: string; runs: number }[] }).schedules[0]).toMatchObject({ name: "t" });

    expect((await command(admin, "op.cron.cancel", { name: "t" })).status).toBe("ok");
    expect((await command(admin, "op.cron.cancel", { name: "t" })).error?.code).toBe("NOT_FOUND");
  });

  it("cron - a tenant's schedules are bounded in number, summed rate and payload size (ARQ_QUOTA_EXCEEDED, PAYLOAD_TOO_LARGE)", async () => {
    gw = await startGateway({ tenantLimits: { acme: { maxCronJobs: 2, cronRatePerSecond: 1, maxMessageBytes: 1024 } } });
    ops = await cronOperator(gw.server, { minIntervalMs: 50 });
    const admin = await gw.client({ role: "admin" });
    const other = await gw.client({ role: "admin", tenant: "other" });
    const schedule = (client: typeof admin, args: Record<string, unknown>) => command(client, "op.cron.schedule", { room: "r", payload: 1, ...args });
    const big = await schedule(admin, { name: "big", payload: "x".repeat(2000), everyMs: 60_000 });
    expect(big.error?.code).toBe("ARQ_PAYLOAD_TOO_LARGE");
    expect((await schedule(admin, { name: "fast", everyMs: 500 })).error).toMatchObject({ code: "ARQ_QUOTA_EXCEEDED" });
    // Every second at seconds 0-4 of each minute: its fastest rate is 1/s, which with another schedule passes 1/s.
    expect((await schedule(admin, { name: "burst", cron: "0-4 * * * * *" })).status).toBe("ok");
    expect((await schedule(admin, { name: "slow", everyMs: 60_000 })).error?.code).toBe("ARQ_QUOTA_EXCEEDED");
    expect((await command(admin, "op.cron.cancel", { name: "burst" })).status).toBe("ok");
    expect((await schedule(admin, { name: "a", everyMs: 60_000 })).status).toBe("ok");
    expect((await schedule(admin, { name: "b", everyMs: 60_000 })).status).toBe("ok");
    const third = await schedule(admin, { name: "c", everyMs: 60_000 });
    expect(third.error).toMatchObject({ code: "ARQ_QUOTA_EXCEEDED", message: "at most 2 schedules per tenant" });
    // Replacing one of the two is not a third; another tenant has its own (default) limits.
    expect((await schedule(admin, { name: "a", everyMs: 30_000 })).status).toBe("ok");
    expect((await schedule(other, { name: "c", everyMs: 60_000 })).status).toBe("ok");
  });

  it("cron - schedules kept in the store resume when the operator starts again", async () => {
    gw = await startGateway();
    const first = await cronOperator(gw.server, { minIntervalMs: 50 });
    const admin = await gw.client({ role: "admin" });
    await command(admin, "op.cron.schedule", { name: "again", room: "r", payload: "x", everyMs: 60000 });
    await first.close();
    const second = await cronOperator(gw.server, { minIntervalMs: 50 });
    ops = second;
    expect(second.running()).toBe(1);
  });
});

describe("operators - left out and switched off", () => {
  it("operators - a left-out operator registers nothing (NOT_FOUND unknown command); a switched-off lane answers FEATURE_DISABLED with why", async () => {
    gw = await startGateway();
    ops = await registerStandardOperators(gw.server, { store: false, cron: false, webhook: false });
    const admin = await gw.client({ role: "admin" });
    for (const name of ["op.store.get", "op.cron.list", "op.webhook.list"]) {
      expect(gw.server.commands.has(name)).toBe(false);
      const res = await command(admin, name, {});
      expect(res.status).toBe("error");
      expect(res.error).toMatchObject({ code: "NOT_FOUND", message: `unknown command "${name}"` });
    }
    const omega = await command(admin, "op.omega.status", {});
    expect(omega.status).toBe("error");
    expect(omega.error).toMatchObject({ code: "FEATURE_DISABLED", message: expect.stringContaining("ARQON_OMEGA_ENABLED=1") });
  });
});

describe("operators - op.omega", () => {
  it("omega - disabled by default: every command answers FEATURE_DISABLED", async () => {
    gw = await startGateway();
    ops = omegaOperator(gw.server);
    const admin = await gw.client({ role: "admin" });
    for (const name of ["op.omega.status", "op.omega.register_substrate", "op.omega.list_events"]) {
      const res = await command(admin, name, {});
      expect(res.status).toBe("error");
      expect(res.error?.code).toBe("FEATURE_DISABLED");
    }
  });

  it("omega - enabled lane: admin-only mutations, events kept within the retention bound", async () => {
    gw = await startGateway();
    let now = 1_000_000;
    ops = omegaOperator(gw.server, { enabled: true, maxEvents: 3, eventTtlMs: 1000, now: () => now });
    const admin = await gw.client({ role: "admin" });
    const user = await gw.client({ sub: "u" });
    expect((await command(user, "op.omega.register_substrate", { name: "prime", kind: "reservoir" })).error?.code).toBe("AUTHORIZATION_ERROR");
    expect((await command(admin, "op.omega.register_substrate", { name: "prime", kind: "reservoir" })).status).toBe("ok");
    expect((await command(admin, "op.omega.emit_event", { substrate: "nope", event: "e" })).error?.code).toBe("NOT_FOUND");
    for (let i = 0; i < 5; i++) await command(admin, "op.omega.emit_event", { substrate: "prime", event: `e${i}` });
    const events = payloadOf(await command(user, "op.omega.list_events")) as { events: { event: string }[] };
    expect(events.events.map((e) => e.event)).toEqual(["e2", "e3", "e4"]);
    now += 2000;
    const expired = payloadOf(await command(user, "op.omega.list_events")) as { events: unknown[] };
    expect(expired.events).toEqual([]);
    expect(payloadOf(await command(user, "op.omega.status"))).toMatchObject({ enabled: true, substrates: 1, events: 0 });
  });
});

describe("operators - registry", () => {
  it("registerStandardOperators registers every standard verb", async () => {
    gw = await startGateway();
    ops = await registerStandardOperators(gw.server, { omega: { enabled: true } });
    const names = gw.server.commands.list().map((c) => c.name);
    for (const n of ["op.store.get", "op.store.put", "op.cron.schedule", "op.omega.status"]) expect(names).toContain(n);
    for (const name of STANDARD_OPERATORS) expect(name).toMatch(/^op\.[a-z]+$/);
  });
});
