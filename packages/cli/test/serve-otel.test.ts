import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, expect, it } from "vitest";
import WebSocket from "ws";
import { signToken } from "@arqon/server";
import { serveInProcess, type ServedGateway } from "./helpers/serve.js";

const SECRET = "serve-otel-secret-0123456789abcdef0123";
const KEY = "serve-otel-operator-key-0123456789abcd";

interface Export {
  headers: IncomingMessage["headers"];
  // The OTLP/JSON request, read field by field below.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

let gw: ServedGateway | undefined;
let collector: Server | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
  collector?.closeAllConnections();
  await new Promise<void>((r) => (collector ? collector.close(() => r()) : r()));
  collector = undefined;
});

/** A real OTLP/HTTP receiver on loopback: records every POST /v1/traces body. */
async function startCollector(): Promise<{ url: string; exports: Export[] }> {
  const exports: Export[] = [];
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces") exports.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => collector!.listen(0, "127.0.0.1", () => r()));
  return { url: `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`, exports };
}

/** One real WebSocket client: subscribes to `room`, publishes one message into it, resolves with the delivery. */
async function chat(url: string, room: string): Promise<void> {
  const token = await signToken({ secret: SECRET, sub: "alice", tenant: "acme", ttl: "5m" });
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  const frames: Array<Record<string, unknown>> = [];
  ws.on("message", (data) => frames.push(JSON.parse(String(data)) as Record<string, unknown>));
  await new Promise((r, j) => ws.once("open", r).once("error", j));
  const until = async (type: string) => {
    const deadline = Date.now() + 5000;
    while (!frames.some((f) => f.type === type)) {
      if (Date.now() > deadline) throw new Error(`no ${type} frame`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  ws.send(JSON.stringify({ type: "subscribe", room, requestId: "s" }));
  await until("subscribed");
  ws.send(JSON.stringify({ type: "publish", room, payload: { hi: 1 }, echo: true, requestId: "p" }));
  await until("message");
  ws.close();
}

function spanNames(exports: Export[]): string[] {
  return exports.flatMap((e) => e.body.resourceSpans.flatMap((rs: { scopeSpans: Array<{ spans: Array<{ name: string }> }> }) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => s.name))));
}

it("serve --otel: the gateway's spans reach a real OTLP/HTTP collector through the outbound guard, with the service name and headers from OTEL_*", async () => {
  const otlp = await startCollector();
  gw = await serveInProcess(["--memory", "--otel", "--otel-endpoint", otlp.url, "--outbound-allow", "127.0.0.1", "--outbound-allow-http"], {
    ARQON_JWT_SECRET: SECRET,
    ARQON_OPERATOR_KEY: KEY,
    ARQON_LOG_LEVEL: "silent",
    OTEL_SERVICE_NAME: "arqon-under-test",
    OTEL_EXPORTER_OTLP_HEADERS: "x-collector-key=abc%3D1",
  });
  expect(gw.out.join("\n")).toContain(`Traces     OTLP ${otlp.url}`);
  await chat(gw.url, "lobby");
  const deadline = Date.now() + 10_000;
  while (!["arqon connect", "publish lobby", "casil inspect", "history append", "deliver lobby"].every((n) => spanNames(otlp.exports).includes(n))) {
    if (Date.now() > deadline) throw new Error(`spans seen: ${spanNames(otlp.exports).join(", ")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const first = otlp.exports[0]!;
  expect(first.headers["x-collector-key"]).toBe("abc=1");
  expect(first.headers["content-type"]).toBe("application/json");
  const service = first.body.resourceSpans[0].resource.attributes.find((a: { key: string }) => a.key === "service.name");
  expect(service.value.stringValue).toBe("arqon-under-test");
});

it("serve --otel: a collector the outbound guard refuses (loopback not allowed) gets nothing, and the bus works on", async () => {
  const otlp = await startCollector();
  gw = await serveInProcess(["--memory", "--otel", "--otel-endpoint", otlp.url], { ARQON_JWT_SECRET: SECRET, ARQON_OPERATOR_KEY: KEY, ARQON_LOG_LEVEL: "silent" });
  await chat(gw.url, "lobby");
  // The batch processor exports within about a second; give it two.
  await new Promise((r) => setTimeout(r, 2000));
  expect(otlp.exports).toEqual([]);
  await chat(gw.url, "lobby");
});

it("serve --otel-endpoint: a bad URL stops serve with a message", async () => {
  await expect(serveInProcess(["--memory", "--otel", "--otel-endpoint", "ftp://collector"], { ARQON_JWT_SECRET: SECRET, ARQON_LOG_LEVEL: "silent" })).rejects.toThrow(
    /--otel-endpoint: http: or https: only/,
  );
});
