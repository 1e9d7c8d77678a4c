import { afterEach, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { startGateway } from "@arqon/server/testing";
import { ArqonError } from "@arqon/core";

// The environment has no WebSocket: the default implementation resolves to nothing, as in a runtime without a global.
vi.mock("isomorphic-ws", () => ({ default: undefined }));

const { ArqonClient, ClientErrorCode } = await import("../src/index.js");

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe("client - no WebSocket implementation", () => {
  it("constructor - throws ARQ_WEBSOCKET_UNAVAILABLE naming options.WebSocket, not ARQ_CLIENT_CLOSED, when no fallback is available either", () => {
    let error: unknown;
    // No fetch either: none of the transports exists here (Node 20 has no global EventSource).
    vi.stubGlobal("fetch", undefined);
    try {
      new ArqonClient("ws://127.0.0.1:1/ws", { token: "t" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ArqonError);
    expect((error as ArqonError).code).toBe("ARQ_WEBSOCKET_UNAVAILABLE");
    expect((error as ArqonError).code).toBe(ClientErrorCode.WEBSOCKET_UNAVAILABLE);
    expect((error as ArqonError).message).toMatch(/options\.WebSocket/);
    vi.unstubAllGlobals();
  });

  it("constructor - with fetch, the client falls back to http-stream and connects to a real gateway", async () => {
    const gw = await startGateway();
    cleanup.push(() => gw.close());
    const c = new ArqonClient(gw.url, { token: await gw.token({ sub: "alice" }) });
    cleanup.push(() => c.close());
    expect(c.transport).toBe("http-stream");
    await c.connect();
    expect(c.status).toMatchObject({ type: "connected", transport: "http-stream" });
  });

  it("constructor - an injected implementation connects to a real gateway", async () => {
    const gw = await startGateway();
    cleanup.push(() => gw.close());
    const c = new ArqonClient(gw.url, { token: await gw.token({ sub: "alice" }), WebSocket: WebSocket as never });
    cleanup.push(() => c.close());
    await c.connect();
    expect(c.status.type).toBe("connected");
  });
});
