import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One call the backend received: its path, parsed body, headers, and whether its signature verified. */
export interface ReceivedCall {
  path: string;
  body: Record<string, unknown>;
  headers: IncomingHttpHeaders;
  verified: boolean;
}

/** What a route answers: a JSON body (status 200), or `{ status, body }`, or an action on the socket. */
export type RouteAnswer =
  | Record<string, unknown>
  | { status: number; raw: string }
  | "reset"
  | { delayMs: number; then: Record<string, unknown> };

/** A real application backend on 127.0.0.1, port 0: routes by path, records every call, verifies signatures. */
export interface TestBackend extends AsyncDisposable {
  readonly secret: string;
  readonly calls: ReceivedCall[];
  /** `http://127.0.0.1:<port><path>` */
  url(path: string): string;
  /** Sets what `path` answers (a function gets the call). Unset paths answer `{}` (allow). */
  route(path: string, answer: RouteAnswer | ((call: ReceivedCall) => RouteAnswer)): void;
  /** Calls received on `path`. */
  callsTo(path: string): ReceivedCall[];
  /** Stops listening and cuts open connections (a backend that went away). */
  close(): Promise<void>;
}

function verify(secret: string, headers: IncomingHttpHeaders, body: string): boolean {
  const id = headers["webhook-id"];
  const ts = headers["webhook-timestamp"];
  const sig = headers["webhook-signature"];
  if (typeof id !== "string" || typeof ts !== "string" || typeof sig !== "string") return false;
  if (Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const expected = createHmac("sha256", Buffer.from(secret.slice(6), "base64")).update(`${id}.${ts}.${body}`).digest();
  return sig.split(" ").some((entry) => {
    if (!entry.startsWith("v1,")) return false;
    const given = Buffer.from(entry.slice(3), "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export async function startBackend(): Promise<TestBackend> {
  const secret = `whsec_${randomBytes(24).toString("base64")}`;
  const calls: ReceivedCall[] = [];
  const routes = new Map<string, RouteAnswer | ((call: ReceivedCall) => RouteAnswer)>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const path = req.url ?? "/";
      const call: ReceivedCall = { path, body: JSON.parse(text || "{}") as Record<string, unknown>, headers: req.headers, verified: verify(secret, req.headers, text) };
      calls.push(call);
      const route = routes.get(path);
      const answer = typeof route === "function" ? route(call) : (route ?? {});
      if (answer === "reset") {
        req.socket.destroy();
        return;
      }
      if ("delayMs" in answer && typeof answer.delayMs === "number") {
        const timer = setTimeout(() => {
          if (!res.destroyed) res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer.then));
        }, answer.delayMs);
        res.on("close", () => clearTimeout(timer));
        return;
      }
      if ("status" in answer && typeof answer.status === "number" && "raw" in answer) {
        res.writeHead(answer.status, { "content-type": "application/json" }).end(answer.raw);
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  const backend: TestBackend = {
    secret,
    calls,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    route: (path, answer) => void routes.set(path, answer),
    callsTo: (path) => calls.filter((c) => c.path === path),
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
    [Symbol.asyncDispose]() {
      return backend.close();
    },
  };
  return backend;
}

/** A counter's value for the labels given, from a prom-client registry. */
export async function metricValue(registry: { getSingleMetric(name: string): unknown }, name: string, labels: Record<string, string>): Promise<number> {
  const metric = registry.getSingleMetric(name) as { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number> }> }> } | undefined;
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)).reduce((n, v) => n + v.value, 0);
}
