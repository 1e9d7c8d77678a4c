import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startGateway, type StartGatewayOptions, type TestClient, type TestGateway } from "@arqon/server/testing";
import { ErrorCode, type Frame } from "@arqon/core";
import { webhookOperator, type Operator, type WebhookOperatorOptions } from "../src/index.js";

interface Received {
  body: { room: string; offset: number; payload: unknown; sender: string };
  headers: Record<string, string>;
  raw: string;
  at: number;
}

const gateways: TestGateway[] = [];
const ops: Operator[] = [];
const targets: Server[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const op of ops.splice(0)) await op.close();
  for (const gw of gateways.splice(0)) await gw.close();
  for (const t of targets.splice(0)) {
    t.closeAllConnections();
    await new Promise<void>((r) => t.close(() => r()));
  }
});

/** The gateway, allowed to reach the loopback receivers of these tests (and nothing else that is not public). */
async function gateway(options: StartGatewayOptions = {}): Promise<TestGateway> {
  const gw = await startGateway({ outbound: { allow: ["127.0.0.1"], allowHttp: true }, ...options });
  gateways.push(gw);
  return gw;
}

async function operator(gw: TestGateway, options: WebhookOperatorOptions = {}): Promise<Operator> {
  const op = await webhookOperator(gw.server, { retryBaseMs: 10, syncIntervalMs: 100, ...options });
  ops.push(op);
  return op;
}

/** A real HTTP receiver on loopback recording each POST; `answer` decides the status (204 by default). */
async function receiver(answer: (n: number, req: IncomingMessage, res: ServerResponse) => number | "hang" = () => 204) {
  const received: Received[] = [];
  let calls = 0;
  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString("utf8")));
    req.on("end", () => {
      const status = answer(++calls, req, res);
      if (status === "hang") return;
      if (status >= 200 && status < 300) {
        received.push({ body: JSON.parse(raw), headers: req.headers as Record<string, string>, raw, at: Date.now() });
      }
      res.writeHead(status).end();
    });
  });
  targets.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    calls: () => calls,
    async waitFor(n: number, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(received.length).toBeGreaterThanOrEqual(n);
    },
  };
}

async function command(client: TestClient, name: string, args?: unknown): Promise<Frame> {
  const frame: Frame = { type: "command", command: name };
  if (args !== undefined) frame.args = new TextEncoder().encode(JSON.stringify(args));
  return client.request(frame);
}

function payload<T = Record<string, unknown>>(frame: Frame): T {
  return JSON.parse(new TextDecoder().decode(frame.payload)) as T;
}

describe("operators - op.webhook", () => {
  it("webhook - room messages become Standard Webhooks POSTs, in order; the reference verifier accepts them and refuses a replay past its tolerance", async () => {
    const hook = await receiver();
    const gw = await gateway();
    await operator(gw);
    const admin = await gw.client({ sub: "root", role: "admin" });
    const reg = await command(admin, "op.webhook.register", { name: "audit", room: "orders", url: hook.url });
    expect(reg.status).toBe("ok");
    const { secret } = payload<{ secret: string }>(reg);
    expect(secret).toMatch(/^whsec_/);

    for (let i = 1; i <= 5; i++) await admin.publish("orders", { n: i });
    await hook.waitFor(5);
    expect(hook.received.map((r) => r.body.payload)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }]);
    expect(hook.received.map((r) => r.body.offset)).toEqual([1, 2, 3, 4, 5]);
    const reference = new Webhook(secret);
    for (const r of hook.received) {
      expect(reference.verify(r.raw, r.headers)).toMatchObject({ room: "orders", sender: "root" });
      expect(r.headers["webhook-id"]).toMatch(/^msg_/);
    }
    expect(new Set(hook.received.map((r) => r.headers["webhook-id"])).size).toBe(5);
    // A wrong secret, and a tampered body, are refused.
    expect(() => new Webhook(`whsec_${Buffer.from("not the secret at all!").toString("base64")}`).verify(hook.received[0]!.raw, hook.received[0]!.headers)).toThrow();
    expect(() => reference.verify(hook.received[0]!.raw.replace('"n":1', '"n":9'), hook.received[0]!.headers)).toThrow();
    // Captured and sent again six minutes later: the reference verifier refuses the replay.
    vi.useFakeTimers({ now: Date.now() + 6 * 60_000, toFake: ["Date"] });
    expect(() => reference.verify(hook.received[0]!.raw, hook.received[0]!.headers)).toThrow(/too old/i);
    vi.useRealTimers();
    // Another tenant's room of the same name is not delivered.
    const other = await gw.client({ sub: "x", tenant: "other" });
    await other.publish("orders", { n: 99 });
    await admin.publish("orders", { n: 6 });
    await hook.waitFor(6);
    expect(hook.received.map((r) => (r.body.payload as { n: number }).n)).not.toContain(99);
  });

  it("webhook - tracing on: each attempt is a client span in the message's trace, and the receiver gets its traceparent (the signature still verifies)", async () => {
    let calls = 0;
    const hook = await receiver(() => (++calls === 1 ? 503 : 204));
    const spans = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    const gw = await gateway({ tracing: { tracerProvider: provider } });
    await operator(gw);
    const admin = await gw.client({ sub: "root", role: "admin" });
    const reg = await command(admin, "op.webhook.register", { name: "traced", room: "orders", url: hook.url });
    const { secret } = payload<{ secret: string }>(reg);
    const appTrace = "0af7651916cd43dd8448eb211c80319c";
    await admin.publish("orders", { n: 1 }, { headers: { traceparent: `00-${appTrace}-b7ad6b7169203331-01` } });
    await hook.waitFor(1);
    const got = hook.received[0]!;
    expect(new Webhook(secret).verify(got.raw, got.headers)).toMatchObject({ room: "orders" });
    const carried = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(got.headers.traceparent ?? "");
    expect(carried, got.headers.traceparent).not.toBeNull();
    expect(carried![1]).toBe(appTrace);
    // The attempt's span ends when the operator has read the answer, a moment after the receiver sent it.
    for (let waited = 0; spans.getFinishedSpans().filter((s) => s.name === "webhook deliver").length < 2 && waited < 5000; waited += 20) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const publish = spans.getFinishedSpans().find((s) => s.name === "publish orders")!;
    const attempts = spans.getFinishedSpans().filter((s) => s.name === "webhook deliver");
    expect(attempts.map((s) => s.attributes["arqon.webhook.attempt"])).toEqual([1, 2]);
    for (const s of attempts) {
      expect(s.kind).toBe(SpanKind.CLIENT);
      expect(s.spanContext().traceId).toBe(appTrace);
      expect(s.parentSpanContext?.spanId).toBe(publish.spanContext().spanId);
      expect(s.attributes).toMatchObject({ "arqon.webhook.name": "traced", "server.address": new URL(hook.url).host });
    }
    expect(attempts[0]!.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempts[0]!.attributes).toMatchObject({ "http.response.status_code": 503, "arqon.webhook.failure": "http_status" });
    expect(attempts[1]!.attributes["http.response.status_code"]).toBe(204);
    // The receiver's traceparent is the second attempt's span: the one that got through.
    expect(carried![2]).toBe(attempts[1]!.spanContext().spanId);
    await provider.shutdown();
  });

  it("webhook - private targets in every notation are refused at registration (ARQ_OUTBOUND_FORBIDDEN) and never reached", async () => {
    const hook = await receiver();
    const port = new URL(hook.url).port;
    const gw = await gateway({ outbound: { allowHttp: true } });
    await operator(gw);
    const admin = await gw.client({ sub: "root", role: "admin" });
    const hostile = ["127.0.0.1", "localhost", "127.1", "0x7f000001", "2130706433", "[::ffff:127.0.0.1]", "[::1]", "169.254.169.254", "10.0.0.1", "[fd00::1]", "100.64.0.1"];
    for (const host of hostile) {
      const r = await command(admin, "op.webhook.register", { name: "h", room: "r", url: `http://${host}:${port}/hook` });
      expect(r.error?.code, host).toBe(ErrorCode.OUTBOUND_FORBIDDEN);
    }
    expect((await command(admin, "op.webhook.register", { name: "h", room: "r", url: "file:///etc/passwd" })).error?.code).toBe(ErrorCode.OUTBOUND_FORBIDDEN);
    const httpsOnly = await gateway({ outbound: {} });
    await operator(httpsOnly);
    const admin2 = await httpsOnly.client({ sub: "root", role: "admin" });
    expect((await command(admin2, "op.webhook.register", { name: "h", room: "r", url: "http://93.184.216.34/" })).error?.code).toBe(ErrorCode.OUTBOUND_FORBIDDEN);
    expect(hook.calls()).toBe(0);
  });

  it("webhook - failures retry with jittered backoff, then go to the dead letters with a failure class only; replay delivers them", async () => {
    let failing = true;
    const hook = await receiver(() => (failing ? 500 : 204));
    const gw = await gateway();
    await operator(gw, { attempts: 4, retryBaseMs: 40 });
    const admin = await gw.client({ role: "admin" });
    const user = await gw.client({ sub: "u" });
    expect((await command(user, "op.webhook.register", { name: "h", room: "r", url: hook.url })).error?.code).toBe("AUTHORIZATION_ERROR");
    expect((await command(admin, "op.webhook.register", { name: "h", room: "r", url: hook.url })).status).toBe("ok");
    await admin.publish("r", "first");
    const deadline = Date.now() + 5000;
    let letters: Array<{ offset: number; failure: string; attempts: number }> = [];
    while (letters.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      letters = payload<{ deadLetters: typeof letters }>(await command(admin, "op.webhook.dead_letters", { name: "h" })).deadLetters;
    }
    expect(letters).toEqual([expect.objectContaining({ offset: 1, failure: "http_status", attempts: 4 })]);
    expect(hook.calls()).toBe(4);
    const [listed] = payload<{ webhooks: Array<Record<string, unknown>> }>(await command(admin, "op.webhook.list")).webhooks;
    expect(listed).toMatchObject({ name: "h", failed: 1, deadLetters: 1, lastFailure: "http_status" });
    // No receiver detail (status text, error message) reaches the tenant: a port-scan oracle otherwise.
    expect(JSON.stringify(listed)).not.toMatch(/500|ECONNREFUSED|fetch failed/);
    failing = false;
    expect(payload(await command(admin, "op.webhook.replay", { name: "h" }))).toEqual({ replayed: 1, failed: 0 });
    await hook.waitFor(1);
    expect(hook.received[0]!.body.payload).toBe("first");
    expect(payload<{ deadLetters: unknown[] }>(await command(admin, "op.webhook.dead_letters", { name: "h" })).deadLetters).toEqual([]);
    // Later messages flow again.
    await admin.publish("r", "second");
    await hook.waitFor(2);
  });

  it("webhook - a stopped receiver opens the circuit; an unreachable target is a 'connect' failure", async () => {
    const gw = await gateway();
    await operator(gw, { attempts: 50, retryBaseMs: 5, breakerThreshold: 3, breakerCooldownMs: 60_000 });
    const admin = await gw.client({ role: "admin" });
    const gone = await receiver();
    const url = gone.url;
    targets.pop()!.close();
    expect((await command(admin, "op.webhook.register", { name: "h", room: "r", url })).status).toBe("ok");
    await admin.publish("r", 1);
    const deadline = Date.now() + 5000;
    let state: Record<string, unknown> = {};
    while (state.state !== "circuit_open" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      state = payload<{ webhooks: Array<Record<string, unknown>> }>(await command(admin, "op.webhook.list")).webhooks[0]!;
    }
    expect(state).toMatchObject({ state: "circuit_open", lastFailure: "connect", backlog: 1 });
  });

  it("webhook - a hanging receiver delays neither publishing nor another tenant's hook (publish p99 printed)", async () => {
    const gw = await gateway({ limits: { publishRatePerSecond: 10_000, publishBurst: 10_000 } });
    await operator(gw, { timeoutMs: 60_000 });
    const quick = await receiver();
    const hanging = await receiver(() => "hang");
    const slowAdmin = await gw.client({ role: "admin", tenant: "slow" });
    const fastAdmin = await gw.client({ role: "admin", tenant: "fast" });
    const p99 = async (client: TestClient, room: string, n: number) => {
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        expect((await client.publish(room, { i })).type).toBe("ack");
        times.push(performance.now() - t);
      }
      times.sort((x, y) => x - y);
      return times[Math.floor(n * 0.99) - 1]!;
    };
    const before = await p99(slowAdmin, "events", 300);
    expect((await command(slowAdmin, "op.webhook.register", { name: "h", room: "events", url: hanging.url })).status).toBe("ok");
    expect((await command(fastAdmin, "op.webhook.register", { name: "h", room: "events", url: quick.url })).status).toBe("ok");
    const during = await p99(slowAdmin, "events", 300);
    await fastAdmin.publish("events", "through");
    await quick.waitFor(1);
    console.log(`publish ack p99 (300 publishes): ${before.toFixed(2)} ms without a webhook, ${during.toFixed(2)} ms with one whose receiver never answers`);
    expect(hanging.calls()).toBe(1);
    expect(during).toBeLessThan(Math.max(before * 5, 50));
  });

  it("webhook - rotation: the new secret signs at once and the previous one keeps verifying during the grace period", async () => {
    const hook = await receiver();
    const gw = await gateway();
    await operator(gw);
    const admin = await gw.client({ role: "admin" });
    const { secret: first } = payload<{ secret: string }>(await command(admin, "op.webhook.register", { name: "h", room: "r", url: hook.url }));
    const { secret: second } = payload<{ secret: string }>(await command(admin, "op.webhook.rotate_secret", { name: "h" }));
    expect(second).not.toBe(first);
    await admin.publish("r", 1);
    await hook.waitFor(1);
    const r = hook.received[0]!;
    expect(r.headers["webhook-signature"]!.split(" ")).toHaveLength(2);
    expect(new Webhook(first).verify(r.raw, r.headers)).toBeDefined();
    expect(new Webhook(second).verify(r.raw, r.headers)).toBeDefined();
  });

  it("webhook - pending deliveries survive a restart of the operator: nothing acked is lost", async () => {
    let up = false;
    const hook = await receiver(() => (up ? 204 : 503));
    const gw = await gateway();
    const first = await operator(gw, { attempts: 1000, retryBaseMs: 20, retryCapMs: 50 });
    const admin = await gw.client({ role: "admin" });
    await command(admin, "op.webhook.register", { name: "h", room: "r", url: hook.url });
    for (let i = 1; i <= 10; i++) expect((await admin.publish("r", { i })).type).toBe("ack");
    await new Promise((r) => setTimeout(r, 200));
    await first.close();
    ops.splice(ops.indexOf(first), 1);
    up = true;
    await operator(gw);
    await hook.waitFor(10);
    const offsets = [...new Set(hook.received.map((r) => r.body.offset))].sort((a, b) => a - b);
    expect(offsets).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});
