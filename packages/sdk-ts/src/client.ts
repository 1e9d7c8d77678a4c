import DefaultWebSocket from "isomorphic-ws";
import {
  ArqonError,
  CloseCode,
  ErrorCode,
  LATEST_PROTOCOL_VERSION,
  isProtocolVersion,
  jsonBytes,
  parseJsonBytes,
  shouldReconnect,
  type Codec,
  type Frame,
  type Limits,
  type ProtocolVersion,
} from "@arqon/core";
import { backoffDelay, resolveReconnect, type ReconnectOptions, type ResolvedReconnect } from "./backoff.js";
import { decodeInbound, findCodec } from "./codec.js";
import { Emitter } from "./emitter.js";
import { ArqonRequestError, ClientErrorCode } from "./errors.js";
import { SseSocket, StreamSocket, type FallbackEnv } from "./fallback.js";
import { Room, type RoomHost } from "./room.js";
import type {
  ClientStatus,
  ClosedEvent,
  ConnectedEvent,
  DisconnectedEvent,
  ReconnectingEvent,
  Transport,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";

/** The URL `new ArqonClient()` connects to when given none: a gateway on this machine, on the server's default port. */
export const DEFAULT_URL = "ws://127.0.0.1:9100/ws";

/** Options of `new ArqonClient(url, options)`. `token` or `getToken` is required. */
export interface ArqonClientOptions {
  /** A JWT. Use `getToken` instead when tokens expire and can be renewed. */
  token?: string;
  /**
   * Returns a fresh JWT. Called before the first connection when `token` is absent, before the token expires (to
   * refresh it with an `auth` frame, without reconnecting), and after the server refused an expired token.
   */
  getToken?: () => string | Promise<string>;
  /** The WebSocket implementation. @default the global WebSocket in browsers, `ws` in Node */
  WebSocket?: WebSocketConstructor;
  /**
   * The transports to try, in order (docs/sdk-ts.md, "Fallback transports"): an attempt that ends before `welcome`
   * without an auth refusal moves on to the next one, and the client stays on a transport once it was welcomed there.
   * Transports the environment lacks are left out: "websocket" without a WebSocket implementation, "sse" without
   * `EventSource` or fetch, "http-stream" without fetch and ReadableStream, and both fallbacks with `codec:
   * "protobuf"` (they carry JSON only). @default ["websocket", "sse", "http-stream"]
   */
  transports?: Transport[];
  /** The EventSource implementation of the "sse" transport (e.g. the `eventsource` package in Node). @default the global EventSource */
  EventSource?: typeof EventSource;
  /** The fetch of the fallback transports. @default the global fetch */
  fetch?: typeof fetch;
  /** Wire format. "protobuf" needs `import "@arqon/sdk/protobuf"` first. @default "json" */
  codec?: "json" | "protobuf";
  /**
   * Wire protocol version to ask for (`?protocol=` at the upgrade). "1.1" has the compact message frame (a fraction
   * of 1.0's bytes per message); messages reach the application the same either way, and a server that only speaks
   * 1.0 is read as 1.0 (see `ConnectedEvent.protocol`). @default "1.1"
   */
  protocol?: ProtocolVersion;
  /**
   * How the token travels: "protocol" puts `bearer.<token>` in the Sec-WebSocket-Protocol list (works in browsers,
   * keeps it out of URLs and access logs); "query" appends `?token=`. @default "protocol"
   */
  tokenTransport?: "protocol" | "query";
  /** Reconnect policy, or false to never reconnect. */
  reconnect?: ReconnectOptions | boolean;
  /** A request without a reply after this long is rejected with ARQ_REQUEST_TIMEOUT. @default 10000 */
  requestTimeoutMs?: number;
  /** Refresh the token this long before it expires (at most half its remaining life). @default 30000 */
  tokenRefreshMarginMs?: number;
  /**
   * Dead-connection detection: after `intervalMs` without any frame from the server the client sends `ping`; without
   * an answer within `timeoutMs` it drops the connection (code 4001) and reconnects. Defaults come from the server's
   * `welcome` limits (pingIntervalMs, pongTimeoutMs), else 25000 and 10000. false disables it.
   */
  heartbeat?:
    | {
        /** Send `ping` after this many ms without any frame from the server. */
        intervalMs?: number;
        /** Drop the connection when no frame at all arrives within this many ms after that `ping`. */
        timeoutMs?: number;
      }
    | false;
}

/** The events an {@link ArqonClient} emits, by name, with the value each listener receives. */
export interface ClientEvents {
  /** Every change of `client.status`, with the new status. */
  status: ClientStatus;
  /** An attempt to connect starts: the first one or a reconnect (a token is fetched first when one is needed). */
  connecting: {
    /** 0 for the attempt `connect()` starts, else the reconnect attempt number (as in `reconnecting`). */
    attempt: number;
  };
  /** The server welcomed the connection (the first time, or again after a reconnect: see `reconnected`). */
  connected: ConnectedEvent;
  /** A welcomed connection was lost; `willReconnect` tells whether `reconnecting` or `closed` follows. */
  disconnected: DisconnectedEvent;
  /** A reconnect attempt is scheduled after a lost connection or a failed attempt. */
  reconnecting: ReconnectingEvent;
  /** Terminal: no further reconnects (close(), a terminal close code, or max attempts). `connect()` starts over. */
  closed: ClosedEvent;
  /** A token was refreshed on the live connection. */
  token: {
    /** The new token's expiry (epoch ms) as the server sees it; absent when it does not expire. */
    expiresAt?: number;
  };
  /** Failures that belong to no request: undecodable frames, errors without a request id, token refresh failures. */
  error: ArqonError;
  /**
   * The application's backend subscribed this connection to a room (server API): the room, subscribed already, whose
   * `message` listeners get its messages from now on (add them in this listener to miss none). Such a subscription ends with the
   * connection: after a reconnect the backend subscribes again, the client does not (unless `room.subscribe()` was
   * called, which makes it the client's own). When the backend ends it, the room emits `unsubscribed` with reason
   * "server".
   */
  serverSubscribed: Room;
}

/** Per-request options: `onReply` runs synchronously with the reply, before any later frame is handled. */
export interface RequestOptions {
  timeoutMs?: number;
  onReply?: (reply: Frame) => void;
}

interface Pending {
  frame: Frame;
  onReply?: (reply: Frame) => void;
  resolve: (frame: Frame) => void;
  reject: (err: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
  sent: boolean;
}

const OPEN = 1;
const UNAUTHORIZED_RE = /Unexpected server response: (\d{3})/;

function messageOf(event: unknown): string {
  if (event && typeof event === "object") {
    const e = event as { message?: unknown; error?: { message?: unknown } };
    if (typeof e.message === "string") return e.message;
    if (e.error && typeof e.error.message === "string") return e.error.message;
  }
  return "";
}

function toBytes(data: unknown): string | Uint8Array | undefined {
  if (typeof data === "string") return data;
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data)) {
    const parts = data.filter((d): d is Uint8Array => d instanceof Uint8Array);
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
  return undefined;
}

/**
 * A connection to an ArqonBus gateway that stays up: it reconnects with backoff, renews subscriptions with the last
 * seen position so missed messages are recovered, and refreshes expiring tokens in place.
 *
 * ```ts
 * const client = new ArqonClient("ws://127.0.0.1:9100/ws", { token });
 * await client.connect();
 * await client.room("lobby").subscribe((m) => console.log(m.payload));
 * await client.room("lobby").publish({ text: "hi" });
 * ```
 */
export class ArqonClient extends Emitter<ClientEvents> {
  /** The gateway URL, as given to the constructor (with tokenTransport "query" the token is added per connection). */
  readonly url: string;
  #options: ArqonClientOptions;
  #codec: Codec;
  #protocol: ProtocolVersion;
  /** The protocol version the server's last `welcome` put in force ("1.0" until then). */
  #wireProtocol = "1.0";
  #WebSocket: WebSocketConstructor | undefined;
  #env: FallbackEnv;
  /** The transports available here, in the order to try them, and the index of the current one. */
  #transports: Transport[];
  #ti = 0;
  /** The current transport got a `welcome`: the client stays on it for reconnects. */
  #stay = false;
  #reconnect: ResolvedReconnect;
  #token: string | undefined;
  #needFreshToken: boolean;
  #status: ClientStatus = { type: "idle" };
  #ws: WebSocketLike | undefined;
  #welcomed = false;
  #everConnected = false;
  #attempt = 0;
  #seq = 0;
  #pending = new Map<string, Pending>();
  #rooms = new Map<string, Room>();
  /** The rooms whose name is a pattern (wildcard subscriptions). */
  #globs: Room[] = [];
  #waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #lastReceived = 0;
  #pingSentAt: number | undefined;
  #heartbeat: { intervalMs: number; timeoutMs: number } | undefined;
  #httpStatus: number | undefined;
  #authRetried = false;
  #userClosing: Promise<void> | undefined;
  #socketClosed: (() => void) | undefined;

  /**
   * Creates the client without connecting (call `connect()`). Throws an ArqonError: ARQ_AUTH_MISSING without `token`
   * and `getToken`, ARQ_CODEC_UNAVAILABLE for `codec: "protobuf"` without `import "@arqon/sdk/protobuf"`, and
   * ARQ_WEBSOCKET_UNAVAILABLE when none of the `transports` is available (no WebSocket implementation and no fallback),
   * ARQ_PROTOCOL_UNSUPPORTED for a `protocol` it does not speak.
   */
  constructor(url: string = DEFAULT_URL, options: ArqonClientOptions = {}) {
    super();
    this.url = url;
    this.#options = options;
    const codec = findCodec(options.codec ?? "json");
    if (!codec) {
      throw new ArqonError(ClientErrorCode.CODEC_UNAVAILABLE, `codec "${options.codec}" is not registered; import "@arqon/sdk/${options.codec}" first`);
    }
    this.#codec = codec;
    const protocol = options.protocol ?? LATEST_PROTOCOL_VERSION;
    if (!isProtocolVersion(protocol)) {
      throw new ArqonError(ErrorCode.PROTOCOL_UNSUPPORTED, `protocol "${String(protocol)}" is not supported; use "1.0" or "1.1"`);
    }
    this.#protocol = protocol;
    const WS = options.WebSocket ?? (DefaultWebSocket as unknown as WebSocketConstructor | undefined);
    const env: FallbackEnv = { EventSource: options.EventSource ?? globalThis.EventSource, fetch: options.fetch ?? globalThis.fetch };
    const http = codec.name == "json" && env.fetch;
    this.#transports = (options.transports ?? ["websocket", "sse", "http-stream"]).filter((t) =>
      t == "websocket" ? WS : http && (t == "sse" ? env.EventSource : typeof ReadableStream != "undefined"),
    );
    if (!this.#transports.length) {
      throw new ArqonError(
        ClientErrorCode.WEBSOCKET_UNAVAILABLE,
        'no WebSocket implementation in this environment: pass one as options.WebSocket (e.g. `import WebSocket from "ws"`)',
      );
    }
    this.#WebSocket = WS;
    this.#env = env;
    this.#reconnect = resolveReconnect(options.reconnect);
    this.#token = options.token;
    this.#needFreshToken = options.token === undefined;
    if (options.token === undefined && !options.getToken) {
      throw new ArqonError(ErrorCode.AUTH_MISSING, "ArqonClient needs options.token or options.getToken");
    }
  }

  /** The current state (see `ClientStatus`). */
  get status(): ClientStatus {
    return this.#status;
  }

  /** True between `welcome` and the loss of the connection. */
  get connected(): boolean {
    return this.#status.type === "connected";
  }

  /** True after a terminal close, until `connect()` is called again. */
  get closed(): boolean {
    return this.#status.type === "closed";
  }

  /** The transport of the current connection, or of the attempt under way (see `transports`). */
  get transport(): Transport {
    return this.#transports[this.#ti]!;
  }

  /** This connection's id as the server assigned it (in `welcome`). */
  get clientId(): string | undefined {
    return this.#status.type === "connected" ? this.#status.clientId : undefined;
  }

  /**
   * Opens the connection; resolves at the server's `welcome`. Failed attempts are retried per the reconnect policy;
   * rejects (ARQ_CLIENT_CLOSED, with the close `code` in `detail`) when the client closes before connecting.
   */
  connect(): Promise<void> {
    if (this.#status.type === "connected") return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (this.#status.type === "idle" || this.#status.type === "closed") {
      this.#attempt = 0;
      this.#authRetried = false;
      this.#userClosing = undefined;
      void this.#open();
    }
    return done;
  }

  /** Closes the connection with 1000 and stops reconnecting. Pending requests are rejected with ARQ_CLIENT_CLOSED. */
  close(): Promise<void> {
    if (this.#userClosing) return this.#userClosing;
    if (this.#status.type === "idle" || this.#status.type === "closed") {
      this.#terminate(CloseCode.NORMAL, "client closed");
      return Promise.resolve();
    }
    this.#userClosing = (async () => {
      clearTimeout(this.#reconnectTimer);
      const ws = this.#ws;
      if (ws && ws.readyState <= OPEN) {
        const gone = new Promise<void>((resolve) => (this.#socketClosed = resolve));
        ws.close(CloseCode.NORMAL, "client closed");
        const timer = setTimeout(() => this.#drop(CloseCode.NORMAL, "client closed"), 2000);
        await gone;
        clearTimeout(timer);
      } else {
        this.#terminate(CloseCode.NORMAL, "client closed");
      }
    })();
    return this.#userClosing;
  }

  /** The room called `name` (the same object on every call). */
  room(name: string): Room {
    let room = this.#rooms.get(name);
    if (!room) {
      const host: RoomHost = {
        connected: () => this.connected,
        closed: () => this.closed,
        request: (frame, options) => this.#request(frame, options),
        protocol: () => this.#wireProtocol,
      };
      room = new Room(name, host);
      this.#rooms.set(name, room);
      if (room._glob) this.#globs.push(room);
    }
    return room;
  }

  /**
   * Runs a server command (`op.<name>.<verb>`). Resolves with its result; rejects with an ArqonRequestError whose
   * `code` is the server's (AUTHORIZATION_ERROR, VALIDATION_ERROR, NOT_FOUND, FEATURE_DISABLED, ...).
   */
  async command<T = unknown>(name: string, args?: unknown, options: { timeoutMs?: number } = {}): Promise<T> {
    const frame: Frame = { type: "command", command: name };
    if (args !== undefined) frame.args = jsonBytes(args);
    const reply = await this.#request(frame, options);
    if (reply.status === "error" || reply.error) {
      const info = reply.error ?? { code: ErrorCode.INTERNAL_ERROR, message: "command failed" };
      throw new ArqonRequestError(info.code, info.message, { requestId: reply.requestId, retryable: info.retryable });
    }
    return (reply.payload === undefined || reply.payload.length === 0 ? undefined : parseJsonBytes(reply.payload)) as T;
  }

  /**
   * Asks the application backend to run `method` (the server's rpc proxy hook); resolves with the `data` it answered.
   * Rejects with an ArqonRequestError: ARQ_PROXY_DENIED, ARQ_PROXY_UNAVAILABLE, ARQ_FEATURE_DISABLED (no rpc hook), ...
   */
  async rpc<T = unknown>(method: string, data?: unknown, options: { timeoutMs?: number } = {}): Promise<T> {
    const reply = await this.#request({ type: "rpc", method, data: jsonBytes(data ?? null) }, options);
    return (reply.data && parseJsonBytes(reply.data)) as T;
  }

  /** Round trip to the server; resolves with the time it took in milliseconds. */
  async ping(): Promise<number> {
    const started = Date.now();
    await this.#request({ type: "ping" });
    return Date.now() - started;
  }

  // -----------------------------------------------------------------------------------------------------------------
  // Connection lifecycle

  #setStatus(status: ClientStatus): void {
    this.#status = status;
    this.emit("status", status);
  }

  async #open(): Promise<void> {
    this.#welcomed = false;
    this.#httpStatus = undefined;
    this.#setStatus({ type: "connecting" });
    this.emit("connecting", { attempt: this.#attempt });
    if (this.#options.getToken && this.#needFreshToken) {
      try {
        this.#token = await this.#options.getToken();
        this.#needFreshToken = false;
      } catch (err) {
        this.emit("error", new ArqonError(ErrorCode.AUTH_MISSING, "getToken failed", { cause: err }));
        this.#afterLoss(CloseCode.ABNORMAL, "getToken failed", false);
        return;
      }
      if (this.#status.type !== "connecting") return; // closed while waiting for the token
    }
    const token = this.#token ?? "";
    const wire = this.#codec.name === "protobuf" ? "arqon.v1.proto" : "arqon.v1.json";
    const protocols = [wire];
    let url = this.url;
    // 1.0 is every server's default: asking for it would only lengthen the URL (and older servers ignore the query).
    if (this.#protocol !== "1.0" && !/[?&]protocol=/.test(url)) {
      url += (url.includes("?") ? "&" : "?") + "protocol=" + this.#protocol;
    }
    const transport = this.transport;
    // The fallback transports send the token in a header (or trade it for a ticket), never in the URL.
    if (this.#options.tokenTransport === "query" && transport == "websocket") {
      url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
    } else {
      protocols.push("bearer." + token);
    }
    let ws: WebSocketLike;
    try {
      ws = transport == "websocket" ? new this.#WebSocket!(url, protocols) : new (transport == "sse" ? SseSocket : StreamSocket)(url, protocols, this.#env);
    } catch (err) {
      this.#onClose(CloseCode.PROTOCOL_ERROR, `cannot open ${this.url}: ${messageOf(err) || String(err)}`);
      return;
    }
    this.#ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onmessage = (event) => {
      if (this.#ws === ws) this.#onData(event.data);
    };
    ws.onerror = (event) => {
      if (this.#ws !== ws) return;
      const match = UNAUTHORIZED_RE.exec(messageOf(event));
      if (match) this.#httpStatus = Number(match[1]);
    };
    ws.onclose = (event) => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      this.#detach(ws);
      this.#onClose(event.code, event.reason ?? "");
    };
  }

  #detach(ws: WebSocketLike): void {
    ws.onmessage = null;
    ws.onclose = null;
    ws.onopen = null;
    // Keep an error listener: `ws` (Node) throws on an error event without one.
    ws.onerror = () => undefined;
  }

  /** Forgets the current socket at once (half-open or unresponsive) and handles the loss as a close with `code`. */
  #drop(code: number, reason: string): void {
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = undefined;
    this.#detach(ws);
    const terminate = (ws as unknown as { terminate?: () => void }).terminate;
    try {
      if (typeof terminate === "function") terminate.call(ws);
      else ws.close(code, reason);
    } catch {
      // already closing; nothing more to release
    }
    this.#onClose(code, reason);
  }

  #onClose(code: number, reason: string): void {
    this.#stopTimers();
    const wasConnected = this.#welcomed;
    this.#welcomed = false;
    for (const room of this.#rooms.values()) room._disconnected();
    for (const [id, p] of this.#pending) {
      if (!p.sent) continue;
      clearTimeout(p.timer);
      this.#pending.delete(id);
      p.reject(new ArqonRequestError(ClientErrorCode.CONNECTION_CLOSED, `connection closed (${code}) before the reply`, { requestId: id, retryable: true }));
    }
    const done = this.#socketClosed;
    this.#socketClosed = undefined;
    if (this.#userClosing) {
      if (wasConnected) this.#emitDisconnected({ code, reason, willReconnect: false });
      this.#terminate(code, reason || "client closed");
      done?.();
      return;
    }
    let effectiveCode = code;
    let effectiveReason = reason;
    const refused = this.#httpStatus === 401 || this.#httpStatus === 403;
    if (!wasConnected && !refused) {
      // Failed before `welcome`: the next transport at once; after the last one, or when the transport the client
      // stayed on fails, the first one again after the usual backoff.
      if (this.#stay) this.#stay = false;
      else if (++this.#ti < this.#transports.length) return void this.#open();
      this.#ti = 0;
    }
    if (refused) {
      effectiveCode = this.#httpStatus === 401 ? CloseCode.AUTH_INVALID : CloseCode.FORBIDDEN;
      effectiveReason = `upgrade refused with HTTP ${this.#httpStatus}`;
      // An expired or revoked token may be replaced once; a second refusal in a row is final.
      if (this.#httpStatus === 401 && this.#options.getToken && !this.#authRetried) {
        this.#authRetried = true;
        this.#needFreshToken = true;
        this.#afterLoss(effectiveCode, effectiveReason, wasConnected, true);
        return;
      }
    }
    this.#afterLoss(effectiveCode, effectiveReason, wasConnected);
  }

  #afterLoss(code: number, reason: string, wasConnected: boolean, forceRetry = false): void {
    let retry = forceRetry || shouldReconnect(code);
    if (code === CloseCode.TOKEN_EXPIRED) {
      if (this.#options.getToken) this.#needFreshToken = true;
      else retry = false;
    }
    if (!this.#reconnect.enabled) retry = false;
    if (retry && this.#attempt >= this.#reconnect.maxAttempts) retry = false;
    if (wasConnected) this.#emitDisconnected({ code, reason, willReconnect: retry });
    // A `disconnected` listener may have called close() (or connect() again after it).
    if (this.#status.type !== "disconnected" && this.#status.type !== "connecting" && this.#status.type !== "reconnecting") return;
    if (this.#userClosing) return;
    if (!retry) {
      const why = wasConnected || this.#attempt === 0 ? reason : `${reason} (gave up after ${this.#attempt} attempts)`;
      this.#terminate(code, why);
      return;
    }
    this.#attempt += 1;
    const delay = backoffDelay(this.#attempt, this.#reconnect);
    const event: ReconnectingEvent = { attempt: this.#attempt, delay };
    // The timer exists before listeners run, so that a close() inside a listener cancels it.
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#status.type === "reconnecting") void this.#open();
    }, delay);
    this.#setStatus({ type: "reconnecting", ...event });
    this.emit("reconnecting", event);
  }

  #emitDisconnected(event: DisconnectedEvent): void {
    this.#setStatus({ type: "disconnected", ...event });
    this.emit("disconnected", event);
  }

  #terminate(code: number, reason: string): void {
    this.#stopTimers();
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const ws = this.#ws;
    if (ws) {
      this.#ws = undefined;
      this.#detach(ws);
      try {
        ws.close(CloseCode.NORMAL, "client closed");
      } catch {
        // the socket is already gone
      }
    }
    const error = new ArqonRequestError(ClientErrorCode.CLIENT_CLOSED, `client closed: ${reason || code}`, { detail: { code, reason } });
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      this.#pending.delete(id);
      p.reject(error);
    }
    for (const room of this.#rooms.values()) room._closed(error);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(error);
    if (this.#status.type === "closed") return;
    const event: ClosedEvent = { code, reason };
    this.#setStatus({ type: "closed", ...event });
    this.emit("closed", event);
  }

  #stopTimers(): void {
    clearTimeout(this.#refreshTimer);
    clearTimeout(this.#heartbeatTimer);
    this.#refreshTimer = undefined;
    this.#heartbeatTimer = undefined;
    this.#pingSentAt = undefined;
  }

  // -----------------------------------------------------------------------------------------------------------------
  // Frames

  #onData(data: unknown): void {
    this.#lastReceived = Date.now();
    const bytes = toBytes(data);
    if (bytes === undefined) {
      this.emit("error", new ArqonError(ErrorCode.FRAME_MALFORMED, "received a WebSocket message of an unknown kind"));
      return;
    }
    const result = decodeInbound(bytes);
    if (!result) {
      this.emit("error", new ArqonError(ClientErrorCode.CODEC_UNAVAILABLE, 'received a binary frame; import "@arqon/sdk/protobuf" to read it'));
      return;
    }
    if (!result.ok) {
      // Frame types from a newer server are ignored (docs/protocol.md, Versioning).
      if (result.error.code === ErrorCode.FRAME_UNKNOWN_TYPE) return;
      const pending = result.requestId === undefined ? undefined : this.#pending.get(result.requestId);
      if (pending && result.requestId !== undefined) {
        this.#settle(result.requestId, pending);
        pending.reject(new ArqonRequestError(result.error.code, `undecodable reply: ${result.error.message}`, { requestId: result.requestId }));
      } else {
        this.emit("error", result.error);
      }
      return;
    }
    this.#onFrame(result.frame);
  }

  #onFrame(frame: Frame): void {
    if (!this.#welcomed) {
      if (frame.type === "welcome") this.#onWelcome(frame);
      return;
    }
    if (frame.type === "ping") {
      const pong: Frame = { type: "pong" };
      if (frame.requestId) pong.requestId = frame.requestId;
      this.#send(pong);
      return;
    }
    if (frame.requestId !== undefined) {
      const pending = this.#pending.get(frame.requestId);
      if (pending) {
        this.#settle(frame.requestId, pending);
        if (frame.type === "error") {
          const info = frame.error ?? { code: ErrorCode.INTERNAL, message: "request failed" };
          if (info.code === ErrorCode.AUTH_EXPIRED) this.#refreshSoon();
          pending.reject(new ArqonRequestError(info.code, info.message, { requestId: frame.requestId, retryable: info.retryable }));
        } else {
          try {
            pending.onReply?.(frame);
          } finally {
            pending.resolve(frame);
          }
        }
        return;
      }
    }
    if (frame.type === "error") {
      const info = frame.error ?? { code: ErrorCode.INTERNAL, message: "error" };
      if (info.code === ErrorCode.AUTH_EXPIRED) this.#refreshSoon();
      this.emit("error", new ArqonRequestError(info.code, info.message, { requestId: frame.requestId, retryable: info.retryable }));
      return;
    }
    // A `subscribed` that answers no request (`reason: "server"`): the server API subscribed this connection
    // (docs/protocol.md, "Server-side subscriptions").
    const subscribed = frame.type === "subscribed";
    // `subscribed` always names its room; a frame without one finds no room.
    const room = subscribed ? this.room(frame.room!) : this.#rooms.get(frame.room!);
    room?._handle(frame);
    // Wildcard subscriptions get the messages of every room their pattern matches.
    if (frame.type === "message") for (const r of this.#globs) if (r._glob!.test(frame.room!)) r._handle(frame);
    if (subscribed) this.emit("serverSubscribed", room!);
  }

  #onWelcome(frame: Frame): void {
    this.#welcomed = true;
    this.#stay = true;
    this.#authRetried = false;
    const reconnected = this.#everConnected;
    this.#everConnected = true;
    this.#attempt = 0;
    this.#wireProtocol = frame.protocol === "1.1" ? "1.1" : "1.0";
    const limits: Limits = frame.limits ?? {};
    const event: ConnectedEvent = {
      clientId: frame.clientId ?? "",
      serverVersion: frame.version ?? "",
      protocol: frame.protocol ?? "",
      transport: this.transport,
      limits,
      reconnected,
    };
    if (frame.expiresAt) event.expiresAt = frame.expiresAt;
    this.#setStatus({ type: "connected", ...event });
    const hb = this.#options.heartbeat;
    this.#heartbeat =
      hb === false
        ? undefined
        : { intervalMs: hb?.intervalMs ?? limits.pingIntervalMs ?? 25_000, timeoutMs: hb?.timeoutMs ?? limits.pongTimeoutMs ?? 10_000 };
    if (this.#heartbeat) this.#armHeartbeat(this.#heartbeat.intervalMs);
    this.#scheduleRefresh(frame.expiresAt);
    for (const room of this.#rooms.values()) room._resubscribe(reconnected);
    for (const [, p] of this.#pending) if (!p.sent) this.#transmit(p);
    this.emit("connected", event);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.resolve();
  }

  #send(frame: Frame): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(this.#codec.encode(frame));
    return true;
  }

  #transmit(p: Pending): void {
    p.sent = this.#send(p.frame);
  }

  #settle(id: string, p: Pending): void {
    clearTimeout(p.timer);
    this.#pending.delete(id);
  }

  /** Sends a request and resolves with its reply; queued while (re)connecting, rejected once closed. */
  #request(frame: Frame, options: RequestOptions = {}): Promise<Frame> {
    const timeoutMs = options.timeoutMs ?? this.#options.requestTimeoutMs ?? 10_000;
    const type = this.#status.type;
    if (type === "idle" || type === "closed") {
      return Promise.reject(
        new ArqonRequestError(ClientErrorCode.CLIENT_CLOSED, type === "idle" ? "not connected: call connect() first" : "the client is closed"),
      );
    }
    const requestId = String(++this.#seq);
    return new Promise<Frame>((resolve, reject) => {
      const p: Pending = {
        frame: { ...frame, requestId },
        resolve,
        reject,
        sent: false,
        onReply: options.onReply,
        timer: setTimeout(() => {
          this.#pending.delete(requestId);
          reject(new ArqonRequestError(ClientErrorCode.REQUEST_TIMEOUT, `no reply to ${frame.type} within ${timeoutMs} ms`, { requestId, retryable: true }));
        }, timeoutMs),
      };
      this.#pending.set(requestId, p);
      if (this.#welcomed) this.#transmit(p);
    });
  }

  // -----------------------------------------------------------------------------------------------------------------
  // Heartbeat and token refresh

  #armHeartbeat(delay: number): void {
    clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = setTimeout(() => this.#heartbeatTick(), Math.max(1, delay));
  }

  #heartbeatTick(): void {
    const hb = this.#heartbeat;
    if (!hb || !this.#welcomed) return;
    const now = Date.now();
    if (this.#pingSentAt !== undefined) {
      if (this.#lastReceived >= this.#pingSentAt) {
        this.#pingSentAt = undefined;
        this.#armHeartbeat(hb.intervalMs - (now - this.#lastReceived));
      } else {
        this.#drop(CloseCode.PING_TIMEOUT, `no answer to ping within ${hb.timeoutMs} ms`);
      }
      return;
    }
    const idle = now - this.#lastReceived;
    if (idle < hb.intervalMs) {
      this.#armHeartbeat(hb.intervalMs - idle);
      return;
    }
    this.#pingSentAt = now;
    this.#send({ type: "ping", requestId: "hb" + String(++this.#seq) });
    this.#armHeartbeat(hb.timeoutMs);
  }

  #scheduleRefresh(expiresAt: number | undefined): void {
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    if (!expiresAt || !this.#options.getToken) return;
    const left = expiresAt - Date.now();
    const margin = Math.min(this.#options.tokenRefreshMarginMs ?? 30_000, Math.max(0, left) / 2);
    const delay = Math.min(Math.max(0, left - margin), 2 ** 31 - 1);
    this.#refreshTimer = setTimeout(() => void this.#refreshToken(), delay);
  }

  #refreshSoon(): void {
    if (this.#options.getToken && this.#welcomed && this.#refreshTimer !== undefined) {
      clearTimeout(this.#refreshTimer);
      this.#refreshTimer = setTimeout(() => void this.#refreshToken(), 0);
    }
  }

  async #refreshToken(): Promise<void> {
    this.#refreshTimer = undefined;
    const getToken = this.#options.getToken;
    if (!getToken || !this.#welcomed) return;
    try {
      const token = await getToken();
      this.#token = token;
      const reply = await this.#request({ type: "auth", token });
      this.#scheduleRefresh(reply.expiresAt);
      const event: { expiresAt?: number } = {};
      if (reply.expiresAt) event.expiresAt = reply.expiresAt;
      this.emit("token", event);
    } catch (err) {
      if (err instanceof ArqonRequestError && err.code === ClientErrorCode.CONNECTION_CLOSED) return;
      // The server closes the connection with 4004 when the old token runs out; the reconnect fetches a new one.
      this.#needFreshToken = true;
      this.emit("error", err instanceof ArqonError ? err : new ArqonError(ErrorCode.AUTH_INVALID, "token refresh failed", { cause: err }));
    }
  }
}
