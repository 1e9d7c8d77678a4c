import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { CloseCode, ErrorCode, jsonBytes } from "@arqon/core";
import { payloadOf, startGateway, type TestClient, type TestGateway } from "../src/testing.js";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

const yieldTurn = () => new Promise((r) => setImmediate(r));

async function controlStillReceives(gateway: TestGateway, control: TestClient, room: string, marker: string): Promise<void> {
  await gateway.server.publish("acme", room, marker);
  const msg = await control.waitFor((f) => f.type === "message" && f.room === room && payloadOf(f) === marker);
  expect(msg.type).toBe("message");
}

describe("gateway protection", () => {
  it("slow consumer - closed with 4000 past maxPendingBytes while other subscribers keep receiving", async () => {
    // A grace long enough for this reader to resume and read its backlog up to the close frame.
    gw = await startGateway({ limits: { maxPendingBytes: 256 * 1024, slowConsumerCloseMs: 10_000 } });
    const slow = await gw.client({ sub: "slow" });
    const fast = await gw.client({ sub: "fast" });
    await slow.subscribe("firehose");
    await fast.subscribe("firehose");
    const raw = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    raw.pause();
    const blob = "x".repeat(16 * 1024);
    const total = 800;
    for (let i = 0; i < total; i++) {
      await gw.server.publish("acme", "firehose", { i, blob });
      await yieldTurn();
    }
    const received = await fast.collect(total, (f) => f.type === "message", { timeoutMs: 10_000 });
    expect((payloadOf(received[total - 1]!) as { i: number }).i).toBe(total - 1);
    raw.resume();
    const closed = await slow.closed;
    expect(closed.code).toBe(CloseCode.SLOW_CONSUMER);
    expect(closed.reason).toBe("slow consumer");
    expect(slow.frames.filter((f) => f.type === "message").length).toBeLessThan(total);
    expect(fast.ws.readyState).toBe(fast.ws.OPEN);
  });

  it("slow consumer - one that never reads again is cut after slowConsumerCloseMs (not shutdownTimeoutMs) and counted as 4000, not 1006", async () => {
    const operatorKey = "protection-slow-operator-key-0123";
    // The default grace (200 ms); the shutdown timeout is long, so a cut within 2 s is the slow-consumer grace's.
    gw = await startGateway({ limits: { maxPendingBytes: 256 * 1024 }, shutdownTimeoutMs: 30_000, operatorKeys: [operatorKey] });
    const slow = await gw.client({ sub: "slow" });
    await slow.subscribe("firehose");
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const blob = "x".repeat(16 * 1024);
    const closes = async () => {
      const text = await (await fetch(`${gw!.httpUrl}/metrics`, { headers: { authorization: `Bearer ${operatorKey}` } })).text();
      return text.split("\n").filter((l) => l.startsWith("arqon_closes_total{"));
    };
    for (let i = 0; i < 800 && (await closes()).length === 0; i++) {
      await gw.server.publish("acme", "firehose", { i, blob });
      await yieldTurn();
    }
    const deadline = Date.now() + 2000;
    while ((await closes()).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // The socket was terminated (its close frame never got through), yet the series names the code the gateway chose.
    expect(await closes()).toEqual(['arqon_closes_total{code="4000"} 1']);
  });

  it("max payload - a frame over 1 MiB closes that socket with 1009; a control client is unaffected", async () => {
    gw = await startGateway();
    const control = await gw.client({ sub: "control" });
    await control.subscribe("lobby");
    const big = await gw.client({ sub: "big" });
    big.sendRaw(JSON.stringify({ type: "publish", room: "lobby", payload: "x".repeat(1024 * 1024) }));
    const closed = await big.closed;
    expect(closed.code).toBe(CloseCode.MESSAGE_TOO_BIG);
    await controlStillReceives(gw, control, "lobby", "still here");
  });

  it("bad input - each malformed frame gets its documented code; the process and a control client carry on", async () => {
    gw = await startGateway();
    const control = await gw.client({ sub: "control" });
    await control.subscribe("lobby");
    const bad = await gw.client({ sub: "mallory" });
    const cases: Array<[string | Uint8Array, string]> = [
      ["this is not json", ErrorCode.FRAME_MALFORMED],
      ["[1,2,3]", ErrorCode.FRAME_MALFORMED],
      [new Uint8Array([0xff, 0xfe, 0x00, 0x13, 0x37, 0x99, 0x01]), ErrorCode.FRAME_MALFORMED],
      ["[".repeat(5000) + "]".repeat(5000), ErrorCode.FRAME_TOO_DEEP],
      [JSON.stringify({ type: "teleport", room: "lobby" }), ErrorCode.FRAME_UNKNOWN_TYPE],
      [JSON.stringify({ type: "welcome" }), ErrorCode.FRAME_UNEXPECTED],
      [JSON.stringify({ type: "publish", room: 42, payload: 1 }), ErrorCode.FRAME_WRONG_TYPE],
      [JSON.stringify({ type: "publish", room: "lobby" }), ErrorCode.FRAME_MISSING_FIELD],
      [JSON.stringify({ type: "subscribe", room: "no spaces allowed" }), ErrorCode.ROOM_INVALID],
      [JSON.stringify({ type: "publish", room: "lobby", payload: 1, headers: { "x-twist-id": "bad id!" } }), ErrorCode.HEADER_INVALID],
      [JSON.stringify({ type: "command", command: "rm -rf" }), ErrorCode.FRAME_WRONG_TYPE],
    ];
    for (const [data, code] of cases) {
      const before = bad.frames.length;
      bad.sendRaw(data);
      const reply = await bad.waitFor((f) => f.type === "error" && bad.frames.indexOf(f) >= before);
      expect(reply.error?.code, String(data).slice(0, 40)).toBe(code);
    }
    const withId = await bad.request({ type: "publish", room: "lobby", payload: jsonBytes(1), requestId: "req-7" });
    expect(withId.type).toBe("ack");
    bad.sendRaw(JSON.stringify({ type: "teleport", requestId: "req-8" }));
    expect((await bad.waitFor((f) => f.requestId === "req-8")).error?.code).toBe(ErrorCode.FRAME_UNKNOWN_TYPE);
    expect(bad.ws.readyState).toBe(bad.ws.OPEN);
    await controlStillReceives(gw, control, "lobby", "after garbage");
  });

  it("bad input - 2,000 upgrade headers are refused with 431 and a code, twice over", async () => {
    gw = await startGateway();
    const control = await gw.client({ sub: "control" });
    await control.subscribe("lobby");
    const token = await gw.token();
    const many: Array<[string, string]> = Array.from({ length: 2000 }, (_, i) => [`x-h-${i}`, "v"]);
    const r1 = await gw.upgrade({ headers: { authorization: `Bearer ${token}` }, rawHeaders: many });
    expect(r1.status).toBe(431);
    expect(r1.json?.error?.code).toBe(ErrorCode.HEADER_INVALID);
    // Short headers stay under Node's byte limit, so the gateway's own count check answers.
    const short: Array<[string, string]> = Array.from({ length: 2000 }, () => ["a", "b"]);
    const r2 = await gw.upgrade({ headers: { authorization: `Bearer ${token}` }, rawHeaders: short });
    expect(r2.status).toBe(431);
    expect(r2.json?.error?.code).toBe(ErrorCode.HEADER_INVALID);
    expect(r2.json?.error?.message).toContain("headers");
    await controlStillReceives(gw, control, "lobby", "after headers");
  });

  it("bad input - a socket that sends half a handshake and resets does not disturb the server", async () => {
    gw = await startGateway();
    const control = await gw.client({ sub: "control" });
    await control.subscribe("lobby");
    await new Promise<void>((resolve) => {
      const s = connect(gw!.port, "127.0.0.1", () => {
        s.write("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n");
        setTimeout(() => {
          s.resetAndDestroy();
          resolve();
        }, 50);
      });
      s.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => {
      const s = connect(gw!.port, "127.0.0.1", () => s.end("\x00\x01garbage\r\n\r\n"));
      s.on("close", () => resolve());
      s.on("error", () => resolve());
      s.resume();
    });
    await controlStillReceives(gw, control, "lobby", "after resets");
  });

  it("handshake timeout - a client that never finishes its headers is cut after headersTimeout", async () => {
    gw = await startGateway({ http: { headersTimeoutMs: 300 } });
    const started = Date.now();
    const answer = await new Promise<string>((resolve) => {
      let text = "";
      const s = connect(gw!.port, "127.0.0.1", () => s.write("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"));
      s.setEncoding("utf8");
      s.on("data", (d: string) => (text += d));
      s.on("close", () => resolve(text));
      s.on("error", () => undefined);
    });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2500);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it("rate limit - excess publishes get ARQ_RATE_LIMITED, persistent abuse closes with 4002", async () => {
    gw = await startGateway({ limits: { publishRatePerSecond: 1, publishBurst: 2, abuseThreshold: 3 } });
    const alice = await gw.client();
    expect((await alice.publish("lobby", 1)).type).toBe("ack");
    expect((await alice.publish("lobby", 2)).type).toBe("ack");
    const limited = await alice.publish("lobby", 3);
    expect(limited.error).toEqual({ code: ErrorCode.RATE_LIMITED, message: "publish rate exceeded", retryable: true });
    await alice.publish("lobby", 4);
    await alice.publish("lobby", 5).catch(() => undefined);
    const closed = await alice.closed;
    expect(closed.code).toBe(CloseCode.RATE_LIMIT_ABUSE);
  });

  it("keepalive - a client that answers no ping is dropped after pongTimeoutMs and counted as 4001, not 1006", async () => {
    const operatorKey = "protection-ping-operator-key-0123";
    gw = await startGateway({ limits: { pingIntervalMs: 50, pongTimeoutMs: 100 }, operatorKeys: [operatorKey] });
    const ghost = await gw.client({ sub: "ghost" });
    (ghost.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const closes = async () => {
      const text = await (await fetch(`${gw!.httpUrl}/metrics`, { headers: { authorization: `Bearer ${operatorKey}` } })).text();
      return text.split("\n").filter((l) => l.startsWith("arqon_closes_total{"));
    };
    const deadline = Date.now() + 3000;
    while ((await closes()).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await closes()).toEqual(['arqon_closes_total{code="4001"} 1']);
  });

  it("keepalive - a client that answers pings stays connected past the pong timeout", async () => {
    gw = await startGateway({ limits: { pingIntervalMs: 50, pongTimeoutMs: 100 } });
    const alice = await gw.client();
    let pings = 0;
    alice.ws.on("ping", () => pings++);
    await new Promise((r) => setTimeout(r, 400));
    expect((await alice.request({ type: "ping" })).type).toBe("pong");
    // WebSocket pings really went out (and were answered): at one per 50 ms, several in 400 ms.
    expect(pings).toBeGreaterThanOrEqual(3);
  });
});

describe("metrics - close codes", () => {
  it("metrics - a peer's own close codes do not become series of their own (bucketed by range)", async () => {
    const gw = await startGateway({ operatorKeys: ["metrics-close-codes-operator-key-01"] });
    try {
      for (let code = 3000; code < 3060; code++) {
        const c = await gw.client();
        await c.close(code);
      }
      const c = await gw.client();
      await c.close(1000);
      const series = async () => {
        const text = await (await fetch(`${gw.httpUrl}/metrics`, { headers: { authorization: "Bearer metrics-close-codes-operator-key-01" } })).text();
        return text.split("\n").filter((l) => l.startsWith("arqon_closes_total{")).sort();
      };
      const deadline = Date.now() + 5000;
      while ((await series()).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await series()).toEqual(['arqon_closes_total{code="1000"} 1', 'arqon_closes_total{code="other_3000_3999"} 60']);
    } finally {
      await gw.close();
    }
  });
});
