import { parseArgs } from "node:util";
import type { RevocationRule } from "@arqon/server";
import type { CliIo } from "../index.js";
import { CliError } from "../config.js";
import { isoTime, OPERATOR_FLAGS, OPERATOR_FLAGS_HELP, OperatorClient, seg, table, type OperatorContext } from "./operator-client.js";
import { parseDuration, parseTime } from "./units.js";

const HELP = `usage: arqon revoke --tenant T [--user U] [--jti J] [--before TIME] [--ttl DUR]
       arqon revoke --tenant T --all [--ttl DUR]
       arqon revoke --tenant T --list
       arqon revoke --tenant T --lift ID

Adds a revocation rule: the tenant's tokens matching every field given are refused at the upgrade (401
ARQ_AUTH_REVOKED) and connections holding one are closed (4500), on every node, until the rule expires.
  --user U        tokens whose sub is U
  --jti J         the token whose jti is J
  --before TIME   tokens issued before TIME: ISO 8601 (2025-01-01T12:00:00Z) or epoch ms (default: now, unless --jti)
  --all           every token of the tenant issued until now
  --ttl DUR       how long the rule lasts: 30s, 15m, 12h, 7d (default 1d, the usual longest token lifetime)
  --list          print the tenant's live rules
  --lift ID       remove rule ID (write --lift=ID when the id starts with -)
Needs an operator key, or a token with role "admin" of that tenant.
${OPERATOR_FLAGS_HELP}`;

/** `arqon revoke`. Exit codes: 0 ok, 1 refused or unreachable, 2 usage. */
export async function revokeCommand(argv: readonly string[], io: CliIo, ctx: OperatorContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      ...OPERATOR_FLAGS,
      tenant: { type: "string" },
      user: { type: "string" },
      jti: { type: "string" },
      before: { type: "string" },
      ttl: { type: "string" },
      all: { type: "boolean" },
      list: { type: "boolean" },
      lift: { type: "string" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  if (positionals.length > 0) throw new CliError(`unexpected argument "${positionals[0]}" (see arqon revoke --help)`);
  if (!values.tenant) throw new CliError("--tenant is required");
  const tenant = values.tenant;
  const matchers = [values.user, values.jti, values.before].filter((v) => v !== undefined).length;
  const ruleFlags = matchers + (values.all ? 1 : 0) + (values.ttl !== undefined ? 1 : 0);
  if (values.list && values.lift !== undefined) throw new CliError("give --list or --lift, not both");
  if ((values.list || values.lift !== undefined) && ruleFlags > 0) throw new CliError(`--${values.list ? "list" : "lift"} takes no rule flags`);
  const base = `/api/v1/tenants/${seg(tenant)}/revocations`;

  if (values.list) {
    const client = OperatorClient.fromFlags(values, ctx, "tenant-admin");
    try {
      const body = await client.request<{ revocations: RevocationRule[] }>("GET", base);
      if (values.json) io.out(JSON.stringify(body));
      else if (body.revocations.length === 0) io.out(`no live revocations in tenant ${tenant}`);
      else {
        const rows = body.revocations.map((r) => [r.id, r.user ?? "*", r.jti ?? "*", r.before === undefined ? "-" : isoTime(r.before), isoTime(r.expiresAt), r.by]);
        for (const line of table(["ID", "USER", "JTI", "ISSUED BEFORE", "EXPIRES", "BY"], rows)) io.out(line);
      }
      return 0;
    } catch (err) {
      return client.report(io, "revoke", err, ctx);
    }
  }

  if (values.lift !== undefined) {
    if (values.lift === "") throw new CliError("--lift needs a rule id (see arqon revoke --tenant T --list)");
    const client = OperatorClient.fromFlags(values, ctx, "tenant-admin");
    try {
      const body = await client.request<{ removed: boolean }>("DELETE", `${base}/${seg(values.lift)}`);
      io.out(values.json ? JSON.stringify(body) : `lifted revocation ${values.lift} of tenant ${tenant}`);
      return 0;
    } catch (err) {
      return client.report(io, "revoke", err, ctx);
    }
  }

  if (values.all && matchers > 0) throw new CliError("--all revokes every token of the tenant: give it without --user, --jti and --before");
  if (!values.all && matchers === 0) throw new CliError("say which tokens: --user U, --jti J, --before TIME, or --all for every token of the tenant");
  const body: Record<string, unknown> = {};
  if (values.user !== undefined) body.user = values.user;
  if (values.jti !== undefined) body.jti = values.jti;
  if (values.before !== undefined) body.before = parseTime(values.before, "--before");
  if (values.ttl !== undefined) body.ttlMs = parseDuration(values.ttl, "--ttl");
  const client = OperatorClient.fromFlags(values, ctx, "tenant-admin");
  try {
    const result = await client.request<{ rule: RevocationRule; closedHere: number }>("POST", base, body);
    const { rule } = result;
    const what = [rule.user !== undefined ? `user ${rule.user}` : "", rule.jti !== undefined ? `jti ${rule.jti}` : "", rule.before !== undefined ? `issued before ${isoTime(rule.before)}` : ""]
      .filter(Boolean)
      .join(", ");
    io.out(
      values.json
        ? JSON.stringify(result)
        : `revoked tokens of tenant ${tenant} (${what}) until ${isoTime(rule.expiresAt)}: rule ${rule.id}; ${result.closedHere} connection(s) closed on the node that answered`,
    );
    return 0;
  } catch (err) {
    return client.report(io, "revoke", err, ctx);
  }
}
