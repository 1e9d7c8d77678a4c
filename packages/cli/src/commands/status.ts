import type { CliIo } from "../index.js";
import { parseArgs } from "node:util";
import { OPERATOR_FLAGS, OPERATOR_FLAGS_HELP, OperatorClient, type OperatorContext } from "./operator-client.js";

const HELP = `usage: arqon status [--url http://127.0.0.1:9100] [--json]
Shows a running gateway's /status: connections, rooms, tenants, uptime and backend state. /status needs an operator
key (ARQON_OPERATOR_KEY, or the dev key file) or a scrape token (--token).
${OPERATOR_FLAGS_HELP}`;

export async function statusCommand(argv: readonly string[], io: CliIo, ctx: OperatorContext = { env: process.env, cwd: process.cwd() }): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: OPERATOR_FLAGS, allowPositionals: true, strict: true });
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  const client = OperatorClient.fromFlags(values, ctx, "operator");
  let body: Record<string, unknown>;
  try {
    body = await client.request<Record<string, unknown>>("GET", "/status");
  } catch (err) {
    return client.report(io, "status", err, ctx);
  }
  if (values.json) {
    io.out(JSON.stringify(body));
    return 0;
  }
  for (const [key, value] of Object.entries(body)) {
    io.out(`${key.padEnd(14)} ${typeof value === "object" ? JSON.stringify(value) : String(value)}`);
  }
  return 0;
}
