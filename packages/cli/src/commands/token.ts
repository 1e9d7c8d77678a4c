import { parseArgs } from "node:util";
import { parseTtl, signToken, type Capabilities } from "@arqon/server";
import type { CliIo } from "../index.js";
import { CliError, KEY_OPTIONS, resolveAuth, type KeyFlags } from "../config.js";
import { loadOrCreateDevKey } from "../keys.js";

export const TOKEN_USAGE = `Usage: arqon token --sub <subject> --tenant <tenant> [--role admin] [--ttl 1h] [--caps '<json>']

Prints a JWT signed with the key \`arqon serve\` uses (--jwt-secret / ARQON_JWT_SECRET / the config file,
or the local development key in ./.arqon/dev-key.json, created if missing).

  --sub <id>          the token's subject (required)
  --tenant <id>       the tenant (required; letters, digits, _ and -)
  --role <role>       e.g. "admin" (admin-only commands, no capability limits) or "server" (publish API)
  --ttl <span>        lifetime: 90 (seconds), 30m, 1h, 7d (default 1h)
  --caps <json>       capabilities, e.g. '{"sub":["lobby","chat:*"],"pub":["chat:*"]}'
  --jwt-secret, --config, --data-dir, --tenant-claim, --jwt-issuer, --jwt-audience   as for serve`;

export interface CommandContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
}

function parseCaps(text: string | undefined): Capabilities | undefined {
  if (text === undefined) return undefined;
  let caps: unknown;
  try {
    caps = JSON.parse(text);
  } catch {
    throw new CliError("--caps must be JSON, e.g. '{\"sub\":[\"lobby\"]}'");
  }
  if (typeof caps !== "object" || caps === null || Array.isArray(caps)) throw new CliError("--caps must be a JSON object");
  for (const [action, patterns] of Object.entries(caps)) {
    if (!["sub", "pub", "presence"].includes(action)) throw new CliError(`--caps: unknown capability "${action}" (sub, pub, presence)`);
    if (!Array.isArray(patterns) || patterns.some((p) => typeof p !== "string")) throw new CliError(`--caps: "${action}" must be a list of room patterns`);
  }
  return caps as Capabilities;
}

/** `arqon token`: prints one signed token on stdout (and nothing else, so it can be captured). */
export async function tokenCommand(argv: readonly string[], io: CliIo, ctx: CommandContext): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      ...KEY_OPTIONS,
      sub: { type: "string" },
      tenant: { type: "string" },
      role: { type: "string" },
      ttl: { type: "string" },
      caps: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.out(TOKEN_USAGE);
    return 0;
  }
  if (!values.sub) throw new CliError("--sub is required");
  if (!values.tenant) throw new CliError("--tenant is required");
  if (values.ttl !== undefined && parseTtl(values.ttl) === undefined) throw new CliError(`--ttl "${values.ttl}" is not a duration like 30m, 1h or 7d`);
  const resolved = resolveAuth(values as KeyFlags, ctx.env, ctx.cwd);
  let secret = resolved.auth.secret;
  if (resolved.dev) {
    const dev = loadOrCreateDevKey(resolved.dataDir);
    if (dev.created) io.err(`created the development key ${dev.file}`);
    secret = dev.key.secret;
  }
  if (secret === undefined) {
    throw new CliError("tokens can only be signed with an HMAC secret (--jwt-secret, ARQON_JWT_SECRET) or the dev key; public keys verify only");
  }
  const algs = resolved.auth.algorithms ?? ["HS256"];
  const algorithm = (algs.find((a) => a === "HS256" || a === "HS384" || a === "HS512") ?? "HS256") as "HS256" | "HS384" | "HS512";
  const token = await signToken({
    secret,
    sub: values.sub,
    tenant: values.tenant,
    role: values.role,
    caps: parseCaps(values.caps),
    ttl: values.ttl ?? "1h",
    algorithm,
    tenantClaim: resolved.auth.tenantClaim,
    issuer: typeof resolved.auth.issuer === "string" ? resolved.auth.issuer : resolved.auth.issuer?.[0],
    audience: typeof resolved.auth.audience === "string" ? resolved.auth.audience : resolved.auth.audience?.[0],
  });
  io.out(token);
  return 0;
}
