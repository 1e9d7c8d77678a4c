import cluster from "node:cluster";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import path from "node:path";
import {
  SERVER_VERSION,
  createArqonServer,
  createCasilFromEnv,
  createLogger,
  type CasilController,
  openEmbeddedStorage,
  signToken,
  type ArqonServer,
  type ArqonServerOptions,
  type EmbeddedStorage,
  type PresenceOptions,
  type ProxyOptions,
  type RetentionRule,
  type TenancyMode,
} from "@arqon/server";
import { connectNatsBackends, type NatsBackends } from "@arqon/nats";
import {
  ArqonError,
  parseRoomKey,
  roomMatches,
  type RetentionPolicy,
  type RoomKey,
} from "@arqon/core";
import { omegaOptionsFromEnv, registerStandardOperators, type Operator } from "@arqon/operators";
import type { CliIo } from "../index.js";
import { CliError, KEY_OPTIONS, list, parsePort, resolveAuth, type ConfigFile, type KeyFlags } from "../config.js";
import { loadOrCreateDevKey, loadOrCreateDevOperatorKey } from "../keys.js";
import type { CommandContext } from "./token.js";
import { parseRate } from "./units.js";
import type { OtelHandle } from "../otel.js";

export const SERVE_USAGE = `Usage: arqon serve [options]

Runs the ArqonBus gateway on one process. History, room state and key-value data are kept in an embedded LMDB
database under <data-dir>/data (they survive restarts and kill -9); --memory keeps everything in memory instead.
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
      --data-dir <dir>       the dev key and the database (<dir>/data) (ARQON_DATA_DIR, default ./.arqon)
      --storage <kind>       embedded (LMDB, default) or memory (ARQON_STORAGE)
      --memory               same as --storage memory: nothing survives a restart (tests, ephemeral rooms)
      --log-level <level>    trace, debug, info, warn, error (ARQON_LOG_LEVEL, default info)
      --log-format <f>       pretty or json (ARQON_LOG_FORMAT, default pretty on a terminal)
      --nats <url>           join a cluster through NATS (ARQON_NATS_URL; comma-separated seeds): bus, history,
                             presence, room state and op.store live on NATS (JetStream and KV) instead of LMDB
      --workers <n>          run n gateway processes sharing the port, joined through NATS (ARQON_WORKERS; needs --nats)
      --operator-key <key>   an operator key (at least 24 characters), repeatable (ARQON_OPERATOR_KEY, comma-separated;
                             config operatorKeys): the credential of the server API (tenants, limits, CASIL baseline,
                             kick, revoke) and of /status and /metrics. Dev mode creates one in <data-dir>/operator-key
      --scrape-token <t>     a token that may read /status and /metrics only, repeatable (ARQON_SCRAPE_TOKEN)
      --tenants <mode>       open (any valid tenant claim connects, the default) or registered (only tenants the
                             operator created: arqon tenant create) (ARQON_TENANTS; config tenancy)
      --cluster-key <key>    signs the messages nodes send each other over NATS, the same on every node, at least
                             32 characters (ARQON_CLUSTER_KEY; config clusterKey; default: derived from the JWT secret)
      --outbound-allow <h>   a host, address or CIDR that server-side requests (webhooks) may reach although it is not
                             public, repeatable (ARQON_OUTBOUND_ALLOW, comma-separated; config outbound.allow)
      --outbound-allow-http  let server-side requests use http:, not only https: (ARQON_OUTBOUND_ALLOW_HTTP=1)
      --proxy-connect <url>  proxy hooks: the gateway POSTs the event to the application backend and obeys the
      --proxy-subscribe <url>  answer (allow, deny, modify); see docs/gateway.md "Proxy hooks". Each also as
      --proxy-publish <url>  ARQON_PROXY_CONNECT, ..._SUBSCRIBE, ..._PUBLISH, ..._REFRESH, ..._RPC (config proxy.*).
      --proxy-refresh <url>  connect may admit upgrades without a token (session cookies); rpc serves rpc frames
      --proxy-rpc <url>
      --proxy-secret <s>     the Standard Webhooks secret (whsec_...) every hook call is signed with; required with a
                             hook (ARQON_PROXY_SECRET; config proxy.secret)
      --proxy-timeout <ms>   time each hook call may take (ARQON_PROXY_TIMEOUT_MS, default 1000)
      --proxy-fail-open <hook>  let that hook's failures allow instead of deny, repeatable (default: fail closed)
      --proxy-forward-cookie <name>  a cookie of the upgrade passed to the connect hook, repeatable
      --proxy-forward-header <name>  a request header of the upgrade passed to the connect hook, repeatable
      --api-rate <N/s>       server API requests per second per credential (ARQON_API_RATE; config
                             http.apiRateLimit.perSecond; default 200/s, 0 = no limit): 429 ARQ_RATE_LIMITED beyond
      --api-burst <n>        requests a credential may make at once above that rate (ARQON_API_BURST; default 2 × rate)
      --otel                 OpenTelemetry traces (ARQON_OTEL=1): spans of upgrades, publishes (CASIL, history append),
                             deliveries, server API calls and webhooks, sent as OTLP/HTTP JSON through the outbound
                             guard (allow a private collector with --outbound-allow); OTEL_SERVICE_NAME and
                             OTEL_EXPORTER_OTLP_HEADERS are read
      --otel-endpoint <url>  the collector's traces URL (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or
                             OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces; default http://localhost:4318/v1/traces)
      --casil-policy <file>  CASIL policy document (JSON or YAML), reloaded when it changes (ARQON_CASIL_POLICY_FILE)
      --no-casil             turn CASIL off (ARQON_CASIL_ENABLED=false); op.casil.* then answers FEATURE_DISABLED
      --console              serve the web console at /console (ARQON_CONSOLE=1; config console: true). On by default
                             in dev mode; sign in with an operator key or a tenant admin token (docs/console.md)
      --no-console           do not serve it, also in dev mode (ARQON_CONSOLE=0; config console: false)
      --no-presence <room>   keep no presence in rooms matching this pattern ("feed/*", "*"), repeatable
                             (ARQON_PRESENCE_DISABLED_ROOMS, comma-separated; config presence.disabledRooms):
                             for broadcast rooms, subscribing then writes no member entry anywhere

CASIL inspects every inbound message. Without a policy it runs the default policies (size, probable secrets): in
enforce mode with a configured key (it blocks), in monitor mode in dev mode (it records what it would block and
changes nothing); ARQON_CASIL_MODE or a policy document's "mode" chooses otherwise. The start banner says which. The ARQON_CASIL_* variables are listed in docs/casil.md.
The standard operators (op.store, op.cron, op.webhook; op.omega.* with ARQON_OMEGA_ENABLED=1) are registered.

Without any key configured, serve runs in dev mode: it creates ./.arqon/dev-key.json on first run and prints a
ready token. Stop with Ctrl-C (connections are closed with 1001 "going away").

Config file keys for storage: "storage" ("embedded" | "memory"), "durability" ("commit", the default: acknowledged
writes survive a process kill; "flush": they also survive a power loss, at about a fifth of the rate), and "retention", per room pattern, first match
wins, e.g. [{"pattern": "ticker:*", "maxMessages": 100, "maxAgeMs": 60000, "maxBytes": 1048576}] (defaults: 1000 messages,
24 h, no byte bound; a tenant's limits (arqon tenant set) apply on top).`;

export interface ServeContext extends CommandContext {
  /** Aborting stops the server gracefully (the bin wires SIGINT/SIGTERM to it). */
  signal?: AbortSignal;
  /** Called once listening (tests use it to find the port and server). */
  onListening?: (server: ArqonServer, info: { url: string; httpUrl: string; token?: string }) => void;
  logger?: ArqonServer["logger"];
}

/**
 * Whether the web console is served: `--console` / `--no-console`, else ARQON_CONSOLE (1, true, yes / 0, false, no),
 * else the config file's `console`, else on in dev mode only.
 */
export function consoleEnabled(on: boolean | undefined, off: boolean | undefined, variable: string | undefined, config: boolean | undefined, dev: boolean): boolean {
  if (on && off) throw new CliError("give --console or --no-console, not both");
  if (on) return true;
  if (off) return false;
  if (variable !== undefined && variable !== "") {
    const v = variable.trim().toLowerCase();
    if (["1", "true", "yes", "on"].includes(v)) return true;
    if (["0", "false", "no", "off"].includes(v)) return false;
    throw new CliError(`ARQON_CONSOLE: "${variable}" is not 1 or 0`);
  }
  if (config !== undefined) {
    if (typeof config !== "boolean") throw new CliError('config "console" must be true or false');
    return config;
  }
  return dev;
}

/** Presence options: rooms without presence from the flag, else the variable, else the config file. */
function presenceOptions(
  flag: string[] | undefined,
  variable: string | undefined,
  config: PresenceOptions | undefined,
): PresenceOptions | undefined {
  const disabledRooms = list(flag) ?? list(variable);
  if (disabledRooms === undefined) return config;
  return { ...config, disabledRooms };
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
      storage: { type: "string" },
      memory: { type: "boolean" },
      "casil-policy": { type: "string" },
      nats: { type: "string" },
      workers: { type: "string" },
      "no-casil": { type: "boolean" },
      "no-presence": { type: "string", multiple: true },
      console: { type: "boolean" },
      "no-console": { type: "boolean" },
      "operator-key": { type: "string", multiple: true },
      "scrape-token": { type: "string", multiple: true },
      tenants: { type: "string" },
      "cluster-key": { type: "string" },
      "outbound-allow": { type: "string", multiple: true },
      "outbound-allow-http": { type: "boolean" },
      "proxy-connect": { type: "string" },
      "proxy-subscribe": { type: "string" },
      "proxy-publish": { type: "string" },
      "proxy-refresh": { type: "string" },
      "proxy-rpc": { type: "string" },
      "proxy-secret": { type: "string" },
      "proxy-timeout": { type: "string" },
      "proxy-fail-open": { type: "string", multiple: true },
      "proxy-forward-cookie": { type: "string", multiple: true },
      "proxy-forward-header": { type: "string", multiple: true },
      "api-rate": { type: "string" },
      "api-burst": { type: "string" },
      otel: { type: "boolean" },
      "otel-endpoint": { type: "string" },
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
  // A worker listens where its primary says: with --port 0, workers left to choose could each get a port of their own.
  const workerPort = cluster.isWorker ? env.ARQON_WORKER_PORT : undefined;
  const port =
    workerPort !== undefined
      ? parsePort(workerPort, "ARQON_WORKER_PORT")
      : values.port !== undefined
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
  const tenancy = resolveTenancy(values, env, config, resolved.dataDir, resolved.dev);

  const natsUrl = values.nats ?? env.ARQON_NATS_URL ?? config.nats;
  const workersText = values.workers ?? env.ARQON_WORKERS ?? (config.workers === undefined ? undefined : String(config.workers));
  const workers = workersText === undefined ? 1 : Number(workersText);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new CliError("--workers must be a whole number from 1 to 64");
  if (workers > 1 && !natsUrl) throw new CliError("--workers needs --nats: worker processes share rooms, presence and history through NATS");
  if (workers > 1 && cluster.isPrimary) {
    return runPrimary(workers, io, ctx, logger, { port, host, wsPath });
  }
  if (natsUrl && (values.memory || values.storage !== undefined)) throw new CliError("--nats replaces the local storage: drop --memory/--storage");

  const storageKind = values.memory ? "memory" : (values.storage ?? env.ARQON_STORAGE ?? config.storage ?? "embedded");
  if (storageKind !== "embedded" && storageKind !== "memory") throw new CliError('--storage must be "embedded" or "memory"');
  if (values.memory && values.storage !== undefined && values.storage !== "memory") throw new CliError("--memory contradicts --storage " + values.storage);
  const durability = config.durability ?? "commit";
  if (durability !== "flush" && durability !== "commit") throw new CliError('config "durability" must be "flush" or "commit"');
  const retention = parseRetention(config.retention);
  // The stores ask for a room's retention when they trim; the server (created below) adds the tenant's limits.
  const bound: { server?: ArqonServer } = {};
  const historyRetention = tenantRetention(retention, () => bound.server);
  let storage: EmbeddedStorage | undefined;
  const storageDir = path.join(resolved.dataDir, "data");
  let nats: NatsBackends | undefined;
  if (natsUrl) {
    try {
      nats = await connectNatsBackends({
        servers: natsUrl.split(",").map((s) => s.trim()),
        name: `arqon-${hostname()}-${process.pid}`,
        replicas: config.natsReplicas ?? 1,
        history: { retention: historyRetention },
      });
    } catch (err) {
      throw new CliError(`cannot join NATS at ${natsUrl}: ${(err as Error).message}`);
    }
    nats.onStatus((status) => (status === "connected" ? logger.info({ nats: status }, "NATS connection") : logger.warn({ nats: status }, "NATS connection")));
  } else if (storageKind === "embedded") {
    try {
      storage = await openEmbeddedStorage({ path: storageDir, retention: historyRetention, durability });
    } catch (err) {
      throw new CliError(`cannot open the database in ${storageDir}: ${(err as Error).message} (or run with --memory)`);
    }
  }

  // CASIL: on by default (monitor mode, default policies) so every inbound message is inspected; a flag or
  // ARQON_CASIL_ENABLED=false turns it off, and then op.casil.* answers FEATURE_DISABLED.
  const casilEnv: Record<string, string | undefined> = { ...env };
  if (values["casil-policy"] !== undefined) casilEnv.ARQON_CASIL_POLICY_FILE = path.resolve(ctx.cwd, values["casil-policy"]);
  if (values["no-casil"]) casilEnv.ARQON_CASIL_ENABLED = "false";
  else casilEnv.ARQON_CASIL_ENABLED ??= "true";
  // With a real key the safety layer blocks by default; dev mode only records (a policy file's mode wins over both).
  if (!resolved.dev) casilEnv.ARQON_CASIL_MODE ??= "enforce";
  let casil: CasilController | undefined;
  try {
    casil = await createCasilFromEnv(casilEnv, { logger });
  } catch (err) {
    await storage?.close();
    throw new CliError(`CASIL: ${(err as Error).message}`);
  }

  const options: ArqonServerOptions = {
    auth,
    ...(casil ? { casil } : {}),
    ...(nats
      ? {
          bus: nats.bus,
          controlPlane: nats.controlPlane,
          history: nats.history,
          presence: nats.presence,
          state: nats.state,
          kv: nats.kv,
          storageStatus: { backend: "nats-jetstream", durable: true },
          backendStatus: () => ({ name: "nats", state: nats!.status() }),
        }
      : storage
        ? { history: storage.history, state: storage.state, kv: storage.kv, storageStatus: { backend: "lmdb", durable: true } }
        : { storageStatus: { backend: "memory", durable: false } }),
    path: wsPath,
    logger,
    limits: config.limits,
    tenantLimits: config.tenantLimits,
    tenantDefaults: config.tenantDefaults,
    operatorKeys: tenancy.operatorKeys,
    scrapeTokens: tenancy.scrapeTokens,
    tenancy: tenancy.mode,
    ...(tenancy.clusterKey ? { clusterKey: tenancy.clusterKey } : {}),
    outbound: {
      ...config.outbound,
      allow: list(values["outbound-allow"]) ?? list(env.ARQON_OUTBOUND_ALLOW) ?? config.outbound?.allow ?? [],
      allowHttp: values["outbound-allow-http"] ?? (env.ARQON_OUTBOUND_ALLOW_HTTP ? ["1", "true", "yes"].includes(env.ARQON_OUTBOUND_ALLOW_HTTP.toLowerCase()) : undefined) ?? config.outbound?.allowHttp ?? false,
    },
    proxy: proxyOptions(values, env, config.proxy),
    presenceOptions: presenceOptions(values["no-presence"], env.ARQON_PRESENCE_DISABLED_ROOMS, config.presence),
    allowedOrigins: list(values["allowed-origin"]) ?? list(env.ARQON_ALLOWED_ORIGINS) ?? config.allowedOrigins,
    perMessageDeflate: config.perMessageDeflate,
    console: consoleEnabled(values.console, values["no-console"], env.ARQON_CONSOLE, config.console, resolved.dev),
    ...(config.pusher ? { pusher: config.pusher } : {}),
    ...(config.fallback !== undefined ? { fallback: config.fallback } : {}),
    http: { apiRateLimit: apiRateLimit(values["api-rate"] ?? env.ARQON_API_RATE, values["api-burst"] ?? env.ARQON_API_BURST, config.http?.apiRateLimit) },
  };
  const otelOn = values.otel ?? ["1", "true", "yes"].includes((env.ARQON_OTEL ?? "").toLowerCase());
  let otel: OtelHandle | undefined;
  if (otelOn) {
    // The SDK is loaded only when tracing is on.
    const { otelSettings, startOtel } = await import("../otel.js");
    let settings;
    try {
      settings = otelSettings(values["otel-endpoint"], env);
    } catch (err) {
      await casil?.close();
      await storage?.close();
      await nats?.close();
      throw new CliError((err as Error).message);
    }
    otel = startOtel(settings, SERVER_VERSION, (err, failures) => {
      // The first failure, then one line per hundred: a missing collector must not flood the log.
      if (failures === 1 || failures % 100 === 0) logger.warn({ err, failures, endpoint: settings.endpoint }, "trace export failed");
    });
    options.tracing = { tracerProvider: otel.provider };
  }
  let server: ArqonServer;
  try {
    server = createArqonServer(options);
    if (otel) otel.exporter.guard = server.outbound;
  } catch (err) {
    await otel?.shutdown();
    await casil?.close();
    await storage?.close();
    await nats?.close();
    if (err instanceof ArqonError) throw new CliError(err.message);
    throw err;
  }
  bound.server = server;
  const operators: Operator = await registerStandardOperators(server, { omega: omegaOptionsFromEnv(env) });
  let address;
  try {
    address = await server.listen(port, host);
  } catch (err) {
    await operators.close();
    await server.close();
    await otel?.shutdown();
    await casil?.close();
    await storage?.close();
    await nats?.close();
    const code = (err as { code?: string }).code;
    if (code === "EADDRINUSE") throw new CliError(`port ${port} on ${host} is already in use (try --port)`);
    if (code === "EACCES") throw new CliError(`not allowed to listen on ${host}:${port}`);
    throw err;
  }
  const shown = displayHost(address.address);
  const httpUrl = `http://${shown}:${address.port}`;
  const url = `ws://${shown}:${address.port}${wsPath}`;
  // One banner per command: a worker hands its lines to the primary, which prints them once every worker listens.
  const banner = [
    `  WebSocket  ${url}`,
    `  Health     ${httpUrl}/health`,
    `  Status     ${httpUrl}/status`,
    `  Metrics    ${httpUrl}/metrics`,
    ...(options.console ? [`  Console    ${httpUrl}/console`] : []),
    nats
      ? `  Cluster    NATS ${natsUrl} (bus, JetStream history, KV presence/state/store)`
      : storage
        ? `  Storage    ${storageDir} (LMDB)`
        : `  Storage    in memory (nothing survives a restart)`,
    ...(otel ? [`  Traces     OTLP ${otel.exporter.endpoint}`] : []),
    casil ? `  CASIL      ${casil.engine.enabled ? String(casil.describe().mode) : "off"} (policy version ${casil.version})` : `  CASIL      off`,
  ];
  if (devToken) {
    banner.push(
      "",
      `DEV MODE: tokens signed with the local development key ${devKeyFile}${devKeyCreated ? " (created now)" : ""} are accepted.`,
      "Do not expose this server: anyone with that file can mint tokens. Configure --jwt-secret or keys for real use.",
      "",
      "A token (sub alice, tenant dev, valid 24h):",
      `  ${devToken}`,
      "Connect (in two terminals to see messages travel):",
      `  npx wscat -c "${url}?token=${devToken}"`,
      `More tokens: npx arqon token --sub bob --tenant dev`,
    );
  }
  if (tenancy.devOperatorKeyFile) {
    banner.push(`Operator key (tenants, /status, /metrics): ${tenancy.devOperatorKeyFile}; npx arqon tenant list reads it in dev`);
  } else if (tenancy.operatorKeys.length === 0) {
    banner.push("No operator key is configured: the server API answers 401 (set ARQON_OPERATOR_KEY).");
  }
  if (cluster.isWorker) {
    logger.info({ worker: cluster.worker?.id, url }, "worker listening");
    process.send?.({ arqon: "listening", banner });
  } else {
    io.out(`ArqonBus gateway listening`);
    for (const line of banner) io.out(line);
  }
  ctx.onListening?.(server, { url, httpUrl, token: devToken });

  await new Promise<void>((resolve) => {
    if (!ctx.signal) return;
    if (ctx.signal.aborted) return resolve();
    ctx.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  logger.info("shutting down");
  await operators.close();
  await server.close();
  await otel?.shutdown();
  await casil?.close();
  await storage?.close();
  await nats?.close();
  // A worker's IPC channel to the primary would keep it alive after everything else closed.
  if (cluster.isWorker) process.disconnect?.();
  return 0;
}

interface TenancyFlags {
  "operator-key"?: string[];
  "scrape-token"?: string[];
  tenants?: string;
  "cluster-key"?: string;
}

/** Operator keys, scrape tokens, tenancy mode and cluster key from flags, then variables, then the config file. */
function resolveTenancy(
  flags: TenancyFlags,
  env: NodeJS.ProcessEnv,
  config: ConfigFile,
  dataDir: string,
  dev: boolean,
): { operatorKeys: string[]; scrapeTokens: string[]; mode: TenancyMode; clusterKey?: string; devOperatorKeyFile?: string } {
  const operatorKeys = list(flags["operator-key"]) ?? list(env.ARQON_OPERATOR_KEY) ?? config.operatorKeys ?? [];
  const scrapeTokens = list(flags["scrape-token"]) ?? list(env.ARQON_SCRAPE_TOKEN) ?? config.scrapeTokens ?? [];
  for (const key of [...operatorKeys, ...scrapeTokens]) {
    if (key.length < 24) throw new CliError("operator keys and scrape tokens must be at least 24 characters");
  }
  const mode = flags.tenants ?? env.ARQON_TENANTS ?? config.tenancy ?? "open";
  if (mode !== "open" && mode !== "registered") throw new CliError('--tenants must be "open" or "registered"');
  const clusterKey = flags["cluster-key"] ?? env.ARQON_CLUSTER_KEY ?? config.clusterKey;
  if (clusterKey !== undefined && clusterKey.length < 32) throw new CliError("the cluster key must be at least 32 characters");
  let devOperatorKeyFile: string | undefined;
  if (dev && operatorKeys.length === 0) {
    const devKey = loadOrCreateDevOperatorKey(dataDir);
    operatorKeys.push(devKey.key);
    devOperatorKeyFile = devKey.file;
  }
  return { operatorKeys, scrapeTokens, mode, ...(clusterKey ? { clusterKey } : {}), ...(devOperatorKeyFile ? { devOperatorKeyFile } : {}) };
}

/**
 * The stores' retention: the config file's first matching rule for the room, with the tenant's limits on top once
 * the server exists (`ArqonServer.historyRetention`). Cached per room key for a second, so a changed tenant limit
 * applies within a second without costing a lookup per append.
 */
function tenantRetention(rules: RetentionRule[] | undefined, server: () => ArqonServer | undefined): (key: RoomKey) => RetentionPolicy {
  const cache = new Map<RoomKey, { at: number; policy: RetentionPolicy }>();
  return (key) => {
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && now - hit.at < 1000) return hit.policy;
    let base: RetentionPolicy = {};
    if (rules?.length) {
      let room: string = key;
      try {
        room = parseRoomKey(key).room;
      } catch {
        // not a routing key: match it as it is
      }
      const rule = rules.find((r) => roomMatches(r.pattern, room));
      if (rule) {
        const { pattern: _pattern, ...policy } = rule;
        base = policy;
      }
    }
    const policy = server()?.historyRetention(key, base) ?? base;
    if (cache.size >= 100_000) cache.clear();
    cache.set(key, { at: now, policy });
    return policy;
  };
}

/**
 * `--workers n`: the primary forks n gateway processes with the same arguments; they share the port (node:cluster)
 * and each other's rooms through NATS. It prints the banner once, when every worker listens, restarts a worker that
 * dies (at most 10 times a minute), and stops them all gracefully on abort (a worker still running 30 s after its
 * SIGTERM is killed).
 */
async function runPrimary(
  workers: number,
  io: CliIo,
  ctx: ServeContext,
  logger: ArqonServer["logger"],
  where: { port: number; host: string; wsPath: string },
): Promise<number> {
  let stopping = false;
  let bannerShown = false;
  // The banner waits for every worker: node:cluster hands connections only to workers that are listening, so a URL
  // printed after the first one would send every early client to that one process.
  const listening = new Set<number>();
  const restarts: number[] = [];
  // The primary picks the port once (a free one for --port 0) and hands it to every worker, restarted ones included.
  const port = where.port === 0 ? await freePort(where.host) : where.port;
  const fork = () => {
    const worker = cluster.fork({ ARQON_WORKER: "1", ARQON_WORKER_PORT: String(port) });
    worker.on("message", (message: { arqon?: string; banner?: string[] }) => {
      if (message?.arqon !== "listening") return;
      listening.add(worker.id);
      if (bannerShown || listening.size < workers) return;
      bannerShown = true;
      io.out(`ArqonBus gateway listening (${workers} worker processes joined through NATS)`);
      for (const line of message.banner ?? []) io.out(line);
    });
  };
  cluster.on("exit", (worker, code, signal) => {
    listening.delete(worker.id);
    if (stopping) return;
    const now = Date.now();
    while (restarts.length > 0 && restarts[0]! < now - 60_000) restarts.shift();
    if (restarts.length >= 10) {
      logger.error({ worker: worker.id, code, signal }, "workers keep dying; not restarting");
      return;
    }
    restarts.push(now);
    logger.warn({ worker: worker.id, code, signal }, "worker exited; starting another");
    fork();
  });
  logger.info({ workers, port, host: where.host, path: where.wsPath }, "starting workers");
  for (let i = 0; i < workers; i++) fork();
  await new Promise<void>((resolve) => {
    if (!ctx.signal) return;
    if (ctx.signal.aborted) return resolve();
    ctx.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  stopping = true;
  const alive = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
  await Promise.all(
    alive.map(
      (w) =>
        new Promise<void>((resolve) => {
          const kill = setTimeout(() => {
            logger.warn({ worker: w.id }, "worker did not stop within 30 s; killing it");
            w.process.kill("SIGKILL");
          }, 30_000);
          w.once("exit", () => {
            clearTimeout(kill);
            resolve();
          });
          w.process.kill("SIGTERM");
        }),
    ),
  );
  return 0;
}

/** A port that is free on `host` now: the kernel's pick for port 0, released at once for the workers to share. */
async function freePort(host: string): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve, reject) => {
    probe.once("error", reject);
    probe.listen(0, host, resolve);
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Validates the config file's `retention` rules (the stores apply the first rule whose pattern matches the room). */
function parseRetention(value: unknown): RetentionRule[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new CliError('config "retention" must be a list of {pattern, maxMessages, maxAgeMs, maxBytes}');
  return value.map((rule: unknown, i) => {
    const r = rule as Record<string, unknown>;
    if (typeof r !== "object" || r === null || typeof r.pattern !== "string" || r.pattern === "") {
      throw new CliError(`config retention[${i}] needs a "pattern" (a room name pattern such as "ticker:*")`);
    }
    const out: RetentionRule = { pattern: r.pattern };
    for (const field of ["maxMessages", "maxAgeMs", "maxBytes"] as const) {
      const n = r[field];
      if (n === undefined) continue;
      if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw new CliError(`config retention[${i}].${field} must be a non-negative integer`);
      out[field] = n;
    }
    return out;
  });
}

const PROXY_HOOK_NAMES = ["connect", "subscribe", "publish", "refresh", "rpc"] as const;

/** The proxy hooks: flags over ARQON_PROXY_* over the config file's `proxy`. */
export function proxyOptions(values: Record<string, unknown>, env: Record<string, string | undefined>, config: ProxyOptions = {}): ProxyOptions {
  const out: ProxyOptions = { ...config };
  const timeoutRaw = (values["proxy-timeout"] as string | undefined) ?? env.ARQON_PROXY_TIMEOUT_MS;
  const timeoutMs = timeoutRaw === undefined ? undefined : Number(timeoutRaw);
  if (timeoutMs !== undefined && (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1)) throw new CliError(`--proxy-timeout: a whole number of ms above 0, got "${timeoutRaw}"`);
  const failOpen = new Set(list(values["proxy-fail-open"] as string[] | undefined) ?? []);
  for (const name of failOpen) {
    if (!(PROXY_HOOK_NAMES as readonly string[]).includes(name)) throw new CliError(`--proxy-fail-open: "${name}" is not a hook (${PROXY_HOOK_NAMES.join(", ")})`);
  }
  for (const name of PROXY_HOOK_NAMES) {
    const url = (values[`proxy-${name}`] as string | undefined) ?? env[`ARQON_PROXY_${name.toUpperCase()}`];
    const given = url !== undefined ? { url } : typeof config[name] === "string" ? { url: config[name] as string } : config[name];
    if (given === undefined) continue;
    out[name] = { ...given, ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(failOpen.has(name) ? { failOpen: true } : {}) };
  }
  const secret = (values["proxy-secret"] as string | undefined) ?? env.ARQON_PROXY_SECRET;
  if (secret !== undefined) out.secret = secret;
  const cookies = list(values["proxy-forward-cookie"] as string[] | undefined);
  if (cookies) out.forwardCookies = cookies;
  const headers = list(values["proxy-forward-header"] as string[] | undefined);
  if (headers) out.forwardHeaders = headers;
  return out;
}

/** `http.apiRateLimit` from the flags (or their environment variables) over the config file. */
function apiRateLimit(rate: string | undefined, burst: string | undefined, config: { perSecond?: number; burst?: number } = {}): { perSecond?: number; burst?: number } {
  const out = { ...config };
  if (rate !== undefined) out.perSecond = parseRate(rate, "--api-rate");
  if (burst !== undefined) {
    const n = /^\d+$/.test(burst.trim()) ? Number(burst.trim()) : NaN;
    if (!Number.isSafeInteger(n) || n < 1) throw new CliError(`--api-burst: "${burst}" is not a whole number above 0`);
    out.burst = n;
  }
  return out;
}
