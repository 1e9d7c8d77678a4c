import { parseArgs } from "node:util";
import { SERVER_OPERATIONS, type ServerPresenceMember } from "@arqon/sdk/server";
import type { CliIo } from "../index.js";
import { CliError } from "../config.js";
import { OPERATOR_FLAGS, OPERATOR_FLAGS_HELP, isoTime, table, type OperatorContext } from "./operator-client.js";
import { callOperation, clientFor, tenantOf } from "./api.js";

const HELP = `usage: arqon presence <room> [--tenant T] [--stats]

Prints who is present in a room (client id, user, since when), or with --stats how many connections and distinct
users. --tenant defaults to the token's tenant. Needs an operator key, or a token with role "admin" or "server" of
the tenant.
${OPERATOR_FLAGS_HELP}`;

/** `arqon presence`. Exit codes: 0 ok, 1 refused or unreachable, 2 usage. */
export async function presenceCommand(argv: readonly string[], io: CliIo, ctx: OperatorContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { ...OPERATOR_FLAGS, tenant: { type: "string" }, stats: { type: "boolean", default: false } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  const [room, ...extra] = positionals;
  if (room === undefined) throw new CliError("name a room (see arqon presence --help)");
  if (extra.length > 0) throw new CliError(`unexpected argument "${extra[0]}" (see arqon presence --help)`);
  const op = values.stats ? SERVER_OPERATIONS.presenceStats : SERVER_OPERATIONS.presence;
  const client = clientFor(op, values, ctx);
  const tenant = tenantOf(values.tenant, client, "presence");
  try {
    if (values.stats) {
      const stats = await callOperation<{ clients: number; users: number }>(client, op, { tenant, room }, new URLSearchParams());
      io.out(values.json ? JSON.stringify(stats) : `room ${room} of tenant ${tenant}: ${stats.clients} connection(s), ${stats.users} user(s)`);
      return 0;
    }
    const answer = await callOperation<{ members: ServerPresenceMember[] }>(client, op, { tenant, room }, new URLSearchParams());
    if (values.json) io.out(JSON.stringify(answer));
    else if (answer.members.length === 0) io.out(`nobody is present in room ${room} of tenant ${tenant}`);
    else {
      const rows = answer.members.map((m) => [m.clientId, m.user, isoTime(m.joinedAt), m.info === undefined ? "" : JSON.stringify(m.info)]);
      for (const line of table(["CLIENT", "USER", "SINCE", "INFO"], rows)) io.out(line);
    }
    return 0;
  } catch (err) {
    return client.report(io, "presence", err, ctx);
  }
}
