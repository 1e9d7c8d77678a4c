import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

/**
 * Parent/child plumbing: every system under test and every load generator is a forked child that answers
 * `{ id, cmd, args }` requests over IPC. Children exit when the IPC channel closes, and the parent kills every child
 * it started (by PID) on exit and on SIGINT/SIGTERM, so an interrupted run leaves nothing behind.
 */

type Handler = (args: never) => unknown;

interface Request {
  id: number;
  cmd: string;
  args: unknown;
}

/** Child side: answer requests with the given handlers and tell the parent we are ready. */
export function serveIpc(handlers: Record<string, Handler>, ready: unknown = {}): void {
  if (!process.send) throw new Error("this file runs as a forked bench child");
  process.on("message", (msg: Request) => {
    const h = handlers[msg.cmd];
    Promise.resolve()
      .then(() => {
        if (!h) throw new Error(`unknown command ${msg.cmd}`);
        return h(msg.args as never);
      })
      .then(
        (result) => process.send?.({ id: msg.id, ok: true, result }),
        (err: unknown) => process.send?.({ id: msg.id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
      );
  });
  process.on("disconnect", () => process.exit(0));
  process.send({ id: 0, ok: true, result: ready });
}

const children = new Set<ChildProcess>();
let hooked = false;

function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid) {
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  children.clear();
}

function hookCleanup(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", killAll);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

export interface ChildOptions {
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  env?: Record<string, string>;
  /** Time allowed for the child to start and report ready. @default 30000 */
  readyTimeoutMs?: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const benchRoot = path.resolve(here, "..");

/**
 * Extra Node options for every forked child, from ARQON_BENCH_NODE_ARGS (space-separated), e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/p` to profile the load generators too (Node refuses --cpu-prof in NODE_OPTIONS).
 */
const extraNodeArgs = (process.env.ARQON_BENCH_NODE_ARGS ?? "").split(" ").filter((a) => a.length > 0);

/** A forked child speaking the request protocol. */
export class Child {
  readonly proc: ChildProcess;
  readonly ready: Promise<unknown>;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private exited = false;

  constructor(readonly name: string, script: string, argv: string[], opts: ChildOptions = {}) {
    hookCleanup();
    this.proc = fork(path.join(here, script), argv, {
      cwd: benchRoot,
      execArgv: ["--conditions=arqon-source", "--import", "tsx", "--expose-gc", ...extraNodeArgs, ...(opts.nodeArgs ?? [])],
      serialization: "advanced",
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    children.add(this.proc);
    let readyResolve!: (v: unknown) => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    const readyTimer = setTimeout(() => readyReject(new Error(`${name}: not ready in time`)), opts.readyTimeoutMs ?? 30_000);
    this.waiting.set(0, { resolve: readyResolve, reject: readyReject, timer: readyTimer });
    this.proc.on("message", (msg: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const w = this.waiting.get(msg.id);
      if (!w) return;
      this.waiting.delete(msg.id);
      clearTimeout(w.timer);
      if (msg.ok) w.resolve(msg.result);
      else w.reject(new Error(`${name}: ${msg.error}`));
    });
    this.proc.on("exit", (code, signal) => {
      this.exited = true;
      children.delete(this.proc);
      for (const w of this.waiting.values()) {
        clearTimeout(w.timer);
        w.reject(new Error(`${name} exited (code ${code}, signal ${signal})`));
      }
      this.waiting.clear();
    });
  }

  call<T = unknown>(cmd: string, args: unknown = {}, timeoutMs = 60_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.send({ id, cmd, args });
    });
  }

  /** Asks the child to exit (so --cpu-prof writes its profile), then kills it by PID if it does not. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.proc.once("exit", () => resolve()));
    this.call("exit", {}, graceMs).catch(() => undefined);
    const timer = setTimeout(() => {
      if (!this.exited && this.proc.pid) {
        try {
          process.kill(this.proc.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }, graceMs);
    await gone;
    clearTimeout(timer);
  }
}

export { benchRoot };
