import { STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";

/** The JSON error body every HTTP refusal carries: `{"error":{"code":"ARQ_...","message":"..."}}`. */
export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** A request target's path and query string (without the "?"). */
export interface RequestTarget {
  pathname: string;
  query: string;
}

/**
 * Paths that WHATWG URL parsing leaves unchanged: characters it never escapes or rewrites (no "%", "\\", quotes,
 * non-ASCII) and no "." or ".." segments.
 */
const PLAIN_PATH = /^\/(?!\/)(?:[A-Za-z0-9\-_~!$&'()*+,;=:@]|\.(?![./]|$)|\/(?!\.))*$/;
/** Queries whose parameters read the same without URL: printable ASCII, no "#" (anything else goes through URL). */
const PLAIN_QUERY = /^[\x21-\x22\x24-\x7e]*$/;

/**
 * Splits a request target into path and query the way `new URL(target, base)` does, without building a URL for the
 * common shape (`/ws?codec=json&token=...`); anything unusual is parsed by URL. Undefined when it is not a URL.
 */
export function parseTarget(raw: string): RequestTarget | undefined {
  const q = raw.indexOf("?");
  const pathname = q < 0 ? raw : raw.slice(0, q);
  const query = q < 0 ? "" : raw.slice(q + 1);
  if (PLAIN_PATH.test(pathname) && PLAIN_QUERY.test(query)) return { pathname, query };
  try {
    const url = new URL(raw, "http://localhost");
    return { pathname: url.pathname, query: url.search.slice(1) };
  } catch {
    return undefined;
  }
}

/** The first value of a query parameter, as `URLSearchParams#get` reads it; null when absent. */
export function queryParam(query: string, name: string): string | null {
  if (query === "") return null;
  // The "&" keeps URLSearchParams from dropping a leading "?" that belongs to the query (as in "/ws??token=").
  if (query.includes("%") || query.includes("+")) return new URLSearchParams("&" + query).get(name);
  for (let at = 0; at <= query.length; ) {
    let end = query.indexOf("&", at);
    if (end < 0) end = query.length;
    const eq = query.indexOf("=", at);
    const keyEnd = eq >= 0 && eq < end ? eq : end;
    if (keyEnd - at === name.length && query.startsWith(name, at)) return keyEnd === end ? "" : query.slice(eq + 1, end);
    at = end + 1;
  }
  return null;
}

/** Answers an upgrade request with an HTTP error and closes the socket; no WebSocket is created. */
export function rejectUpgrade(
  socket: Duplex,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = errorBody(code, message);
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  socket.once("finish", () => socket.destroy());
  socket.end(`${head}\r\n${body}`);
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

export function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message } }, headers);
}

/** Reads a request body up to `limit` bytes; resolves undefined when it is larger (the rest is discarded). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(over ? undefined : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
