import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { SpanKind, SpanStatusCode, context } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { ALLOW, ErrorCode, type Inspector } from "@arqon/core";
import { connectNatsBackends, type NatsBackends } from "@arqon/nats";
import { describeWithNats, startNatsServer, type NatsServerHandle } from "@arqon/nats/testing";
import { payloadOf, startGateway, type TestGateway } from "@arqon/server/testing";

const SECRET = "cluster-trace-secret-0123456789abcdef01";
const KEY = "cluster-trace-operator-key-0123456789ab";

/** A trace context an application would send: its own span, sampled. */
const APP_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const APP_SPAN = "00f067aa0ba902b7";
const APP_TRACEPARENT = `00-${APP_TRACE}-${APP_SPAN}-01`;
/** A CASIL hook that blocks payloads containing "forbidden" (a real policy's contract: a block decision). */
const BLOCK_FORBIDDEN: Inspector = {
  inspect: (input) =>
    new TextDecoder().decode(input.payload).includes("forbidden")
      ? { action: "block", reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_PATTERN, message: "forbidden word" }
      : ALLOW,
};
const TRACEPARENT_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

interface Node {
  gw: TestGateway;
  spans: InMemorySpanExporter;
  provider: BasicTracerProvider;
}

/**
 * Two gateways on one real nats-server, each with its own tracer provider and in-memory exporter (as two processes
 * would have): a message published on one node is delivered on the other in the same trace, carried by the message's
 * `traceparent` header across NATS, not by any in-process context.
 */
describeWithNats("OpenTelemetry traces across two gateways on NATS", () => {
  let nats: NatsServerHandle;
  const backends: NatsBackends[] = [];
  const nodes: Node[] = [];
  let plain: TestGateway;
  const contextManager = new AsyncLocalStorageContextManager();

  async function node(name: string, traced: boolean): Promise<Node> {
    const nb = await connectNatsBackends({ servers: nats.url, name });
    backends.push(nb);
    const spans = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    const gw = await startGateway({
      secret: SECRET,
      operatorKeys: [KEY],
      inspector: BLOCK_FORBIDDEN,
      ...nb,
      ...(traced ? { tracing: { tracerProvider: provider } } : {}),
    });
    const n = { gw, spans, provider };
    nodes.push(n);
    return n;
  }

  let a: Node;
  let b: Node;
  beforeAll(async () => {
    // The server API's spans hand their context to the publish through the active context (AsyncLocalStorage).
    context.setGlobalContextManager(contextManager.enable());
    nats = await startNatsServer();
    a = await node("trace-a", true);
    b = await node("trace-b", true);
    plain = (await node("trace-plain", false)).gw;
  });
  afterAll(async () => {
    for (const n of nodes) await n.gw.close();
    for (const nb of backends) await nb.close();
    await nats?.stop();
    for (const n of nodes) await n.provider.shutdown();
    context.disable();
  });
  beforeEach(() => {
    for (const n of nodes) n.spans.reset();
  });

  function named(n: Node, name: string): ReadableSpan[] {
    return n.spans.getFinishedSpans().filter((s) => s.name === name);
  }

  async function eventually<T>(what: string, get: () => T | undefined, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = get();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it("a publish on node A with the app's traceparent: publish, casil inspect and history append on A, deliver on A and B, one trace; the subscriber on B gets the publish span's context", async () => {
    const publisher = await a.gw.client({ tenant: "t-trace", sub: "alice" });
    const local = await a.gw.client({ tenant: "t-trace", sub: "carol" });
    const remote = await b.gw.client({ tenant: "t-trace", sub: "bob" });
    await local.subscribe("orders");
    await remote.subscribe("orders");
    // B's subscription reaches A's publishes once B listens on the room's subject; publish until one arrives.
    await publisher.publish("orders", { warmup: true });
    await remote.next("message", "orders");
    await local.next("message", "orders");
    for (const n of [a, b]) n.spans.reset();

    const ack = await publisher.publish("orders", { n: 1 }, { headers: { traceparent: APP_TRACEPARENT, tracestate: "app=1" } });
    expect(ack.type).toBe("ack");
    const onB = await remote.next("message", "orders");
    expect(payloadOf(onB)).toEqual({ n: 1 });
    const carried = TRACEPARENT_RE.exec(onB.headers!.traceparent!);
    expect(carried, onB.headers!.traceparent).not.toBeNull();
    expect(carried![1]).toBe(APP_TRACE);
    expect(onB.headers!.tracestate).toBe("app=1");

    const [publish] = named(a, "publish orders");
    expect(publish, "publish span on A").toBeDefined();
    expect(publish!.kind).toBe(SpanKind.PRODUCER);
    expect(publish!.spanContext().traceId).toBe(APP_TRACE);
    expect(publish!.parentSpanContext?.spanId).toBe(APP_SPAN);
    expect(publish!.spanContext().spanId).toBe(carried![2]);
    expect(publish!.attributes).toMatchObject({
      "messaging.system": "arqon",
      "messaging.destination.name": "orders",
      "arqon.tenant": "t-trace",
      "arqon.offset": ack.offset,
      "arqon.epoch": ack.epoch,
      "messaging.message.id": ack.id,
      "arqon.duplicate": false,
    });
    for (const child of ["casil inspect", "history append"]) {
      const [span] = named(a, child);
      expect(span, child).toBeDefined();
      expect(span!.spanContext().traceId).toBe(APP_TRACE);
      expect(span!.parentSpanContext?.spanId).toBe(publish!.spanContext().spanId);
    }
    expect(named(a, "casil inspect")[0]!.attributes["arqon.casil.decision"]).toBe("allow");

    const deliverA = await eventually("deliver span on A", () => named(a, "deliver orders")[0]);
    const deliverB = await eventually("deliver span on B", () => named(b, "deliver orders")[0]);
    for (const [span, n] of [
      [deliverA, a],
      [deliverB, b],
    ] as const) {
      expect(span.kind).toBe(SpanKind.CONSUMER);
      expect(span.spanContext().traceId).toBe(APP_TRACE);
      expect(span.parentSpanContext?.spanId).toBe(publish!.spanContext().spanId);
      expect(span.attributes).toMatchObject({ "arqon.tenant": "t-trace", "arqon.offset": ack.offset, "arqon.node": n.gw.server.nodeId });
    }
    // A delivered to carol (alice's own publish is not echoed to her); B to bob.
    expect(deliverA.attributes["arqon.deliveries"]).toBe(1);
    expect(deliverB.attributes["arqon.deliveries"]).toBe(1);
    // B made no publish span: the trace crossed NATS in the message.
    expect(named(b, "publish orders")).toEqual([]);
    for (const c of [publisher, local, remote]) await c.close();
  });

  it("a publish without a traceparent starts a trace at the publish; a malformed one is replaced, not trusted", async () => {
    const publisher = await a.gw.client({ tenant: "t-trace", sub: "alice" });
    const remote = await b.gw.client({ tenant: "t-trace", sub: "bob" });
    await remote.subscribe("fresh");
    await publisher.publish("fresh", { warmup: true });
    await remote.next("message", "fresh");
    for (const n of [a, b]) n.spans.reset();

    for (const headers of [undefined, { traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01" }, { traceparent: "not a traceparent" }]) {
      await publisher.publish("fresh", { headers }, headers ? { headers } : {});
      const got = await remote.next("message", "fresh");
      const carried = TRACEPARENT_RE.exec(got.headers!.traceparent!);
      expect(carried).not.toBeNull();
      const publish = named(a, "publish fresh").at(-1)!;
      expect(publish.parentSpanContext).toBeUndefined();
      expect(publish.spanContext().traceId).toBe(carried![1]);
      const deliver = await eventually("deliver on B", () => named(b, "deliver fresh").find((s) => s.spanContext().traceId === carried![1]));
      expect(deliver.parentSpanContext?.spanId).toBe(publish.spanContext().spanId);
    }
    for (const c of [publisher, remote]) await c.close();
  });

  it("an unsampled trace (traceparent flags 00) is followed, not recorded: no spans on either node, the header still carries the trace", async () => {
    const publisher = await a.gw.client({ tenant: "t-trace", sub: "alice" });
    const remote = await b.gw.client({ tenant: "t-trace", sub: "bob" });
    await remote.subscribe("unsampled");
    await publisher.publish("unsampled", { warmup: true });
    await remote.next("message", "unsampled");
    for (const n of [a, b]) n.spans.reset();
    await publisher.publish("unsampled", { n: 1 }, { headers: { traceparent: `00-${APP_TRACE}-${APP_SPAN}-00` } });
    const got = await remote.next("message", "unsampled");
    expect(got.headers!.traceparent).toMatch(new RegExp(`^00-${APP_TRACE}-[0-9a-f]{16}-00$`));
    await new Promise((r) => setTimeout(r, 50));
    for (const n of [a, b]) expect(n.spans.getFinishedSpans().filter((s) => s.spanContext().traceId === APP_TRACE)).toEqual([]);
    for (const c of [publisher, remote]) await c.close();
  });

  it("a server API publish on B: the POST's server span is the parent of the publish, and A's deliver is in the caller's trace", async () => {
    const remote = await a.gw.client({ tenant: "t-trace", sub: "bob" });
    await remote.subscribe("api-room");
    // The settling posts run in a trace of their own, so that a late one cannot be taken for the measured call.
    const SETTLE_TRACEPARENT = `00-${"5".repeat(32)}-${APP_SPAN}-01`;
    const post = (traceparent = SETTLE_TRACEPARENT) =>
      fetch(`${b.gw.httpUrl}/api/v1/tenants/t-trace/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", traceparent },
        body: JSON.stringify({ room: "api-room", payload: { via: "api" } }),
      });
    // Until A listens on the room's subject, B's publishes do not reach it: publish until one arrives.
    await eventually("the room's subject to reach A", () => (remote.frames.some((f) => f.type === "message") ? true : (void post(), undefined)), 5000);
    for (const n of [a, b]) n.spans.reset();

    const res = await post(APP_TRACEPARENT);
    expect(res.status).toBe(200);
    const got = await remote.waitFor((f) => f.type === "message" && f.headers?.traceparent?.includes(APP_TRACE) === true);
    expect(payloadOf(got)).toEqual({ via: "api" });
    const inTrace = (n: Node, name: string) => named(n, name).filter((sp) => sp.spanContext().traceId === APP_TRACE);
    const [call] = inTrace(b, "POST /api/v1/tenants/:tenant/publish");
    expect(call, "server span on B").toBeDefined();
    expect(call!.kind).toBe(SpanKind.SERVER);
    expect(call!.parentSpanContext?.spanId).toBe(APP_SPAN);
    expect(call!.attributes["http.response.status_code"]).toBe(200);
    const [publish] = inTrace(b, "publish api-room");
    expect(publish!.parentSpanContext?.spanId).toBe(call!.spanContext().spanId);
    expect(publish!.attributes["arqon.publish.path"]).toBe("server_publish");
    const deliver = await eventually("deliver on A", () => inTrace(a, "deliver api-room")[0]);
    expect(deliver.spanContext().traceId).toBe(APP_TRACE);
    expect(deliver.parentSpanContext?.spanId).toBe(publish!.spanContext().spanId);
    await remote.close();
  });

  it("upgrades: arqon connect spans end with 101 and the token's tenant, or with the refusal's status and code", async () => {
    const client = await a.gw.client({ tenant: "t-trace", sub: "dave" });
    const refused = await a.gw.upgrade({ headers: { authorization: "Bearer not-a-jwt" } });
    expect(refused.status).toBe(401);
    await client.close();
    const connects = await eventually("two connect spans", () => {
      const s = named(a, "arqon connect");
      return s.length >= 2 ? s : undefined;
    });
    const ok = connects.find((s) => s.attributes["http.response.status_code"] === 101)!;
    expect(ok.kind).toBe(SpanKind.SERVER);
    expect(ok.attributes).toMatchObject({ "arqon.tenant": "t-trace", "enduser.id": "dave" });
    const no = connects.find((s) => s.attributes["http.response.status_code"] === 401)!;
    expect(no.status.code).toBe(SpanStatusCode.ERROR);
    expect(no.attributes["arqon.error.code"]).toMatch(/^ARQ_AUTH_/);
  });

  it("a CASIL block ends the publish span with its reason code and the inspect span with decision block", async () => {
    const publisher = await a.gw.client({ tenant: "t-trace", sub: "alice" });
    const refused = await publisher.request({ type: "publish", room: "secrets", payload: new TextEncoder().encode(JSON.stringify({ word: "forbidden" })) });
    expect(refused.type).toBe("error");
    expect(refused.error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_PATTERN);
    const [publish] = named(a, "publish secrets");
    expect(publish!.status.code).toBe(SpanStatusCode.ERROR);
    expect(publish!.attributes["arqon.error.code"]).toBe(refused.error?.code);
    expect(named(a, "casil inspect")[0]!.attributes["arqon.casil.decision"]).toBe("block");
    expect(named(a, "history append")).toEqual([]);
    await publisher.close();
  });

  it("tracing off (the third node): no spans, and the message's headers pass through as the client sent them", async () => {
    const publisher = await plain.client({ tenant: "t-plain", sub: "alice" });
    const sub = await plain.client({ tenant: "t-plain", sub: "bob" });
    await sub.subscribe("quiet");
    await publisher.publish("quiet", { n: 1 });
    const bare = await sub.next("message", "quiet");
    expect(bare.headers?.traceparent).toBeUndefined();
    await publisher.publish("quiet", { n: 2 }, { headers: { traceparent: APP_TRACEPARENT } });
    const carried = await sub.next("message", "quiet");
    expect(carried.headers?.traceparent).toBe(APP_TRACEPARENT);
    for (const n of [a, b]) expect(n.spans.getFinishedSpans().filter((s) => s.attributes["arqon.tenant"] === "t-plain")).toEqual([]);
    for (const c of [publisher, sub]) await c.close();
  });
});
