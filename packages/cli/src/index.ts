import pkg from "../package.json" with { type: "json" };

/** The version of `@arqon/cli`, read from its package.json at build time. */
export const VERSION: string = pkg.version;

/** Where the CLI writes; injected so tests can capture output. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Stops long-running commands (serve). @default SIGINT/SIGTERM of this process */
  signal?: AbortSignal;
}

const USAGE = `Usage: arqon <command> [options]

Commands:
  serve      run the gateway (embedded backends)            arqon serve --help
  token      print a signed token                            arqon token --sub alice --tenant acme
  status     show a running gateway's status                  arqon status --url ws://127.0.0.1:9100/ws
  tail       follow a room, printing each message             arqon tail lobby --token $ARQON_TOKEN
  publish    publish one JSON payload into a room             arqon publish lobby '{"text":"hi"}'
  casil      show or hot-reload a CASIL layer or the baseline  arqon casil reload --file policy.yaml
  tenant     manage tenants: records, limits, status          arqon tenant create acme --max-connections 500
  kick       close a tenant's connections of a user           arqon kick --tenant acme --user mallory
  revoke     refuse a tenant's tokens; list or lift rules     arqon revoke --tenant acme --user mallory
  audit      print the audit trail, newest first              arqon audit --tenant acme --limit 20
  history    print a room's history                           arqon history lobby --tenant acme --limit 20
  presence   print who is present in a room                   arqon presence lobby --tenant acme --stats
  rooms      list a tenant's rooms live on the node           arqon rooms --tenant acme --prefix team/
  api        call any server-API route by operation name      arqon api --list
  dashboard  write the Grafana dashboard (all or one tenant)  arqon dashboard export --tenant acme --out acme.json
  version    print the version

Client commands read the gateway URL from --url or ARQON_URL (default ws://127.0.0.1:9100/ws) and the token from
--token or ARQON_TOKEN, e.g. export ARQON_TOKEN=$(npx arqon token --sub me --tenant dev).

Operator commands (status, tenant, kick, revoke, audit, history, presence, rooms, api) call the server API at the
same URL (http(s)://host:port works too) with the operator key from ARQON_OPERATOR_KEY (or --operator-key), else the
dev key that arqon serve writes to <ARQON_DATA_DIR or ./.arqon>/operator-key; show, kick, revoke and audit --tenant
also take a token with role "admin" of that tenant (--token or ARQON_TOKEN), and history, presence, rooms and the
application-backend operations of api a token with role "admin" or "server".`;

/** An AbortSignal fired by the first SIGINT/SIGTERM; a second one exits at once. */
function processSignal(): AbortSignal {
  const controller = new AbortController();
  const onSignal = (): void => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return controller.signal;
}

/** Runs the `arqon` command with `argv` (without node and script) and resolves to the exit code. */
export async function run(argv: readonly string[], io: CliIo = processIo, options: RunOptions = {}): Promise<number> {
  const [command, ...rest] = argv;
  const ctx = { env: options.env ?? process.env, cwd: options.cwd ?? process.cwd() };
  try {
    switch (command) {
      case "--version":
      case "-v":
      case "version":
        io.out(VERSION);
        return 0;
      case "serve": {
        const { serveCommand } = await import("./commands/serve.js");
        return await serveCommand(rest, io, { ...ctx, signal: options.signal ?? processSignal() });
      }
      case "token": {
        const { tokenCommand } = await import("./commands/token.js");
        return await tokenCommand(rest, io, ctx);
      }
      case "status": {
        const { statusCommand } = await import("./commands/status.js");
        return await statusCommand(rest, io, ctx);
      }
      case "tail": {
        const { tailCommand } = await import("./commands/tail.js");
        return await tailCommand(rest, io, ctx.env, options.signal ?? processSignal());
      }
      case "publish": {
        const { publishCommand } = await import("./commands/publish.js");
        return await publishCommand(rest, io, ctx.env);
      }
      case "casil": {
        const { casilCommand } = await import("./commands/casil.js");
        return await casilCommand(rest, io, ctx);
      }
      case "tenant": {
        const { tenantCommand } = await import("./commands/tenant.js");
        return await tenantCommand(rest, io, ctx);
      }
      case "kick": {
        const { kickCommand } = await import("./commands/kick.js");
        return await kickCommand(rest, io, ctx);
      }
      case "revoke": {
        const { revokeCommand } = await import("./commands/revoke.js");
        return await revokeCommand(rest, io, ctx);
      }
      case "audit": {
        const { auditCommand } = await import("./commands/audit.js");
        return await auditCommand(rest, io, ctx);
      }
      case "history": {
        const { historyCommand } = await import("./commands/history.js");
        return await historyCommand(rest, io, ctx);
      }
      case "presence": {
        const { presenceCommand } = await import("./commands/presence.js");
        return await presenceCommand(rest, io, ctx);
      }
      case "rooms": {
        const { roomsCommand } = await import("./commands/rooms.js");
        return await roomsCommand(rest, io, ctx);
      }
      case "api": {
        const { apiCommand } = await import("./commands/api.js");
        return await apiCommand(rest, io, ctx);
      }
      case "dashboard": {
        const { dashboardCommand } = await import("./commands/dashboard.js");
        return await dashboardCommand(rest, io, ctx);
      }
      case "help":
      case "--help":
      case "-h":
        io.out(USAGE);
        return 0;
      default:
        io.err(command === undefined ? USAGE : `arqon ${VERSION}: unknown command "${command}" (try --help or --version)`);
        return 2;
    }
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.name === "CliError" || e.name === "ArqonError" || e.code?.startsWith("ERR_PARSE_ARGS")) {
      io.err(`arqon ${command}: ${e.message}`);
      return 2;
    }
    throw err;
  }
}
