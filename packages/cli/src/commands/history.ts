import { parseArgs } from "node:util";
import { SERVER_OPERATIONS, type ServerHistoryPage } from "@arqon/sdk/server";
import type { CliIo } from "../index.js";
import { CliError } from "../config.js";
import { OPERATOR_FLAGS, OPERATOR_FLAGS_HELP, isoTime, table, type OperatorContext } from "./operator-client.js";
import { callOperation, clientFor, tenantOf } from "./api.js";
import { parseCount } from "./units.js";

const HELP = `usage: arqon history <room> [--tenant T] [--from-offset N] [--to-offset N] [--from-ts MS] [--to-ts MS]
                     [--limit N] [--reverse]

Prints a page of a room's history: offset, time, sender and payload of each message (a binary payload as base64),
oldest first or with --reverse newest first; --limit is 1-1000 (default 100); the times are epoch ms. --tenant
defaults to the token's tenant. Needs an operator key, or a token with role "admin" or "server" of the tenant.
(arqon api history is the same route with the JSON answer.)
${OPERATOR_FLAGS_HELP}`;

/** `arqon history`. Exit codes: 0 ok, 1 refused or unreachable, 2 usage. */
export async function historyCommand(argv: readonly string[], io: CliIo, ctx: OperatorContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      ...OPERATOR_FLAGS,
      tenant: { type: "string" },
      "from-offset": { type: "string" },
      "to-offset": { type: "string" },
      "from-ts": { type: "string" },
      "to-ts": { type: "string" },
      limit: { type: "string" },
      reverse: { type: "boolean", default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  const [room, ...extra] = positionals;
  if (room === undefined) throw new CliError("name a room (see arqon history --help)");
  if (extra.length > 0) throw new CliError(`unexpected argument "${extra[0]}" (see arqon history --help)`);
  const query = new URLSearchParams();
  for (const [flag, param] of [
    ["from-offset", "fromOffset"],
    ["to-offset", "toOffset"],
    ["from-ts", "fromTs"],
    ["to-ts", "toTs"],
    ["limit", "limit"],
  ] as const) {
    const v = values[flag];
    if (v !== undefined) query.set(param, String(parseCount(v, `--${flag}`)));
  }
  if (values.reverse) query.set("reverse", "true");
  const op = SERVER_OPERATIONS.history;
  const client = clientFor(op, values, ctx);
  const tenant = tenantOf(values.tenant, client, "history");
  try {
    const page = await callOperation<ServerHistoryPage>(client, op, { tenant, room }, query);
    if (values.json) io.out(JSON.stringify(page));
    else if (page.messages.length === 0) io.out(`no messages in room ${room} of tenant ${tenant} (position ${page.position.offset})`);
    else {
      const rows = page.messages.map((m) => [String(m.offset), isoTime(m.timestamp), m.sender ?? "-", m.payloadFormat === "binary" ? `binary:${String(m.payload)}` : JSON.stringify(m.payload)]);
      for (const line of table(["OFFSET", "TIME", "SENDER", "PAYLOAD"], rows)) io.out(line);
    }
    return 0;
  } catch (err) {
    return client.report(io, "history", err, ctx);
  }
}
