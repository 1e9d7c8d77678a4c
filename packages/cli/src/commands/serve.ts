import { parseArgs } from "node:util";
import { createArqonServer, createLogger, signToken, type ArqonServer, type ArqonServerOptions } from "@arqon/server";
import type { CliIo } from "../index.js";
import { CliError, KEY_OPTIONS, list, parsePort, resolveAuth, type KeyFlags } from "../config.js";
import { loadOrCreateDevKey } from "../keys.js";
import type { CommandContext } from "./token.js";

export const SERVE_USAGE = `Usage: arqon serve [options]

Runs the ArqonBus gateway on one process with the embedded (in-memory) backends.
Settings come from flags, then ARQON_* environment variables, then ./arqon.config.json (or --config).

  -p, --port <n>             port (ARQON_PORT, default 9100)
      --host <addr>          address to bind (ARQON_HOST, default 127.0.0.1; 0.0.0.0 for all interfaces)
      --path <path>          WebSocket path (ARQON_PATH, default /ws)
  -c, --config <file>        JSON config file (ARQON_CONFIG, default ./arqon.config.json when present)
      --jwt-secret <s>       HS256 secret, at least 32 characters (ARQON_JWT_SECRET; prefer the variable)
      --jwt-public-key <f>   PEM public key file for RS/ES/EdDSA tokens, repeatable (ARQON_JWT_PUBLIC_KEY, comma-separated)
      --jwks-url <url>       JWKS endpoint (ARQON_JWKS_URL)
      --jwt-alg <alg>        accepted algorithms, repeatable or comma-separated (ARQON_JWT_ALGORITHMS)
      --jwt-issuer <iss>     required iss (ARQON_JWT_ISSUER)
      --jwt-audience <aud>   required aud (ARQON_JWT_AUDIENCE)
      --tenant-claim <name>  claim holding the tenant (ARQON_TENANT_CLAIM, default tenant)
      --allowed-origin <o>   allowed browser Origin, repeatable (ARQON_ALLOWED_ORIGINS, comma-separated)
      --dev                  use the local development key in ./.arqon/dev-key.json (ARQON_DEV=1)
      --data-dir <dir>       where the dev key lives (ARQON_DATA_DIR, default ./.arqon)
      --log-level <level>    trace, debug, info, warn, error (ARQON_LOG_LEVEL, default info)
      --log-format <f>       pretty or json (ARQON_LOG_FORMAT, default pretty on a terminal)

Without any key configured, serve runs in dev mode: it creates ./.arqon/dev-key.json on first run and prints a
ready token. Stop with Ctrl-C (connections are closed with 1001 "going away").`;

export interface ServeContext extends CommandContext {
  /** Aborting stops the server gracefully (the bin wires SIGINT/SIGTERM to it). */
  signal?: AbortSignal;
  /** Called once listening (tests use it to find the port and server). */
  onListening?: (server: ArqonServer, info: { url: string; httpUrl: string; token?: string }) => void;
  logger?: ArqonServer["logger"];
}

function displayHost(host: string): string {
  if (host === "0.0.0.0" || host === "::" || host === "") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}

/** `arqon serve`: listens until the signal aborts, then shuts down gracefully; resolves to the exit code. */
export async function serveCommand(argv: readonly string[], io: CliIo, ctx: ServeContext): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      ...KEY_OPTIONS,
      port: { type: "string", short: "p" },
      host: { type: "string" },
      path: { type: "string" },
      "allowed-origin": { type: "string", multiple: true },
      "log-level": { type: "string" },
      "log-format": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.out(SERVE_USAGE);
    return 0;
  }
  const env = ctx.env;
  const resolved = resolveAuth(values as KeyFlags, env, ctx.cwd);
  const config = resolved.config;
  const port =
    values.port !== undefined
      ? parsePort(values.port, "--port")
      : env.ARQON_PORT
        ? parsePort(env.ARQON_PORT, "ARQON_PORT")
        : config.port !== undefined
          ? parsePort(config.port, "config port")
          : 9100;
  const host = values.host ?? env.ARQON_HOST ?? config.host ?? "127.0.0.1";
  const wsPath = values.path ?? env.ARQON_PATH ?? config.path ?? "/ws";
  if (!wsPath.startsWith("/")) throw new CliError(`path must start with "/", got "${wsPath}"`);
  const logFormat = values["log-format"] ?? env.ARQON_LOG_FORMAT ?? config.logFormat;
  if (logFormat !== undefined && logFormat !== "pretty" && logFormat !== "json") throw new CliError('--log-format must be "pretty" or "json"');
  const logger =
    ctx.logger ??
    createLogger({
      level: values["log-level"] ?? env.ARQON_LOG_LEVEL ?? config.logLevel ?? "info",
      pretty: logFormat === undefined ? undefined : logFormat === "pretty",
    });

  let auth = resolved.auth;
  let devToken: string | undefined;
  let devKeyFile: string | undefined;
  let devKeyCreated = false;
  if (resolved.dev) {
    const dev = loadOrCreateDevKey(resolved.dataDir);
    devKeyFile = dev.file;
    devKeyCreated = dev.created;
    auth = { ...auth, secret: dev.key.secret, algorithms: ["HS256"], dev: true };
    devToken = await signToken({ secret: dev.key.secret, sub: "alice", tenant: "dev", ttl: "24h", tenantClaim: auth.tenantClaim });
  }

  const options: ArqonServerOptions = {
    auth,
    path: wsPath,
    logger,
    limits: config.limits,
    tenantLimits: config.tenantLimits,
    presenceOptions: config.presence,
    allowedOrigins: list(values["allowed-origin"]) ?? list(env.ARQON_ALLOWED_ORIGINS) ?? config.allowedOrigins,
    perMessageDeflate: config.perMessageDeflate,
  };
  const server = createArqonServer(options);
  let address;
  try {
    address = await server.listen(port, host);
  } catch (err) {
    await server.close();
    const code = (err as { code?: string }).code;
    if (code === "EADDRINUSE") throw new CliError(`port ${port} on ${host} is already in use (try --port)`);
    if (code === "EACCES") throw new CliError(`not allowed to listen on ${host}:${port}`);
    throw err;
  }
  const shown = displayHost(address.address);
  const httpUrl = `http://${shown}:${address.port}`;
  const url = `ws://${shown}:${address.port}${wsPath}`;
  io.out(`ArqonBus gateway listening`);
  io.out(`  WebSocket  ${url}`);
  io.out(`  Health     ${httpUrl}/health`);
  io.out(`  Status     ${httpUrl}/status`);
  io.out(`  Metrics    ${httpUrl}/metrics`);
  if (devToken) {
    io.out("");
    io.out(`DEV MODE: tokens signed with the local development key ${devKeyFile}${devKeyCreated ? " (created now)" : ""} are accepted.`);
    io.out("Do not expose this server: anyone with that file can mint tokens. Configure --jwt-secret or keys for real use.");
    io.out("");
    io.out("A token (sub alice, tenant dev, valid 24h):");
    io.out(`  ${devToken}`);
    io.out("Connect (in two terminals to see messages travel):");
    io.out(`  npx wscat -c "${url}?token=${devToken}"`);
    io.out(`More tokens: npx arqon token --sub bob --tenant dev`);
  }
  ctx.onListening?.(server, { url, httpUrl, token: devToken });

  await new Promise<void>((resolve) => {
    if (!ctx.signal) return;
    if (ctx.signal.aborted) return resolve();
    ctx.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  logger.info("shutting down");
  await server.close();
  return 0;
}
