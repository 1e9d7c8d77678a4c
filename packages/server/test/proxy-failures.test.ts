import { describe, expect, it } from "vitest";
import { jsonBytes } from "@arqon/core";
import { startGateway, type StartGatewayOptions } from "../src/testing.js";
import { metricValue, startBackend, type TestBackend } from "./proxy-backend.js";

const outbound = { allow: ["127.0.0.1"], allowHttp: true };

function options(backend: TestBackend, proxy: Record<string, unknown>, extra: Partial<StartGatewayOptions> = {}): StartGatewayOptions {
  return { outbound, proxy: { secret: backend.secret, ...proxy }, ...extra };
}

describe("proxy hooks - failures", () => {
  it("slow backend - a timeout denies when the hook fails closed and allows when it fails open", async () => {
    await using backend = await startBackend();
    backend.route("/slow", { delayMs: 400, then: { deny: true } });
    await using gw = await startGateway(
      options(backend, {
        subscribe: { url: backend.url("/slow"), timeoutMs: 80 },
        publish: { url: backend.url("/slow"), timeoutMs: 80, failOpen: true },
      }),
    );
    const alice = await gw.client({ sub: "alice" });
    const started = Date.now();
    const denied = await alice.subscribe("lobby");
    expect(Date.now() - started).toBeLessThan(350);
    expect(denied.error).toEqual({ code: "ARQ_PROXY_UNAVAILABLE", message: "the subscribe hook is unavailable", retryable: true });
    expect((await alice.publish("lobby", { text: "through" })).type).toBe("ack");
    const registry = gw.server.metrics;
    expect(await metricValue(registry, "arqon_proxy_failures_total", { hook: "subscribe", reason: "timeout" })).toBe(1);
    expect(await metricValue(registry, "arqon_proxy_failures_total", { hook: "publish", reason: "timeout" })).toBe(1);
    expect(await metricValue(registry, "arqon_proxy_calls_total", { hook: "publish", result: "failure" })).toBe(1);
    const histogram = await (registry.getSingleMetric("arqon_proxy_duration_seconds") as unknown as { get(): Promise<{ values: Array<{ metricName?: string; value: number; labels: Record<string, string> }> }> }).get();
    expect(histogram.values.find((v) => v.metricName === "arqon_proxy_duration_seconds_count" && v.labels.hook === "subscribe")?.value).toBe(1);
  });

  it("slow connect hook - the upgrade gets 503 ARQ_PROXY_UNAVAILABLE; other connections are not disturbed", async () => {
    await using backend = await startBackend();
    backend.route("/connect", (call) => (call.body.user === "slow" ? { delayMs: 400, then: {} } : {}));
    await using gw = await startGateway(options(backend, { connect: { url: backend.url("/connect"), timeoutMs: 80 } }));
    const alice = await gw.client({ sub: "alice" });
    await alice.subscribe("lobby");
    const refused = await gw.upgrade({ headers: { authorization: `Bearer ${await gw.token({ sub: "slow" })}` } });
    expect(refused.status).toBe(503);
    expect(refused.json?.error?.code).toBe("ARQ_PROXY_UNAVAILABLE");
    expect((await alice.publish("lobby", { still: "here" })).type).toBe("ack");
  });

  it("fail-open connect - a failing hook admits a token's identity unchanged, never an upgrade without a token", async () => {
    await using backend = await startBackend();
    backend.route("/connect", { status: 502, raw: "bad gateway" });
    await using gw = await startGateway(options(backend, { connect: { url: backend.url("/connect"), failOpen: true } }));
    const alice = await gw.client({ sub: "alice" });
    expect(alice.welcome.type).toBe("welcome");
    const cookieOnly = await gw.upgrade({ headers: { cookie: "sid=x" } });
    expect(cookieOnly.status).toBe(503);
    expect(cookieOnly.json?.error?.code).toBe("ARQ_PROXY_UNAVAILABLE");
    expect(await metricValue(gw.server.metrics, "arqon_proxy_failures_total", { hook: "connect", reason: "http_status" })).toBe(2);
  });

  it("crashing backend - connection reset, 500 and a backend that is gone all fail closed without harming the gateway", async () => {
    await using backend = await startBackend();
    backend.route("/reset", "reset");
    backend.route("/500", { status: 500, raw: "oops" });
    backend.route("/notjson", { status: 200, raw: "<html>" });
    await using gone = await startBackend();
    const goneUrl = gone.url("/rpc");
    await gone.close();
    await using gw = await startGateway(
      options(backend, { subscribe: backend.url("/reset"), publish: backend.url("/500"), rpc: goneUrl, connect: backend.url("/ok") }),
    );
    const alice = await gw.client({ sub: "alice" });
    expect((await alice.subscribe("lobby")).error?.code).toBe("ARQ_PROXY_UNAVAILABLE");
    expect((await alice.publish("lobby", { a: 1 })).error?.code).toBe("ARQ_PROXY_UNAVAILABLE");
    expect((await alice.request({ type: "rpc", method: "x" })).error?.code).toBe("ARQ_PROXY_UNAVAILABLE");
    const registry = gw.server.metrics;
    expect(await metricValue(registry, "arqon_proxy_failures_total", { hook: "subscribe", reason: "connect" })).toBe(1);
    expect(await metricValue(registry, "arqon_proxy_failures_total", { hook: "publish", reason: "http_status" })).toBe(1);
    expect(await metricValue(registry, "arqon_proxy_failures_total", { hook: "rpc", reason: "connect" })).toBe(1);
    // The gateway still serves new connections, and the first one is still open.
    const bob = await gw.client({ sub: "bob" });
    expect((await bob.request({ type: "ping" })).type).toBe("pong");
    expect((await alice.request({ type: "ping" })).type).toBe("pong");

    await using gw2 = await startGateway(options(backend, { rpc: backend.url("/notjson") }));
    const carol = await gw2.client({ sub: "carol" });
    expect((await carol.request({ type: "rpc", method: "x" })).error?.code).toBe("ARQ_PROXY_UNAVAILABLE");
    expect(await metricValue(gw2.server.metrics, "arqon_proxy_failures_total", { hook: "rpc", reason: "bad_answer" })).toBe(1);
  });

  it("concurrency cap - calls beyond maxConcurrency fail at once (overloaded) while the others complete", async () => {
    await using backend = await startBackend();
    backend.route("/rpc", { delayMs: 250, then: { data: "done" } });
    await using gw = await startGateway(options(backend, { rpc: { url: backend.url("/rpc"), maxConcurrency: 2 } }));
    const alice = await gw.client({ sub: "alice" });
    const started = Date.now();
    const replies = await Promise.all([1, 2, 3, 4].map((n) => alice.request({ type: "rpc", method: "slow", data: jsonBytes(n), requestId: `q${n}` })));
    const ok = replies.filter((r) => r.type === "rpc_result");
    const overloaded = replies.filter((r) => r.error?.code === "ARQ_PROXY_UNAVAILABLE");
    expect(ok).toHaveLength(2);
    expect(overloaded).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(backend.callsTo("/rpc")).toHaveLength(2);
    expect(await metricValue(gw.server.metrics, "arqon_proxy_failures_total", { hook: "rpc", reason: "overloaded" })).toBe(2);
  });

  it("outbound guard - a hook whose name resolves outside the allow list is refused at the call and counted", async () => {
    await using backend = await startBackend();
    await using gw = await startGateway({
      outbound: { ...outbound, resolve: async (host) => (host === "hooks.internal.test" ? [{ address: "10.20.30.40", family: 4 }] : []) },
      proxy: { secret: backend.secret, subscribe: "http://hooks.internal.test/subscribe", publish: { url: "http://hooks.internal.test/publish", failOpen: true } },
    });
    const alice = await gw.client({ sub: "alice" });
    const refused = await alice.subscribe("lobby");
    expect(refused.error?.code).toBe("ARQ_PROXY_UNAVAILABLE");
    expect((await alice.publish("lobby", { fail: "open" })).type).toBe("ack");
    expect(await metricValue(gw.server.metrics, "arqon_proxy_failures_total", { hook: "subscribe", reason: "forbidden" })).toBe(1);
    expect(await metricValue(gw.server.metrics, "arqon_proxy_failures_total", { hook: "publish", reason: "forbidden" })).toBe(1);
    expect(backend.calls).toHaveLength(0);
  });
});
