import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { startGateway } from "../src/testing.js";
import { callApi } from "./api-client.js";
import { startBackend } from "./proxy-backend.js";

const outbound = { allow: ["127.0.0.1"], allowHttp: true };
const operatorKey = randomBytes(24).toString("base64url");

/** Calls the server API over real HTTP; every answer is checked against the OpenAPI document (test/api-client.ts). */
async function api(httpUrl: string, method: string, path: string, credential: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await callApi(httpUrl, method, path, body, credential);
  return { status: r.status, json: r.json as Record<string, unknown> };
}

describe("proxy hooks - per tenant", () => {
  it("tenant hooks - the operator sets a tenant's hook, which replaces the server's for that tenant only; a tenant admin cannot (403)", async () => {
    await using backend = await startBackend();
    backend.route("/beta/subscribe", { deny: { reason: "beta_hook" } });
    await using gw = await startGateway({ outbound, operatorKeys: [operatorKey], proxy: { secret: backend.secret, subscribe: backend.url("/server/subscribe") } });
    expect((await api(gw.httpUrl, "POST", "/api/v1/tenants", operatorKey, { name: "beta" })).status).toBe(201);

    const admin = await gw.token({ sub: "root", tenant: "beta", role: "admin" });
    const byAdmin = await api(gw.httpUrl, "PATCH", "/api/v1/tenants/beta", admin, { proxy: { subscribe: backend.url("/evil") } });
    expect(byAdmin.status).toBe(403);
    expect((byAdmin.json.error as { code: string }).code).toBe("ARQ_FORBIDDEN");

    const set = await api(gw.httpUrl, "PATCH", "/api/v1/tenants/beta", operatorKey, { proxy: { subscribe: { url: backend.url("/beta/subscribe"), timeoutMs: 500 } } });
    expect(set.status).toBe(200);
    expect(set.json.proxy).toEqual({ subscribe: { url: backend.url("/beta/subscribe"), timeoutMs: 500, maxConcurrency: 64, failOpen: false } });

    const bob = await gw.client({ sub: "bob", tenant: "beta" });
    expect((await bob.subscribe("lobby")).error).toEqual({ code: "ARQ_PROXY_DENIED", message: "denied by the application backend: beta_hook" });
    const alice = await gw.client({ sub: "alice", tenant: "acme" });
    expect((await alice.subscribe("lobby")).type).toBe("subscribed");
    expect(backend.callsTo("/beta/subscribe").map((c) => c.body.tenant)).toEqual(["beta"]);
    expect(backend.callsTo("/server/subscribe").map((c) => c.body.tenant)).toEqual(["acme"]);
    expect(backend.callsTo("/evil")).toHaveLength(0);

    // The tenant admin reads its record but not a secret; the operator removes the hook with null.
    const secret = `whsec_${randomBytes(24).toString("base64")}`;
    expect((await api(gw.httpUrl, "PATCH", "/api/v1/tenants/beta", operatorKey, { proxy: { secret } })).status).toBe(200);
    const shown = await api(gw.httpUrl, "GET", "/api/v1/tenants/beta", admin);
    expect(shown.status).toBe(200);
    expect((shown.json.record as { proxy: { secret: string } }).proxy.secret).toBe("(set)");
    const cleared = await api(gw.httpUrl, "PATCH", "/api/v1/tenants/beta", operatorKey, { proxy: null });
    expect(cleared.status).toBe(200);
    expect(cleared.json.proxy).toBeUndefined();
    expect((await bob.subscribe("lobby2")).type).toBe("subscribed");
    expect(backend.callsTo("/server/subscribe").map((c) => c.body.tenant)).toEqual(["acme", "beta"]);
  });

  it("tenant hooks - POST /api/v1/tenants may create a tenant with its hooks (operator only), checked as PATCH checks them", async () => {
    await using backend = await startBackend();
    backend.route("/gamma/subscribe", { deny: { reason: "gamma_hook" } });
    await using gw = await startGateway({ outbound, operatorKeys: [operatorKey], proxy: { secret: backend.secret } });
    const created = await api(gw.httpUrl, "POST", "/api/v1/tenants", operatorKey, { name: "gamma", proxy: { subscribe: backend.url("/gamma/subscribe") } });
    expect(created.status).toBe(201);
    expect(created.json.proxy).toEqual({ subscribe: { url: backend.url("/gamma/subscribe"), timeoutMs: 1000, maxConcurrency: 64, failOpen: false } });
    const carol = await gw.client({ sub: "carol", tenant: "gamma" });
    expect((await carol.subscribe("lobby")).error).toEqual({ code: "ARQ_PROXY_DENIED", message: "denied by the application backend: gamma_hook" });
    const refused = await api(gw.httpUrl, "POST", "/api/v1/tenants", operatorKey, { name: "delta", proxy: { publish: "http://169.254.169.254/latest" } });
    expect(refused.status).toBe(400);
    expect((await api(gw.httpUrl, "GET", "/api/v1/tenants/delta", operatorKey)).json).toMatchObject({ name: "delta" });
    expect(((await api(gw.httpUrl, "GET", "/api/v1/tenants", operatorKey)).json.tenants as Array<{ name: string }>).map((t) => t.name)).not.toContain("delta");
  });

  it("tenant hooks - a URL the outbound guard refuses, an unknown hook or a bad option is refused with nothing changed", async () => {
    await using backend = await startBackend();
    await using gw = await startGateway({ outbound, operatorKeys: [operatorKey], proxy: { secret: backend.secret } });
    expect((await api(gw.httpUrl, "POST", "/api/v1/tenants", operatorKey, { name: "beta" })).status).toBe(201);
    const forbidden = await api(gw.httpUrl, "PATCH", "/api/v1/tenants/beta", operatorKey, { proxy: { publish: "http://169.254.169.254/latest" } });
    expect(forbidden.status).toBe(400);
    expect((forbidden.json.error as { code: string }).code).toBe("ARQ_OUTBOUND_FORBIDDEN");
    const unknown = await api(gw.httpUrl, "PATCH", "/api/v1/tenants/beta", operatorKey, { proxy: { teleport: backend.url("/x") } });
    expect((unknown.json.error as { code: string }).code).toBe("VALIDATION_ERROR");
    const badTimeout = await api(gw.httpUrl, "PATCH", "/api/v1/tenants/beta", operatorKey, { proxy: { rpc: { url: backend.url("/x"), timeoutMs: -1 } } });
    expect((badTimeout.json.error as { code: string }).code).toBe("VALIDATION_ERROR");
    const shown = await api(gw.httpUrl, "GET", "/api/v1/tenants/beta", operatorKey);
    expect((shown.json.record as Record<string, unknown>).proxy).toBeUndefined();
  });

  it("tenant hooks - a tenant's connect hook decides its upgrades, cookie upgrades naming it with ?tenant= included", async () => {
    await using backend = await startBackend();
    backend.route("/beta/connect", (call) => ((call.body.cookies as Record<string, string>).sid === "b1" ? { user: "bea", caps: { sub: ["*"] } } : { deny: {} }));
    await using gw = await startGateway({ outbound, operatorKeys: [operatorKey], proxy: { secret: backend.secret, forwardCookies: ["sid"] } });
    expect((await api(gw.httpUrl, "POST", "/api/v1/tenants", operatorKey, { name: "beta" })).status).toBe(201);
    expect((await api(gw.httpUrl, "PATCH", "/api/v1/tenants/beta", operatorKey, { proxy: { connect: backend.url("/beta/connect") } })).status).toBe(200);
    const refused = await gw.upgrade({ path: "/ws?tenant=beta", headers: { cookie: "sid=zz" } });
    expect(refused.status).toBe(403);
    expect(refused.json?.error?.code).toBe("ARQ_PROXY_DENIED");
    const noTenant = await gw.upgrade({ headers: { cookie: "sid=b1" } });
    expect(noTenant.status).toBe(401);
    expect(noTenant.json?.error?.code).toBe("ARQ_AUTH_MISSING");
    const admitted = await gw.upgrade({ path: "/ws?tenant=beta", headers: { cookie: "sid=b1" } });
    expect(admitted.status).toBe(101);
    expect(backend.callsTo("/beta/connect").map((c) => c.body.tenant)).toEqual(["beta", "beta"]);
    const acme = await gw.client({ sub: "alice", tenant: "acme" });
    expect(acme.welcome.tenant).toBe("acme");
  });
});
