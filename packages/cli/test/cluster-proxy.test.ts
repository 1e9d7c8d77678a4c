import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, expect, it } from "vitest";
import { jsonBytes, parseJsonBytes, type Frame } from "@arqon/core";
import { connectNatsBackends } from "@arqon/nats";
import { describeWithNats, startNatsServer } from "@arqon/nats/testing";
import { startGateway, type TestGateway } from "@arqon/server/testing";

const SECRET = "cluster-proxy-secret-0123456789abcdef";
const KEY = "cluster-proxy-operator-key-0123456789abcdef";

/** Proxy hooks on two gateways sharing a real nats-server: each node calls the backend itself and obeys it. */
describeWithNats("proxy hooks across two gateways on NATS", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  /** A real application backend on 127.0.0.1 (node:http): answers the publish, rpc and beta subscribe hooks, and records every call. */
  async function backend(): Promise<{ url: (path: string) => string; calls: Array<{ path: string; body: Record<string, unknown> }>; secret: string }> {
    const calls: Array<{ path: string; body: Record<string, unknown> }> = [];
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
        calls.push({ path: req.url ?? "/", body });
        let answer: unknown = {};
        if (req.url === "/publish") {
          const text = (body.payload as { text?: string }).text;
          if (text === "spam") answer = { deny: { reason: "spam" } };
          else if (text === "rewrite") answer = { payload: { text: "rewritten" } };
        } else if (req.url === "/rpc") answer = { data: { method: body.method, user: body.user } };
        else if (req.url === "/beta/subscribe") answer = { deny: { reason: "beta_hook" } };
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const port = (server.address() as AddressInfo).port;
    return { url: (path) => `http://127.0.0.1:${port}${path}`, calls, secret: `whsec_${randomBytes(24).toString("base64")}` };
  }

  async function two(hooks: Record<string, string>, secret: string): Promise<[TestGateway, TestGateway]> {
    const nats = await startNatsServer();
    cleanups.push(() => nats.stop());
    const nodes: TestGateway[] = [];
    for (const name of ["proxy-a", "proxy-b"]) {
      const backends = await connectNatsBackends({ servers: nats.url, name });
      cleanups.push(() => backends.close());
      const gw = await startGateway({ secret: SECRET, operatorKeys: [KEY], outbound: { allow: ["127.0.0.1"], allowHttp: true }, proxy: { secret, ...hooks }, ...backends });
      cleanups.push(() => gw.close());
      nodes.push(gw);
    }
    return [nodes[0]!, nodes[1]!];
  }

  it("publish and rpc hooks - a publish rewritten by the hook on node B reaches a subscriber on node A as rewritten; a denied one reaches nobody; rpc answers on either node", async () => {
    const app = await backend();
    const [a, b] = await two({ publish: app.url("/publish"), rpc: app.url("/rpc") }, app.secret);
    const watcher = await a.client({ sub: "watcher" });
    expect((await watcher.subscribe("lobby")).type).toBe("subscribed");
    const writer = await b.client({ sub: "writer" });
    expect((await writer.publish("lobby", { text: "rewrite" })).type).toBe("ack");
    const spam = await writer.publish("lobby", { text: "spam" });
    expect(spam.error).toEqual({ code: "ARQ_PROXY_DENIED", message: "denied by the application backend: spam" });
    expect((await writer.publish("lobby", { text: "plain" })).type).toBe("ack");
    const got = await watcher.collect(2, (f: Frame) => f.type === "message");
    expect(got.map((f) => parseJsonBytes(f.payload!))).toEqual([{ text: "rewritten" }, { text: "plain" }]);
    expect(app.calls.filter((c) => c.path === "/publish").map((c) => (c.body.payload as { text: string }).text)).toEqual(["rewrite", "spam", "plain"]);
    for (const [gw, sub] of [[a, "on-a"], [b, "on-b"]] as const) {
      const c = await gw.client({ sub });
      const result = await c.request({ type: "rpc", method: "whoami", data: jsonBytes({}) });
      expect(result.type).toBe("rpc_result");
      expect(parseJsonBytes(result.data!)).toEqual({ method: "whoami", user: sub });
    }
  });

  it("tenant hooks - the operator sets tenant beta's subscribe hook on node A; node B applies it to beta's clients and not to acme's", async () => {
    const app = await backend();
    const [a, b] = await two({}, app.secret);
    const call = (method: string, path: string, body?: unknown) =>
      fetch(`${a.httpUrl}${path}`, { method, headers: { "x-api-key": KEY, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    expect((await call("POST", "/api/v1/tenants", { name: "beta" })).status).toBe(201);
    expect((await call("PATCH", "/api/v1/tenants/beta", { proxy: { subscribe: app.url("/beta/subscribe") } })).status).toBe(200);
    const deadline = Date.now() + 5000;
    let answer: Frame | undefined;
    while (Date.now() < deadline) {
      const bob = await b.client({ sub: "bob", tenant: "beta" });
      answer = await bob.subscribe(`lobby-${Date.now()}`);
      if (answer.error) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(answer?.error).toEqual({ code: "ARQ_PROXY_DENIED", message: "denied by the application backend: beta_hook" });
    const alice = await b.client({ sub: "alice", tenant: "acme" });
    expect((await alice.subscribe("lobby")).type).toBe("subscribed");
    expect(app.calls.every((c) => c.body.tenant === "beta")).toBe(true);
  });
});
