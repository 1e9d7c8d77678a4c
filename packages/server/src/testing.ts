/**
 * @arqon/server/testing — a real gateway on 127.0.0.1 port 0 for tests, with token minting and a WebSocket client
 * that waits for frames by predicate. Other packages' tests reuse it:
 *
 * ```ts
 * await using gw = await startGateway();
 * const alice = await gw.client({ sub: "alice" });
 * await alice.subscribe("lobby");
 * ```
 */
import { randomBytes } from "node:crypto";
import { request, type IncomingHttpHeaders } from "node:http";
import { SignJWT, type JWTPayload } from "jose";
import { pino } from "pino";
import WebSocket from "ws";
import { decodeFrame, encodeJson, encodeProto, jsonBytes, parseJsonBytes, type Frame } from "@arqon/core";
import { createArqonServer, type ArqonServer, type ArqonServerOptions } from "./index.js";
import type { Capabilities } from "./auth.js";

export interface StartGatewayOptions extends Partial<ArqonServerOptions> {
  /** HS256 secret the gateway accepts and `token()` signs with. @default random */
  secret?: string;
}

export interface TokenClaims {
  /** @default "alice" */
  sub?: string;
  /** @default "acme" */
  tenant?: string;
  role?: string;
  caps?: Capabilities;
  /** Lifetime in seconds; a negative value mints an already-expired token. @default 3600 */
  ttlSec?: number;
  /** Extra claims. */
  claims?: JWTPayload;
}

export interface ClientOptions extends TokenClaims {
  /** Use this token instead of minting one. */
  token?: string;
  /** Outbound codec requested with `?codec=`. @default "json" */
  codec?: "json" | "protobuf";
  /** Send frames as protobuf (binary) instead of JSON text. @default same as codec */
  sendCodec?: "json" | "protobuf";
  headers?: Record<string, string>;
  protocols?: string[];
  /** How the token travels. @default "header" */
  tokenIn?: "header" | "query" | "protocol";
}

export interface WaitOptions {
  /** @default 3000 */
  timeoutMs?: number;
}

/** The parsed JSON payload of a frame (payload, args as JSON). */
export function payloadOf(frame: Frame): unknown {
  return frame.payload === undefined ? undefined : parseJsonBytes(frame.payload);
}

interface Waiter {
  predicate: (frame: Frame) => boolean;
  resolve: (frame: Frame) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** A real `ws` client that records every frame it receives. */
export class TestClient implements AsyncDisposable {
  readonly frames: Frame[] = [];
  /** Server frames this client could not decode (should stay empty). */
  readonly decodeErrors: string[] = [];
  private readonly consumed = new Set<Frame>();
  private readonly waiters = new Set<Waiter>();
  private requestCounter = 0;
  readonly closed: Promise<{ code: number; reason: string }>;
  welcome!: Frame;

  constructor(
    readonly ws: WebSocket,
    private readonly sendCodec: "json" | "protobuf",
  ) {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      const result = decodeFrame(isBinary ? new Uint8Array(data) : data.toString("utf8"), { from: "any" });
      if (!result.ok) {
        this.decodeErrors.push(result.error.message);
        return;
      }
      const frame = result.frame;
      this.frames.push(frame);
      for (const w of this.waiters) {
        if (w.predicate(frame)) {
          this.waiters.delete(w);
          clearTimeout(w.timer);
          this.consumed.add(frame);
          w.resolve(frame);
          return;
        }
      }
    });
    ws.on("error", () => undefined);
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        for (const w of this.waiters) {
          clearTimeout(w.timer);
          w.reject(new Error(`connection closed (${code}) while waiting for a frame`));
        }
        this.waiters.clear();
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  get clientId(): string {
    return this.welcome.clientId!;
  }

  /** Sends a frame in this client's codec. */
  send(frame: Frame): void {
    this.ws.send(this.sendCodec === "json" ? encodeJson(frame) : encodeProto(frame));
  }

  /** Sends raw data as is (text for strings, binary for buffers). */
  sendRaw(data: string | Uint8Array): void {
    this.ws.send(data, { binary: typeof data !== "string" });
  }

  /**
   * Resolves with the first received frame matching `predicate` that no earlier wait returned, looking at frames
   * already received first. Rejects after the timeout or when the connection closes.
   */
  waitFor(predicate: (frame: Frame) => boolean, options: WaitOptions = {}): Promise<Frame> {
    for (const frame of this.frames) {
      if (!this.consumed.has(frame) && predicate(frame)) {
        this.consumed.add(frame);
        return Promise.resolve(frame);
      }
    }
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.reject(new Error("connection is closed"));
    const timeoutMs = options.timeoutMs ?? 3000;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new Error(`no matching frame within ${timeoutMs} ms; received: ${this.frames.map((f) => f.type).join(", ")}`));
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  /** Waits for a frame of `type` (optionally in `room`). */
  next(type: Frame["type"], room?: string, options?: WaitOptions): Promise<Frame> {
    return this.waitFor((f) => f.type === type && (room === undefined || f.room === room), options);
  }

  /** Collects `count` frames matching `predicate`. */
  async collect(count: number, predicate: (frame: Frame) => boolean, options?: WaitOptions): Promise<Frame[]> {
    const out: Frame[] = [];
    for (let i = 0; i < count; i++) out.push(await this.waitFor(predicate, options));
    return out;
  }

  /** Sends a frame with a fresh requestId and resolves with the reply carrying it (any type, errors included). */
  request(frame: Frame, options?: WaitOptions): Promise<Frame> {
    const requestId = frame.requestId ?? `r${++this.requestCounter}`;
    const reply = this.waitFor((f) => f.requestId === requestId, options);
    this.send({ ...frame, requestId });
    return reply;
  }

  subscribe(room: string, extra: Partial<Frame> = {}): Promise<Frame> {
    return this.request({ type: "subscribe", room, ...extra });
  }

  publish(room: string, payload: unknown, extra: Partial<Frame> = {}): Promise<Frame> {
    return this.request({ type: "publish", room, payload: jsonBytes(payload), ...extra });
  }

  close(code?: number): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code);
    return this.closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) {
      this.ws.terminate();
      await this.closed;
    }
  }
}

export interface UpgradeResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** Parsed JSON body, when it is JSON. */
  json?: { error?: { code: string; message: string } };
}

/** A running test gateway. `await using gw = await startGateway()` closes it (and its clients) at scope end. */
export interface TestGateway extends AsyncDisposable {
  readonly server: ArqonServer;
  readonly port: number;
  /** ws://127.0.0.1:<port>/ws */
  readonly url: string;
  /** http://127.0.0.1:<port> */
  readonly httpUrl: string;
  readonly secret: string;
  token(claims?: TokenClaims): Promise<string>;
  /** Connects, waits for `welcome`, and returns the client (closed with the gateway). */
  client(options?: ClientOptions): Promise<TestClient>;
  /** Performs an upgrade request by hand and reports the HTTP answer (101 for success). */
  upgrade(options?: { path?: string; headers?: Record<string, string>; rawHeaders?: Array<[string, string]> }): Promise<UpgradeResult>;
  close(): Promise<void>;
}

/** Mints an HS256 token for a test gateway's secret. */
export async function mintToken(secret: string, claims: TokenClaims = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload = { tenant: claims.tenant ?? "acme", ...claims.claims };
  if (claims.role) payload.role = claims.role;
  if (claims.caps) payload.caps = claims.caps;
  return new SignJWT(payload)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(claims.sub ?? "alice")
    .setIssuedAt(now)
    .setExpirationTime(now + (claims.ttlSec ?? 3600))
    .sign(Buffer.from(secret, "utf8"));
}

export async function startGateway(options: StartGatewayOptions = {}): Promise<TestGateway> {
  const secret = options.secret ?? randomBytes(24).toString("base64url");
  const { secret: _ignored, ...rest } = options;
  const server = createArqonServer({
    logger: pino({ level: process.env.ARQON_TEST_LOG_LEVEL ?? "silent" }),
    processMetrics: false,
    ...rest,
    auth: options.auth ?? { secret },
  });
  const address = await server.listen(0, "127.0.0.1");
  const port = address.port;
  const httpUrl = `http://127.0.0.1:${port}`;
  const url = `ws://127.0.0.1:${port}${options.path ?? "/ws"}`;
  const clients = new Set<TestClient>();

  const gw: TestGateway = {
    server,
    port,
    url,
    httpUrl,
    secret,
    token: (claims) => mintToken(secret, claims),
    async client(opts = {}) {
      const token = opts.token ?? (await mintToken(secret, opts));
      const codec = opts.codec ?? "json";
      const query = new URLSearchParams();
      if (codec === "protobuf") query.set("codec", "protobuf");
      const headers: Record<string, string> = { ...opts.headers };
      const protocols = [...(opts.protocols ?? [])];
      const tokenIn = opts.tokenIn ?? "header";
      if (tokenIn === "header") headers.authorization = `Bearer ${token}`;
      else if (tokenIn === "query") query.set("token", token);
      else protocols.push(`bearer.${token}`);
      const qs = query.toString();
      const ws = new WebSocket(qs ? `${url}?${qs}` : url, protocols, { headers });
      const client = new TestClient(ws, opts.sendCodec ?? codec);
      clients.add(client);
      void client.closed.then(() => clients.delete(client));
      const welcome = client.next("welcome");
      welcome.catch(() => undefined);
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
        ws.once("error", reject);
      });
      client.welcome = await welcome;
      return client;
    },
    upgrade(opts = {}) {
      return new Promise<UpgradeResult>((resolve, reject) => {
        const headers: Array<[string, string]> = [
          ["Host", `127.0.0.1:${port}`],
          ["Connection", "Upgrade"],
          ["Upgrade", "websocket"],
          ["Sec-WebSocket-Version", "13"],
          ["Sec-WebSocket-Key", randomBytes(16).toString("base64")],
          ...Object.entries(opts.headers ?? {}),
          ...(opts.rawHeaders ?? []),
        ];
        const req = request({ host: "127.0.0.1", port, path: opts.path ?? "/ws", method: "GET", headers: headers.flat() as unknown as Record<string, string> });
        req.on("upgrade", (res, socket) => {
          socket.destroy();
          resolve({ status: res.statusCode ?? 101, headers: res.headers, body: "" });
        });
        req.on("response", (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const body = Buffer.concat(chunks).toString("utf8");
            let json: UpgradeResult["json"];
            try {
              json = JSON.parse(body) as UpgradeResult["json"];
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
          });
          res.on("error", reject);
        });
        req.on("error", reject);
        req.end();
      });
    },
    async close() {
      await Promise.all([...clients].map((c) => c[Symbol.asyncDispose]()));
      await server.close();
    },
    [Symbol.asyncDispose]() {
      return gw.close();
    },
  };
  return gw;
}
