import { createHash, createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import Pusher from "pusher-js";
import PusherServer from "pusher";
import { startGateway, type StartGatewayOptions, type TestGateway } from "../src/testing.js";
import type { PusherAppOptions } from "../src/index.js";

/** The two tenants' Pusher apps the tests use: acme allows client events, beta does not. */
export const APPS: Record<"acme" | "beta", PusherAppOptions> = {
  acme: { tenant: "acme", appId: "1001", key: "acme-key", secret: "acme-secret-0123456789", clientEvents: true },
  beta: { tenant: "beta", appId: "2002", key: "beta-key", secret: "beta-secret-0123456789" },
};

/** A gateway with the Pusher mode on for acme and beta. */
export function startPusherGateway(options: StartGatewayOptions = {}): Promise<TestGateway> {
  return startGateway({ ...options, pusher: { apps: [APPS.acme, APPS.beta], ...options.pusher } });
}

/** A real pusher-js client (Node build) connected over ws to the gateway on 127.0.0.1. */
export function pusherClient(gw: TestGateway, app: PusherAppOptions, options: Record<string, unknown> = {}): Pusher {
  return new Pusher(app.key, {
    cluster: "mt1",
    wsHost: "127.0.0.1",
    wsPort: gw.port,
    forceTLS: false,
    enabledTransports: ["ws"],
    ...options,
  });
}

/** The official `pusher` server SDK pointed at the gateway. */
export function pusherServer(gw: TestGateway, app: PusherAppOptions, secret = app.secret, appId = app.appId): PusherServer {
  return new PusherServer({ appId, key: app.key, secret, host: "127.0.0.1", port: String(gw.port), useTLS: false });
}

/** Resolves when `target` emits `event` (bounded by `ms`). */
export function once<T = unknown>(target: { bind(event: string, cb: (data: T) => void): unknown; unbind(event: string, cb: (data: T) => void): unknown }, event: string, ms = 3000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      target.unbind(event, handler);
      reject(new Error(`timed out waiting for ${event}`));
    }, ms);
    const handler = (data: T): void => {
      clearTimeout(timer);
      target.unbind(event, handler);
      resolve(data);
    };
    target.bind(event, handler);
  });
}

/** Waits until a pusher-js client is connected (bounded). */
export function connected(p: Pusher, ms = 3000): Promise<void> {
  if (p.connection.state === "connected") return Promise.resolve();
  return once(p.connection, "connected", ms).then(() => undefined);
}

/** Records every event a channel or connection emits (bind_global), for asserting that something did not arrive. */
export function record(target: { bind_global(cb: (event: string, data: unknown) => void): unknown }): Array<{ event: string; data: unknown }> {
  const seen: Array<{ event: string; data: unknown }> = [];
  target.bind_global((event, data) => seen.push({ event, data }));
  return seen;
}

/**
 * A channel authorization endpoint as an application serves it (form body `socket_id`, `channel_name`), signed by
 * the official SDK; `presence` gives the presence data for a socket, `deny` refuses with 403.
 */
export async function authEndpoint(
  sdk: PusherServer,
  opts: {
    presence?: (socketId: string, headers: IncomingHttpHeaders) => { user_id: string; user_info?: Record<string, unknown> };
    deny?: (channel: string, headers: IncomingHttpHeaders) => boolean;
  } = {},
): Promise<{ url: string; server: Server; calls: Array<{ socketId: string; channel: string }> }> {
  const calls: Array<{ socketId: string; channel: string }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const form = new URLSearchParams(body);
      let socketId = form.get("socket_id") ?? "";
      let channel = form.get("channel_name") ?? "";
      if (body.startsWith("{")) {
        const json = JSON.parse(body) as { socket_id?: string; channel_name?: string };
        socketId = json.socket_id ?? "";
        channel = json.channel_name ?? "";
      }
      calls.push({ socketId, channel });
      const cors = { "access-control-allow-origin": "*", "access-control-allow-headers": "*" };
      if (req.method === "OPTIONS") return void res.writeHead(204, cors).end();
      if (opts.deny?.(channel, req.headers)) return void res.writeHead(403, cors).end("forbidden");
      const auth = channel.startsWith("presence-") ? sdk.authorizeChannel(socketId, channel, opts.presence!(socketId, req.headers)) : sdk.authorizeChannel(socketId, channel);
      res.writeHead(200, { "content-type": "application/json", ...cors }).end(JSON.stringify(auth));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/broadcasting/auth`, server, calls };
}

/** Sleeps `ms` (to let something that must not arrive have its chance). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A POST to the Pusher HTTP API signed by hand as the protocol says (for bodies and names the official SDK would refuse
 * to send): `body` is sent as it is when a string, else as its JSON.
 */
export function signedPost(gw: TestGateway, app: PusherAppOptions, what: string, body: unknown, opts: { md5?: string; ts?: number } = {}): Promise<Response> {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const params: Record<string, string> = {
    auth_key: app.key,
    auth_timestamp: String(opts.ts ?? Math.floor(Date.now() / 1000)),
    auth_version: "1.0",
    body_md5: opts.md5 ?? createHash("md5").update(text).digest("hex"),
  };
  const path = `/apps/${app.appId}/${what}`;
  const qs = Object.keys(params)
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join("&");
  const sig = createHmac("sha256", app.secret).update(`POST\n${path}\n${qs}`).digest("hex");
  return fetch(`${gw.httpUrl}${path}?${qs}&auth_signature=${sig}`, { method: "POST", body: text, headers: { "content-type": "application/json" } });
}

/** A Pusher frame as a raw client sees it (data as sent: a string, or an object for pusher:error). */
export interface RawPusherFrame {
  event: string;
  channel?: string;
  data?: unknown;
  user_id?: string;
}

/** A raw WebSocket speaking the Pusher protocol by hand, for what pusher-js would never send. */
export class RawPusher {
  readonly frames: RawPusherFrame[] = [];
  socketId = "";
  closed: Promise<{ code: number; reason: string }>;
  private readonly waiters = new Set<() => void>();

  constructor(readonly ws: import("ws").WebSocket) {
    ws.on("message", (d: Buffer) => {
      this.frames.push(JSON.parse(d.toString("utf8")) as RawPusherFrame);
      for (const w of [...this.waiters]) w();
    });
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** Opens `/app/{key}?protocol=7` and waits for `pusher:connection_established`. */
  static async open(gw: TestGateway, key: string): Promise<RawPusher> {
    const { WebSocket } = await import("ws");
    const raw = new RawPusher(new WebSocket(`ws://127.0.0.1:${gw.port}/app/${key}?protocol=7&client=raw&version=0`));
    const established = await raw.next("pusher:connection_established");
    raw.socketId = (JSON.parse(established.data as string) as { socket_id: string }).socket_id;
    return raw;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** Takes the first frame with `event` (and `channel`) from what arrived, waiting up to `ms`. */
  async next(event: string, channel?: string, ms = 3000): Promise<RawPusherFrame> {
    const end = Date.now() + ms;
    for (let i = 0; i < 1000; i++) {
      const at = this.frames.findIndex((f) => f.event === event && (channel === undefined || f.channel === channel));
      if (at >= 0) return this.frames.splice(at, 1)[0]!;
      const left = end - Date.now();
      if (left <= 0) break;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.waiters.delete(done);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 100));
        this.waiters.add(done);
      });
    }
    throw new Error(`no ${event} within ${ms} ms (got ${this.frames.map((f) => f.event).join(", ")})`);
  }

  close(): void {
    this.ws.close();
  }
}

/** Hex HMAC-SHA256, as the channel signatures use it. */
export function hmac(secret: string, text: string): string {
  return createHmac("sha256", secret).update(text).digest("hex");
}
