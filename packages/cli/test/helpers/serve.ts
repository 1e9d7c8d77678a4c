import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ArqonServer } from "@arqon/server";
import { serveCommand } from "../../src/commands/serve.js";

/** A real `arqon serve` (the CLI's own serve command, in this process) with its server object, for tests. */
export interface ServedGateway {
  server: ArqonServer;
  /** ws://127.0.0.1:<port>/ws */
  url: string;
  /** http://127.0.0.1:<port> */
  httpUrl: string;
  /** The data directory (removed by stop). */
  dir: string;
  out: string[];
  stop(): Promise<void>;
}

/** Runs `arqon serve --port 0 <argv>` with `env` as its whole environment, in a fresh data directory. */
export async function serveInProcess(argv: string[], env: NodeJS.ProcessEnv): Promise<ServedGateway> {
  const dir = mkdtempSync(path.join(tmpdir(), "arqon-served-"));
  const out: string[] = [];
  const err: string[] = [];
  const controller = new AbortController();
  let resolveListening!: (v: { server: ArqonServer; url: string; httpUrl: string }) => void;
  const listening = new Promise<{ server: ArqonServer; url: string; httpUrl: string }>((r) => (resolveListening = r));
  const done = serveCommand(["--port", "0", "--data-dir", dir, ...argv], { out: (l) => out.push(l), err: (l) => err.push(l) }, {
    env,
    cwd: dir,
    signal: controller.signal,
    onListening: (server, info) => resolveListening({ server, url: info.url, httpUrl: info.httpUrl }),
  });
  const started = await Promise.race([listening, done.then((code) => Promise.reject(new Error(`serve exited with ${code}: ${err.join("\n")}`)))]);
  return {
    ...started,
    dir,
    out,
    async stop() {
      controller.abort();
      await done;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
