import type { CliIo } from "../index.js";
import { parseArgs } from "node:util";
import { CLIENT_FLAGS, httpBase, wsUrl } from "./client-args.js";

const HELP = `usage: arqon status [--url ws://127.0.0.1:9100/ws] [--json]
Shows a running gateway's /status: connections, rooms, tenants, uptime and backend state.`;

export async function statusCommand(argv: readonly string[], io: CliIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: CLIENT_FLAGS, allowPositionals: true, strict: true });
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  const base = httpBase(wsUrl(values.url as string | undefined, env));
  let body: Record<string, unknown>;
  try {
    const res = await fetch(`${base}/status`, { signal: AbortSignal.timeout(5000) });
    body = (await res.json()) as Record<string, unknown>;
    if (!res.ok) {
      io.err(`arqon status: ${base} answered HTTP ${res.status}`);
      return 1;
    }
  } catch (err) {
    io.err(`arqon status: cannot reach ${base}: ${(err as Error).message}`);
    return 1;
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
