/**
 * @arqon/server/testing — a real gateway on 127.0.0.1 port 0 for tests, with token minting and a WebSocket client
 * that waits for frames by predicate. Other packages' tests reuse it:
 *
 * ```ts
 * await using gw = await startGateway();
 * const alice = await gw.client({ sub: "alice" });
 * await alice.subscribe("lobby");
 * ```
 *
 * @module @arqon/server/testing
 */
import { randomBytes } from "node:crypto";
import { request, type IncomingHttpHeaders } from "node:http";
import { SignJWT, type JWTPayload } from "jose";
import { pino } from "pino";
import WebSocket from "ws";
import { decodeFrame, encodeJson, encodeProto, jsonBytes, parseJsonBytes, type Frame } from "@arqon/core";
import { createArqonServer, type ArqonServer, type ArqonServerOptions } from "./index.js";
import type { Capabilities } from "./auth.js";

/** Options of `startGateway`: any server option, and `secret` (a given `auth` is used instead of `{ secret }`). */
export interface StartGatewayOptions extends Partial<ArqonServerOptions> {
  /** HS256 secret the gateway accepts and `token()` signs with. @default random */
  secret?: string;
}

/** What a minted test token says. */
export interface TokenClaims {
  /** @default "alice" */
  sub?: string;
  /** @default "acme" */
  tenant?: string;
  /** The `role` claim ("admin" makes a tenant admin); none when unset. */
  role?: string;
  /** The `caps` claim; none when unset (every room of the tenant). */
  caps?: Capabilities;
  /** Lifetime in seconds; a negative value mints an already-expired token. @default 3600 */
  ttlSec?: number;
  /** Extra claims. */
  claims?: JWTPayload;
}

/** Options of `TestGateway.client`: the claims of the token it mints, or a token, and how it connects. */
export interface ClientOptions extends TokenClaims {
  /** Use this token instead of minting one. */
  token?: string;
  /** Outbound codec requested with `?codec=`. @default "json" */
  codec?: "json" | "protobuf";
  /** Send frames as protobuf (binary) instead of JSON text. @default same as codec */
  sendCodec?: "json" | "protobuf";
  /** Extra headers of the upgrade request. */
  headers?: Record<string, string>;
  /** Subprotocols to offer (a `bearer.<token>` one is added with `tokenIn: "protocol"`). */
  protocols?: string[];
  /** How the token travels; "none" sends no token (a connect proxy hook admits the upgrade, e.g. by cookie). @default "header" */
  tokenIn?: "header" | "query" | "protocol" | "none";
  /**
   * Protocol version asked for with `?protocol=`. @default none (the server's default, 1.0). The client records frames
   * as the wire has them: a 1.1 message lacks what `expandMessage` restores.
   */
  protocol?: string;
}

/** How long a wait for a frame may take. */
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
  /** Every frame received, in order (frames a wait returned included). */
  readonly frames: Frame[] = [];
  /** Every frame received as the wire had it (text, or bytes), in order; `frames[i]` is `raw[i]` decoded. */
  readonly raw: Array<string | Uint8Array> = [];
  /** Server frames this client could not decode (should stay empty). */
  readonly decodeErrors: string[] = [];
  private readonly consumed = new Set<Frame>();
  private readonly waiters = new Set<Waiter>();
  private requestCounter = 0;
  /** Resolves when the socket has closed, with the close code and reason. */
  readonly closed: Promise<{
    /** The WebSocket close code. */
    code: number;
    /** The close reason text. */
    reason: string;
  }>;
  /** The `welcome` frame (set by `TestGateway.client` before it resolves). */
  welcome!: Frame;

  constructor(
    /** The underlying `ws` socket. */
    readonly ws: WebSocket,
    private readonly sendCodec: "json" | "protobuf",
  ) {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      const wire = isBinary ? new Uint8Array(data) : data.toString("utf8");
      const result = decodeFrame(wire, { from: "any" });
      if (!result.ok) {
        this.decodeErrors.push(result.error.message);
        return;
      }
      const frame = result.frame;
      this.raw.push(wire);
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

  /** The connection's id, from the welcome frame. */
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

  /** Subscribes to `room` (`extra`: more frame fields, e.g. `since`); resolves with `subscribed` or `error`. */
  subscribe(room: string, extra: Partial<Frame> = {}): Promise<Frame> {
    return this.request({ type: "subscribe", room, ...extra });
  }

  /** Publishes a JSON payload to `room` (`extra`: more frame fields); resolves with `ack` or `error`. */
  publish(room: string, payload: unknown, extra: Partial<Frame> = {}): Promise<Frame> {
    return this.request({ type: "publish", room, payload: jsonBytes(payload), ...extra });
  }

  /** Starts the closing handshake (with `code`, when given) and resolves as `closed` does. */
  close(code?: number): Promise<{
    /** The WebSocket close code. */
    code: number;
    /** The close reason text. */
    reason: string;
  }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code);
    return this.closed;
  }

  /** Terminates the socket without a closing handshake, unless it is closed already, and waits until it is. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) {
      this.ws.terminate();
      await this.closed;
    }
  }
}

/** The HTTP answer to a hand-made upgrade request (`TestGateway.upgrade`). */
export interface UpgradeResult {
  /** The HTTP status: 101 when the upgrade succeeded. */
  status: number;
  /** The response headers. */
  headers: IncomingHttpHeaders;
  /** The response body ("" for a 101). */
  body: string;
  /** Parsed JSON body, when it is JSON. */
  json?: {
    /** The refusal, as every HTTP error body carries it. */
    error?: {
      /** The error code, e.g. "ARQ_AUTH_MISSING". */
      code: string;
      /** What went wrong. */
      message: string;
    };
  };
}

/** A running test gateway. `await using gw = await startGateway()` closes it (and its clients) at scope end. */
export interface TestGateway extends AsyncDisposable {
  /** The server under test. */
  readonly server: ArqonServer;
  /** The port it listens on (127.0.0.1). */
  readonly port: number;
  /** ws://127.0.0.1:<port>/ws */
  readonly url: string;
  /** http://127.0.0.1:<port> */
  readonly httpUrl: string;
  /** The HS256 secret tokens are signed with. */
  readonly secret: string;
  /** Mints a token the gateway accepts (see `TokenClaims` for the defaults). */
  token(claims?: TokenClaims): Promise<string>;
  /** Connects, waits for `welcome`, and returns the client (closed with the gateway). */
  client(options?: ClientOptions): Promise<TestClient>;
  /** Performs an upgrade request by hand and reports the HTTP answer (101 for success). */
  upgrade(options?: { path?: string; headers?: Record<string, string>; rawHeaders?: Array<[string, string]> }): Promise<UpgradeResult>;
  /** Terminates every client it made, then closes the server. */
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

/**
 * Starts a gateway on 127.0.0.1, port 0 (a free one), with a silent logger (ARQON_TEST_LOG_LEVEL sets its level), no
 * process metrics and in-memory backends unless `options` says otherwise. Resolves once it listens.
 */
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
      const tokenIn = opts.tokenIn ?? "header";
      const token = tokenIn === "none" ? "" : (opts.token ?? (await mintToken(secret, opts)));
      const codec = opts.codec ?? "json";
      const query = new URLSearchParams();
      if (codec === "protobuf") query.set("codec", "protobuf");
      if (opts.protocol !== undefined) query.set("protocol", opts.protocol);
      const headers: Record<string, string> = { ...opts.headers };
      const protocols = [...(opts.protocols ?? [])];
      if (tokenIn === "header") headers.authorization = `Bearer ${token}`;
      else if (tokenIn === "query") query.set("token", token);
      else if (tokenIn === "protocol") protocols.push(`bearer.${token}`);
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

export { SseTestClient, type SendResult, type StreamEvent } from "./testing-sse.js";
