import { parseArgs } from "node:util";
import type { CliIo } from "../index.js";
import { CliError } from "../config.js";
import { OPERATOR_FLAGS, OPERATOR_FLAGS_HELP, OperatorClient, seg, type OperatorContext } from "./operator-client.js";

const HELP = `usage: arqon kick --tenant T (--user U | --client C | --all)
Closes (4504) a tenant's connections on every node: those of user U (the token's sub), the one with client id C
(write --client=C when the id starts with -), or with --all every connection of the tenant. Clients may reconnect;
to refuse their tokens, see arqon revoke. Needs an operator key, or a token with role "admin" of that tenant.
${OPERATOR_FLAGS_HELP}`;

/** `arqon kick`. Exit codes: 0 ok, 1 refused or unreachable, 2 usage. */
export async function kickCommand(argv: readonly string[], io: CliIo, ctx: OperatorContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { ...OPERATOR_FLAGS, tenant: { type: "string" }, user: { type: "string" }, client: { type: "string" }, all: { type: "boolean" } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  if (positionals.length > 0) throw new CliError(`unexpected argument "${positionals[0]}" (see arqon kick --help)`);
  if (!values.tenant) throw new CliError("--tenant is required");
  const selectors = [values.user !== undefined, values.client !== undefined, values.all === true].filter(Boolean).length;
  if (selectors !== 1) throw new CliError("give exactly one of --user U, --client C or --all");
  const body: Record<string, string> = {};
  if (values.user !== undefined) body.user = values.user;
  if (values.client !== undefined) body.client = values.client;
  const client = OperatorClient.fromFlags(values, ctx, "tenant-admin");
  try {
    const result = await client.request<{ closedHere: number }>("POST", `/api/v1/tenants/${seg(values.tenant)}/kick`, body);
    const who = values.user !== undefined ? `user ${values.user}` : values.client !== undefined ? `client ${values.client}` : "every connection";
    io.out(values.json ? JSON.stringify(result) : `kicked ${who} of tenant ${values.tenant}: ${result.closedHere} connection(s) closed on the node that answered, the other nodes close theirs`);
    return 0;
  } catch (err) {
    return client.report(io, "kick", err, ctx);
  }
}
