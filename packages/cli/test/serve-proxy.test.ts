import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket from "ws";
import { describe, expect, it } from "vitest";
import { run } from "../src/index.js";
import { proxyOptions } from "../src/commands/serve.js";
import { serveInProcess } from "./helpers/serve.js";

const SECRET = "cli-test-secret-cli-test-secret-0123";
const PROXY_SECRET = `whsec_${randomBytes(24).toString("base64")}`;

/** A real backend on 127.0.0.1 answering every hook from `answer`, recording what it got. */
async function backend(answer: (hook: string, body: Record<string, unknown>) => unknown) {
  const calls: Array<{ path: string; body: Record<string, unknown>; headers: IncomingHttpHeaders }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
      calls.push({ path: req.url ?? "", body, headers: req.headers });
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer(String(body.hook), body)));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    calls,
    url: (p: string) => `http://127.0.0.1:${port}${p}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe("arqon serve --proxy-*", () => {
  it("serve - --proxy-connect admits a session cookie without a token and --proxy-rpc answers rpc frames", async () => {
    const app = await backend((hook, body) => {
      if (hook === "connect") return (body.cookies as Record<string, string>).sid === "s1" ? { user: "cookie-user", tenant: "acme" } : { deny: {} };
      if (hook === "rpc") return { data: { method: body.method, user: body.user } };
      return {};
    });
    const served = await serveInProcess(
      [
        "--memory",
        "--jwt-secret",
        SECRET,
        "--outbound-allow",
        "127.0.0.1",
        "--outbound-allow-http",
        "--proxy-connect",
        app.url("/connect"),
        "--proxy-rpc",
        app.url("/rpc"),
        "--proxy-secret",
        PROXY_SECRET,
        "--proxy-timeout",
        "800",
        "--proxy-forward-cookie",
        "sid",
      ],
      { ARQON_LOG_LEVEL: "silent" },
    );
    try {
      const ws = new WebSocket(served.url, { headers: { cookie: "sid=s1" } });
      const frames: Array<Record<string, unknown>> = [];
      const next = (type: string) =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          const found = frames.find((f) => f.type === type);
          if (found) return resolve(found);
          const timer = setTimeout(() => reject(new Error(`no ${type}`)), 3000);
          ws.on("message", (d) => {
            const f = JSON.parse(d.toString()) as Record<string, unknown>;
            if (f.type === type) {
              clearTimeout(timer);
              resolve(f);
            }
          });
        });
      ws.on("message", (d) => frames.push(JSON.parse(d.toString()) as Record<string, unknown>));
      const welcome = await next("welcome");
      expect(welcome.tenant).toBe("acme");
      ws.send(JSON.stringify({ type: "rpc", method: "whoami", requestId: "1", data: {} }));
      const result = await next("rpc_result");
      expect(result).toEqual({ type: "rpc_result", requestId: "1", data: { method: "whoami", user: "cookie-user" } });
      expect(app.calls.map((c) => c.path)).toEqual(["/connect", "/rpc"]);
      expect(app.calls[0]!.headers["webhook-signature"]).toMatch(/^v1,/);
      ws.close();
    } finally {
      await served.stop();
      await app.close();
    }
  });

  it("serve - a hook without --proxy-secret, or a bad --proxy-fail-open, is a usage error (exit 2)", async () => {
    const err: string[] = [];
    const io = { out: () => undefined, err: (l: string) => err.push(l) };
    const code = await run(["serve", "--memory", "--port", "0", "--jwt-secret", SECRET, "--proxy-publish", "https://app.example.com/publish"], io, {
      env: { ARQON_LOG_LEVEL: "silent" },
      cwd: process.cwd(),
    });
    expect(code).toBe(2);
    expect(err.join("\n")).toContain("proxy.publish needs proxy.secret");
    expect(() => proxyOptions({ "proxy-fail-open": ["teleport"] }, {})).toThrow(/not a hook/);
  });

  it("serve - flags over ARQON_PROXY_* over the config file, with timeout and fail-open applied per hook", () => {
    const options = proxyOptions(
      { "proxy-subscribe": "https://flag.example/sub", "proxy-timeout": "250", "proxy-fail-open": ["publish"] },
      { ARQON_PROXY_SUBSCRIBE: "https://env.example/sub", ARQON_PROXY_PUBLISH: "https://env.example/pub", ARQON_PROXY_SECRET: PROXY_SECRET },
      { rpc: "https://config.example/rpc", forwardCookies: ["sid"] },
    );
    expect(options).toEqual({
      subscribe: { url: "https://flag.example/sub", timeoutMs: 250 },
      publish: { url: "https://env.example/pub", timeoutMs: 250, failOpen: true },
      rpc: { url: "https://config.example/rpc", timeoutMs: 250 },
      secret: PROXY_SECRET,
      forwardCookies: ["sid"],
    });
  });
});
