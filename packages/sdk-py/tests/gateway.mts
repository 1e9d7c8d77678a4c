// A real ArqonBus gateway for the Python tests: listens on 127.0.0.1 (port from --port, default 0), prints
// {"port":N,"url":"ws://..."} as one JSON line on stdout once it listens, and closes gracefully (1001 to every client)
// on SIGTERM, SIGINT or when stdin ends. Registers two commands the tests call: op.test.echo and op.test.fail, and
// runs a small application backend on 127.0.0.1 as its rpc proxy hook: method "test.deny" is denied (reason "denied_by_test"),
// any other answers {method, data, user}.
// --operator-key KEY lets the tests call the server API's operator routes (arqon.server); --casil turns CASIL on (an
// empty baseline in monitor mode) so its routes exist.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { ArqonError, ErrorCode } from "@arqon/core";
import { CasilController, createArqonServer } from "@arqon/server";
import { pino } from "pino";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : fallback;
}

const port = Number(arg("port", "0"));
const secret = arg("jwt-secret", "");
if (!secret) {
  process.stderr.write("gateway.ts: --jwt-secret is required\n");
  process.exit(2);
}

const operatorKey = arg("operator-key", "");
const casil = process.argv.includes("--casil") ? await CasilController.create({ policy: { mode: "monitor" } }) : undefined;

const backend = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const event = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { method: string; data: unknown; user: string };
    const answer = event.method === "test.deny" ? { deny: { reason: "denied_by_test" } } : { data: { method: event.method, data: event.data, user: event.user } };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
  });
});
await new Promise<void>((resolve) => backend.listen(0, "127.0.0.1", resolve));
const backendPort = (backend.address() as AddressInfo).port;

const server = createArqonServer({
  auth: { secret },
  ...(operatorKey ? { operatorKeys: [operatorKey] } : {}),
  ...(casil ? { casil } : {}),
  outbound: { allow: ["127.0.0.1"], allowHttp: true },
  proxy: { secret: `whsec_${randomBytes(24).toString("base64")}`, rpc: `http://127.0.0.1:${backendPort}/rpc` },
  logger: pino({ level: process.env.ARQON_LOG_LEVEL ?? "warn" }, pino.destination(2)),
  presenceOptions: { coalesceMs: 0 },
  shutdownTimeoutMs: 1000,
  processMetrics: false,
});
server.registerCommand("op.test.echo", (ctx) => ({ args: ctx.args ?? null, sub: ctx.sub, tenant: ctx.tenant }));
server.registerCommand("op.test.fail", () => {
  throw new ArqonError(ErrorCode.VALIDATION_ERROR, "always fails");
});

const address = await server.listen(port, "127.0.0.1");
process.stdout.write(JSON.stringify({ port: address.port, url: server.url }) + "\n");

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.close();
  backend.close();
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
process.stdin.on("end", () => void stop());
process.stdin.resume();
