import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A `nats-server -js` child process on a loopback port, owned by the test that started it. */
export interface NatsServerHandle {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  /** The loopback TCP port, chosen free at the first start and kept across restarts. */
  readonly port: number;
  /** JetStream store directory (kept across `restart()`, removed by `stop()`). */
  readonly storeDir: string;
  /** PID of the current process, undefined while it is down. */
  readonly pid: number | undefined;
  /** Stops the process (SIGTERM, SIGKILL after 5 s) and starts it again on the same port and store directory. */
  restart(): Promise<void>;
  /** SIGKILL, as a crash: JetStream keeps only what it had synced. Resolves once the process has exited. */
  kill(): Promise<void>;
  /** Starts a killed server again (same port, same store); does nothing while it runs, rejects after `stop()`. */
  start(): Promise<void>;
  /** Stops the process and removes the store directory. Idempotent. */
  stop(): Promise<void>;
  /** `stop()`, for `await using nats = await startNatsServer()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@link startNatsServer}. */
export interface StartNatsServerOptions {
  /** The nats-server executable. @default process.env.ARQON_NATS_SERVER ?? "nats-server" */
  binary?: string;
  /** Extra command-line arguments. */
  args?: string[];
  /** How long to wait for the port to accept connections. @default 10000 */
  readyTimeoutMs?: number;
}

/** The nats-server binary tests use: `ARQON_NATS_SERVER` or `nats-server` on the PATH. */
export function natsServerBinary(): string {
  return process.env.ARQON_NATS_SERVER ?? "nats-server";
}

let cachedVersion: string | null | undefined;

/** The version line of the nats-server binary (`nats-server: v2.9.10`), or null when it cannot be run. */
export function natsServerVersion(binary = natsServerBinary()): string | null {
  if (cachedVersion !== undefined && binary === natsServerBinary()) return cachedVersion;
  const out = spawnSync(binary, ["--version"], { encoding: "utf8", timeout: 5000 });
  const version = out.status === 0 ? out.stdout.trim() : null;
  if (binary === natsServerBinary()) cachedVersion = version;
  return version;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      socket.removeAllListeners();
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.setTimeout(500, () => done(false));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/**
 * Starts `nats-server -js -a 127.0.0.1 -p <free port> -sd <tmpdir>` and resolves once it accepts TCP connections.
 * Rejects (and kills the child) if it exits or does not become ready in time.
 */
export async function startNatsServer(options: StartNatsServerOptions = {}): Promise<NatsServerHandle> {
  const binary = options.binary ?? natsServerBinary();
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const storeDir = mkdtempSync(join(tmpdir(), "arqon-nats-"));
  let port = 0;
  let child: ChildProcess | undefined;
  let log = "";
  let stopped = false;

  async function launch(): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (port === 0) port = await freePort();
      const args = ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir, ...(options.args ?? [])];
      const proc = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
      child = proc;
      log = "";
      proc.stderr?.setEncoding("utf8");
      proc.stderr?.on("data", (chunk: string) => {
        log = (log + chunk).slice(-8192);
      });
      const spawnError = new Promise<Error>((resolve) => proc.once("error", resolve));
      const deadline = Date.now() + readyTimeoutMs;
      for (;;) {
        const failed = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(() => r(undefined), 0))]);
        if (failed) throw new Error(`cannot start ${binary}: ${failed.message}`, { cause: failed });
        if (proc.exitCode !== null || proc.signalCode !== null) break;
        if (await canConnect(port)) return;
        if (Date.now() > deadline) {
          proc.kill("SIGKILL");
          await exited(proc);
          throw new Error(`${binary} did not accept connections on 127.0.0.1:${port} within ${readyTimeoutMs} ms:\n${log}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      child = undefined;
      // The port was taken between choosing and binding it: only a first start may pick another one.
      if (!/address already in use/i.test(log) || handle.started) {
        throw new Error(`${binary} exited during start (code ${proc.exitCode}, signal ${proc.signalCode}):\n${log}`);
      }
      port = 0;
    }
    throw new Error(`${binary} could not bind a free port`);
  }

  async function halt(signal: NodeJS.Signals): Promise<void> {
    const proc = child;
    if (proc === undefined) return;
    child = undefined;
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited(proc);
      clearTimeout(timer);
    }
  }

  const handle = {
    started: false,
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    storeDir,
    get pid() {
      return child?.pid;
    },
    async restart() {
      await halt("SIGTERM");
      await launch();
    },
    async kill() {
      await halt("SIGKILL");
    },
    async start() {
      if (stopped) throw new Error("the server was stopped for good");
      if (child === undefined) await launch();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await halt("SIGTERM");
      rmSync(storeDir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]() {
      return handle.stop();
    },
  };
  try {
    await launch();
  } catch (error) {
    rmSync(storeDir, { recursive: true, force: true });
    throw error;
  }
  handle.started = true;
  return handle;
}
