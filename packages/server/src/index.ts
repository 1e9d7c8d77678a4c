import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { pino, type Logger } from "pino";
import type { Registry } from "prom-client";
import {
  ArqonError,
  ErrorCode,
  MemoryBus,
  MemoryHistoryStore,
  MemoryKeyValueStore,
  MemoryPresenceStore,
  MemoryRoomStateStore,
  allowAll,
  isValidTenant,
  jsonBytes,
  roomKey,
  roomNameProblem,
  type Frame,
  type Bus,
  type ControlPlane,
  type HistoryStore,
  type Inspector,
  type KeyValueStore,
  type PayloadFormat,
  type PresenceStore,
  type RoomStateStore,
} from "@arqon/core";
import pkg from "../package.json" with { type: "json" };
import { createAuthenticator } from "./auth.js";
import { CommandRegistry, type CommandHandler, type CommandOptions } from "./commands.js";
import { DEFAULT_PORT, resolveLimits, type ArqonServerOptions } from "./config.js";
import { Gateway, type Backends } from "./gateway.js";
import { handleHttp, statusOf } from "./http.js";
import { errorBody, rejectUpgrade, sendError } from "./http-util.js";
import { ServerMetrics } from "./metrics.js";
import { serverPublish, type PublishResult } from "./rooms.js";

export { DEFAULT_PORT, WS_PATH, SUBPROTOCOL_JSON, SUBPROTOCOL_PROTO, SUBPROTOCOL_BEARER_PREFIX, resolveLimits } from "./config.js";
export type { ArqonServerOptions, LimitOptions, TenantLimitOptions, PresenceOptions, ResolvedLimits } from "./config.js";
export { createAuthenticator, can, AuthError, signToken, parseTtl } from "./auth.js";
export type { AuthOptions, AuthContext, Capabilities, Capability, Authenticator, SignTokenOptions } from "./auth.js";
export { createLogger, type LoggerOptions } from "./logger.js";
export { CommandRegistry } from "./commands.js";
export type { CommandContext, CommandHandler, CommandOptions } from "./commands.js";
export { TokenBucket } from "./limits.js";
export type { PublishResult } from "./rooms.js";
export { DEFAULT_TWIST_ID } from "./rooms.js";
export {
  openEmbeddedStorage,
  DEFAULT_DATA_DIR,
  type EmbeddedStorage,
  type EmbeddedStorageOptions,
  type Durability,
  type RetentionConfig,
  type RetentionRule,
} from "./storage/index.js";
export { HISTORY_COMMANDS, type HistoryCommandMessage } from "./history-commands.js";
export * from "./casil/index.js";

/** The version of @arqon/server (reported in welcome and /version unless overridden). */
export const SERVER_VERSION: string = pkg.version;

export interface PublishOptions {
  /** Which CASIL path inspects it: "operator" for messages operators emit. @default "server_publish" */
  path?: "server_publish" | "operator";
  headers?: Record<string, string>;
  idempotencyKey?: string;
  /** Shown to subscribers as the message's `sender`. @default "server" */
  sender?: string;
}

/** An ArqonBus gateway: embed it in an existing HTTP server or let it listen on its own. */
export interface ArqonServer {
  /** Handles WebSocket upgrades at the configured path on an existing server (HTTP routes stay the app's). */
  attach(server: Server): void;
  /** ws-style entry for frameworks that route upgrades themselves. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Serves /health, /ready, /version, /status, /metrics, POST /api/publish; resolves false for other paths. */
  handleRequest(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** Starts an HTTP server of its own (WebSocket and HTTP routes on one port). @default port 9100, host "127.0.0.1" */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** Publishes into a tenant's room as the server; a JSON value, or bytes (sent with payloadFormat "binary"). */
  publish(tenant: string, room: string, payload: unknown, options?: PublishOptions): Promise<PublishResult>;
  /**
   * Subscribes in-process to a tenant's room: `handler` gets every `message` frame delivered to this node (the same
   * frames clients get, in order). Resolves once the bus interest is in place, with a function that ends it.
   */
  subscribe(tenant: string, room: string, handler: (frame: Frame) => void): Promise<() => Promise<void>>;
  /** Graceful stop: refuse new connections, close every socket with 1001 (going away), drain, close own backends. */
  close(): Promise<void>;
  /** The listening address, once `listen()` resolved. */
  readonly address: AddressInfo | null;
  /** `ws://host:port/ws` once listening. */
  readonly url: string | undefined;
  registerCommand(name: string, handler: CommandHandler, options?: CommandOptions): () => void;
  readonly commands: CommandRegistry;
  readonly bus: Bus;
  readonly controlPlane: ControlPlane | undefined;
  readonly history: HistoryStore;
  readonly presence: PresenceStore;
  readonly state: RoomStateStore;
  readonly kv: KeyValueStore;
  /** The CASIL hook in use; assign to replace it at runtime. */
  inspector: Inspector;
  /** This instance's Prometheus registry. */
  readonly metrics: Registry;
  readonly logger: Logger;
  /** What GET /status answers. */
  status(): Record<string, unknown>;
  /** Open WebSocket connections. */
  readonly connectionCount: number;
}

function isHttpParserError(err: Error & { code?: string }): boolean {
  return typeof err.code === "string" && err.code.startsWith("HPE_");
}

export function createArqonServer(options: ArqonServerOptions): ArqonServer {
  const limits = resolveLimits(options.limits);
  const logger = options.logger ?? pino({ name: "arqon", level: process.env.ARQON_LOG_LEVEL ?? "info" });
  const owned: Array<{ close(): Promise<void> }> = [];
  function own<T extends { close(): Promise<void> }>(value: T | undefined, create: () => T): T {
    if (value) return value;
    const created = create();
    owned.push(created);
    return created;
  }
  const backends: Backends = {
    bus: own(options.bus, () => new MemoryBus()),
    controlPlane: options.controlPlane,
    history: own(options.history, () => new MemoryHistoryStore()),
    presence: own(options.presence, () => new MemoryPresenceStore()),
    state: own(options.state, () => new MemoryRoomStateStore()),
    kv: own(options.kv, () => new MemoryKeyValueStore()),
  };
  const authenticator = createAuthenticator(options.auth);
  if (authenticator.dev) {
    logger.warn("DEV MODE: tokens signed with the local development key under ./.arqon/ are accepted. Never use this in production.");
  }
  const commands = new CommandRegistry();
  // The rooms gauge is read at scrape time, after `gw` exists.
  const metrics: ServerMetrics = new ServerMetrics({ processMetrics: options.processMetrics, rooms: (): number => gw.fanout.rooms.size });
  const gw: Gateway = new Gateway(
    options,
    limits,
    backends,
    options.inspector ?? allowAll,
    authenticator,
    commands,
    metrics,
    logger,
    options.version ?? pkg.version,
  );

  let httpServer: Server | undefined;
  const attached = new Map<Server, (req: IncomingMessage, socket: Duplex, head: Buffer) => void>();
  let closing: Promise<void> | undefined;

  function wsPathOf(req: IncomingMessage): boolean {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    return (q < 0 ? url : url.slice(0, q)) === gw.path;
  }

  const server: ArqonServer = {
    attach(target) {
      if (attached.has(target)) return;
      const listener = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
        if (wsPathOf(req)) return gw.handleUpgrade(req, socket, head);
        // Leave other paths to the application's own upgrade handlers; answer 404 when there are none.
        if (target.listenerCount("upgrade") === 1) rejectUpgrade(socket, 404, ErrorCode.NOT_FOUND, "no WebSocket endpoint here");
      };
      attached.set(target, listener);
      target.on("upgrade", listener);
    },
    handleUpgrade(req, socket, head) {
      gw.handleUpgrade(req, socket, head);
    },
    handleRequest(req, res) {
      return handleHttp(gw, req, res);
    },
    async listen(port = options.port ?? DEFAULT_PORT, host = options.host ?? "127.0.0.1") {
      if (httpServer) throw new Error("already listening");
      const http = options.http ?? {};
      const headersTimeout = http.headersTimeoutMs ?? 10_000;
      const s = createServer({
        headersTimeout,
        requestTimeout: Math.max(http.requestTimeoutMs ?? 30_000, headersTimeout),
        keepAliveTimeout: http.keepAliveTimeoutMs ?? 5_000,
        // Node enforces the two timeouts on this interval (30 s by default), which would let a slow handshake live
        // far past headersTimeout.
        connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeout / 2))),
      });
      // Node drops headers past maxHeadersCount silently; keep one more than our limit so the excess is seen and refused.
      s.maxHeadersCount = limits.maxHeaderCount + 1;
      s.on("request", (req: IncomingMessage, res: ServerResponse) => {
        if (req.rawHeaders.length / 2 > limits.maxHeaderCount) {
          sendError(res, 431, ErrorCode.HEADER_INVALID, `more than ${limits.maxHeaderCount} request headers`, { connection: "close" });
          return;
        }
        handleHttp(gw, req, res).then(
          (handled) => {
            if (!handled) sendError(res, 404, ErrorCode.NOT_FOUND, "not found");
          },
          (err: unknown) => {
            logger.error({ err }, "http handler failed");
            if (!res.headersSent) sendError(res, 500, ErrorCode.INTERNAL, "internal error");
            else res.destroy();
          },
        );
      });
      s.on("clientError", (err: Error & { code?: string }, socket: Duplex) => {
        if (socket.writable && err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
          socket.end("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
          return;
        }
        if (!socket.writable || !isHttpParserError(err)) {
          socket.destroy();
          return;
        }
        const tooLarge = err.code === "HPE_HEADER_OVERFLOW";
        const status = tooLarge ? 431 : 400;
        const body = tooLarge
          ? errorBody(ErrorCode.HEADER_INVALID, "request headers too large")
          : errorBody(ErrorCode.HEADER_INVALID, "malformed HTTP request");
        socket.end(
          `HTTP/1.1 ${status} ${tooLarge ? "Request Header Fields Too Large" : "Bad Request"}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      });
      server.attach(s);
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(port, host, () => {
          s.off("error", reject);
          resolve();
        });
      });
      s.on("error", (err) => logger.error({ err }, "http server error"));
      httpServer = s;
      const address = s.address() as AddressInfo;
      logger.info({ address: address.address, port: address.port, path: gw.path }, "listening");
      return address;
    },
    publish(tenant, room, payload, publishOptions = {}) {
      const binary = payload instanceof Uint8Array;
      const format: PayloadFormat | undefined = binary ? "binary" : undefined;
      return serverPublish(gw, tenant, room, binary ? payload : jsonBytes(payload), {
        payloadFormat: format,
        headers: publishOptions.headers,
        idempotencyKey: publishOptions.idempotencyKey,
        sender: publishOptions.sender ?? "server",
        path: publishOptions.path,
      });
    },
    async subscribe(tenant, room, handler) {
      if (!isValidTenant(tenant)) throw new ArqonError(ErrorCode.TENANT_INVALID, "tenant must be 1-64 characters of letters, digits, _ and -");
      const problem = roomNameProblem(room);
      if (problem) throw new ArqonError(ErrorCode.ROOM_INVALID, problem);
      const key = roomKey(tenant, room);
      const listener = (frame: Frame) => handler(frame);
      const { room: local, created } = gw.fanout.addListener(key, tenant, room, listener);
      if (created) {
        local.ready = gw.backends.bus.subscribe(key);
        gw.presenceManager.roomCreated(key, room);
      }
      try {
        await local.ready;
      } catch (err) {
        if (gw.fanout.removeListener(key, listener)) gw.presenceManager.roomDropped(key);
        throw new ArqonError(ErrorCode.BACKEND_UNAVAILABLE, "could not subscribe on the bus", { cause: err });
      }
      let active = true;
      return async () => {
        if (!active) return;
        active = false;
        if (gw.fanout.removeListener(key, listener)) {
          gw.presenceManager.roomDropped(key);
          await gw.backends.bus.unsubscribe(key);
        }
      };
    },
    close() {
      closing ??= (async () => {
        gw.shuttingDown = true;
        const listening = httpServer;
        const serverClosed = listening ? new Promise<void>((resolve) => listening.close(() => resolve())) : Promise.resolve();
        listening?.closeIdleConnections();
        await gw.shutdown(options.shutdownTimeoutMs ?? 5000);
        for (const [target, listener] of attached) target.off("upgrade", listener);
        attached.clear();
        listening?.closeAllConnections();
        await serverClosed;
        const results = await Promise.allSettled(owned.map((b) => b.close()));
        for (const r of results) if (r.status === "rejected") logger.warn({ err: r.reason }, "backend close failed");
        logger.info("closed");
      })();
      return closing;
    },
    get address() {
      const a = httpServer?.address();
      return a && typeof a === "object" ? a : null;
    },
    get url() {
      const a = server.address;
      if (!a) return undefined;
      const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
      return `ws://${host}:${a.port}${gw.path}`;
    },
    registerCommand(name, handler, commandOptions) {
      return commands.register(name, handler, commandOptions);
    },
    commands,
    bus: backends.bus,
    controlPlane: backends.controlPlane,
    history: backends.history,
    presence: backends.presence,
    state: backends.state,
    kv: backends.kv,
    get inspector() {
      return gw.inspector;
    },
    set inspector(value: Inspector) {
      gw.inspector = value;
    },
    metrics: metrics.registry,
    logger,
    status() {
      return statusOf(gw);
    },
    get connectionCount() {
      return gw.connections.size;
    },
  };
  return server;
}
