import { describe, expect, it } from "vitest";
import { jsonBytes } from "@arqon/core";
import { startGateway, type StartGatewayOptions } from "../src/testing.js";
import { startBackend, type TestBackend } from "./proxy-backend.js";

const outbound = { allow: ["127.0.0.1"], allowHttp: true };

function options(backend: TestBackend, proxy: Record<string, unknown>, extra: Partial<StartGatewayOptions> = {}): StartGatewayOptions {
  return { outbound, proxy: { secret: backend.secret, forwardCookies: ["sid"], forwardHeaders: ["x-app"], ...proxy }, ...extra };
}

describe("proxy hooks - connect", () => {
  it("connect - allow: the hook is called with the token's claims and client info, signed, and the upgrade succeeds", async () => {
    await using backend = await startBackend();
    await using gw = await startGateway(options(backend, { connect: backend.url("/connect") }));
    const alice = await gw.client({ sub: "alice", headers: { "user-agent": "test-agent/1", "x-app": "web", "x-other": "no", cookie: "sid=s-1; other=x" } });
    expect(alice.welcome.type).toBe("welcome");
    const [call] = backend.callsTo("/connect");
    expect(call!.verified).toBe(true);
    expect(call!.headers["x-arqon-hook"]).toBe("connect");
    expect(call!.body).toMatchObject({
      hook: "connect",
      tenant: "acme",
      user: "alice",
      claims: { sub: "alice", tenant: "acme" },
      client: { address: "127.0.0.1", userAgent: "test-agent/1", protocol: "1.0", codec: "json", transport: "websocket" },
      headers: { "x-app": "web" },
      cookies: { sid: "s-1" },
    });
    expect(call!.body.headers).not.toHaveProperty("x-other");
    expect(call!.body.cookies).not.toHaveProperty("other");
  });

  it("connect - deny with a code: the upgrade gets 403 (or 401 when asked) with ARQ_PROXY_DENIED and the reason", async () => {
    await using backend = await startBackend();
    backend.route("/connect", (call) => ({ deny: { reason: "banned", status: (call.body.user as string) === "bob" ? 401 : 403 } }));
    await using gw = await startGateway(options(backend, { connect: backend.url("/connect") }));
    const refused = await gw.upgrade({ headers: { authorization: `Bearer ${await gw.token({ sub: "mallory" })}` } });
    expect(refused.status).toBe(403);
    expect(refused.json?.error).toEqual({ code: "ARQ_PROXY_DENIED", message: "denied by the application backend: banned" });
    const bob = await gw.upgrade({ headers: { authorization: `Bearer ${await gw.token({ sub: "bob" })}` } });
    expect(bob.status).toBe(401);
    expect(bob.json?.error?.code).toBe("ARQ_PROXY_DENIED");
    // A bad token never reaches the hook: the token is checked first.
    const bad = await gw.upgrade({ headers: { authorization: "Bearer not.a.token" } });
    expect(bad.status).toBe(401);
    expect(bad.json?.error?.code).toBe("ARQ_AUTH_INVALID");
    expect(backend.callsTo("/connect")).toHaveLength(2);
  });

  it("connect - modify: user, caps, info and expiry from the answer replace the token's", async () => {
    await using backend = await startBackend();
    const expiresAt = Date.now() + 3_600_000;
    backend.route("/connect", { user: "alice-2", caps: { sub: ["lobby"], pub: [], presence: ["lobby"] }, info: { name: "Alice" }, expiresAt });
    await using gw = await startGateway(options(backend, { connect: backend.url("/connect") }));
    const alice = await gw.client({ sub: "alice" });
    expect(alice.welcome.expiresAt).toBe(expiresAt);
    const subscribed = await alice.subscribe("lobby");
    expect(subscribed.type).toBe("subscribed");
    expect(subscribed.members?.[0]).toMatchObject({ userId: "alice-2", info: jsonBytes({ name: "Alice" }) });
    const other = await alice.subscribe("other");
    expect(other.error?.code).toBe("ARQ_FORBIDDEN");
    const published = await alice.publish("lobby", { text: "hi" });
    expect(published.error?.code).toBe("ARQ_FORBIDDEN");
  });

  it("connect - a session cookie without a JWT is admitted by the hook's allow with user, tenant and caps", async () => {
    await using backend = await startBackend();
    backend.route("/connect", (call) => {
      const sid = (call.body.cookies as Record<string, string>).sid;
      if (sid !== "good") return { deny: { status: 401, reason: "no_session" } };
      return { user: "carol", tenant: "beta", caps: { sub: ["*"], pub: ["*"] } };
    });
    await using gw = await startGateway(options(backend, { connect: backend.url("/connect") }));
    const carol = await gw.client({ tokenIn: "none", headers: { cookie: "sid=good" } });
    expect(carol.welcome).toMatchObject({ type: "welcome", tenant: "beta" });
    expect(carol.welcome.expiresAt).toBeUndefined();
    expect(backend.callsTo("/connect")[0]!.body).not.toHaveProperty("user");
    expect((await carol.subscribe("lobby")).type).toBe("subscribed");
    const ack = await carol.publish("lobby", { text: "cookie" }, { echo: true });
    expect(ack.type).toBe("ack");
    expect((await carol.next("message", "lobby")).sender).toBe("carol");
    const refused = await gw.upgrade({ headers: { cookie: "sid=bad" } });
    expect(refused.status).toBe(401);
    expect(refused.json?.error?.code).toBe("ARQ_PROXY_DENIED");
  });

  it("connect - without a connect hook an upgrade without a token is still 401 ARQ_AUTH_MISSING", async () => {
    await using backend = await startBackend();
    await using gw = await startGateway(options(backend, { subscribe: backend.url("/subscribe") }));
    const refused = await gw.upgrade({ headers: { cookie: "sid=good" } });
    expect(refused.status).toBe(401);
    expect(refused.json?.error?.code).toBe("ARQ_AUTH_MISSING");
    expect(backend.calls).toHaveLength(0);
  });

  it("connect - an allow without a user for an upgrade without a token is refused with 503 ARQ_PROXY_UNAVAILABLE", async () => {
    await using backend = await startBackend();
    backend.route("/connect", {});
    await using gw = await startGateway(options(backend, { connect: backend.url("/connect") }));
    const refused = await gw.upgrade({ headers: { cookie: "sid=x" } });
    expect(refused.status).toBe(503);
    expect(refused.json?.error?.code).toBe("ARQ_PROXY_UNAVAILABLE");
  });

  it("connect - a hook without a signing secret is refused at configuration", async () => {
    await using backend = await startBackend();
    await expect(startGateway({ outbound, proxy: { connect: backend.url("/connect") } })).rejects.toMatchObject({ code: "VALIDATION_ERROR" });
    await expect(startGateway({ outbound, proxy: { secret: backend.secret, connect: "http://10.1.2.3/connect" } })).rejects.toMatchObject({
      code: "ARQ_OUTBOUND_FORBIDDEN",
    });
  });
});
