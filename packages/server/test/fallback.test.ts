import { connect, createServer as createTcpServer, type Server as TcpServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { CloseCode, ErrorCode } from "@arqon/core";
import { payloadOf, SseTestClient as SseClient, startGateway, type StartGatewayOptions, type TestGateway } from "../src/testing.js";
import { CasilController } from "../src/casil/index.js";
import { callApi } from "./api-client.js";

const KEY = "operator-key-of-the-fallback-tests-0123";
let gw: TestGateway | undefined;
const streams: SseClient[] = [];
const closers: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  for (const c of closers.splice(0)) await c();
  await gw?.close();
  gw = undefined;
});

async function start(options: StartGatewayOptions = {}): Promise<TestGateway> {
  gw = await startGateway({ operatorKeys: [KEY], ...options });
  return gw;
}

/** Opens a stream with the bearer header (the http-stream transport) and waits for its welcome. */
async function stream(g: TestGateway, claims: Parameters<TestGateway["token"]>[0] = {}, extra: { path?: string; headers?: Record<string, string> } = {}): Promise<SseClient> {
  const token = await g.token(claims);
  const s = await SseClient.open(g.httpUrl, extra.path ?? "/ws/sse?protocol=1.1", { authorization: `Bearer ${token}`, ...extra.headers });
  streams.push(s);
  if (s.status === 200) await s.frame((f) => f.type === "welcome");
  return s;
}

async function ticketFor(g: TestGateway, token: string | undefined, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${g.httpUrl}/ws/ticket`, { method: "POST", headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe("fallback transports (server side)", () => {
  it("fallback - a stream opened with the bearer header gets session, welcome, and chats with a WebSocket client both ways", async () => {
    const g = await start();
    const s = await stream(g, { sub: "sam" });
    expect(s.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(s.headers["x-accel-buffering"]).toBe("no");
    expect(s.events[0]!.event).toBe("session");
    expect(s.session).toMatch(/^[\w-]+\.[\w-]+$/);
    expect(s.sendPath).toBe("/ws/send");
    const welcome = s.frames[0]!;
    expect(welcome).toMatchObject({ type: "welcome", tenant: "acme", protocol: "1.1" });
    expect(s.session.startsWith(`${welcome.clientId}.`)).toBe(true);
    const subscribed = await s.request({ type: "subscribe", room: "chat" });
    expect(subscribed).toMatchObject({ type: "subscribed", room: "chat" });

    const ws = await g.client({ sub: "wendy" });
    await ws.subscribe("chat");
    const from = s.frames.length;
    const ack = await ws.publish("chat", { text: "hi sam" });
    const got = await s.frame((f) => f.type === "message", from);
    expect(payloadOf(got)).toEqual({ text: "hi sam" });
    expect(got).toMatchObject({ room: "chat", offset: ack.offset });
    // The event carries the session's position: the room at that offset.
    const ev = s.events.find((e) => e.data.includes("hi sam"))!;
    expect(ev.lastId.startsWith("r1.")).toBe(true);
    expect(JSON.parse(Buffer.from(ev.lastId.slice(3), "base64url").toString())).toEqual([["chat", ack.offset, ack.epoch]]);

    const reply = await s.request({ type: "publish", room: "chat", payload: { text: "hi wendy" } });
    expect(reply).toMatchObject({ type: "ack", room: "chat" });
    const atWs = await ws.next("message");
    expect(payloadOf(atWs)).toEqual({ text: "hi wendy" });
  });

  it("fallback - several frames in one ndjson POST are handled in order; a payload's line breaks stay inside one event", async () => {
    const g = await start();
    const s = await stream(g);
    await s.request({ type: "subscribe", room: "order" });
    const from = s.frames.length;
    const frames = Array.from({ length: 20 }, (_, i) => ({ type: "publish", room: "order", payload: { i }, echo: true, requestId: `p${i}` }));
    expect((await s.send(frames)).status).toBe(204);
    await s.until(() => s.frames.slice(from).filter((f) => f.type === "ack").length === 20);
    const acks = s.frames.slice(from).filter((f) => f.type === "ack");
    expect(acks.map((a) => a.requestId)).toEqual(frames.map((f) => f.requestId));
    expect(acks.map((a) => a.offset)).toEqual(acks.map((_, i) => i + 1));
    // A pretty-printed frame (raw line breaks in JSON whitespace) goes up as one frame and comes back as one event.
    const pretty = JSON.stringify({ type: "publish", room: "order", payload: { text: "two\nlines", nested: { a: [1, 2] } }, echo: true, requestId: "pretty" }, null, 2);
    expect(pretty).toContain("\n");
    const before = s.frames.length;
    expect((await s.send(pretty, { contentType: "application/json" })).status).toBe(204);
    const msg = await s.frame((f) => f.type === "message" && (payloadOf(f) as { text?: string }).text !== undefined, before);
    expect(payloadOf(msg)).toEqual({ text: "two\nlines", nested: { a: [1, 2] } });
  });

  it("fallback - tickets: POST /ws/ticket with the bearer header only; the ticket opens streams until it expires; no JWT in the URL", async () => {
    const g = await start({ fallback: { ticketTtlMs: 400 } });
    expect((await ticketFor(g, undefined)).json).toMatchObject({ error: { code: ErrorCode.AUTH_MISSING } });
    expect((await ticketFor(g, "not-a-jwt")).status).toBe(401);
    const token = await g.token({ sub: "tia" });
    const t = await ticketFor(g, token);
    expect(t.status).toBe(200);
    expect(t.json.expiresIn).toBe(0);
    const ticket = t.json.ticket as string;
    expect(ticket).toMatch(/^t1\.[\w-]+\.[\w-]{43}$/);
    // The ticket is not the JWT: neither its signature nor the token itself is in it.
    expect(ticket).not.toContain(token.split(".")[2]!);
    // A ticket with one character of its body changed is refused (it is signed).
    const [, body, mac] = ticket.split(".");
    const forged = `t1.${body!.slice(0, -2)}${body!.endsWith("A") ? "B" : "A"}${body!.slice(-1)}.${mac}`;
    const refusedForged = await SseClient.open(g.httpUrl, `/ws/sse?ticket=${forged}`);
    expect([refusedForged.status, refusedForged.errorCode]).toEqual([401, ErrorCode.AUTH_INVALID]);
    // Used twice (EventSource reconnects with the same URL).
    for (let i = 0; i < 2; i++) {
      const s = await SseClient.open(g.httpUrl, `/ws/sse?ticket=${ticket}`);
      streams.push(s);
      expect(s.status).toBe(200);
      const welcome = await s.frame((f) => f.type === "welcome");
      expect(welcome).toMatchObject({ tenant: "acme", protocol: "1.0" });
      s.close();
    }
    const jwtInUrl = await SseClient.open(g.httpUrl, `/ws/sse?token=${token}`);
    expect([jwtInUrl.status, jwtInUrl.errorCode]).toEqual([400, ErrorCode.HEADER_INVALID]);
    const bad = await SseClient.open(g.httpUrl, "/ws/sse?ticket=nope");
    expect([bad.status, bad.errorCode]).toEqual([401, ErrorCode.AUTH_INVALID]);
    await new Promise((r) => setTimeout(r, 450));
    const late = await SseClient.open(g.httpUrl, `/ws/sse?ticket=${ticket}`);
    expect([late.status, late.errorCode]).toEqual([401, ErrorCode.AUTH_INVALID]);
    const proto = await SseClient.open(g.httpUrl, "/ws/sse?codec=protobuf", { authorization: `Bearer ${token}` });
    expect([proto.status, proto.errorCode]).toEqual([400, ErrorCode.HEADER_INVALID]);
    const none = await SseClient.open(g.httpUrl, "/ws/sse");
    expect([none.status, none.errorCode]).toEqual([401, ErrorCode.AUTH_MISSING]);
    expect(none.headers["www-authenticate"]).toMatch(/^Bearer/);
  });

  it("fallback - send: a wrong key, another session's id, an ended session are ARQ_SESSION_UNKNOWN; a body over the limit is 413", async () => {
    const g = await start({ limits: { maxFrameBytes: 1024 } });
    const a = await stream(g, { sub: "a" });
    const b = await stream(g, { sub: "b", tenant: "beta" });
    const [aId] = a.session.split(".");
    const [, bKey] = b.session.split(".");
    for (const session of [`${aId}.${bKey}`, `${aId}.`, "nodot", `${aId}x.${a.session.split(".")[1]}`]) {
      const r = await a.send([{ type: "ping" }], { session });
      expect(r.status).toBe(404);
      expect(JSON.parse(r.body).error.code).toBe(ErrorCode.SESSION_UNKNOWN);
    }
    const big = await a.send(JSON.stringify({ type: "publish", room: "r", payload: "x".repeat(70_000) }));
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body).error.code).toBe(ErrorCode.FRAME_TOO_LARGE);
    // A frame over maxFrameBytes inside an allowed body is refused on the stream, as over a WebSocket.
    const from = a.frames.length;
    expect((await a.send(JSON.stringify({ type: "publish", room: "r", payload: "x".repeat(2000), requestId: "big" }))).status).toBe(204);
    expect((await a.frame((f) => f.type === "error", from)).error?.code).toBe(ErrorCode.FRAME_TOO_LARGE);
    // Garbage gets an error frame; the session goes on.
    expect((await a.send("{not json")).status).toBe(204);
    expect((await a.frame((f) => f.type === "error" && f.error?.code === ErrorCode.FRAME_MALFORMED, from)).type).toBe("error");
    expect((await a.request({ type: "ping" })).type).toBe("pong");
    a.close();
    await a.done;
    await new Promise((r) => setTimeout(r, 50));
    const after = await a.send([{ type: "ping" }]);
    expect(after.status).toBe(404);
    // The other tenant's session was not disturbed.
    expect((await b.request({ type: "ping" })).type).toBe("pong");
  });

  it("fallback - Last-Event-ID resumes: a new session resubscribes at the position and gets exactly the missed messages (recovered: true)", async () => {
    const g = await start();
    const ws = await g.client({ sub: "pub" });
    const a = await stream(g, { sub: "reader" });
    await a.request({ type: "subscribe", room: "news" });
    await a.request({ type: "subscribe", room: "orders:*" });
    for (let i = 1; i <= 3; i++) await ws.publish("news", { i });
    await a.until(() => a.frames.filter((f) => f.type === "message").length === 3);
    const position = a.lastId;
    expect(JSON.parse(Buffer.from(position.slice(3), "base64url").toString())).toEqual([["news", 3, expect.any(String)], ["orders:*"]]);
    a.close();
    await a.done;
    for (let i = 4; i <= 6; i++) await ws.publish("news", { i });
    const b = await stream(g, { sub: "reader" }, { headers: { "last-event-id": position } });
    const sub = await b.frame((f) => f.type === "subscribed" && f.room === "news");
    expect(sub.recovered).toBe(true);
    await b.frame((f) => f.type === "subscribed" && f.room === "orders:*");
    await b.until(() => b.frames.filter((f) => f.type === "message").length + (sub.messages?.length ?? 0) >= 3);
    const replayed = [...(sub.messages ?? []), ...b.frames.filter((f) => f.type === "message")];
    expect(replayed.map((m) => payloadOf(m))).toEqual([{ i: 4 }, { i: 5 }, { i: 6 }]);
    // Live after that, and the pattern is back too.
    await ws.publish("orders:9", { o: 1 });
    expect((await b.frame((f) => f.type === "message" && f.room === "orders:9")).room).toBe("orders:9");
    // A room the token may no longer read is refused as a subscribe would be; the rest resume.
    const narrow = await stream(g, { sub: "reader", caps: { sub: ["orders:*"], pub: [] } }, { headers: { "last-event-id": position } });
    expect((await narrow.frame((f) => f.type === "error")).error?.code).toBe(ErrorCode.FORBIDDEN);
    expect((await narrow.frame((f) => f.type === "subscribed" && f.room === "orders:*")).type).toBe("subscribed");
    // An id that is not a position is ignored.
    const junk = await stream(g, {}, { headers: { "last-event-id": "r1.!!!" } });
    expect((await junk.request({ type: "ping" })).type).toBe("pong");
    expect(junk.frames.some((f) => f.type === "subscribed")).toBe(false);
  });

  it("fallback - the lease: a session that answers no ping ends like a silent socket (presence leaves); one that posts pongs stays", async () => {
    const g = await start({ limits: { pingIntervalMs: 150, pongTimeoutMs: 250 } });
    const watcher = await g.client({ sub: "watcher" });
    await watcher.subscribe("lobby");
    const silent = await stream(g, { sub: "silent" });
    await silent.request({ type: "subscribe", room: "lobby" });
    await watcher.waitFor((f) => (f.type === "presence_join" || (f.type === "presence_diff" && JSON.stringify(f.joined ?? []).includes("silent"))) && JSON.stringify(f).includes("silent"));
    const live = await stream(g, { sub: "live" });
    const answering = setInterval(() => {
      if (live.events.some((e) => e.event === "ping")) void live.send([{ type: "pong" }]).catch(() => undefined);
    }, 100);
    closers.push(() => clearInterval(answering));
    await silent.until(() => silent.events.some((e) => e.event === "ping"));
    await silent.done;
    expect(silent.events.some((e) => e.event === "close")).toBe(false);
    await watcher.waitFor((f) => (f.type === "presence_leave" || (f.type === "presence_diff" && JSON.stringify(f.left ?? []).includes("silent"))) && JSON.stringify(f).includes("silent"));
    await new Promise((r) => setTimeout(r, 800));
    expect(live.ended).toBe(false);
    expect((await live.request({ type: "ping" })).type).toBe("pong");
    const metrics = await (await fetch(`${g.httpUrl}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
    expect(metrics).toMatch(/arqon_closes_total\{code="4001"\} [1-9]/);
    expect(metrics).toMatch(/^arqon_fallback_sessions 1$/m);
  });

  it("fallback - heartbeats: a quiet stream gets `: hb` comments every heartbeatMs", async () => {
    const g = await start({ fallback: { heartbeatMs: 100 } });
    const s = await stream(g);
    await s.until(() => s.comments.filter((c) => c === "hb").length >= 3, 2000);
    expect(s.comments[0]).toBe("arqon");
  });

  it("fallback - the server's close codes arrive as a close event: kick 4504, tenant disabled 4503 (and new streams are refused 403)", async () => {
    const g = await start();
    const s = await stream(g, { sub: "kicked" });
    await callApi(g.httpUrl, "POST", "/api/v1/tenants/acme/kick", { user: "kicked" }, KEY);
    await s.done;
    expect(JSON.parse(s.events.find((e) => e.event === "close")!.data)).toEqual({ code: CloseCode.KICKED, reason: expect.any(String) });
    const t = await stream(g, { sub: "t" });
    await callApi(g.httpUrl, "POST", "/api/v1/tenants/acme/disable", undefined, KEY);
    await t.done;
    expect(JSON.parse(t.events.find((e) => e.event === "close")!.data).code).toBe(CloseCode.TENANT_DISABLED);
    const refused = await stream(g, { sub: "t" });
    expect([refused.status, refused.errorCode]).toEqual([403, ErrorCode.TENANT_DISABLED]);
    const tk = await ticketFor(g, await g.token({ sub: "t" }));
    expect([tk.status, (tk.json.error as { code: string }).code]).toEqual([403, ErrorCode.TENANT_DISABLED]);
  });

  it("fallback - limits count sessions: maxConnectionsPerIp refuses the next stream (429); CASIL blocks a posted publish", async () => {
    const g = await start({ limits: { maxConnectionsPerIp: 2 } });
    await stream(g);
    await g.client();
    const third = await stream(g);
    expect([third.status, third.errorCode]).toEqual([429, ErrorCode.TOO_MANY_CONNECTIONS]);
    await gw!.close();
    const casil = await CasilController.create({ policy: { mode: "enforce" } });
    closers.push(() => casil.close());
    const c = await start({ casil });
    const s = await stream(c);
    const reply = await s.request({ type: "publish", room: "r", payload: { aws: "AKIAIOSFODNN7EXAMPLE" } });
    expect(reply.type).toBe("error");
    expect(reply.error?.code).toBe(ErrorCode.CASIL_POLICY_BLOCKED_SECRET);
  });

  it("fallback - CORS: a preflight from an allowed origin is answered; another origin is refused 403", async () => {
    const g = await start({ allowedOrigins: ["http://app.test"] });
    const pre = await fetch(`${g.httpUrl}/ws/send`, { method: "OPTIONS", headers: { origin: "http://app.test", "access-control-request-method": "POST", "access-control-request-headers": "x-arqon-session, content-type" } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("http://app.test");
    expect(pre.headers.get("access-control-allow-headers")).toContain("x-arqon-session");
    expect(pre.headers.get("access-control-allow-credentials")).toBe("true");
    const s = await stream(g, {}, { headers: { origin: "http://app.test" } });
    expect(s.headers["access-control-allow-origin"]).toBe("http://app.test");
    const evil = await stream(g, {}, { headers: { origin: "http://evil.test" } });
    expect([evil.status, evil.errorCode]).toEqual([403, ErrorCode.ORIGIN_FORBIDDEN]);
    const t = await ticketFor(g, await g.token(), { origin: "http://evil.test" });
    expect(t.status).toBe(403);
  });

  it("fallback - off with fallback: false (the paths are 404)", async () => {
    const g = await start({ fallback: false });
    const s = await SseClient.open(g.httpUrl, "/ws/sse", { authorization: `Bearer ${await g.token()}` });
    expect(s.status).toBe(404);
  });

  it("fallback - behind a buffering proxy with a 1 s read timeout, heartbeats keep the stream alive; without them the proxy cuts it", async () => {
    const g = await start({ fallback: { heartbeatMs: 250 } });
    const proxy = await bufferingProxy(g.port, { flushEveryMs: 150, idleTimeoutMs: 1000 });
    closers.push(() => proxy.close());
    const token = await g.token({ sub: "behind" });
    const s = await SseClient.open(`http://127.0.0.1:${proxy.port}`, "/ws/sse", { authorization: `Bearer ${token}` });
    streams.push(s);
    await s.frame((f) => f.type === "welcome");
    // Through the proxy, commands too.
    const sub = await s.request({ type: "subscribe", room: "slow" });
    expect(sub.type).toBe("subscribed");
    await new Promise((r) => setTimeout(r, 3000));
    expect(s.ended).toBe(false);
    const ws = await g.client();
    await ws.publish("slow", { late: true });
    expect(payloadOf(await s.frame((f) => f.type === "message"))).toEqual({ late: true });
    expect(proxy.cuts).toBe(0);

    // The control: the same proxy with heartbeats rarer than its timeout closes the stream.
    const g2 = await startGateway({ fallback: { heartbeatMs: 60_000 } });
    closers.push(() => g2.close());
    const proxy2 = await bufferingProxy(g2.port, { flushEveryMs: 150, idleTimeoutMs: 1000 });
    closers.push(() => proxy2.close());
    const quiet = await SseClient.open(`http://127.0.0.1:${proxy2.port}`, "/ws/sse", { authorization: `Bearer ${await g2.token()}` });
    streams.push(quiet);
    await quiet.frame((f) => f.type === "welcome");
    const started = Date.now();
    await quiet.done;
    expect(Date.now() - started).toBeLessThan(2500);
    expect(proxy2.cuts).toBe(1);
  });
});

/**
 * A proxy the way some corporate ones behave: it holds what the server sends and passes it on in batches every
 * `flushEveryMs`, and it closes an exchange whose server side has sent nothing for `idleTimeoutMs`.
 */
async function bufferingProxy(upstreamPort: number, o: { flushEveryMs: number; idleTimeoutMs: number }): Promise<{ port: number; cuts: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { cuts: 0 };
  const server: TcpServer = createTcpServer((client) => {
    sockets.add(client);
    const upstream = connect(upstreamPort, "127.0.0.1");
    sockets.add(upstream);
    let held: Buffer[] = [];
    let lastFromServer = Date.now();
    // Only a cut in the middle of an event stream counts (idle keep-alive connections of the POSTs close too).
    let streaming = false;
    const flusher = setInterval(() => {
      if (held.length > 0 && client.writable) client.write(Buffer.concat(held));
      held = [];
      if (Date.now() - lastFromServer > o.idleTimeoutMs) {
        if (streaming) state.cuts++;
        end();
      }
    }, o.flushEveryMs);
    const end = (): void => {
      clearInterval(flusher);
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (d: Buffer) => upstream.write(d));
    upstream.on("data", (d: Buffer) => {
      lastFromServer = Date.now();
      if (!streaming && d.includes("text/event-stream")) streaming = true;
      held.push(d);
    });
    client.on("close", end);
    upstream.on("close", end);
    client.on("error", end);
    upstream.on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get cuts() {
      return state.cuts;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
