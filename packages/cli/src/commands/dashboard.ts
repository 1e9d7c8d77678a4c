import { writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import type { CliIo } from "../index.js";
import { CliError } from "../config.js";
import { buildDashboard } from "../dashboard.js";

const HELP = `usage: arqon dashboard export [--tenant T] [--out FILE]

Writes the Grafana dashboard of ArqonBus as JSON (the same as dashboards/arqon.json in the repository): connections,
messages in/out, deliveries, fan-out latency, errors, CASIL decisions, webhooks, the NATS link, history size and the
processes' CPU and memory, for a Prometheus data source chosen on import. Without --tenant it has a tenant variable
(all tenants, or some); with --tenant T every query matches tenant="T" exactly and the server-wide panels (process,
NATS link, history size, closes) are left out, so it can be handed to that tenant's team. Tenants beyond the server's
label bound (metrics.maxTenantLabels, default 100) are counted as tenant="_other" (docs/gateway.md, "Metrics").

  --tenant T    pre-filter for one tenant
  --out FILE    write to FILE instead of standard output
  -h, --help    this text

Needs no server: the dashboard is built by the CLI.`;

/** `arqon dashboard export`. Exit codes: 0 ok, 2 usage. */
export async function dashboardCommand(argv: readonly string[], io: CliIo, ctx: { cwd: string }): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { tenant: { type: "string" }, out: { type: "string" }, help: { type: "boolean", short: "h", default: false } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help || positionals.length === 0) {
    io.out(HELP);
    return values.help ? 0 : 2;
  }
  if (positionals[0] !== "export" || positionals.length > 1) throw new CliError(`unknown dashboard verb "${positionals.join(" ")}" (see arqon dashboard --help)`);
  if (values.tenant !== undefined && values.tenant.trim() === "") throw new CliError("--tenant is empty");
  const text = JSON.stringify(buildDashboard({ tenant: values.tenant }), null, 2) + "\n";
  if (values.out === undefined) {
    io.out(text.trimEnd());
    return 0;
  }
  const file = path.resolve(ctx.cwd, values.out);
  try {
    writeFileSync(file, text);
  } catch (err) {
    throw new CliError(`--out: cannot write ${file}: ${(err as Error).message}`);
  }
  io.err(`wrote ${file}`);
  return 0;
}
