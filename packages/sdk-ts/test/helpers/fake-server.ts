import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { decodeFrame, encodeJson, type Frame } from "@arqon/core";

/** One connection to the fake server: the frames it sent, and a way to answer. */
export class FakeConnection {
  readonly frames: Frame[] = [];
  readonly protocols: string[];
  readonly url: string;
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: Array<{ test: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];

  constructor(
    readonly ws: WebSocket,
    req: IncomingMessage,
  ) {
    this.url = req.url ?? "/";
    const header = req.headers["sec-websocket-protocol"];
    this.protocols = typeof header === "string" ? header.split(",").map((p) => p.trim()) : [];
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on("message", (data, isBinary) => {
      const decoded = decodeFrame(isBinary ? new Uint8Array(data as Buffer) : (data as Buffer).toString("utf8"), { from: "client" });
      if (!decoded.ok) throw decoded.error;
      const frame = decoded.frame;
      this.frames.push(frame);
      for (const w of [...this.#waiters]) {
        if (w.test(frame)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(frame);
        }
      }
    });
  }

  /** The next frame of `type` sent after this call or already received and not yet consumed by `next`. */
  next(type: Frame["type"], timeoutMs = 2000): Promise<Frame> {
    const seen = this.frames.find((f) => f.type === type && !consumed.has(f));
    if (seen) {
      consumed.add(seen);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} frame within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({
        test: (f) => f.type === type,
        resolve: (f) => {
          clearTimeout(timer);
          consumed.add(f);
          resolve(f);
        },
      });
    });
  }

  send(frame: Frame | string): void {
    this.ws.send(typeof frame === "string" ? frame : encodeJson(frame));
  }

  close(code: number, reason = ""): void {
    this.ws.close(code, reason);
  }
}

const consumed = new WeakSet<Frame>();

export interface FakeServerOptions {
  /** Fields added to the welcome frame sent to every connection. */
  welcome?: Partial<Frame>;
  /** Called for every client frame after it is recorded; the default answers ping/subscribe/publish simply. */
  onFrame?: (conn: FakeConnection, frame: Frame) => void;
  /** Answer the upgrade with this HTTP status instead of accepting it. */
  rejectWith?: number;
}

/**
 * A WebSocket server on 127.0.0.1:0 speaking just enough of the ArqonBus protocol for the client's edge cases, under
 * the test's full control: which frames arrive in which order, and when the socket dies.
 */
export class FakeServer {
  readonly connections: FakeConnection[] = [];
  #wss!: WebSocketServer;
  #connWaiters: Array<(c: FakeConnection) => void> = [];
  #n = 0;

  private constructor(readonly options: FakeServerOptions) {}

  static async start(options: FakeServerOptions = {}): Promise<FakeServer> {
    const server = new FakeServer(options);
    await server.#listen();
    return server;
  }

  get port(): number {
    return (this.#wss.address() as AddressInfo).port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  async #listen(): Promise<void> {
    this.#wss = new WebSocketServer({
      host: "127.0.0.1",
      port: 0,
      handleProtocols: (protocols) => [...protocols].find((p) => p.startsWith("arqon.v1.")) ?? false,
      verifyClient: (_info, done) => {
        if (this.options.rejectWith) done(false, this.options.rejectWith);
        else done(true);
      },
    });
    await new Promise<void>((resolve) => this.#wss.once("listening", () => resolve()));
    this.#wss.on("connection", (ws, req) => {
      const conn = new FakeConnection(ws, req);
      this.connections.push(conn);
      ws.on("error", () => undefined);
      ws.on("message", () => {
        const frame = conn.frames[conn.frames.length - 1]!;
        (this.options.onFrame ?? defaultHandler)(conn, frame);
      });
      conn.send({ type: "welcome", clientId: `c_${++this.#n}`, version: "fake", protocol: "1.0", ...this.options.welcome });
      const waiters = this.#connWaiters;
      this.#connWaiters = [];
      for (const w of waiters) w(conn);
    });
  }

  /** The next connection accepted after this call (or the n-th overall, when `index` is given and already there). */
  nextConnection(timeoutMs = 3000): Promise<FakeConnection> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
      this.#connWaiters.push((c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
  }

  async connection(index: number, timeoutMs = 3000): Promise<FakeConnection> {
    const deadline = Date.now() + timeoutMs;
    while (this.connections.length <= index) {
      if (Date.now() > deadline) throw new Error(`connection #${index} did not arrive`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.connections[index]!;
  }

  async close(): Promise<void> {
    for (const c of this.#wss.clients) c.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}

/** Answers requests the way the gateway would, minimally: enough for tests that do not care. */
export function defaultHandler(conn: FakeConnection, frame: Frame): void {
  const requestId = frame.requestId;
  switch (frame.type) {
    case "ping":
      conn.send(requestId ? { type: "pong", requestId } : { type: "pong" });
      return;
    case "subscribe":
      conn.send({ type: "subscribed", requestId, room: frame.room, offset: frame.since?.offset ?? 0, epoch: frame.since?.epoch ?? "e1" });
      return;
    case "unsubscribe":
      conn.send({ type: "unsubscribed", requestId, room: frame.room });
      return;
    case "publish":
      conn.send({ type: "ack", requestId, room: frame.room, id: "m_x", offset: 1, epoch: "e1" });
      return;
    default:
      return;
  }
}
