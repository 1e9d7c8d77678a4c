import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorCode } from "@arqon/core";
import { sendError } from "./http-util.js";

/** Where the web console is served. */
export const CONSOLE_PATH = "/console";

/**
 * The Content-Security-Policy of every console answer: scripts, styles and connections only from the server itself
 * (`connect-src 'self'` covers its WebSocket), no inline script or style, no framing, no plugins, no forms posted
 * elsewhere.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

/** A file name the build gives a content hash (`console-3F2A9C1B.js`): cached for a year, it never changes. */
const HASHED = /-[A-Z0-9]{8}\.[a-z]+$/;

/**
 * The console build shipped with the package: `dist/console` next to the built module, or (when running from the
 * TypeScript sources in this repository) the package's `dist/console`.
 */
export function defaultConsoleDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, "console"), join(here, "..", "dist", "console")];
  return candidates.find((dir) => existsSync(join(dir, "index.html"))) ?? candidates[0]!;
}

interface ConsoleFile {
  type: string;
  body: Buffer;
  cache: string;
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * Serves the web console's static build under `/console/`: the files of one flat directory, read once, looked up by
 * exact name (a request path is never joined to a file system path, so there is no traversal), with their content
 * type, `Cache-Control` (hashed assets a year, the page `no-cache`), `X-Content-Type-Options: nosniff` and
 * `CONSOLE_CSP`. `/console` and `/console/` answer the page, with the WebSocket path filled in; any other name is 404
 * `NOT_FOUND`, any method but GET and HEAD 405.
 */
export class ConsoleAssets {
  private files: Map<string, ConsoleFile> | undefined;

  constructor(
    private readonly dir: string,
    private readonly wsPath: string,
    private readonly version: string,
  ) {}

  private load(): Map<string, ConsoleFile> {
    if (this.files) return this.files;
    const files = new Map<string, ConsoleFile>();
    if (existsSync(this.dir)) {
      for (const name of readdirSync(this.dir)) {
        const path = join(this.dir, name);
        const type = TYPES[extname(name)];
        if (!type || !statSync(path).isFile()) continue;
        let body = readFileSync(path);
        if (name === "index.html") {
          body = Buffer.from(
            body.toString("utf8").replaceAll("%ARQON_WS_PATH%", escapeAttribute(this.wsPath)).replaceAll("%ARQON_VERSION%", escapeAttribute(this.version)),
            "utf8",
          );
        }
        files.set(name, { type, body, cache: HASHED.test(name) ? "public, max-age=31536000, immutable" : "no-cache" });
      }
    }
    this.files = files;
    return files;
  }

  /** Answers a request whose path is `/console` or under `/console/`; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (path !== CONSOLE_PATH && !path.startsWith(`${CONSOLE_PATH}/`)) return false;
    const method = req.method ?? "GET";
    const headers = { "content-security-policy": CONSOLE_CSP, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY" };
    if (method !== "GET" && method !== "HEAD") {
      sendError(res, 405, ErrorCode.VALIDATION_ERROR, "use GET", { allow: "GET, HEAD", ...headers });
      return true;
    }
    const name = path === CONSOLE_PATH || path === `${CONSOLE_PATH}/` ? "index.html" : path.slice(CONSOLE_PATH.length + 1);
    const files = this.load();
    const file = files.get(name);
    if (!file) {
      const message = files.size === 0 ? "the console build is missing from this installation" : `no console file ${JSON.stringify(name.slice(0, 100))}`;
      sendError(res, 404, ErrorCode.NOT_FOUND, message, headers);
      return true;
    }
    res.writeHead(200, { ...headers, "content-type": file.type, "content-length": String(file.body.length), "cache-control": file.cache });
    res.end(method === "HEAD" ? undefined : file.body);
    return true;
  }
}
