import { parseArgs } from "node:util";
import { SERVER_OPERATIONS, type ServerRoom } from "@arqon/sdk/server";
import type { CliIo } from "../index.js";
import { CliError } from "../config.js";
import { OPERATOR_FLAGS, OPERATOR_FLAGS_HELP, table, type OperatorContext } from "./operator-client.js";
import { callOperation, clientFor, tenantOf } from "./api.js";
import { parseCount } from "./units.js";

const HELP = `usage: arqon rooms [--tenant T] [--prefix P] [--limit N] [--cursor C]

Prints a page of the tenant's rooms live on any node of the cluster, with their subscriptions summed over nodes and
the number of nodes, sorted by name; --prefix keeps the names starting with P, --limit is 1-1000 (default 100), and
--cursor C continues after the page that printed "more: --cursor C". --tenant defaults to the token's tenant. Needs
an operator key, or a token with role "admin" or "server" of the tenant.
${OPERATOR_FLAGS_HELP}`;

/** `arqon rooms`. Exit codes: 0 ok, 1 refused or unreachable, 2 usage. */
export async function roomsCommand(argv: readonly string[], io: CliIo, ctx: OperatorContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { ...OPERATOR_FLAGS, tenant: { type: "string" }, prefix: { type: "string" }, limit: { type: "string" }, cursor: { type: "string" } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  if (positionals.length > 0) throw new CliError(`unexpected argument "${positionals[0]}" (see arqon rooms --help)`);
  const query = new URLSearchParams();
  if (values.prefix !== undefined) query.set("prefix", values.prefix);
  if (values.limit !== undefined) query.set("limit", String(parseCount(values.limit, "--limit")));
  if (values.cursor !== undefined) query.set("cursor", values.cursor);
  const op = SERVER_OPERATIONS.rooms;
  const client = clientFor(op, values, ctx);
  const tenant = tenantOf(values.tenant, client, "rooms");
  try {
    const answer = await callOperation<{ rooms: ServerRoom[]; next?: string; partial?: true }>(client, op, { tenant }, query);
    if (values.json) io.out(JSON.stringify(answer));
    else {
      if (answer.rooms.length === 0) io.out(`no rooms of tenant ${tenant} live on any node`);
      else for (const line of table(["ROOM", "SUBSCRIBERS", "NODES"], answer.rooms.map((r) => [r.room, String(r.subscribers), String(r.nodes)]))) io.out(line);
      if (answer.next !== undefined) io.out(`more: --cursor ${answer.next}`);
      if (answer.partial) io.err("partial: a node of the cluster did not answer in time");
    }
    return 0;
  } catch (err) {
    return client.report(io, "rooms", err, ctx);
  }
}
