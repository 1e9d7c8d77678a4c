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

/** Runs the `arqon` command with `argv` (without node and script) and resolves to the exit code. */
export async function run(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [command] = argv;
  if (command === "--version" || command === "-v" || command === "version") {
    io.out(VERSION);
    return 0;
  }
  io.err(`arqon ${VERSION}: commands arrive in later releases (try --version)`);
  return 2;
}
