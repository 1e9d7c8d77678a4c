import { describe, expect, it } from "vitest";
import { jsonBytes, parseJsonBytes, type Inspector } from "@arqon/core";
import { startGateway, type StartGatewayOptions } from "../src/testing.js";
import { startBackend, type TestBackend } from "./proxy-backend.js";

const outbound = { allow: ["127.0.0.1"], allowHttp: true };

function options(backend: TestBackend, proxy: Record<string, unknown>, extra: Partial<StartGatewayOptions> = {}): StartGatewayOptions {
  return { outbound, proxy: { secret: backend.secret, ...proxy }, ...extra };
}

describe("proxy hooks - subscribe, publish, rpc, refresh", () => {
  it("subscribe - allow, deny with a code, and modify (presence info)", async () => {
    await using backend = await startBackend();
    backend.route("/subscribe", (call) => {
      if (call.body.room === "secret") return { deny: { reason: "not_a_member" } };
      if (call.body.room === "named") return { info: { name: "From backend" } };
      return {};
    });
    await using gw = await startGateway(options(backend, { subscribe: backend.url("/subscribe") }));
    const alice = await gw.client({ sub: "alice" });
    expect((await alice.subscribe("lobby", { info: { info: jsonBytes({ name: "A" }) } })).type).toBe("subscribed");
    expect(backend.callsTo("/subscribe")[0]!.body).toMatchObject({ hook: "subscribe", tenant: "acme", user: "alice", room: "lobby", info: { name: "A" }, client: { id: alice.clientId } });
    expect(backend.callsTo("/subscribe")[0]!.verified).toBe(true);
    const denied = await alice.subscribe("secret");
    expect(denied.type).toBe("error");
    expect(denied.error).toEqual({ code: "ARQ_PROXY_DENIED", message: "denied by the application backend: not_a_member" });
    const named = await alice.subscribe("named");
    expect(parseJsonBytes(named.members![0]!.info!)).toEqual({ name: "From backend" });
    // The connection stays usable after a denial.
    expect((await alice.publish("lobby", { ok: 1 })).type).toBe("ack");
  });

  it("subscribe - the hook runs after the capability check: a room the caps refuse never reaches it", async () => {
    await using backend = await startBackend();
    await using gw = await startGateway(options(backend, { subscribe: backend.url("/subscribe") }));
    const alice = await gw.client({ sub: "alice", caps: { sub: ["lobby"] } });
    expect((await alice.subscribe("other")).error?.code).toBe("ARQ_FORBIDDEN");
    expect(backend.callsTo("/subscribe")).toHaveLength(0);
  });

  it("publish - allow, deny, and modify (payload, headers); CASIL inspects the hook's payload", async () => {
    await using backend = await startBackend();
    backend.route("/publish", (call) => {
      const payload = call.body.payload as { text?: string };
      if (payload.text === "spam") return { deny: { reason: "spam" } };
      if (payload.text === "rewrite") return { payload: { text: "rewritten" }, headers: { "x-moderated": "yes" } };
      if (payload.text === "leak") return { payload: { text: "BLOCKME" } };
      return {};
    });
    const seen: unknown[] = [];
    const inspector: Inspector = {
      inspect(input) {
        if (input.path === "publish") seen.push(parseJsonBytes(input.payload));
        if (input.path === "publish" && JSON.stringify(parseJsonBytes(input.payload)).includes("BLOCKME")) return { action: "block", reasonCode: "CASIL_POLICY_BLOCKED_PATTERN", message: "blocked by the test policy" };
        return { action: "allow" };
      },
    };
    await using gw = await startGateway(options(backend, { publish: backend.url("/publish") }, { inspector }));
    const alice = await gw.client({ sub: "alice" });
    await alice.subscribe("lobby");
    expect((await alice.publish("lobby", { text: "hi" }, { headers: { trace: "t1" }, echo: true })).type).toBe("ack");
    expect(backend.callsTo("/publish")[0]!.body).toMatchObject({ hook: "publish", tenant: "acme", user: "alice", room: "lobby", payload: { text: "hi" }, payloadFormat: "json", headers: { trace: "t1" } });
    const spam = await alice.publish("lobby", { text: "spam" });
    expect(spam.error).toEqual({ code: "ARQ_PROXY_DENIED", message: "denied by the application backend: spam" });
    expect((await alice.publish("lobby", { text: "rewrite" }, { echo: true })).type).toBe("ack");
    const messages = await alice.collect(2, (f) => f.type === "message");
    expect(parseJsonBytes(messages[0]!.payload!)).toEqual({ text: "hi" });
    expect(parseJsonBytes(messages[1]!.payload!)).toEqual({ text: "rewritten" });
    expect(messages[1]!.headers).toMatchObject({ "x-moderated": "yes" });
    const blocked = await alice.publish("lobby", { text: "leak" });
    expect(blocked.error?.code).toBe("CASIL_POLICY_BLOCKED_PATTERN");
    expect(seen).toEqual([{ text: "hi" }, { text: "rewritten" }, { text: "BLOCKME" }]);
  });

  it("publish - one connection's publishes keep their order through the hook", async () => {
    await using backend = await startBackend();
    backend.route("/publish", (call) => ({ delayMs: (call.body.payload as { n: number }).n % 2 === 0 ? 30 : 1, then: {} }));
    await using gw = await startGateway(options(backend, { publish: backend.url("/publish") }));
    const alice = await gw.client({ sub: "alice" });
    await alice.subscribe("lobby");
    for (let n = 0; n < 6; n++) alice.send({ type: "publish", room: "lobby", payload: jsonBytes({ n }), echo: true });
    const messages = await alice.collect(6, (f) => f.type === "message");
    expect(messages.map((m) => (parseJsonBytes(m.payload!) as { n: number }).n)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("rpc - round trip, deny, and ARQ_FEATURE_DISABLED without an rpc hook", async () => {
    await using backend = await startBackend();
    backend.route("/rpc", (call) => (call.body.method === "forbidden.call" ? { deny: { reason: "nope" } } : { data: { echo: call.body.data, method: call.body.method } }));
    await using gw = await startGateway(options(backend, { rpc: backend.url("/rpc") }));
    const alice = await gw.client({ sub: "alice" });
    const result = await alice.request({ type: "rpc", method: "profile.get", data: jsonBytes({ id: 7 }) });
    expect(result.type).toBe("rpc_result");
    expect(parseJsonBytes(result.data!)).toEqual({ echo: { id: 7 }, method: "profile.get" });
    expect(backend.callsTo("/rpc")[0]!.body).toMatchObject({ hook: "rpc", tenant: "acme", user: "alice", method: "profile.get", data: { id: 7 } });
    const denied = await alice.request({ type: "rpc", method: "forbidden.call" });
    expect(denied.error).toEqual({ code: "ARQ_PROXY_DENIED", message: "denied by the application backend: nope" });
    const bad = await alice.request({ type: "rpc", method: "has space" });
    expect(bad.error?.code).toBe("ARQ_FRAME_WRONG_TYPE");

    await using plain = await startGateway();
    const bob = await plain.client({ sub: "bob" });
    const off = await bob.request({ type: "rpc", method: "profile.get" });
    expect(off.error).toEqual({ code: "ARQ_FEATURE_DISABLED", message: "rpc is not enabled on this server (no rpc proxy hook)" });
  });

  it("rpc - the protobuf codec carries rpc and rpc_result", async () => {
    await using backend = await startBackend();
    backend.route("/rpc", { data: [1, 2, 3] });
    await using gw = await startGateway(options(backend, { rpc: backend.url("/rpc") }));
    const alice = await gw.client({ sub: "alice", codec: "protobuf" });
    const result = await alice.request({ type: "rpc", method: "list", data: jsonBytes(null) });
    expect(result.type).toBe("rpc_result");
    expect(parseJsonBytes(result.data!)).toEqual([1, 2, 3]);
  });

  it("refresh - the hook extends an expiry that approaches (auth_ok tells the client)", async () => {
    await using backend = await startBackend();
    const extended = Date.now() + 3_600_000;
    backend.route("/connect", { user: "carol", tenant: "acme", expiresAt: Date.now() + 1500 });
    backend.route("/refresh", { expiresAt: extended });
    await using gw = await startGateway(
      options(backend, { connect: backend.url("/connect"), refresh: backend.url("/refresh"), refreshAheadMs: 1000 }, { limits: { pingIntervalMs: 400, pongTimeoutMs: 400 } }),
    );
    const carol = await gw.client({ tokenIn: "none" });
    const ok = await carol.next("auth_ok", undefined, { timeoutMs: 3000 });
    expect(ok.expiresAt).toBe(extended);
    expect(backend.callsTo("/refresh")[0]!.body).toMatchObject({ hook: "refresh", tenant: "acme", user: "carol", client: { id: carol.clientId } });
    // Past the first expiry the connection is still open.
    await new Promise((r) => setTimeout(r, 700));
    expect((await carol.request({ type: "ping" })).type).toBe("pong");
  });

  it("refresh - a refusal closes the connection with 4500; a failing hook lets it expire with 4004", async () => {
    await using backend = await startBackend();
    backend.route("/refresh", (call) => (call.body.user === "dave" ? { deny: { reason: "logged_out" } } : { status: 500, raw: "{}" }));
    await using gw = await startGateway(options(backend, { refresh: backend.url("/refresh"), refreshAheadMs: 120_000 }, { limits: { pingIntervalMs: 400, pongTimeoutMs: 400 } }));
    const dave = await gw.client({ sub: "dave", ttlSec: 60 });
    expect(await dave.closed).toEqual({ code: 4500, reason: "session refused by the application backend" });
    const erin = await gw.client({ sub: "erin", ttlSec: 2 });
    const closed = await erin.closed;
    expect(closed.code).toBe(4004);
    expect(backend.callsTo("/refresh").filter((c) => c.body.user === "erin").length).toBeGreaterThanOrEqual(1);
  });
});
