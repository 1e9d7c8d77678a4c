// A real ArqonBus gateway for the Python tests: listens on 127.0.0.1 (port from --port, default 0), prints
// {"port":N,"url":"ws://..."} as one JSON line on stdout once it listens, and closes gracefully (1001 to every client)
// on SIGTERM, SIGINT or when stdin ends. Registers two commands the tests call: op.test.echo and op.test.fail.
// --operator-key KEY lets the tests call the server API's operator routes (arqon.server); --casil turns CASIL on (an
// empty baseline in monitor mode) so its routes exist.
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

const server = createArqonServer({
  auth: { secret },
  ...(operatorKey ? { operatorKeys: [operatorKey] } : {}),
  ...(casil ? { casil } : {}),
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
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
process.stdin.on("end", () => void stop());
process.stdin.resume();
