import { parseArgs } from "node:util";
import { SERVER_OPERATIONS, operationParams, operationPath, type ServerOperation, type ServerOperationName } from "@arqon/sdk/server";
import type { CliIo } from "../index.js";
import { CliError } from "../config.js";
import { OPERATOR_FLAGS, OPERATOR_FLAGS_HELP, OperatorClient, table, type Credential, type OperatorContext } from "./operator-client.js";

const HELP = `usage: arqon api <operation> [--tenant T] [--data JSON] [--query k=v ...]
       arqon api --list

Calls one route of the server API (/api/v1) by its operation name (the method names of @arqon/sdk/server's
ArqonServerClient; --list prints them with their method, path and who may call them) and prints the JSON answer.
Path parameters other than the tenant come from --query too (--query room=lobby fills :room); the rest of --query
is the query string. --data is the JSON body of operations that take one. --tenant defaults to the tenant of the
token given. Examples:
  arqon api publish --tenant acme --data '{"room":"lobby","payload":{"text":"hi"}}'
  arqon api history --tenant acme --query room=lobby --query limit=10 --query reverse=true
  arqon api stateSet --tenant acme --query room=doc --query key=title --data '{"value":"Draft","expectedVersion":0}'
Tenant operations need an operator key, or a token with role "admin" (the application-backend routes: also role
"server") of that tenant; tenant records and the baseline need an operator key.
${OPERATOR_FLAGS_HELP}`;

/** The tenant a token names in its `tenant` claim (read, not verified: the server verifies it), if any. */
export function tokenTenant(credential: Credential | undefined): string | undefined {
  if (credential?.kind !== "token") return undefined;
  const part = credential.value.split(".")[1];
  if (part === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as { tenant?: unknown };
    return typeof claims.tenant === "string" && claims.tenant !== "" ? claims.tenant : undefined;
  } catch {
    return undefined;
  }
}

/** The client of a server-API verb: the credential resolveCredential finds for who may call `op`. */
export function clientFor(op: ServerOperation, flags: Parameters<typeof OperatorClient.fromFlags>[0], ctx: OperatorContext): OperatorClient {
  return OperatorClient.fromFlags(flags, ctx, op.access === "operator" ? "operator" : "tenant-admin");
}

/** `--tenant`, else the token's tenant; a CliError naming `command` when neither is there. */
export function tenantOf(flag: string | undefined, client: OperatorClient, command: string): string {
  if (flag === "") throw new CliError("--tenant is empty");
  const tenant = flag ?? tokenTenant(client.credential);
  if (tenant === undefined) throw new CliError(`--tenant is required (see arqon ${command} --help)`);
  return tenant;
}

/**
 * Calls an operation with `params` in its path and `query` as the query string, and resolves with the JSON answer.
 * ApiError and UnreachableError reach the caller (for `client.report`).
 */
export function callOperation<T>(client: OperatorClient, op: ServerOperation, params: Record<string, string>, query: URLSearchParams, body?: unknown): Promise<T> {
  const qs = query.toString();
  return client.request<T>(op.method, `${operationPath(op, params)}${qs ? `?${qs}` : ""}`, body ?? (op.body ? {} : undefined));
}

function isOperation(name: string): name is ServerOperationName {
  return Object.hasOwn(SERVER_OPERATIONS, name);
}

/** `arqon api`. Exit codes: 0 ok, 1 refused or unreachable, 2 usage. */
export async function apiCommand(argv: readonly string[], io: CliIo, ctx: OperatorContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { ...OPERATOR_FLAGS, tenant: { type: "string" }, data: { type: "string" }, query: { type: "string", multiple: true }, list: { type: "boolean", default: false } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  if (values.list) {
    const rows = Object.entries(SERVER_OPERATIONS).map(([name, op]: [string, ServerOperation]) => [name, op.method, op.path, op.access, op.summary]);
    if (values.json) io.out(JSON.stringify(Object.entries(SERVER_OPERATIONS).map(([name, op]) => ({ name, ...op }))));
    else for (const line of table(["OPERATION", "METHOD", "PATH", "WHO", "DOES"], rows)) io.out(line);
    return 0;
  }
  const [name, ...extra] = positionals;
  if (name === undefined) throw new CliError("name an operation (arqon api --list prints them)");
  if (extra.length > 0) throw new CliError(`unexpected argument "${extra[0]}" (see arqon api --help)`);
  if (!isOperation(name)) throw new CliError(`unknown operation "${name}" (arqon api --list prints them)`);
  const op: ServerOperation = SERVER_OPERATIONS[name];
  const pathParams = operationParams(op.path);
  const params: Record<string, string> = {};
  const query = new URLSearchParams();
  for (const pair of values.query ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new CliError(`--query: "${pair}" is not k=v`);
    const k = pair.slice(0, eq);
    const v = pair.slice(eq + 1);
    if (k === "tenant") throw new CliError("give the tenant with --tenant");
    if (pathParams.includes(k)) params[k] = v;
    else query.append(k, v);
  }
  let body: unknown;
  if (values.data !== undefined) {
    if (!op.body) throw new CliError(`${name} (${op.method} ${op.path}) takes no --data`);
    try {
      body = JSON.parse(values.data);
    } catch (err) {
      throw new CliError(`--data is not JSON: ${(err as Error).message}`);
    }
  }
  const client = clientFor(op, values, ctx);
  if (pathParams.includes("tenant")) params.tenant = tenantOf(values.tenant, client, "api");
  else if (values.tenant !== undefined) throw new CliError(`${name} (${op.path}) names no tenant`);
  const missing = pathParams.filter((p) => params[p] === undefined || params[p] === "");
  if (missing.length > 0) throw new CliError(`${name} needs ${missing.map((p) => `--query ${p}=...`).join(" and ")} (${op.method} ${op.path})`);
  try {
    io.out(JSON.stringify(await callOperation(client, op, params, query, body), null, 2));
    return 0;
  } catch (err) {
    return client.report(io, "api", err, ctx);
  }
}
