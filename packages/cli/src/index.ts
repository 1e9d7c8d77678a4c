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
  casil      show or hot-reload the CASIL policy (admin)      arqon casil reload --file policy.yaml
  version    print the version

Client commands read the gateway URL from --url or ARQON_URL (default ws://127.0.0.1:9100/ws) and the token from
--token or ARQON_TOKEN, e.g. export ARQON_TOKEN=$(npx arqon token --sub me --tenant dev).`;

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
        return await statusCommand(rest, io, ctx.env);
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
        return await casilCommand(rest, io, ctx.env);
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
