import { parseArgs } from "node:util";
import type { AuditActor, AuditRecord } from "@arqon/server";
import type { CliIo } from "../index.js";
import { CliError } from "../config.js";
import { OPERATOR_FLAGS, OPERATOR_FLAGS_HELP, OperatorClient, seg, table, type OperatorContext } from "./operator-client.js";
import { parseCount } from "./units.js";

const HELP = `usage: arqon audit --tenant T [--limit N] [--before OFFSET]
       arqon audit [--limit N] [--before OFFSET]

Prints the audit trail, newest first: every operator and tenant-admin action with who did it and its result. With
--tenant, that tenant's trail (an operator key, or a token with role "admin" of the tenant); without, the server's
own trail (operator key only). --limit is 1-1000 (default 100); --before OFFSET pages back (the command prints the
offset to continue from).
${OPERATOR_FLAGS_HELP}`;

function actorText(actor: AuditActor): string {
  return actor.kind === "operator" ? `operator ${actor.key}` : `${actor.kind} ${actor.tenant}/${actor.sub}`;
}

/** `arqon audit`. Exit codes: 0 ok, 1 refused or unreachable, 2 usage. */
export async function auditCommand(argv: readonly string[], io: CliIo, ctx: OperatorContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { ...OPERATOR_FLAGS, tenant: { type: "string" }, limit: { type: "string" }, before: { type: "string" } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  if (positionals.length > 0) throw new CliError(`unexpected argument "${positionals[0]}" (see arqon audit --help)`);
  if (values.tenant === "") throw new CliError("--tenant is empty");
  const query = new URLSearchParams();
  if (values.limit !== undefined) query.set("limit", String(parseCount(values.limit, "--limit")));
  if (values.before !== undefined) query.set("before", String(parseCount(values.before, "--before")));
  const tenant = values.tenant;
  const client = OperatorClient.fromFlags(values, ctx, tenant === undefined ? "operator" : "tenant-admin");
  if (tenant === undefined && client.credential?.kind === "token") {
    throw new CliError("the server's trail needs an operator key; with a tenant admin token, give --tenant");
  }
  const qs = query.toString();
  const path = `${tenant === undefined ? "/api/v1/audit" : `/api/v1/tenants/${seg(tenant)}/audit`}${qs ? `?${qs}` : ""}`;
  try {
    const body = await client.request<{ records: Array<AuditRecord & { offset: number }>; next?: number }>("GET", path);
    if (values.json) io.out(JSON.stringify(body));
    else if (body.records.length === 0) io.out(tenant === undefined ? "the server's audit trail is empty" : `the audit trail of tenant ${tenant} is empty`);
    else {
      const rows = body.records.map((r) => [String(r.offset), r.time, actorText(r.actor), r.action, r.target ?? "-", r.result, r.detail ? JSON.stringify(r.detail) : ""]);
      for (const line of table(["OFFSET", "TIME", "ACTOR", "ACTION", "TARGET", "RESULT", "DETAIL"], rows)) io.out(line);
    }
    if (body.next !== undefined && !values.json) {
      io.err(`more: arqon audit${tenant === undefined ? "" : ` --tenant ${tenant}`}${values.limit !== undefined ? ` --limit ${values.limit}` : ""} --before ${body.next}`);
    }
    return 0;
  } catch (err) {
    return client.report(io, "audit", err, ctx);
  }
}
