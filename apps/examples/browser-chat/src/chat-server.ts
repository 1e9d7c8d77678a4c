/**
 * The "embed into an existing app" example: a plain Node HTTP server owns the routes (the page, its script, a demo
 * token endpoint) and an ArqonBus gateway is attached to it for WebSocket upgrades on /ws.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readFile } from "node:fs/promises";
import { build } from "esbuild";
import { SignJWT } from "jose";
import { pino } from "pino";
import { createArqonServer, type ArqonServer, type ArqonServerOptions } from "@arqon/server";

const here = dirname(fileURLToPath(import.meta.url));
const publicDir = join(here, "..", "public");

export interface ChatOptions {
  /** @default 8080 */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** HS256 secret shared by the token endpoint and the gateway. @default random per start */
  secret?: string;
  /** Extra gateway options (limits, logger, ...). */
  arqon?: Partial<ArqonServerOptions>;
}

export interface ChatServer {
  readonly http: Server;
  readonly arqon: ArqonServer;
  /** http://host:port/ */
  readonly url: string;
  close(): Promise<void>;
}

/** Bundles the page script (and the SDK with it) for the browser, once per start. */
async function bundlePage(): Promise<string> {
  const result = await build({
    entryPoints: [join(publicDir, "app.ts")],
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    conditions: ["arqon-source"],
    write: false,
    legalComments: "none",
  });
  return result.outputFiles[0]!.text;
}

const USER_RE = /^[A-Za-z0-9_-]{1,32}$/;

export async function startChat(options: ChatOptions = {}): Promise<ChatServer> {
  const secret = options.secret ?? randomBytes(24).toString("base64url");
  const key = new TextEncoder().encode(secret);
  const [html, script] = await Promise.all([readFile(join(publicDir, "index.html"), "utf8"), bundlePage()]);
  const arqon = createArqonServer({
    logger: pino({ level: process.env.ARQON_LOG_LEVEL ?? "warn" }),
    processMetrics: false,
    ...options.arqon,
    auth: { secret },
  });

  // Demo only: anyone may ask for a token for any user name. A real app issues tokens after its own login.
  async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const user = new URL(req.url ?? "/", "http://x").searchParams.get("user") ?? "";
    if (!USER_RE.test(user)) {
      res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "VALIDATION_ERROR", message: "user must be 1-32 letters, digits, _ or -" } }));
      return;
    }
    const jwt = await new SignJWT({ tenant: "demo" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(user)
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(key);
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify({ token: jwt }));
  }

  const http = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && (path === "/" || path === "/index.html")) {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
    } else if (req.method === "GET" && path === "/app.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(script);
    } else if (req.method === "GET" && path === "/token") {
      token(req, res).catch(() => res.writeHead(500).end());
    } else {
      // The gateway's own routes (/health, /status, ...) are available too; anything else is 404.
      arqon.handleRequest(req, res).then(
        (handled) => {
          if (!handled) res.writeHead(404, { "content-type": "text/plain" }).end("not found");
        },
        () => res.writeHead(500).end(),
      );
    }
  });
  arqon.attach(http);
  await new Promise<void>((resolve) => http.listen(options.port ?? 8080, options.host ?? "127.0.0.1", resolve));
  const address = http.address() as AddressInfo;
  return {
    http,
    arqon,
    url: `http://${address.address}:${address.port}/`,
    async close() {
      await arqon.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
