import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Gauge } from "prom-client";
import type { WebSocket } from "ws";
import { ArqonError, ErrorCode } from "@arqon/core";
import { AuthError, bearerToken, type AuthContext } from "./auth.js";
import type { BatchSocket, Connection, OutFrame } from "./connection.js";
import type { ClusterControl } from "./control.js";
import { authRefusal, type Admission, type Gateway, type Refusal } from "./gateway.js";
import { parseTarget, queryParam, readBody, sendError, sendJson } from "./http-util.js";

/**
 * The fallback transports (docs/protocol.md, "Fallback transports"): Server-Sent Events and HTTP streaming for
 * clients whose network breaks WebSockets. `true` (the default) turns them on with the defaults below.
 */
export interface FallbackOptions {
  /** A `: hb` comment goes out on a stream that wrote nothing for this long (keeps proxies from closing it). @default 15000 */
  heartbeatMs?: number;
  /** How long a ticket from `POST <path>/ticket` opens streams (never past its token's expiry). @default 60000 */
  ticketTtlMs?: number;
  /** The `retry:` a stream announces: how long `EventSource` waits before it reconnects by itself. @default 1000 */
  retryMs?: number;
}

/** The fallback options with every default applied. */
export interface ResolvedFallback {
  heartbeatMs: number;
  ticketTtlMs: number;
  retryMs: number;
}

/** Applies the defaults to `ArqonServerOptions.fallback`; undefined when it is `false`. */
export function resolveFallback(option: boolean | FallbackOptions | undefined): ResolvedFallback | undefined {
  if (option === false) return undefined;
  const o = option === true || option === undefined ? {} : option;
  const resolved = { heartbeatMs: o.heartbeatMs ?? 15_000, ticketTtlMs: o.ticketTtlMs ?? 60_000, retryMs: o.retryMs ?? 1000 };
  for (const [name, value] of Object.entries(resolved)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `fallback.${name} must be a whole number of milliseconds above 0`);
  }
  return resolved;
}

/** The most frames one `POST <path>/send` may carry, as a multiple of `limits.maxFrameBytes` for its body. */
const SEND_BODY_FRAMES = 64;
/** A position (`id:`) longer than this is not written: the stream's id is cleared instead. */
const MAX_POSITION_CHARS = 4096;
const POSITION_PREFIX = "r1.";
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const DATA = Buffer.from("data: ");
const END = Buffer.from("\n\n");
const PING_EVENT = 'event: ping\ndata: {"type":"ping"}\n\n';
const HEARTBEAT = ": hb\n\n";
const CORS_HEADERS = "authorization, content-type, last-event-id, x-arqon-session";

/** A JSON frame's text with any line break (JSON whitespace in a published payload) turned into a space. */
function oneLine(data: Buffer): Buffer {
  if (data.indexOf(LF) < 0 && data.indexOf(CR) < 0) return data;
  const copy = Buffer.from(data);
  for (let i = 0; i < copy.length; i++) if (copy[i] === LF || copy[i] === CR) copy[i] = SPACE;
  return copy;
}

/**
 * The server side of one fallback stream: it stands in for a WebSocket under a `Connection` (the gateway handles it
 * like any socket) and writes frames as SSE events on the streaming HTTP response. Inbound frames arrive by
 * `POST <path>/send` and are emitted as "message" events, as ws emits them.
 */
export class StreamSocket extends EventEmitter implements BatchSocket {
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;
  readyState = 1;
  /** No permessage-deflate here (HTTP compression is the proxy's business). */
  readonly extensions = "";
  /** The connection this stream carries (set when the session opens). */
  conn: Connection | undefined;
  private lastWriteAt = Date.now();
  /** The position last written as `id:` ("" until one was). */
  private lastId = "";
  private closeCode: number | undefined;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly res: ServerResponse,
    heartbeatMs: number,
  ) {
    super();
    res.on("close", () => this.ended());
    res.on("error", (err) => this.emit("error", err));
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastWriteAt >= heartbeatMs) this.write(HEARTBEAT);
    }, Math.max(20, Math.floor(heartbeatMs / 2)));
    this.heartbeat.unref();
  }

  /** Bytes the response still holds: what slow-consumer protection measures, as a WebSocket's `bufferedAmount`. */
  get bufferedAmount(): number {
    return this.res.writableLength;
  }

  /** Writes raw event-stream text (events, comments). */
  write(text: string | Buffer): void {
    if (this.readyState !== this.OPEN) return;
    this.res.write(text);
    this.lastWriteAt = Date.now();
  }

  /** One flush's frames as events, in one write; the last carries the session's position when it moved. */
  sendBatch(frames: readonly Pick<OutFrame, "data">[]): void {
    if (this.readyState !== this.OPEN || frames.length === 0) return;
    if (frames.length === 1) {
      // One frame, shared by a fan-out: its event (with the one-room id most streams then share) is composed once.
      const data = frames[0]!.data;
      const id = this.position();
      const m = lastEvent;
      if (m !== undefined && m.data === data && m.id === id) return this.write(m.bytes);
      const bytes = Buffer.concat(id === undefined ? [DATA, oneLine(data), END] : [Buffer.from(`id: ${id}\n`), DATA, oneLine(data), END]);
      lastEvent = { data, id, bytes };
      return this.write(bytes);
    }
    const parts: Buffer[] = [];
    const last = frames.length - 1;
    for (let i = 0; i < frames.length; i++) {
      if (i === last) {
        const id = this.position();
        if (id !== undefined) parts.push(Buffer.from(`id: ${id}\n`));
      }
      parts.push(DATA, oneLine(frames[i]!.data), END);
    }
    this.write(Buffer.concat(parts));
  }

  /** ws's `send`: one frame (the welcome, when the gateway writes it at once). */
  send(data: Buffer): void {
    this.sendBatch([{ data }]);
  }

  /** The lease check (the gateway's keepalive): a `ping` event, answered by any POST to the session. */
  ping(): void {
    this.write(PING_EVENT);
  }

  /** Writes the close code and reason as a `close` event and ends the response. */
  close(code?: number, reason?: string): void {
    if (this.readyState !== this.OPEN) return;
    const c = code ?? 1005;
    this.write(`event: close\ndata: ${JSON.stringify({ code: c, reason: reason ?? "" })}\n\n`);
    this.readyState = this.CLOSING;
    this.closeCode = c;
    this.res.end();
  }

  /** Cuts the stream (no close event: the client sees it end, as a WebSocket's 1006). */
  terminate(): void {
    if (this.readyState === this.CLOSED) return;
    this.readyState = this.CLOSING;
    this.res.destroy();
  }

  private ended(): void {
    if (this.readyState === this.CLOSED) return;
    this.readyState = this.CLOSED;
    clearInterval(this.heartbeat);
    // A stream that went away without a close from the server: the client left or the link broke (no status).
    this.emit("close", this.closeCode ?? 1005, Buffer.alloc(0));
  }

  /**
   * The session's position when it differs from the last one written: `r1.` and the base64url of a JSON list with an
   * entry per subscription (`[room, offset, epoch?]`, `[pattern]`), "" to clear it when it grows past 4 KB.
   */
  private position(): string | undefined {
    const conn = this.conn;
    if (conn === undefined) return undefined;
    if (conn.subscriptions.size === 1 && conn.patterns.size === 0) {
      // The common shape, one room: the fan-out of a message gives every such stream the same id, made once.
      const sub = conn.subscriptions.values().next().value!;
      if (!sub.closed && sub.buffer === null) {
        const id = singleRoomPosition(sub.room, sub.lastOffset, sub.epoch);
        if (id === this.lastId) return undefined;
        this.lastId = id;
        return id;
      }
    }
    const entries: Array<[string] | [string, number] | [string, number, string]> = [];
    for (const sub of conn.subscriptions.values()) {
      if (sub.closed || sub.buffer !== null) continue;
      entries.push(sub.epoch ? [sub.room, sub.lastOffset, sub.epoch] : [sub.room, sub.lastOffset]);
    }
    for (const ps of conn.patterns.values()) if (!ps.closed) entries.push([ps.pattern]);
    if (entries.length === 0 && this.lastId === "") return undefined;
    let id = POSITION_PREFIX + Buffer.from(JSON.stringify(entries)).toString("base64url");
    if (id.length > MAX_POSITION_CHARS) id = "";
    if (id === this.lastId) return undefined;
    this.lastId = id;
    return id;
  }
}

/** The last single-frame event composed: the same frame to many streams with the same id is one buffer. */
let lastEvent: { data: Buffer; id: string | undefined; bytes: Buffer } | undefined;

/** The last one-room position made (a fan-out asks for the same one once per subscriber). */
let lastSingle: { room: string; offset: number; epoch: string | undefined; id: string } | undefined;

function singleRoomPosition(room: string, offset: number, epoch: string | undefined): string {
  const m = lastSingle;
  if (m !== undefined && m.offset === offset && m.room === room && m.epoch === epoch) return m.id;
  const entry = epoch ? [room, offset, epoch] : [room, offset];
  let id = POSITION_PREFIX + Buffer.from(JSON.stringify([entry])).toString("base64url");
  if (id.length > MAX_POSITION_CHARS) id = "";
  lastSingle = { room, offset, epoch, id };
  return id;
}

/** A position entry read back from `Last-Event-ID`. */
type PositionEntry = { room: string; offset?: number; epoch?: string };

/** Reads a `Last-Event-ID` position; undefined when it is not one (it is then ignored). */
export function parsePosition(value: string, maxEntries: number): PositionEntry[] | undefined {
  if (!value.startsWith(POSITION_PREFIX)) return undefined;
  let list: unknown;
  try {
    list = JSON.parse(Buffer.from(value.slice(POSITION_PREFIX.length), "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  if (!Array.isArray(list) || list.length > maxEntries) return undefined;
  const out: PositionEntry[] = [];
  for (const e of list) {
    if (!Array.isArray(e) || typeof e[0] !== "string" || e.length > 3) return undefined;
    if (e.length === 1) {
      out.push({ room: e[0] });
      continue;
    }
    if (!Number.isSafeInteger(e[1]) || (e[1] as number) < 0) return undefined;
    if (e.length === 3 && typeof e[2] !== "string") return undefined;
    out.push(e.length === 3 ? { room: e[0], offset: e[1] as number, epoch: e[2] as string } : { room: e[0], offset: e[1] as number });
  }
  return out;
}

/** What a ticket carries: the verified token's identity, and when the ticket stops opening streams. */
interface TicketBody {
  /** The token's verified payload. */
  k: AuthContext["claims"];
  s: string;
  t: string;
  r?: string;
  a: boolean;
  c?: AuthContext["caps"];
  /** The token's own expiry (ms). */
  x?: number;
  /** The connect hook's presence info, base64. */
  i?: string;
  /** The ticket's expiry (ms). */
  e: number;
}

/** Forwarded `send`s larger than this are refused (413): they travel as one control message. */
const MAX_FORWARDED_BYTES = 512 * 1024;
const SEND_TOPIC = "fallback.send";

interface Session {
  socket: StreamSocket;
  key: Buffer;
}

/**
 * The HTTP side of the fallback transports: `POST <path>/ticket`, `GET <path>/sse` (the stream, read by EventSource
 * or fetch) and `POST <path>/send`. Sessions are gateway connections whose socket is a `StreamSocket`.
 */
export class FallbackTransport {
  private readonly sessions = new Map<string, Session>();
  private readonly prefix: string;
  /** Signs tickets: with the cluster key when there is one (any node then reads them), else a key of this process. */
  private readonly sign: (data: string) => Buffer;
  private readonly offSend: () => void;

  constructor(
    private readonly gw: Gateway,
    readonly options: ResolvedFallback,
    private readonly control: ClusterControl,
  ) {
    this.prefix = gw.path.endsWith("/") ? gw.path : gw.path + "/";
    const sessions = this.sessions;
    new Gauge({
      name: "arqon_fallback_sessions",
      help: "Fallback-transport sessions (SSE / HTTP streaming) open on this node; also counted in arqon_connections",
      registers: [gw.metrics.registry],
      collect() {
        this.set(sessions.size);
      },
    });
    const local = randomBytes(32);
    this.sign = (data) => control.mac(data) ?? createHmac("sha256", local).update(data).digest();
    // A send that reached another node than its session's (no session affinity): that node forwarded it here.
    this.offSend = control.on(SEND_TOPIC, (body) => {
      const b = body as { s?: unknown; b?: unknown; n?: unknown };
      if (typeof b.s !== "string" || typeof b.b !== "string") return;
      const session = this.sessionOf(b.s);
      if (session !== undefined) this.deliver(session, Buffer.from(b.b, "utf8"), b.n === true);
    });
  }

  /** How many fallback sessions are open on this node. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Whether `path` is one of the fallback endpoints. */
  matches(path: string): boolean {
    if (!path.startsWith(this.prefix)) return false;
    const rest = path.slice(this.prefix.length);
    return rest === "sse" || rest === "send" || rest === "ticket";
  }

  /** Serves one request to a fallback endpoint (`matches` said yes). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = parseTarget(req.url ?? "/");
    if (!target) return sendError(res, 400, ErrorCode.HEADER_INVALID, "request target is not a valid URL");
    const cors = this.cors(req);
    if (cors === undefined) return sendError(res, 403, ErrorCode.ORIGIN_FORBIDDEN, "origin not allowed");
    const method = req.method ?? "GET";
    const endpoint = target.pathname.slice(this.prefix.length);
    if (method === "OPTIONS") {
      res.writeHead(204, {
        ...cors,
        "access-control-allow-methods": endpoint === "sse" ? "GET" : "POST",
        "access-control-allow-headers": CORS_HEADERS,
        "access-control-max-age": "600",
      });
      res.end();
      return;
    }
    const wanted = endpoint === "sse" ? "GET" : "POST";
    if (method !== wanted) return sendError(res, 405, ErrorCode.VALIDATION_ERROR, `use ${wanted}`, { ...cors, allow: wanted });
    if (endpoint === "ticket") return this.ticket(req, res, cors);
    if (endpoint === "send") return this.send(req, res, target.query, cors);
    return this.stream(req, res, target.query, cors);
  }

  /** Stops taking forwarded sends (the sessions close with the gateway's connections). */
  close(): void {
    this.offSend();
  }

  /** CORS headers for the request's origin: {} without one, undefined for an origin `allowedOrigins` refuses. */
  private cors(req: IncomingMessage): Record<string, string> | undefined {
    const origin = req.headers.origin;
    if (origin === undefined) return {};
    if (!this.gw.originAllowed(origin)) return undefined;
    const headers: Record<string, string> = { "access-control-allow-origin": origin, vary: "Origin" };
    // Cookies (a connect hook's sessions) only for origins the operator named.
    if (this.gw.options.allowedOrigins?.includes(origin)) headers["access-control-allow-credentials"] = "true";
    return headers;
  }

  private refuse(res: ServerResponse, refused: Refusal, cors: Record<string, string>): void {
    this.gw.metrics.upgradesRejected.inc({ code: refused.code });
    sendError(res, refused.status, refused.code, refused.message, { ...cors, ...refused.headers });
  }

  /** `POST <path>/ticket`: trades the bearer token for a short-lived ticket that EventSource can put in its URL. */
  private async ticket(req: IncomingMessage, res: ServerResponse, cors: Record<string, string>): Promise<void> {
    const token = bearerToken(req);
    if (token === undefined) {
      return this.refuse(res, authRefusal(new AuthError(ErrorCode.AUTH_MISSING, "a bearer token is required (Authorization header)")), cors);
    }
    let auth: AuthContext;
    try {
      auth = await this.gw.authenticator.verify(token);
    } catch (err) {
      const e = err instanceof AuthError ? err : new AuthError(ErrorCode.AUTH_INVALID, "token could not be verified");
      return this.refuse(res, authRefusal(e), cors);
    }
    const tenants = this.gw.tenancy.tenants;
    const tenantRefusal = tenants.refusal(auth.tenant);
    if (tenantRefusal) return this.refuse(res, { ok: false, status: 403, code: tenantRefusal.code, message: tenantRefusal.message }, cors);
    if (tenants.revocationOf(auth)) return this.refuse(res, { ok: false, status: 401, code: ErrorCode.AUTH_REVOKED, message: "token revoked" }, cors);
    const now = Date.now();
    const expiresAt = Math.min(now + this.options.ticketTtlMs, auth.expiresAt ?? Number.POSITIVE_INFINITY);
    sendJson(res, 200, { ticket: this.mint(auth, expiresAt), expiresIn: Math.max(0, Math.floor((expiresAt - now) / 1000)) }, { ...cors, "cache-control": "no-store" });
  }

  /**
   * A ticket: the token's verified identity and the ticket's expiry, signed. Nothing is stored, so it opens streams on
   * any node of the cluster (they share the cluster key) and survives the node that issued it.
   */
  private mint(auth: AuthContext, expiresAt: number): string {
    const body: TicketBody = { k: auth.claims, s: auth.sub, t: auth.tenant, a: auth.admin, e: expiresAt };
    if (auth.role !== undefined) body.r = auth.role;
    if (auth.caps !== undefined) body.c = auth.caps;
    if (auth.expiresAt !== undefined) body.x = auth.expiresAt;
    if (auth.info !== undefined) body.i = Buffer.from(auth.info).toString("base64");
    const payload = Buffer.from(JSON.stringify(body)).toString("base64url");
    return `t1.${payload}.${this.sign(`ticket\n${payload}`).toString("base64url")}`;
  }

  /** The identity a ticket carries; undefined when it is not one of ours, or expired. */
  private ticketAuth(ticket: string): AuthContext | undefined {
    const parts = ticket.split(".");
    if (parts.length !== 3 || parts[0] !== "t1") return undefined;
    const given = Buffer.from(parts[2]!, "base64url");
    const expected = this.sign(`ticket\n${parts[1]}`);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let b: TicketBody;
    try {
      b = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as TicketBody;
    } catch {
      return undefined;
    }
    if (!(b.e > Date.now())) return undefined;
    const auth: AuthContext = { sub: b.s, tenant: b.t, admin: b.a, claims: b.k };
    if (b.r !== undefined) auth.role = b.r;
    if (b.c !== undefined) auth.caps = b.c;
    if (b.x !== undefined) auth.expiresAt = b.x;
    if (b.i !== undefined) auth.info = Buffer.from(b.i, "base64");
    return auth;
  }

  /** `GET <path>/sse`: admits the client as a WebSocket upgrade would, then streams its session. */
  private async stream(req: IncomingMessage, res: ServerResponse, query: string, cors: Record<string, string>): Promise<void> {
    const gw = this.gw;
    const codec = queryParam(query, "codec");
    if (codec !== null && codec !== "json") return this.refuse(res, { ok: false, status: 400, code: ErrorCode.HEADER_INVALID, message: 'the fallback transports carry JSON only (codec "json")' }, cors);
    if (queryParam(query, "token") !== null) {
      return this.refuse(res, { ok: false, status: 400, code: ErrorCode.HEADER_INVALID, message: "no token in the URL: use a ticket (POST <path>/ticket) or the Authorization header" }, cors);
    }
    const ticketParam = queryParam(query, "ticket");
    let auth: AuthContext | undefined;
    if (ticketParam !== null) {
      auth = this.ticketAuth(ticketParam);
      if (auth === undefined) {
        return this.refuse(res, authRefusal(new AuthError(ErrorCode.AUTH_INVALID, "unknown or expired ticket")), cors);
      }
    }
    const ip = req.socket.remoteAddress ?? "unknown";
    const gone = (): boolean => res.destroyed || req.socket.destroyed;
    const admitted = await gw.admit(req, query, ip, gone, auth === undefined ? { token: bearerToken(req), codec: "json" } : { auth, codec: "json" });
    if (admitted === undefined) return;
    if (!admitted.ok) return this.refuse(res, admitted, cors);
    this.open(req, res, query, admitted, cors);
  }

  private open(req: IncomingMessage, res: ServerResponse, query: string, admitted: Admission, cors: Record<string, string>): void {
    const gw = this.gw;
    req.socket.setNoDelay(true);
    res.writeHead(200, {
      ...cors,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      // nginx and others buffer responses unless told not to.
      "x-accel-buffering": "no",
    });
    const socket = new StreamSocket(res, this.options.heartbeatMs);
    socket.write(`: arqon\nretry: ${this.options.retryMs}\n\n`);
    const key = randomBytes(18);
    let conn: Connection;
    try {
      conn = gw.openSession(socket as unknown as WebSocket, admitted, (c) => {
        socket.conn = c;
        this.sessions.set(c.id, { socket, key });
        socket.write(`event: session\ndata: ${JSON.stringify({ session: `${c.id}.${key.toString("base64url")}`, send: `${this.prefix}send` })}\n\n`);
      });
    } catch (err) {
      gw.logger.error({ err }, "fallback session setup failed");
      socket.close(1011, "internal error");
      return;
    }
    socket.once("close", () => {
      if (this.sessions.get(conn.id)?.socket === socket) this.sessions.delete(conn.id);
    });
    const last = req.headers["last-event-id"] ?? queryParam(query, "lastEventId") ?? undefined;
    if (typeof last === "string" && last !== "") this.resume(conn, last);
  }

  /** A stream opened with a position: subscribes to each of its rooms since its offset, as the client would. */
  private resume(conn: Connection, last: string): void {
    const entries = parsePosition(last, this.gw.limits.maxSubscriptions);
    if (entries === undefined) {
      this.gw.logger.debug({ clientId: conn.id }, "fallback stream: Last-Event-ID is not a position; ignored");
      return;
    }
    for (const e of entries) {
      const frame: Record<string, unknown> = { type: "subscribe", room: e.room };
      if (e.offset !== undefined) frame.since = e.epoch === undefined ? { offset: e.offset } : { offset: e.offset, epoch: e.epoch };
      // Through the gateway's inbound path, as if the client had sent it: decode, capabilities, limits, in turn.
      this.gw.onMessage(conn, Buffer.from(JSON.stringify(frame)), false);
    }
  }

  /** `POST <path>/send`: hands the session's frames to the gateway; their replies go out on the stream. */
  private async send(req: IncomingMessage, res: ServerResponse, query: string, cors: Record<string, string>): Promise<void> {
    const header = req.headers["x-arqon-session"];
    const credential = typeof header === "string" ? header : queryParam(query, "session");
    const session = credential === null ? undefined : this.sessionOf(credential);
    if (session === undefined && (credential === null || !this.control.clustered)) {
      req.resume();
      return sendError(res, 404, ErrorCode.SESSION_UNKNOWN, "no such session (it ended, or never existed)", cors);
    }
    const limit = session === undefined ? Math.min(MAX_FORWARDED_BYTES, this.gw.limits.maxFrameBytes * SEND_BODY_FRAMES) : this.gw.limits.maxFrameBytes * SEND_BODY_FRAMES;
    const body = await readBody(req, limit);
    if (body === undefined) return sendError(res, 413, ErrorCode.FRAME_TOO_LARGE, `a send body is at most ${limit} bytes`, cors);
    const ndjson = (req.headers["content-type"] ?? "").startsWith("application/x-ndjson");
    if (session === undefined) {
      // Not here: the session may live on another node (no session affinity). The broadcast is confirmed before the
      // answer, so the client's next send, wherever it lands, arrives after this one.
      try {
        await this.control.send(SEND_TOPIC, { s: credential, b: body.toString("utf8"), n: ndjson }, true);
      } catch (err) {
        this.gw.logger.warn({ err }, "fallback send could not be forwarded");
        return sendError(res, 503, ErrorCode.BACKEND_UNAVAILABLE, "the session lives on another node and the cluster is unreachable", { ...cors, "retry-after": "1" });
      }
      res.writeHead(204, cors);
      res.end();
      return;
    }
    if (!this.deliver(session, body, ndjson)) return sendError(res, 404, ErrorCode.SESSION_UNKNOWN, "the session ended", cors);
    res.writeHead(204, cors);
    res.end();
  }

  /** Hands a send's frames to its session's connection; false when the session has ended. */
  private deliver(session: Session, body: Buffer, ndjson: boolean): boolean {
    const { socket } = session;
    const conn = socket.conn!;
    if (socket.readyState !== socket.OPEN) return false;
    // Any word from the client renews its lease.
    conn.awaitingPong = false;
    if (!ndjson) {
      if (body.length > 0) socket.emit("message", body, false);
    } else {
      for (let at = 0; at < body.length; ) {
        let end = body.indexOf(LF, at);
        if (end < 0) end = body.length;
        const line = body.subarray(at, end);
        at = end + 1;
        if (line.length > 0 && !(line.length === 1 && line[0] === CR)) socket.emit("message", line, false);
      }
    }
    return true;
  }

  private sessionOf(credential: string): Session | undefined {
    const dot = credential.indexOf(".");
    if (dot < 0) return undefined;
    const session = this.sessions.get(credential.slice(0, dot));
    if (session === undefined) return undefined;
    const key = Buffer.from(credential.slice(dot + 1), "base64url");
    return key.length === session.key.length && timingSafeEqual(key, session.key) ? session : undefined;
  }
}
